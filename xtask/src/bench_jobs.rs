//! `cargo xtask bench jobs`: Prefiq's job queue beside graphile-worker (npm,
//! `xtask/baseline/graphile/`) on the same PostgreSQL and machine.
//!
//! - **Throughput**: `--jobs N` no-op jobs enqueued at once, then two worker processes of
//!   `--concurrency C` each started; jobs per second from the start of the workers to the last
//!   job done (counted in the database).
//! - **Latency**: two idle workers; `--samples N` jobs enqueued one at a time, 20 ms apart, each
//!   recording when it started; p50 and p99 of start minus enqueue, both read from the
//!   database's clock.
//!
//! Prefiq's worker is the runtime's `Worker` in `prefiq-testkit`'s `lab-worker` binary, built
//! in release, polling every 200 ms when idle (the runtime's default); graphile-worker runs its
//! own `run()` with the same concurrency (it is told of new jobs by LISTEN/NOTIFY) and logs
//! errors only. Each gets a database of its own.

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::bench::flag;

const BASE: &str = "postgres://postgres@127.0.0.1:5432";

fn psql(database: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{BASE}/{database}"))
        .args(["-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn fresh_database(name: &str) -> Result<(), String> {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql("postgres", &format!("CREATE DATABASE {name}"))?;
    Ok(())
}

/// A queue under test: how to prepare its database, enqueue, start a worker, and read it.
struct Peer {
    name: &'static str,
    database: &'static str,
    /// Enqueues `n` jobs of `task` in one statement.
    enqueue: fn(usize, &str) -> String,
    /// How many jobs are not done.
    pending: &'static str,
    /// p50 and p99 of start minus enqueue, in milliseconds.
    latency: &'static str,
}

const PREFIQ: Peer = Peer {
    name: "Prefiq",
    database: "prefiq_bench_jobs",
    enqueue: |n, task| {
        format!(
            "INSERT INTO prefiq_jobs (id, tenant_id, app, queue, kind, payload, state, max_attempts, \
             run_at, created_at) SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000000', \
             'lab', 'default', '{task}', '{{}}', 'available', 20, now(), now() FROM generate_series(1, {n})"
        )
    },
    pending: "SELECT count(*) FROM prefiq_jobs WHERE state <> 'completed'",
    latency: "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) \
              FROM (SELECT extract(epoch FROM (l.started_at - j.created_at)) * 1000 AS ms \
              FROM lab_latency l JOIN prefiq_jobs j ON j.id::text = l.job_id) s",
};

const GRAPHILE: Peer = Peer {
    name: "graphile-worker",
    database: "prefiq_bench_graphile",
    enqueue: |n, task| {
        format!(
            "SELECT count(graphile_worker.add_job('{task}', '{{}}'::json)) FROM generate_series(1, {n})"
        )
    },
    pending: "SELECT count(*) FROM graphile_worker.jobs",
    latency: "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) \
              FROM (SELECT extract(epoch FROM (started_at - created_at)) * 1000 AS ms FROM bench_latency) s",
};

struct Figures {
    per_second: f64,
    p50: f64,
    p99: f64,
}

fn start(peer: &Peer, root: &Path, concurrency: usize) -> Result<Child, String> {
    let url = format!("{BASE}/{}", peer.database);
    let mut command = if peer.name == PREFIQ.name {
        let mut c = Command::new(root.join("target/release/lab-worker"));
        // The runtime's default poll (what `--workers` servers use), not the tests' 20 ms.
        c.env("LAB_CONCURRENCY", concurrency.to_string())
            .env("LAB_POLL_MS", "200");
        c
    } else {
        let mut c = Command::new("node");
        c.arg(root.join("target/bench/graphile/worker.mjs"))
            .env("CONCURRENCY", concurrency.to_string());
        c
    };
    let mut child = command
        .env("DATABASE_URL", &url)
        .env("PREFIQ_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", peer.name))?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
        &mut line,
    )
    .map_err(|e| e.to_string())?;
    if !line.starts_with("working") {
        return Err(format!("{} did not start: {line}", peer.name));
    }
    Ok(child)
}

fn stop(children: Vec<Child>) {
    for child in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    for mut child in children {
        let _ = child.wait();
    }
}

fn until_done(peer: &Peer, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if psql(peer.database, peer.pending)? == "0" {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("{}: jobs still pending after {limit:?}", peer.name));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn measure(
    peer: &Peer,
    root: &Path,
    jobs: usize,
    samples: usize,
    concurrency: usize,
) -> Result<Figures, String> {
    fresh_database(peer.database)?;
    if peer.name == PREFIQ.name {
        let migrated = Command::new(root.join("target/release/lab-worker"))
            .env("DATABASE_URL", format!("{BASE}/{}", peer.database))
            .env("LAB_MIGRATE_ONLY", "1")
            .status()
            .map_err(|e| e.to_string())?;
        if !migrated.success() {
            return Err("the lab worker could not migrate".into());
        }
        psql(
            peer.database,
            "CREATE TABLE lab_latency (job_id text NOT NULL, started_at timestamptz NOT NULL)",
        )?;
    } else {
        let migrated = Command::new("node")
            .arg(root.join("target/bench/graphile/worker.mjs"))
            .env("DATABASE_URL", format!("{BASE}/{}", peer.database))
            .env("MIGRATE_ONLY", "1")
            .status()
            .map_err(|e| e.to_string())?;
        if !migrated.success() {
            return Err("graphile-worker could not migrate".into());
        }
        psql(
            peer.database,
            "CREATE TABLE bench_latency (created_at timestamptz NOT NULL, started_at timestamptz NOT NULL)",
        )?;
    }

    // Throughput: everything enqueued first, then two workers.
    psql(peer.database, &(peer.enqueue)(jobs, "noop"))?;
    let started = Instant::now();
    let workers = vec![
        start(peer, root, concurrency)?,
        start(peer, root, concurrency)?,
    ];
    let done = until_done(peer, Duration::from_secs(600));
    let elapsed = started.elapsed();
    stop(workers);
    done?;
    let per_second = jobs as f64 / elapsed.as_secs_f64();

    // Latency: idle workers, jobs enqueued one at a time.
    let workers = vec![
        start(peer, root, concurrency)?,
        start(peer, root, concurrency)?,
    ];
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..samples {
        psql(peer.database, &(peer.enqueue)(1, "stamp"))?;
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = until_done(peer, Duration::from_secs(60));
    stop(workers);
    done?;
    let figures = psql(peer.database, peer.latency)?;
    let mut parts = figures
        .split('|')
        .map(|p| p.trim().parse::<f64>().unwrap_or(f64::NAN));
    Ok(Figures {
        per_second,
        p50: parts.next().unwrap_or(f64::NAN),
        p99: parts.next().unwrap_or(f64::NAN),
    })
}

fn prepare(root: &Path) -> Result<(), String> {
    let built = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "prefiq-testkit",
            "--bin",
            "lab-worker",
        ])
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if !built.success() {
        return Err("building the lab worker failed".into());
    }
    let folder = root.join("target/bench/graphile");
    std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json", "worker.mjs"] {
        std::fs::copy(
            root.join("xtask/baseline/graphile").join(file),
            folder.join(file),
        )
        .map_err(|e| format!("{file}: {e}"))?;
    }
    let manifest = folder.join("package-lock.json");
    let stamp = folder.join("node_modules/.prefiq-stamp");
    if !crate::fresh(&manifest, &stamp) {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&folder)
            .status()
            .map_err(|e| e.to_string())?;
        if !installed.success() {
            return Err("`npm ci` of graphile-worker failed".into());
        }
        let _ = std::fs::copy(&manifest, &stamp);
    }
    Ok(())
}

pub(crate) fn jobs(args: &[&str]) -> ExitCode {
    let jobs = flag(args, "--jobs", 20_000);
    let samples = flag(args, "--samples", 200);
    let concurrency = flag(args, "--concurrency", 10);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf();
    if let Err(error) = prepare(&root) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let mut results = Vec::new();
    for peer in [&PREFIQ, &GRAPHILE] {
        eprintln!("measuring {}...", peer.name);
        match measure(peer, &root, jobs, samples, concurrency) {
            Ok(figures) => results.push((peer.name, figures)),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "\n## Jobs: {jobs} no-op jobs, two worker processes of {concurrency}; latency over {samples} jobs enqueued one at a time (PostgreSQL, this machine)\n"
    );
    println!("| queue | jobs/s | enqueue→start p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, f) in &results {
        println!(
            "| {name} | {:.0} | {:.1} ms | {:.1} ms |",
            f.per_second, f.p50, f.p99
        );
    }
    if let [(_, prefiq), (_, graphile)] = results.as_slice() {
        println!(
            "| Prefiq ÷ graphile-worker | {:.2}× | {:.2}× | {:.2}× |",
            prefiq.per_second / graphile.per_second,
            prefiq.p50 / graphile.p50,
            prefiq.p99 / graphile.p99
        );
        println!(
            "\nTargets: throughput ≥ 1.00× graphile-worker's, p99 latency ≤ 1.00× (lower is better)."
        );
    }
    ExitCode::SUCCESS
}
