//! `cargo xtask bench serve`: the generated CRM service under load, beside a hand-written axum +
//! sqlx service for the same endpoints (`xtask/baseline/`) and FastAPI + SQLAlchemy + uvicorn
//! (`xtask/baseline/fastapi/`), on the same PostgreSQL, the same rows and the same requests,
//! driven by wrk. Figures, not assertions: it prints req/s, p50, p99, failed requests and peak
//! RSS per service and request, and the ratios.
//!
//! Each service gets a database of its own, made by the CRM's migrations and filled with the same
//! rows; each runs alone on the machine while it is measured.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::bench::flag;

/// The requests, as (name, wrk script body). Each script's `done` prints one JSON line.
const REQUESTS: [(&str, &str); 4] = [
    (
        "get by id",
        r#"
local rows = tonumber(os.getenv("BENCH_ROWS"))
request = function()
  local id = string.format("00000000-0000-4000-8000-%012d", math.random(1, rows))
  return wrk.format("GET", "/api/crm/companies/" .. id)
end
"#,
    ),
    (
        "list 20 (filter, sort)",
        r#"
request = function()
  return wrk.format("GET", "/api/crm/companies?industry=eq.software&sort=-annual_revenue&limit=20")
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
  return wrk.format("POST", "/api/crm/companies", {["Content-Type"] = "application/json"}, body)
end
"#,
    ),
    (
        "patch with If-Match",
        r#"
local rows = tonumber(os.getenv("BENCH_ROWS"))
local threads = tonumber(os.getenv("BENCH_THREADS"))
local next_row = 0
local etags = {}
setup = function(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("tid", thread_count)
end
request = function()
  -- Each thread patches its own rows, in turn, so no two requests race for one row.
  local row = tid + threads * next_row
  if row > rows then
    next_row = 0
    row = tid
  end
  next_row = next_row + 1
  local id = string.format("00000000-0000-4000-8000-%012d", row)
  local body = string.format('{"employee_count":%d}', math.random(0, 100000))
  return wrk.format("PATCH", "/api/crm/companies/" .. id, {
    ["Content-Type"] = "application/merge-patch+json",
    ["If-Match"] = etags[id] or '"1"',
  }, body)
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
struct Service {
    name: &'static str,
    database: &'static str,
}

const SERVICES: [Service; 3] = [
    Service {
        name: "Prefiq (generated)",
        database: "prefiq_bench_generated",
    },
    Service {
        name: "axum + sqlx (by hand)",
        database: "prefiq_bench_handwritten",
    },
    Service {
        name: "FastAPI + SQLAlchemy",
        database: "prefiq_bench_fastapi",
    },
];

#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
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
/// `rows` companies with ids `00000000-0000-4000-8000-<n>`.
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

/// Starts a service and waits until `/healthz` answers (from it, not from something already on
/// the port).
fn start(service: usize, base: &str, port: u16, root: &Path) -> Option<Child> {
    if healthy(port) {
        eprintln!("error: something already answers on port {port}; stop it first");
        return None;
    }
    let url = format!("{base}/{}", SERVICES[service].database);
    let bind = format!("127.0.0.1:{port}");
    let mut command = match service {
        0 => {
            let mut c = Command::new(root.join("target/release/app-crm"));
            c.args(["--bind", &bind])
                .env("DATABASE_URL", &url)
                .env("PREFIQ_AUTH", "off")
                .env("PREFIQ_DB_MAX_CONNECTIONS", "10");
            c
        }
        1 => {
            let mut c = Command::new(root.join("target/release/bench-baseline"));
            c.args(["--bind", &bind])
                .env("DATABASE_URL", &url)
                .env("DB_MAX_CONNECTIONS", "10");
            c
        }
        _ => {
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
            .env(
                "DATABASE_URL",
                url.replacen("postgres://", "postgresql+asyncpg://", 1),
            )
            // Two workers of five connections: the same ten as the Rust services.
            .env("POOL_SIZE", "5");
            c
        }
    };
    let mut child = command
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if child.try_wait().ok().flatten().is_some() {
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
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// Peak resident memory (KiB) of a process and its children (uvicorn's workers).
fn peak_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
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
    for pid in pids {
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
    })
}

const THREADS: u64 = 2;

fn fastapi_env(root: &Path) -> bool {
    crate::python_tools(
        &root.join("target/bench/fastapi"),
        &root.join("xtask/baseline/fastapi/requirements.txt"),
    )
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
            std::fs::write(&path, format!("{body}\n{DONE}")).expect("a script");
            path
        })
        .collect();
    let run_id = std::process::id().to_string();
    let env = [
        ("BENCH_ROWS", rows.to_string()),
        ("BENCH_THREADS", THREADS.to_string()),
        ("BENCH_RUN", run_id),
    ];
    eprintln!(
        "wrk: {THREADS} threads, {connections} connections, {seconds} s per request; {rows} companies per database"
    );
    let mut results = vec![vec![Figures::default(); REQUESTS.len()]; SERVICES.len()];
    let mut peaks = vec![0u64; SERVICES.len()];
    for (index, service) in SERVICES.iter().enumerate() {
        if !prepare(&base, service.database, rows, &crm) {
            eprintln!("error: cannot prepare {} on {base}", service.database);
            return ExitCode::FAILURE;
        }
        let port = 18_080 + index as u16;
        let Some(mut child) = start(index, &base, port, &root) else {
            eprintln!("error: {} did not start", service.name);
            return ExitCode::FAILURE;
        };
        // Warm up: connections open, caches filled.
        let _ = wrk(&script_paths[0], port, 2, connections, &env);
        for (request, script) in script_paths.iter().enumerate() {
            match wrk(script, port, seconds, connections, &env) {
                Some(figures) => {
                    eprintln!(
                        "  {:<22} {:<24} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  failed {}",
                        service.name,
                        REQUESTS[request].0,
                        figures.rps,
                        figures.p50_ms,
                        figures.p99_ms,
                        figures.failed
                    );
                    results[index][request] = figures;
                }
                None => eprintln!("error: wrk failed on {}", service.name),
            }
        }
        peaks[index] = peak_rss_kib(child.id());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    print!("{}", report(&results, &peaks));
    ExitCode::SUCCESS
}

fn report(results: &[Vec<Figures>], peaks: &[u64]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<24} {:<24} {:>10} {:>9} {:>9} {:>7}",
        "request", "service", "req/s", "p50 ms", "p99 ms", "failed"
    );
    for (request, (name, _)) in REQUESTS.iter().enumerate() {
        for (index, service) in SERVICES.iter().enumerate() {
            let f = results[index][request];
            let _ = writeln!(
                out,
                "{:<24} {:<24} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                if index == 0 { *name } else { "" },
                service.name,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                f.failed
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:>20} {:>20} {:>20}",
        "ratios (req/s)", "generated / by hand", "by hand / FastAPI", "generated / FastAPI"
    );
    for (request, (name, _)) in REQUESTS.iter().enumerate() {
        let ratio =
            |a: usize, b: usize| results[a][request].rps / results[b][request].rps.max(1e-9);
        let _ = writeln!(
            out,
            "{:<24} {:>19.2}× {:>19.2}× {:>19.2}×",
            name,
            ratio(0, 1),
            ratio(1, 2),
            ratio(0, 2)
        );
    }
    let _ = writeln!(out, "\npeak RSS");
    for (index, service) in SERVICES.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:<24} {:>8.1} MiB",
            service.name,
            peaks[index] as f64 / 1024.0
        );
    }
    out
}
