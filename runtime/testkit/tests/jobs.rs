//! The job queue on SQLite and PostgreSQL: enqueued with the write that caused it, run once
//! under its tenant, retried with backoff, discarded with its errors, claimed again when its
//! worker died, unique by key under concurrent enqueues, and given back on shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prefiq_runtime::auth::Principal;
use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::jobs::{
    self, Failure, Job, JobRecord, Options, Registry, Worker, WorkerOptions,
};
use prefiq_runtime::{Db, Dialect, Executor as _};
use prefiq_testkit::Backend;

use crate::support::{APP, caller, queue};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Greet {
    name: String,
}

impl Job for Greet {
    const KIND: &'static str = "greet";
}

fn quick(name: &str) -> WorkerOptions {
    WorkerOptions {
        name: name.into(),
        lease: Duration::from_millis(900),
        poll: Duration::from_millis(20),
        grace: Duration::from_millis(200),
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..WorkerOptions::default()
    }
}

async fn all(db: &Db) -> Vec<JobRecord> {
    jobs::list(db, APP).await.expect("list jobs")
}

/// Waits until `done` holds of the app's jobs (at most `limit`); the jobs then.
async fn until(db: &Db, limit: Duration, done: impl Fn(&[JobRecord]) -> bool) -> Vec<JobRecord> {
    let start = Instant::now();
    loop {
        let jobs = all(db).await;
        if done(&jobs) {
            return jobs;
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn states(jobs: &[JobRecord]) -> Vec<&str> {
    jobs.iter().map(|j| j.state.as_str()).collect()
}

/// Starts `worker`; stopping it is sending on the returned channel.
fn start(
    worker: Worker,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    (stop, handle)
}

async fn enqueue_one(db: &Db, who: &Arc<Principal>, name: &str, options: Options) -> Uuid {
    let mut tx = db.begin(who).await.expect("begin");
    let id = jobs::enqueue_with(&mut tx, APP, &Greet { name: name.into() }, options)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    id
}

async fn a_rolled_back_write_leaves_no_job_and_a_committed_one_runs_once_under_its_tenant(
    backend: Backend,
) {
    let (database, db) = queue(backend).await;
    let (tenant_a, tenant_b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tx = db.begin(&caller(tenant_a)).await.unwrap();
    jobs::enqueue(
        &mut tx,
        APP,
        &Greet {
            name: "never".into(),
        },
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        all(&db).await.is_empty(),
        "a rolled-back enqueue left a job"
    );

    enqueue_one(&db, &caller(tenant_a), "ada", Options::default()).await;
    if db.dialect() == Dialect::Postgres {
        // Row-level security: another tenant's transaction sees none of it.
        let mut other = db.begin(&caller(tenant_b)).await.unwrap();
        let seen = other
            .fetch_all("SELECT id FROM prefiq_jobs".into(), vec![])
            .await
            .unwrap();
        other.rollback().await.unwrap();
        assert!(seen.is_empty(), "tenant B saw tenant A's job");
    }
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let registry = Registry::new().on(move |ctx, job: Greet| {
        let seen = seen.clone();
        async move {
            // The job runs in its tenant: its transaction sees the job, as that tenant.
            let mut tx = ctx.db.begin(&ctx.principal).await?;
            let rows = tx
                .fetch_all("SELECT id FROM prefiq_jobs".into(), vec![])
                .await?;
            tx.rollback().await?;
            seen.lock()
                .unwrap()
                .push((ctx.tenant, job.name, ctx.attempt, rows.len()));
            Ok(())
        }
    });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("w")));
    let done = until(&db, Duration::from_secs(10), |j| states(j) == ["completed"]).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert_eq!(done[0].tenant, tenant_a);
    assert_eq!(done[0].attempt, 1);
    assert_eq!(
        *ran.lock().unwrap(),
        vec![(tenant_a, "ada".to_owned(), 1, 1)]
    );
    database.drop().await;
}

async fn a_unique_key_holds_one_job_under_100_concurrent_enqueues(backend: Backend) {
    let (database, db) = queue(backend).await;
    let tenant = Uuid::now_v7();
    let unique = || Options {
        unique_key: Some("nightly-report".into()),
        ..Options::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let db = db.clone();
        tasks.spawn(async move {
            enqueue_one(&db, &caller(tenant), &format!("n{i}"), unique()).await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("every enqueue commits");
    }
    assert_eq!(
        states(&all(&db).await),
        ["available"],
        "one job for the key"
    );
    // Another tenant's key is its own.
    enqueue_one(&db, &caller(Uuid::now_v7()), "other", unique()).await;
    assert_eq!(all(&db).await.len(), 2);
    // Once the job finished, the key is free again.
    let registry = Registry::new().on(|_, _: Greet| async { Ok(()) });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("w")));
    until(&db, Duration::from_secs(10), |j| {
        j.iter().all(|j| j.state == "completed")
    })
    .await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    enqueue_one(&db, &caller(tenant), "again", unique()).await;
    assert_eq!(
        states(&all(&db).await),
        ["completed", "completed", "available"]
    );
    database.drop().await;
}

async fn a_failing_job_backs_off_then_is_discarded_with_its_errors_and_can_be_retried(
    backend: Backend,
) {
    let (database, db) = queue(backend).await;
    let options = Options {
        max_attempts: 3,
        ..Options::default()
    };
    let id = enqueue_one(&db, &caller(Uuid::now_v7()), "flaky", options).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let registry = Registry::new().on(move |ctx, _: Greet| {
        let counted = counted.clone();
        async move {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if run <= 3 {
                Err(Failure::Retry(format!("boom {}", ctx.attempt)))
            } else {
                Ok(())
            }
        }
    });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("w")));
    let discarded = until(&db, Duration::from_secs(10), |j| states(j) == ["discarded"]).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "three attempts, then no more"
    );
    let errors: Vec<_> = discarded[0]
        .errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["attempt"].as_i64().unwrap(),
                e["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (1, "boom 1".into()),
            (2, "boom 2".into()),
            (3, "boom 3".into())
        ]
    );
    // The dead letter runs again when asked, and its history stays.
    assert!(jobs::retry(&db, APP, id).await.unwrap());
    let done = until(&db, Duration::from_secs(10), |j| states(j) == ["completed"]).await;
    assert_eq!(done[0].errors.as_array().unwrap().len(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert!(
        !jobs::retry(&db, APP, id).await.unwrap(),
        "a completed job is not retried"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
    database.drop().await;
}

async fn a_panicking_or_unreadable_job_fails_alone_and_a_snoozed_one_waits(backend: Backend) {
    let (database, db) = queue(backend).await;
    let who = caller(Uuid::now_v7());
    let one = Options {
        max_attempts: 1,
        ..Options::default()
    };
    let panics = enqueue_one(&db, &who, "panic", one.clone()).await;
    let snoozes = enqueue_one(&db, &who, "snooze", Options::default()).await;
    let mut tx = db.begin(&who).await.unwrap();
    let unreadable = jobs::enqueue_raw(
        &mut tx,
        APP,
        "greet",
        serde_json::json!({"nom": 1}),
        Options::default(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let snoozed = Arc::new(AtomicUsize::new(0));
    let count = snoozed.clone();
    let registry = Registry::new().on(move |_, job: Greet| {
        let count = count.clone();
        async move {
            match job.name.as_str() {
                "panic" => panic!("the handler fell over"),
                _ if count.fetch_add(1, Ordering::SeqCst) == 0 => {
                    Err(Failure::Snooze(Duration::from_millis(50)))
                }
                _ => Ok(()),
            }
        }
    });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("w")));
    let jobs = until(&db, Duration::from_secs(10), |j| {
        j.iter()
            .all(|j| j.state == "completed" || j.state == "discarded")
    })
    .await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    let by_id: HashMap<Uuid, &JobRecord> = jobs.iter().map(|j| (j.id, j)).collect();
    assert_eq!(by_id[&panics].state, "discarded");
    assert!(
        by_id[&panics].errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("the handler fell over")
    );
    assert_eq!(
        by_id[&unreadable].state, "discarded",
        "no retry can read it"
    );
    assert_eq!(by_id[&unreadable].attempt, 1);
    assert_eq!(by_id[&snoozes].state, "completed");
    assert_eq!(by_id[&snoozes].attempt, 1, "a snooze is no attempt");
    database.drop().await;
}

async fn a_job_whose_worker_died_runs_again_within_one_lease(backend: Backend) {
    let (database, db) = queue(backend).await;
    enqueue_one(&db, &caller(Uuid::now_v7()), "survivor", Options::default()).await;
    // The first worker takes the job and dies with it: no heartbeat, no word to the queue.
    let hangs = Registry::new().on(|_, _: Greet| std::future::pending::<Result<(), Failure>>());
    let (_stop, dying) = start(Worker::new(db.clone(), APP, hangs, quick("dies")));
    until(&db, Duration::from_secs(10), |j| states(j) == ["running"]).await;
    dying.abort();
    let died = Instant::now();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let registry = Registry::new().on(move |_, _: Greet| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("takes-over")));
    let done = until(&db, Duration::from_secs(10), |j| states(j) == ["completed"]).await;
    let lease = quick("").lease;
    assert!(
        died.elapsed() < lease * 3,
        "claimed again after {:?}, with a lease of {lease:?}",
        died.elapsed()
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(done[0].attempt, 2);
    database.drop().await;
}

async fn two_workers_run_every_job_once(backend: Backend) {
    let (database, db) = queue(backend).await;
    let who = caller(Uuid::now_v7());
    let total = 600;
    let mut tx = db.begin(&who).await.unwrap();
    for i in 0..total {
        jobs::enqueue(
            &mut tx,
            APP,
            &Greet {
                name: format!("job-{i}"),
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let ran: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let registry = || {
        let ran = ran.clone();
        Registry::new().on(move |_, job: Greet| {
            let ran = ran.clone();
            async move {
                *ran.lock().unwrap().entry(job.name).or_default() += 1;
                Ok(())
            }
        })
    };
    // A lease no busy machine outlasts: this test is about claiming, not crashes (a job whose
    // lease runs out runs again, by design).
    let many = |name: &str| WorkerOptions {
        queues: vec![("default".into(), 8)],
        lease: Duration::from_secs(30),
        ..quick(name)
    };
    let (stop_a, a) = start(Worker::new(db.clone(), APP, registry(), many("a")));
    let (stop_b, b) = start(Worker::new(db.clone(), APP, registry(), many("b")));
    until(&db, Duration::from_secs(60), |j| {
        j.iter().all(|j| j.state == "completed")
    })
    .await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    let ran = std::mem::take(&mut *ran.lock().unwrap());
    assert_eq!(ran.len(), total, "every job ran");
    assert!(ran.values().all(|n| *n == 1), "no job ran twice");
    database.drop().await;
}

async fn shutdown_gives_back_the_jobs_that_did_not_finish(backend: Backend) {
    let (database, db) = queue(backend).await;
    enqueue_one(&db, &caller(Uuid::now_v7()), "slow", Options::default()).await;
    let registry = Registry::new().on(|_, _: Greet| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    });
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, quick("w")));
    until(&db, Duration::from_secs(10), |j| states(j) == ["running"]).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the worker stops after its grace period")
        .unwrap();
    let jobs = all(&db).await;
    assert_eq!(states(&jobs), ["available"]);
    assert_eq!(
        jobs[0].attempt, 0,
        "a run cut short by shutdown is no attempt"
    );
    database.drop().await;
}

async fn a_schedule_fires_each_tick_once_however_many_workers_follow_it(backend: Backend) {
    let (database, db) = queue(backend).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let registry = || {
        let ran = ran.clone();
        Registry::new()
            .on(move |_, _: Greet| {
                let ran = ran.clone();
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .cron(
                "every-second",
                "* * * * * *",
                Greet {
                    name: "tick".into(),
                },
            )
            .expect("a valid schedule")
    };
    let (stop_a, a) = start(Worker::new(db.clone(), APP, registry(), quick("a")));
    let (stop_b, b) = start(Worker::new(db.clone(), APP, registry(), quick("b")));
    tokio::time::sleep(Duration::from_millis(3300)).await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    let jobs = all(&db).await;
    let keys: std::collections::BTreeSet<_> =
        jobs.iter().filter_map(|j| j.unique_key.clone()).collect();
    assert!(
        (2..=4).contains(&jobs.len()),
        "about one job a second: {jobs:#?}"
    );
    assert_eq!(
        keys.len(),
        jobs.len(),
        "one job per tick, whichever worker fired it: {keys:?}"
    );
    assert!(
        keys.iter().all(|k| k.starts_with("cron:every-second:")),
        "{keys:?}"
    );
    let completed = jobs.iter().filter(|j| j.state == "completed").count();
    assert_eq!(ran.load(Ordering::SeqCst), completed, "each ran once");
    database.drop().await;
}

#[test]
fn a_bad_schedule_is_refused_with_its_name_and_the_form_expected() {
    let refused = Registry::new()
        .cron("nightly", "0 3 * *", Greet { name: "x".into() })
        .err()
        .expect("four fields are no schedule");
    let message = refused.to_string();
    assert!(
        message.contains("`nightly`") && message.contains("4 fields"),
        "{message}"
    );
    assert!(
        message.contains("minute hour day-of-month month day-of-week"),
        "{message}"
    );
    let refused = Registry::new()
        .cron("nightly", "61 3 * * *", Greet { name: "x".into() })
        .err()
        .expect("minute 61 is no schedule");
    assert!(refused.to_string().contains("`61 3 * * *`"), "{refused}");
    assert!(
        Registry::new()
            .cron("nightly", "30 3 * * *", Greet { name: "x".into() })
            .is_ok()
    );
}

on_both!(
    a_rolled_back_write_leaves_no_job_and_a_committed_one_runs_once_under_its_tenant,
    a_unique_key_holds_one_job_under_100_concurrent_enqueues,
    a_failing_job_backs_off_then_is_discarded_with_its_errors_and_can_be_retried,
    a_panicking_or_unreadable_job_fails_alone_and_a_snoozed_one_waits,
    a_job_whose_worker_died_runs_again_within_one_lease,
    two_workers_run_every_job_once,
    shutdown_gives_back_the_jobs_that_did_not_finish,
    a_schedule_fires_each_tick_once_however_many_workers_follow_it,
);

/// On PostgreSQL a new job wakes an idle worker (LISTEN/NOTIFY, migration 0007): it starts at
/// once, not at the worker's next poll, which here is a minute away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_on_postgresql_starts_a_new_job_without_waiting_for_its_poll() {
    let (_database, db) = queue(Backend::Postgres).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    let registry = Registry::new().on(move |_, _: Greet| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let options = WorkerOptions {
        poll: Duration::from_secs(60),
        ..quick("listens")
    };
    let (stop, handle) = start(Worker::new(db.clone(), APP, registry, options));
    // The worker's first look found nothing; it now waits for its poll or a notification.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let enqueued = Instant::now();
    enqueue_one(&db, &caller(Uuid::now_v7()), "now", Options::default()).await;
    while ran.load(Ordering::SeqCst) == 0 {
        assert!(
            enqueued.elapsed() < Duration::from_secs(5),
            "the job waited for the poll"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    handle.await.unwrap();
}
