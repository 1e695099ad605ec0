//! A worker process of the app `lab`, for the runtime's tests of crashes and scale
//! (`tests/processes.rs`): runs its jobs on `DATABASE_URL` until SIGTERM, or until killed.
//!
//! - `tally` adds a row naming its job and this worker to `lab_tally`;
//! - `sleepy` sleeps a minute on its first attempt (long enough to be killed in), then tallies;
//! - `noop` does nothing, and `stamp` records when it started in `lab_latency` (for
//!   `cargo xtask bench jobs`).
//!
//! With `LAB_MIGRATE_ONLY=1` it applies the runtime's migrations and exits.
//!
//! `LAB_WORKER_NAME` names the worker, `LAB_LEASE_MS` sets the lease (30 s unless set),
//! `LAB_CONCURRENCY` how many jobs run at once (10 unless set), `LAB_POLL_MS` how long an idle
//! worker waits before looking again (20 ms unless set).

use std::sync::OnceLock;
use std::time::Duration;

use prefiq_runtime::db::PoolOptions;
use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::jobs::{Failure, Job, JobContext, Registry, Worker, WorkerOptions};
use prefiq_runtime::{Db, Executor as _, SqlValue};

static NAME: OnceLock<String> = OnceLock::new();

#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Tally {}

impl Job for Tally {
    const KIND: &'static str = "tally";
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Stamp {}

impl Job for Stamp {
    const KIND: &'static str = "stamp";
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Sleepy {}

impl Job for Sleepy {
    const KIND: &'static str = "sleepy";
}

async fn tally(ctx: &JobContext) -> Result<(), Failure> {
    let mut tx = ctx.db.begin(&ctx.principal).await?;
    let sql = tx.pick(
        "INSERT INTO lab_tally (job_id, worker) VALUES ($1, $2)",
        "INSERT INTO lab_tally (job_id, worker) VALUES (?1, ?2)",
    );
    let name = NAME.get().cloned().unwrap_or_default();
    tx.execute(
        sql,
        vec![SqlValue::Text(ctx.id.to_string()), SqlValue::Text(name)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the database");
    let name = std::env::var("LAB_WORKER_NAME").unwrap_or_else(|_| "lab".into());
    let _ = NAME.set(name.clone());
    let concurrency = usize::try_from(setting("LAB_CONCURRENCY", 10)).unwrap_or(10);
    let options = PoolOptions {
        max_connections: u32::try_from(concurrency + 4).unwrap_or(16),
        ..PoolOptions::default()
    };
    let db = Db::connect(&url, &options).await.expect("the database");
    if std::env::var("LAB_MIGRATE_ONLY").is_ok_and(|v| v == "1") {
        prefiq_runtime::migrate::apply(&db, "lab", &[])
            .await
            .expect("the runtime's migrations");
        db.close().await;
        return;
    }
    let registry = Registry::new()
        .on(|ctx: JobContext, _: Tally| async move { tally(&ctx).await })
        .on(|_: JobContext, _: Noop| async { Ok(()) })
        .on(|ctx: JobContext, _: Stamp| async move {
            let mut tx = ctx.db.begin(&ctx.principal).await?;
            let sql = tx.pick(
                "INSERT INTO lab_latency (job_id, started_at) VALUES ($1, clock_timestamp())",
                "INSERT INTO lab_latency (job_id, started_at) VALUES (?1, CURRENT_TIMESTAMP)",
            );
            tx.execute(sql, vec![SqlValue::Text(ctx.id.to_string())])
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .on(|ctx: JobContext, _: Sleepy| async move {
            if ctx.attempt == 1 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            tally(&ctx).await
        });
    let worker = Worker::new(
        db.clone(),
        "lab",
        registry,
        WorkerOptions {
            name,
            queues: vec![(prefiq_runtime::jobs::DEFAULT_QUEUE.to_owned(), concurrency)],
            lease: Duration::from_millis(setting("LAB_LEASE_MS", 30_000)),
            poll: Duration::from_millis(setting("LAB_POLL_MS", 20)),
            ..WorkerOptions::default()
        },
    );
    println!("working as {}", worker.name());
    let stopping = prefiq_runtime::serve::shutdown_broadcast();
    worker.run(prefiq_runtime::serve::stopped(stopping)).await;
    db.close().await;
}
