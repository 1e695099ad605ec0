//! Events on SQLite and PostgreSQL: published with the write that caused them, dispatched once
//! to every subscriber (in its own app, under the event's tenant) however many dispatchers run,
//! and never skipped when they commit out of order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::events::{self, Delivered, Dispatcher, Event};
use prefiq_runtime::jobs::{self, Registry, Worker, WorkerOptions};
use prefiq_runtime::serve::event_routes;
use prefiq_runtime::{Db, Dialect, Executor as _};
use prefiq_testkit::Backend;

use crate::support::{APP, caller, queue};

/// The other app under the same host, subscribing to this one's events.
const OTHER: &str = "ops";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
struct Shipped {
    order: String,
}

impl Event for Shipped {
    const TYPE: &'static str = "lab.shipped";
}

async fn publish(db: &Db, tenant: Uuid, order: &str) -> Uuid {
    let mut tx = db.begin(&caller(tenant)).await.expect("begin");
    let id = events::publish(
        &mut tx,
        APP,
        &Shipped {
            order: order.into(),
        },
    )
    .await
    .expect("publish");
    tx.commit().await.expect("commit");
    id
}

type Seen = Arc<Mutex<Vec<(String, Uuid, Uuid, String)>>>;

/// A registry whose subscriber `name` records what it receives, tagged with `app`.
fn recording(app: &'static str, name: &str, seen: &Seen) -> Registry {
    let seen = seen.clone();
    Registry::new()
        .on_event(name, move |ctx, event: Delivered<Shipped>| {
            let seen = seen.clone();
            async move {
                assert_eq!(
                    ctx.tenant, event.tenant,
                    "a subscriber runs in the event's tenant"
                );
                seen.lock().unwrap().push((
                    app.to_owned(),
                    event.id,
                    event.tenant,
                    event.data.order,
                ));
                Ok(())
            }
        })
        .on_event_type(
            "lab.other",
            "ignores",
            |_, _: Delivered<serde_json::Value>| async { Ok(()) },
        )
}

fn quick(name: &str) -> WorkerOptions {
    WorkerOptions {
        name: name.into(),
        poll: Duration::from_millis(20),
        ..WorkerOptions::default()
    }
}

async fn a_rolled_back_write_publishes_nothing_and_each_subscriber_gets_an_event_once(
    backend: Backend,
) {
    let (_database, db) = queue(backend).await;
    let (tenant_a, tenant_b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tx = db.begin(&caller(tenant_a)).await.unwrap();
    events::publish(
        &mut tx,
        APP,
        &Shipped {
            order: "never".into(),
        },
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        events::list(&db, None, 10).await.unwrap().is_empty(),
        "a rolled-back write left an event"
    );

    let id = publish(&db, tenant_a, "A-1").await;
    if db.dialect() == Dialect::Postgres {
        let mut other = db.begin(&caller(tenant_b)).await.unwrap();
        let rows = other
            .fetch_all("SELECT id FROM prefiq_events".into(), vec![])
            .await
            .unwrap();
        other.rollback().await.unwrap();
        assert!(rows.is_empty(), "tenant B saw tenant A's event");
    }

    let seen: Seen = Arc::default();
    let own = recording("lab", "notify", &seen);
    let theirs = recording("ops", "count", &seen);
    let mut routes = event_routes(APP, &own);
    routes.extend(event_routes(OTHER, &theirs));
    // Two dispatchers at once, each asked again and again: the event is dispatched once.
    let first = Dispatcher::new(db.clone(), None, routes.clone());
    let second = Dispatcher::new(db.clone(), None, routes);
    let mut dispatched = 0;
    for _ in 0..5 {
        let (a, b) = tokio::join!(first.dispatch(), second.dispatch());
        dispatched += a.expect("dispatch") + b.expect("dispatch");
    }
    assert_eq!(dispatched, 1, "the event was dispatched once");
    let queued: Vec<_> = [APP, OTHER]
        .into_iter()
        .map(|app| (app, db.clone()))
        .collect();
    for (app, db) in &queued {
        let jobs = jobs::list(db, app).await.unwrap();
        assert_eq!(jobs.len(), 1, "one delivery job in {app}: {jobs:?}");
        assert_eq!(jobs[0].tenant, tenant_a);
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for (app, registry) in [(APP, own), (OTHER, theirs)] {
        let mut stopped = stopped.clone();
        let worker = Worker::new(db.clone(), app, registry, quick(app));
        running.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    let start = Instant::now();
    while seen.lock().unwrap().len() < 2 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(true);
    for handle in running {
        handle.await.unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("lab".to_owned(), id, tenant_a, "A-1".to_owned()),
            ("ops".to_owned(), id, tenant_a, "A-1".to_owned()),
        ],
        "each subscriber received the event once, with its id and tenant"
    );
}

async fn an_event_committed_after_a_later_one_is_not_skipped(backend: Backend) {
    let (_database, db) = queue(backend).await;
    let tenant = Uuid::now_v7();
    let seen: Seen = Arc::default();
    let registry = recording("lab", "notify", &seen);
    let dispatcher = Dispatcher::new(db.clone(), Some(APP), event_routes(APP, &registry));
    // Another app's events are not this dispatcher's.
    let mut foreign = db.begin(&caller(tenant)).await.unwrap();
    events::publish_raw(
        &mut foreign,
        OTHER,
        None,
        "ops.done",
        None,
        serde_json::json!({}),
    )
    .await
    .unwrap();
    foreign.commit().await.unwrap();

    let mut early = db.begin(&caller(tenant)).await.unwrap();
    let first = events::publish(
        &mut early,
        APP,
        &Shipped {
            order: "early".into(),
        },
    )
    .await
    .unwrap();
    let second = if db.dialect() == Dialect::Postgres {
        // The earlier event's transaction is still open while a later one commits and is
        // dispatched.
        let later = publish(&db, tenant, "later").await;
        assert_eq!(dispatcher.dispatch().await.unwrap(), 1);
        later
    } else {
        // SQLite has one writer: the later event waits for the earlier one's commit.
        early.commit().await.unwrap();
        early = db.begin(&caller(tenant)).await.unwrap();
        publish_in(&mut early, "later").await
    };
    early.commit().await.unwrap();
    assert!(first < second, "ids follow publication, not commit");
    while dispatcher.dispatch().await.unwrap() > 0 {}
    let jobs = jobs::list(&db, APP).await.unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "both events reached the subscriber: {jobs:?}"
    );
    let mut events: Vec<Uuid> = jobs
        .iter()
        .map(|j| Uuid::parse_str(j.payload["id"].as_str().unwrap()).unwrap())
        .collect();
    events.sort();
    assert_eq!(events, vec![first, second]);
    assert_eq!(
        jobs::list(&db, OTHER).await.unwrap().len(),
        0,
        "no subscriber of ops.done"
    );
}

async fn publish_in(tx: &mut prefiq_runtime::Tx, order: &str) -> Uuid {
    events::publish(
        tx,
        APP,
        &Shipped {
            order: order.into(),
        },
    )
    .await
    .unwrap()
}

on_both!(
    a_rolled_back_write_publishes_nothing_and_each_subscriber_gets_an_event_once,
    an_event_committed_after_a_later_one_is_not_skipped,
);
