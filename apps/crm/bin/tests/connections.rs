//! A pooled PostgreSQL connection keeps the tenant its session last set, so that the next
//! request of the same tenant sets nothing. These tests hand one connection from tenant to
//! tenant, through every way a request can end, and check with a hand-written query that
//! forgets the tenant filter that row-level security alone shows each tenant its own rows, and
//! that nothing of a request that failed before its commit was kept.

use std::sync::Arc;
use std::time::Duration;

use app_crm::generated::company;
use app_crm_types::CompanyCreate;
use prefiq_runtime::auth::Principal;
use prefiq_runtime::db::{PoolOptions, ServerLogin};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Db, Executor, Sql};
use prefiq_testkit::{Backend, Database};

/// A tenant's user (no platform operator).
fn member(tenant: Uuid) -> Arc<Principal> {
    Arc::new(Principal {
        operator: false,
        ..Principal::system(tenant)
    })
}

/// Every company name the caller's session sees, with no tenant filter of its own.
async fn visible(pool: &Db, who: &Arc<Principal>) -> Vec<String> {
    let mut tx = pool.begin_read(who).await.unwrap();
    let rows = tx
        .fetch_all(
            Sql::new("SELECT name FROM companies ORDER BY name"),
            Vec::new(),
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.req::<String>(0).unwrap()).collect()
}

/// The server process behind the caller's connection.
async fn backend(pool: &Db, who: &Arc<Principal>) -> i32 {
    let mut tx = pool.begin_read(who).await.unwrap();
    let row = tx
        .fetch_one(Sql::new("SELECT pg_backend_pid()"), Vec::new())
        .await
        .unwrap();
    row.req::<i32>(0).unwrap()
}

async fn create(pool: &Db, who: &Arc<Principal>, name: &str) {
    let mut tx = pool.begin(who).await.unwrap();
    company::insert(&mut tx, &CompanyCreate::new(name.to_owned()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Every company name in the database, read as its owner.
async fn stored(owner: &Db) -> Vec<String> {
    let rows = owner
        .fetch_all(
            Sql::new("SELECT name FROM companies ORDER BY name"),
            Vec::new(),
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.req::<String>(0).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_passed_between_tenants_shows_each_only_its_own_rows() {
    let (database, url) = Database::create(Backend::Postgres).await;
    let owner = Db::connect(&url, &PoolOptions::default()).await.unwrap();
    prefiq_runtime::migrate::apply(&owner, "crm", app_crm::generated::MIGRATIONS)
        .await
        .unwrap();
    // One connection: every session below runs on it, unless it had to be closed.
    let pool = prefiq_runtime::db::connect_server(
        &owner,
        ServerLogin {
            url: &url,
            app_url: None,
            production: false,
        },
        &PoolOptions::serving(1),
    )
    .await
    .unwrap();
    let (a, b) = (member(Uuid::now_v7()), member(Uuid::now_v7()));
    create(&pool, &a, "a-1").await;
    create(&pool, &b, "b-1").await;
    let pid = backend(&pool, &a).await;

    // A, then B, then A again on the same connection.
    assert_eq!(visible(&pool, &a).await, ["a-1"]);
    assert_eq!(visible(&pool, &b).await, ["b-1"]);
    assert_eq!(visible(&pool, &a).await, ["a-1"]);
    assert_eq!(backend(&pool, &b).await, pid, "the connection was reused");

    // A statement of A's fails half-way through a transaction that wrote: nothing of it is
    // kept, and B's next session runs as B.
    {
        let mut tx = pool.begin(&a).await.unwrap();
        company::insert(&mut tx, &CompanyCreate::new("a-failed".into()))
            .await
            .unwrap();
        let failed = tx
            .execute(Sql::new("SELECT * FROM no_such_table"), Vec::new())
            .await;
        assert!(failed.is_err());
        // A failed transaction cannot commit, not even by mistake.
        assert!(tx.commit().await.is_err(), "a failed transaction committed");
    }
    assert_eq!(visible(&pool, &b).await, ["b-1"]);
    assert_eq!(
        backend(&pool, &b).await,
        pid,
        "the connection was rolled back and reused"
    );

    // A panics with its transaction open (its row written, not committed).
    let panicking = {
        let (pool, a) = (pool.clone(), a.clone());
        tokio::spawn(async move {
            let mut tx = pool.begin(&a).await.unwrap();
            company::insert(&mut tx, &CompanyCreate::new("a-panicked".into()))
                .await
                .unwrap();
            panic!("a request panics with its transaction open");
        })
    };
    assert!(panicking.await.is_err());
    assert_eq!(visible(&pool, &b).await, ["b-1"]);
    assert_eq!(visible(&pool, &a).await, ["a-1"]);
    assert_eq!(
        backend(&pool, &b).await,
        pid,
        "the connection was rolled back and reused"
    );

    // A's session is dropped while its statements are on their way (a client that hung up):
    // nobody can tell what the server did, so the connection is closed, never reused.
    {
        let mut tx = pool.begin(&a).await.unwrap();
        company::insert(&mut tx, &CompanyCreate::new("a-cut-off".into()))
            .await
            .unwrap();
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            tx.execute(Sql::new("SELECT pg_sleep(2)"), Vec::new()),
        )
        .await;
        assert!(cut.is_err(), "the statement was cut off");
    }
    assert_eq!(visible(&pool, &b).await, ["b-1"]);
    assert_ne!(
        backend(&pool, &b).await,
        pid,
        "a connection in an unknown state is closed"
    );

    // A session that set a new tenant inside a transaction that rolled back does not leave
    // the connection believed to hold it: the next session of that tenant sets it again.
    let c = member(Uuid::now_v7());
    {
        let mut tx = pool.begin(&c).await.unwrap();
        company::insert(&mut tx, &CompanyCreate::new("c-rolled-back".into()))
            .await
            .unwrap();
        let _ = tx
            .execute(Sql::new("SELECT * FROM no_such_table"), Vec::new())
            .await;
        tx.rollback().await.unwrap();
    }
    assert_eq!(visible(&pool, &c).await, Vec::<String>::new());
    create(&pool, &c, "c-1").await;
    assert_eq!(visible(&pool, &c).await, ["c-1"]);
    assert_eq!(visible(&pool, &a).await, ["a-1"]);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stored(&owner).await, ["a-1", "b-1", "c-1"]);
    pool.close().await;
    owner.close().await;
    database.drop().await;
}
