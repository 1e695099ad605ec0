//! `cargo xtask bench serve`: the generated CRM service under load, beside two hand-written
//! services for the same endpoints (`xtask/baseline/`): "guarded", with the generated service's
//! guarantees (row-level security on every request, an audit entry with every write), and
//! "plain" (neither); and FastAPI + SQLAlchemy + uvicorn (`xtask/baseline/fastapi/`) for
//! context. The same PostgreSQL, the same rows and the same requests, driven by wrk.
//!
//! For every service and request it prints req/s, p50, p99, failed requests, the CPU the service
//! spent per request (from `/proc`, user and system) and peak RSS, and
//! the **round trips** and **statements** per request, counted on the wire by a proxy in front
//! of PostgreSQL (`prefiq-roundtrips`) in a pass of its own, so that the proxy costs the
//! measured pass nothing. The counting pass runs with several clients that hang up when it
//! ends: any warning of PostgreSQL's about transaction state ("there is already a transaction
//! in progress") fails the bench.
//!
//! The table runs twice: with authentication off, and on, where every request carries a real
//! EdDSA access token that a Cortex (built and started here) issued to a service client, and
//! every Rust service verifies it (FastAPI sits that run out).
//!
//! Each service gets a database of its own, made by the CRM's migrations and filled with the same
//! rows; each runs alone on the machine while it is measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use prefiq_roundtrips::Proxy;

use crate::bench::flag;

/// The requests, as (name, wrk script body). Each script's `done` prints one JSON line; each
/// sends `BENCH_TOKEN` as a bearer token when it is set.
const REQUESTS: [(&str, &str); 4] = [
    (
        "get by id",
        r#"
local rows = tonumber(os.getenv("BENCH_ROWS"))
request = function()
  local id = string.format("00000000-0000-4000-8000-%012d", math.random(1, rows))
  return wrk.format("GET", "/api/crm/companies/" .. id, headers())
end
"#,
    ),
    (
        "list 20 (filter, sort)",
        r#"
request = function()
  return wrk.format("GET", "/api/crm/companies?industry=eq.software&sort=-annual_revenue&limit=20", headers())
end
"#,
    ),
    (
        "create",
        r#"
local counter = 0
local run = os.getenv("BENCH_RUN")
setup = function(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("tid", thread_count)
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"name":"bench-%s-%d-%d","industry":"software","annual_revenue":"1234.50","employee_count":12,"tags":["bench"]}',
    run, tid, counter)
  return wrk.format("POST", "/api/crm/companies", headers({["Content-Type"] = "application/json"}), body)
end
"#,
    ),
    (
        "patch with If-Match",
        r#"
-- The rows of this pass: first .. last (the counting pass and the measured one patch
-- different rows, so that each starts from version 1).
local first = tonumber(os.getenv("BENCH_FIRST_ROW"))
local last = tonumber(os.getenv("BENCH_LAST_ROW"))
local threads = tonumber(os.getenv("BENCH_THREADS"))
local next_row = 0
local etags = {}
setup = function(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("tid", thread_count)
end
request = function()
  -- Each thread patches its own rows, in turn, so no two requests race for one row.
  local row = first - 1 + tid + threads * next_row
  if row > last then
    next_row = 0
    row = first - 1 + tid
  end
  next_row = next_row + 1
  local id = string.format("00000000-0000-4000-8000-%012d", row)
  local body = string.format('{"employee_count":%d}', math.random(0, 100000))
  return wrk.format("PATCH", "/api/crm/companies/" .. id, headers({
    ["Content-Type"] = "application/merge-patch+json",
    ["If-Match"] = etags[id] or '"1"',
  }), body)
end
response = function(status, headers, body)
  local id = body:match('"id":%s*"([^"]+)"')
  local etag = headers["ETag"] or headers["etag"]
  if id and etag then
    etags[id] = etag
  end
end
"#,
    ),
];

/// Shared by every script: the bearer token, and the summary line.
const COMMON: &str = r#"
local token = os.getenv("BENCH_TOKEN")
function headers(extra)
  local h = extra or {}
  if token and token ~= "" then
    h["Authorization"] = "Bearer " .. token
  end
  return h
end
"#;

const DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"failed":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#;

/// One service under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Generated,
    Guarded,
    Plain,
    FastApi,
}

struct Service {
    kind: Kind,
    name: &'static str,
    database: &'static str,
}

const SERVICES: [Service; 4] = [
    Service {
        kind: Kind::Generated,
        name: "Prefiq (generated)",
        database: "prefiq_bench_generated",
    },
    Service {
        kind: Kind::Guarded,
        name: "by hand, same guarantees",
        database: "prefiq_bench_guarded",
    },
    Service {
        kind: Kind::Plain,
        name: "by hand, plain",
        database: "prefiq_bench_plain",
    },
    Service {
        kind: Kind::FastApi,
        name: "FastAPI + SQLAlchemy",
        database: "prefiq_bench_fastapi",
    },
];

/// What one service did on one request.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
    requests: u64,
    /// Per request, from the counting pass.
    round_trips: f64,
    statements: f64,
    /// CPU time the service spent per request (user + system, µs), from the measured pass.
    cpu_us: f64,
}

/// Access tokens for the run with authentication on.
struct Tokens {
    /// A Cortex-issued access token.
    token: String,
    /// The key set it verifies with.
    keys: String,
}

fn psql(base: &str, database: &str, sql: &str) -> bool {
    Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{base}/{database}"))
        .args(["-c", sql])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh database with the CRM's tables (made by the generated binary's migrations) and
/// `rows` companies with ids `00000000-0000-4000-8000-<n>`, in the default tenant.
fn prepare(base: &str, database: &str, rows: usize, crm: &Path) -> bool {
    let ok = psql(
        base,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    ) && psql(base, "postgres", &format!("CREATE DATABASE {database}"));
    if !ok {
        return false;
    }
    let migrated = Command::new(crm)
        .arg("--migrate-only")
        .env("DATABASE_URL", format!("{base}/{database}"))
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    migrated
        // The guarded baseline logs in as the role row-level security binds, as the generated
        // server does.
        && psql(base, database, "ALTER ROLE prefiq_app LOGIN")
        && psql(
            base,
            database,
            &format!(
                "INSERT INTO companies (id, tenant_id, name, domain, industry, employee_count, \
                 annual_revenue, tags, created_at, updated_at, version) \
                 SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, \
                 '00000000-0000-0000-0000-000000000000', 'company-' || i, 'c' || i || '.example', \
                 (ARRAY['software','manufacturing','retail','finance','healthcare','education','other'])[1 + i % 7], \
                 i % 5000, ((i * 7919) % 100000000) / 100.0, '[\"seed\"]'::jsonb, \
                 now() - i * interval '1 second', now(), 1 \
                 FROM generate_series(1, {rows}) AS i; ANALYZE companies"
            ),
        )
}

/// `url` logged in as `user`.
fn as_user(url: &str, user: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// Starts a service on `url` and waits until `/healthz` answers (from it, not from something
/// already on the port). Its standard error goes to `log`.
fn start(
    service: &Service,
    url: &str,
    port: u16,
    root: &Path,
    tokens: Option<&Tokens>,
    log: &Path,
) -> Option<Child> {
    if healthy(port) {
        eprintln!("error: something already answers on port {port}; stop it first");
        return None;
    }
    let bind = format!("127.0.0.1:{port}");
    let mut command = match service.kind {
        Kind::Generated => {
            let mut c = Command::new(root.join("target/release/app-crm"));
            c.args(["--bind", &bind])
                .env("DATABASE_URL", url)
                .env("PREFIQ_DB_MAX_CONNECTIONS", "10");
            match tokens {
                Some(tokens) => c.env("PREFIQ_JWT_KEYS", &tokens.keys),
                None => c.env("PREFIQ_AUTH", "off"),
            };
            c
        }
        Kind::Guarded | Kind::Plain => {
            let mut c = Command::new(root.join("target/release/bench-baseline"));
            let (which, url) = if service.kind == Kind::Guarded {
                ("guarded", as_user(url, "prefiq_app"))
            } else {
                ("plain", url.to_owned())
            };
            c.args(["--bind", &bind, "--service", which])
                .env("DATABASE_URL", url)
                .env("DB_MAX_CONNECTIONS", "10");
            if let Some(tokens) = tokens {
                c.env("JWT_KEYS", &tokens.keys);
            }
            c
        }
        Kind::FastApi => {
            let venv = root.join("target/bench/fastapi");
            let mut c = Command::new(venv.join("bin/uvicorn"));
            c.args([
                "app:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "2",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ])
            .current_dir(root.join("xtask/baseline/fastapi"))
            // No TLS to the database on this machine, as for the Rust services.
            .env(
                "DATABASE_URL",
                format!(
                    "{}?ssl=disable",
                    url.replacen("postgres://", "postgresql+asyncpg://", 1)
                ),
            )
            // Two workers of five connections: the same ten as the Rust services.
            .env("POOL_SIZE", "5");
            c
        }
    };
    let stderr = std::fs::File::create(log).ok()?;
    let mut child = command
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .ok()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if child.try_wait().ok().flatten().is_some() {
            eprintln!(
                "{}",
                std::fs::read_to_string(log).unwrap_or_default().trim_end()
            );
            return None;
        }
        if healthy(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    None
}

fn healthy(port: u16) -> bool {
    crate::bench::http(port, "GET", "/healthz", "text/plain", "")
        .is_some_and(|(status, _)| status == 200)
}

/// Percent-encodes a form value.
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Cortex of its own (SQLite) registers a service client with the `admin` role of the default
/// tenant and issues it an access token (client credentials); its key set verifies it.
fn cortex_tokens(root: &Path, folder: &Path, port: u16) -> Result<Tokens, String> {
    let cortex = root.join("target/release/cortex");
    let url = format!("sqlite:{}", folder.join("cortex.db").display());
    let created = Command::new(&cortex)
        .args(["client", "create", "--name", "bench", "--roles", "admin"])
        .env("DATABASE_URL", &url)
        .env("PREFIQ_LOG", "warn")
        .output()
        .map_err(|e| format!("cortex client create: {e}"))?;
    let printed = String::from_utf8_lossy(&created.stdout);
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let (Some(id), Some(secret)) = (field("client_id:"), field("client_secret:")) else {
        return Err(format!(
            "cortex client create printed no client: {printed}{}",
            String::from_utf8_lossy(&created.stderr)
        ));
    };
    let log = folder.join("cortex.log");
    let mut server = Command::new(&cortex)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cortex: {e}"))?;
    let started = Instant::now();
    while !healthy(port) {
        if started.elapsed() > Duration::from_secs(60) || server.try_wait().ok().flatten().is_some()
        {
            let _ = server.kill();
            return Err(format!(
                "cortex did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_value(&id),
        form_value(&secret)
    );
    let issued = crate::bench::http(
        port,
        "POST",
        "/auth/token",
        "application/x-www-form-urlencoded",
        &form,
    );
    let keys = crate::bench::http(port, "GET", "/.well-known/jwks.json", "text/plain", "");
    crate::bench::stop(server, "TERM");
    let (status, issued) = issued.ok_or("cortex did not answer /auth/token")?;
    let json: serde_json::Value = serde_json::from_str(&issued)
        .map_err(|_| format!("/auth/token answered {status}: {issued}"))?;
    let token = json["access_token"]
        .as_str()
        .ok_or_else(|| format!("/auth/token answered {status}: {issued}"))?
        .to_owned();
    let (_, keys) = keys.ok_or("cortex did not answer /.well-known/jwks.json")?;
    Ok(Tokens { token, keys })
}

/// A process and its children (uvicorn's workers).
fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid)
                && let Ok(child) = entry.file_name().to_string_lossy().parse()
            {
                pids.push(child);
            }
        }
    }
    pids
}

/// CPU time (user + system, µs) a process and its children have used so far.
fn cpu_us(pid: u32) -> u64 {
    // /proc reports in clock ticks of USER_HZ, which Linux fixes at 100 per second.
    const MICROS_PER_TICK: u64 = 10_000;
    family(pid)
        .into_iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After "pid (comm) ": state is field 3, utime 14 and stime 15.
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            (field(14).unwrap_or(0) + field(15).unwrap_or(0)) * MICROS_PER_TICK
        })
        .sum()
}

/// Peak resident memory (KiB) of a process and its children (uvicorn's workers).
fn peak_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
    for pid in family(pid) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

fn wrk(
    script: &Path,
    port: u16,
    seconds: u64,
    connections: u64,
    env: &[(&str, String)],
) -> Option<Figures> {
    let output = Command::new("wrk")
        .args([
            "-t",
            &THREADS.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rfind(|l| l.starts_with('{'))?;
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    let number = |key: &str| json[key].as_f64().unwrap_or(0.0);
    Some(Figures {
        rps: number("requests") / (number("duration_us") / 1e6),
        p50_ms: number("p50_us") / 1000.0,
        p99_ms: number("p99_us") / 1000.0,
        failed: number("failed") as u64,
        requests: number("requests") as u64,
        ..Figures::default()
    })
}

const THREADS: u64 = 2;

/// Clients of the counting pass: several, so that the pool is shared, and all of them hang up
/// mid-request when it ends.
const COUNTING_CONNECTIONS: u64 = 8;
const COUNTING_SECONDS: u64 = 2;

fn fastapi_env(root: &Path) -> bool {
    crate::python_tools(
        &root.join("target/bench/fastapi"),
        &root.join("xtask/baseline/fastapi/requirements.txt"),
    )
}

/// Everything one table needs.
struct Bench<'a> {
    base: &'a str,
    root: &'a Path,
    crm: &'a Path,
    scripts: &'a [PathBuf],
    env: Vec<(&'static str, String)>,
    seconds: u64,
    connections: u64,
    rows: usize,
    logs: &'a Path,
}

impl Bench<'_> {
    /// Measures `services` with `tokens` (authentication on) or without: figures per service and
    /// request, peak RSS per service, and the transaction warnings PostgreSQL sent.
    fn run(&self, services: &[&Service], tokens: Option<&Tokens>) -> Result<Measured, String> {
        let mut env = self.env.clone();
        if let Some(tokens) = tokens {
            env.push(("BENCH_TOKEN", tokens.token.clone()));
        }
        // Each pass creates names of its own and patches rows of its own.
        let half = self.rows / 2;
        let pass = |name: &str, first: usize, last: usize| {
            let mut env = env.clone();
            env.push(("BENCH_RUN", format!("{}-{name}", std::process::id())));
            env.push(("BENCH_FIRST_ROW", first.to_string()));
            env.push(("BENCH_LAST_ROW", last.to_string()));
            env
        };
        let (counting, measured) = (
            pass(
                if tokens.is_some() {
                    "count-auth"
                } else {
                    "count"
                },
                half + 1,
                self.rows,
            ),
            pass(if tokens.is_some() { "auth" } else { "off" }, 1, half),
        );
        let mut results = vec![vec![Figures::default(); REQUESTS.len()]; services.len()];
        let mut peaks = vec![0u64; services.len()];
        let mut warnings = Vec::new();
        for (index, service) in services.iter().enumerate() {
            if !prepare(self.base, service.database, self.rows, self.crm) {
                return Err(format!(
                    "cannot prepare {} on {}",
                    service.database, self.base
                ));
            }
            let url = format!("{}/{}", self.base, service.database);
            let port = 18_080 + index as u16;
            let log = self.logs.join(format!("{}.log", service.database));

            // The counting pass, through the proxy.
            let (proxy, through) = Proxy::in_front_of(&url).map_err(|e| format!("proxy: {e}"))?;
            let child = start(service, &through, port, self.root, tokens, &log)
                .ok_or_else(|| format!("{} did not start", service.name))?;
            let _ = wrk(&self.scripts[0], port, 1, COUNTING_CONNECTIONS, &counting);
            for (request, script) in self.scripts.iter().enumerate() {
                let before = proxy.counts();
                let figures = wrk(
                    script,
                    port,
                    COUNTING_SECONDS,
                    COUNTING_CONNECTIONS,
                    &counting,
                )
                .ok_or_else(|| format!("wrk failed on {}", service.name))?;
                // What hung up finishes on the server.
                std::thread::sleep(Duration::from_millis(300));
                let spent = proxy.counts() - before;
                let served = figures.requests.max(1) as f64;
                results[index][request].round_trips = spent.round_trips as f64 / served;
                results[index][request].statements = spent.statements as f64 / served;
            }
            crate::bench::stop(child, "TERM");
            warnings.extend(
                proxy
                    .warnings()
                    .into_iter()
                    .map(|w| format!("{}: {w}", service.name)),
            );
            drop(proxy);

            // The measured pass, straight to PostgreSQL.
            let child = start(service, &url, port, self.root, tokens, &log)
                .ok_or_else(|| format!("{} did not start", service.name))?;
            // Warm up: connections open, caches filled.
            let _ = wrk(&self.scripts[0], port, 2, self.connections, &measured);
            for (request, script) in self.scripts.iter().enumerate() {
                let cpu_before = cpu_us(child.id());
                match wrk(script, port, self.seconds, self.connections, &measured) {
                    Some(figures) => {
                        let counted = results[index][request];
                        let cpu = cpu_us(child.id()).saturating_sub(cpu_before) as f64
                            / figures.requests.max(1) as f64;
                        eprintln!(
                            "  {:<26} {:<24} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  failed {}  round trips {:.2}  statements {:.2}  CPU {:.0} µs",
                            service.name,
                            REQUESTS[request].0,
                            figures.rps,
                            figures.p50_ms,
                            figures.p99_ms,
                            figures.failed,
                            counted.round_trips,
                            counted.statements,
                            cpu,
                        );
                        results[index][request] = Figures {
                            round_trips: counted.round_trips,
                            statements: counted.statements,
                            cpu_us: cpu,
                            ..figures
                        };
                    }
                    None => return Err(format!("wrk failed on {}", service.name)),
                }
            }
            peaks[index] = peak_rss_kib(child.id());
            crate::bench::stop(child, "TERM");
            // The generated server reports what PostgreSQL warned it about.
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            warnings.extend(
                logged
                    .lines()
                    .filter(|l| l.contains("PostgreSQL warning"))
                    .map(|l| format!("{}: {l}", service.name)),
            );
        }
        Ok(Measured {
            figures: results,
            peaks,
            warnings,
        })
    }
}

/// What [`Bench::run`] measured: figures per service and request, peak RSS per service (KiB),
/// and PostgreSQL's warnings about transaction state.
struct Measured {
    figures: Vec<Vec<Figures>>,
    peaks: Vec<u64>,
    warnings: Vec<String>,
}

pub(crate) fn serve(args: &[&str]) -> ExitCode {
    let seconds = flag(args, "--duration", 10) as u64;
    let connections = flag(args, "--connections", 32) as u64;
    let rows = flag(args, "--rows", 10_000);
    let base = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let root = crate::root();
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("error: wrk is missing; install it with `apt-get install wrk`");
        return ExitCode::FAILURE;
    }
    if !crate::run(
        "cargo",
        &[
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "app-crm",
            "-p",
            "bench-baseline",
            "-p",
            "cortex",
        ],
    ) || !fastapi_env(&root)
    {
        return ExitCode::FAILURE;
    }
    let crm = root.join("target/release/app-crm");
    let scripts = tempfile::tempdir().expect("a temporary folder");
    let script_paths: Vec<PathBuf> = REQUESTS
        .iter()
        .enumerate()
        .map(|(i, (_, body))| {
            let path = scripts.path().join(format!("{i}.lua"));
            std::fs::write(&path, format!("{COMMON}\n{body}\n{DONE}")).expect("a script");
            path
        })
        .collect();
    let bench = Bench {
        base: &base,
        root: &root,
        crm: &crm,
        scripts: &script_paths,
        env: vec![
            ("BENCH_ROWS", rows.to_string()),
            ("BENCH_THREADS", THREADS.to_string()),
        ],
        seconds,
        connections,
        rows,
        logs: scripts.path(),
    };
    eprintln!(
        "wrk: {THREADS} threads, {connections} connections, {seconds} s per request; {rows} companies per database"
    );
    let everyone: Vec<&Service> = SERVICES.iter().collect();
    eprintln!("authentication off");
    let Measured {
        figures: off,
        peaks,
        mut warnings,
    } = match bench.run(&everyone, None) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("authentication on: a Cortex issues the token");
    let tokens = match cortex_tokens(&root, scripts.path(), 18_099) {
        Ok(tokens) => tokens,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let rust: Vec<&Service> = SERVICES
        .iter()
        .filter(|s| s.kind != Kind::FastApi)
        .collect();
    let Measured {
        figures: on,
        warnings: more,
        ..
    } = match bench.run(&rust, Some(&tokens)) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    warnings.extend(more);
    print!("{}", report("authentication off", &everyone, &off));
    print!(
        "{}",
        report("authentication on (EdDSA access tokens)", &rust, &on)
    );
    println!("\npeak RSS (authentication off)");
    for (index, service) in everyone.iter().enumerate() {
        println!(
            "  {:<26} {:>8.1} MiB",
            service.name,
            peaks[index] as f64 / 1024.0
        );
    }
    let failed: u64 = off.iter().chain(&on).flatten().map(|f| f.failed).sum();
    if !warnings.is_empty() {
        eprintln!("\nerror: PostgreSQL warned about transaction state:");
        for warning in warnings.iter().take(20) {
            eprintln!("  {warning}");
        }
        return ExitCode::FAILURE;
    }
    if failed > 0 {
        eprintln!("\nerror: {failed} requests failed");
        return ExitCode::FAILURE;
    }
    println!("\nno transaction-state warnings from PostgreSQL; no failed requests");
    ExitCode::SUCCESS
}

/// The targets of the generated service, per request: (vs same guarantees, vs plain).
const TARGETS: [(f64, f64); 4] = [(0.95, 0.9), (0.95, 0.9), (0.9, 0.75), (0.9, 0.7)];

fn report(title: &str, services: &[&Service], results: &[Vec<Figures>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "{:<24} {:<26} {:>9} {:>8} {:>8} {:>7} {:>12} {:>11} {:>11}",
        "request",
        "service",
        "req/s",
        "p50 ms",
        "p99 ms",
        "failed",
        "round trips",
        "statements",
        "CPU µs/req"
    );
    for (request, (name, _)) in REQUESTS.iter().enumerate() {
        for (index, service) in services.iter().enumerate() {
            let f = results[index][request];
            let _ = writeln!(
                out,
                "{:<24} {:<26} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>12.2} {:>11.2} {:>11.0}",
                if index == 0 { *name } else { "" },
                service.name,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                f.failed,
                f.round_trips,
                f.statements,
                f.cpu_us
            );
        }
    }
    let column = |kind: Kind| services.iter().position(|s| s.kind == kind);
    let (Some(generated), Some(guarded), Some(plain)) = (
        column(Kind::Generated),
        column(Kind::Guarded),
        column(Kind::Plain),
    ) else {
        return out;
    };
    let fastapi = column(Kind::FastApi);
    let _ = writeln!(
        out,
        "\n{:<24} {:>22} {:>22} {:>18}",
        "generated req/s ÷", "same guarantees", "plain", "FastAPI"
    );
    for (request, (name, _)) in REQUESTS.iter().enumerate() {
        let ratio =
            |other: usize| results[generated][request].rps / results[other][request].rps.max(1e-9);
        let mark = |value: f64, target: f64| if value >= target { "ok" } else { "BELOW" };
        let (vs_guarded, vs_plain) = (ratio(guarded), ratio(plain));
        let (target_guarded, target_plain) = TARGETS[request];
        let _ = writeln!(
            out,
            "{:<24} {:>6.2}× (≥{:.2} {:<5}) {:>6.2}× (≥{:.2} {:<5}) {:>17}",
            name,
            vs_guarded,
            target_guarded,
            mark(vs_guarded, target_guarded),
            vs_plain,
            target_plain,
            mark(vs_plain, target_plain),
            fastapi.map_or("—".to_owned(), |f| format!("{:.2}×", ratio(f))),
        );
    }
    out
}
