//! Workers as real processes, on SQLite and PostgreSQL: 10,000 jobs across two worker
//! processes each run once (counted in the database), and a worker killed with SIGKILL in the
//! middle of a job has that job run again by another within one lease, and completed once.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prefiq_runtime::Db;
use prefiq_runtime::db::PoolOptions;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::jobs::{self, Options};
use prefiq_testkit::Backend;
use serde_json::json;

use crate::support::{APP, caller, queue_at};

/// The owner's pool on `url`, with the table the lab's jobs count themselves in.
async fn tallied(url: &str) -> Db {
    let owner = Db::connect(url, &PoolOptions::default())
        .await
        .expect("connect");
    owner
        .execute(
            "CREATE TABLE lab_tally (job_id TEXT NOT NULL, worker TEXT NOT NULL)",
            vec![],
        )
        .await
        .expect("the tally table");
    owner
}

/// Starts a `lab-worker` process named `name` on `url`, once it is working.
fn worker(url: &str, name: &str, lease_ms: u64) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab-worker"))
        .env("DATABASE_URL", url)
        .env("LAB_WORKER_NAME", name)
        .env("LAB_LEASE_MS", lease_ms.to_string())
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the lab worker starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("working"), "{line}");
    child
}

fn signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    db.fetch_optional(sql, vec![])
        .await
        .unwrap()
        .map(|row| row.req::<i64>(0).unwrap())
        .unwrap_or(0)
}

async fn until(db: &Db, sql: &'static str, wanted: i64, limit: Duration) {
    let start = Instant::now();
    loop {
        let now = count(db, sql).await;
        if now == wanted {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "`{sql}` is {now}, not {wanted}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ten_thousand_jobs_across_two_worker_processes_run_once_each(backend: Backend) {
    let (_database, _db, url) = queue_at(backend).await;
    let owner = tallied(&url).await;
    let tenant = Uuid::now_v7();
    for _ in 0..10 {
        let mut tx = owner.begin(&caller(tenant)).await.unwrap();
        for _ in 0..1000 {
            jobs::enqueue_raw(&mut tx, APP, "tally", json!({}), Options::default())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let a = worker(&url, "a", 30_000);
    let b = worker(&url, "b", 30_000);
    until(
        &owner,
        "SELECT count(*) FROM prefiq_jobs WHERE state = 'completed'",
        10_000,
        Duration::from_secs(180),
    )
    .await;
    for child in [&a, &b] {
        signal(child, "-TERM");
    }
    for mut child in [a, b] {
        assert!(child.wait().unwrap().success(), "a clean shutdown");
    }
    assert_eq!(
        count(&owner, "SELECT count(*) FROM lab_tally").await,
        10_000
    );
    assert_eq!(
        count(&owner, "SELECT count(DISTINCT job_id) FROM lab_tally").await,
        10_000,
        "no job ran twice"
    );
    assert_eq!(
        count(&owner, "SELECT count(DISTINCT worker) FROM lab_tally").await,
        2,
        "both processes took jobs"
    );
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM prefiq_jobs WHERE attempt <> 1"
        )
        .await,
        0,
        "every job was claimed once"
    );
    owner.close().await;
}

async fn a_job_whose_worker_was_killed_runs_again_within_one_lease_and_completes_once(
    backend: Backend,
) {
    let (_database, _db, url) = queue_at(backend).await;
    let owner = tallied(&url).await;
    let mut tx = owner.begin(&caller(Uuid::now_v7())).await.unwrap();
    let id = jobs::enqueue_raw(&mut tx, APP, "sleepy", json!({}), Options::default())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let lease_ms = 1500;
    let doomed = worker(&url, "doomed", lease_ms);
    until(
        &owner,
        "SELECT count(*) FROM prefiq_jobs WHERE state = 'running'",
        1,
        Duration::from_secs(10),
    )
    .await;
    signal(&doomed, "-KILL");
    let killed = Instant::now();
    let mut doomed = doomed;
    assert!(!doomed.wait().unwrap().success(), "killed");
    let heir = worker(&url, "heir", lease_ms);
    until(
        &owner,
        "SELECT count(*) FROM prefiq_jobs WHERE state = 'completed'",
        1,
        Duration::from_secs(15),
    )
    .await;
    let waited = killed.elapsed();
    assert!(
        waited < Duration::from_millis(lease_ms) + Duration::from_secs(5),
        "ran again after {waited:?}, beyond one lease ({lease_ms} ms) and a margin"
    );
    signal(&heir, "-TERM");
    let mut heir = heir;
    assert!(heir.wait().unwrap().success());
    let job = jobs::list(&owner, APP)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.id == id)
        .unwrap();
    assert_eq!((job.state.as_str(), job.attempt), ("completed", 2));
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM lab_tally WHERE worker = 'heir'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&owner, "SELECT count(*) FROM lab_tally").await,
        1,
        "completed once"
    );
    owner.close().await;
}

on_both!(
    ten_thousand_jobs_across_two_worker_processes_run_once_each,
    a_job_whose_worker_was_killed_runs_again_within_one_lease_and_completes_once,
);
