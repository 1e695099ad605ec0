//! What the runtime's tests share: a migrated database on either backend, a caller, and the
//! macro that runs a test on both.

use std::sync::Arc;

use prefiq_runtime::Db;
use prefiq_runtime::auth::{Credential, Principal};
use prefiq_runtime::db::{PoolOptions, ServerLogin, connect_server};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::{Backend, Database};

/// The app the tests' jobs and events belong to.
pub(crate) const APP: &str = "lab";

/// A migrated database, and a pool that logs in as the server's role (row-level security binds
/// it on PostgreSQL).
pub(crate) async fn queue(backend: Backend) -> (Database, Db) {
    let (database, db, _) = queue_at(backend).await;
    (database, db)
}

/// [`queue`], and the database's URL (for other processes).
pub(crate) async fn queue_at(backend: Backend) -> (Database, Db, String) {
    let (database, url) = Database::create(backend).await;
    let owner = Db::connect(&url, &PoolOptions::default())
        .await
        .expect("connect");
    prefiq_runtime::migrate::apply(&owner, APP, &[])
        .await
        .expect("migrate");
    let login = ServerLogin {
        url: &url,
        app_url: None,
        production: false,
    };
    let options = PoolOptions {
        max_connections: 16,
        ..PoolOptions::default()
    };
    let db = connect_server(&owner, login, &options)
        .await
        .expect("the server's pool");
    owner.close().await;
    (database, db, url)
}

/// A caller of `tenant`: no platform operator.
pub(crate) fn caller(tenant: Uuid) -> Arc<Principal> {
    Arc::new(Principal {
        subject: "tester".into(),
        user: Some(Uuid::now_v7()),
        tenant,
        roles: Vec::new(),
        teams: Vec::new(),
        permissions: vec!["*".into()],
        credential: Credential::AccessToken,
        operator: false,
    })
}

/// Runs each named `async fn(Backend)` as a test on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(prefiq_testkit::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(prefiq_testkit::Backend::Postgres).await }
            )*
        }
    };
}
