//! `prefiq seed` loads the CRM fixtures into SQLite and PostgreSQL, once: a second run skips every row.

use std::path::Path;
use std::process::Command;

use prefiq_runtime::db::{Db, PoolOptions};
use prefiq_testkit::{Backend, Database};

fn seed(url: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .arg("--root")
        .arg(repo)
        .args(["seed", "--app", "crm", "--database-url", url])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

async fn count(url: &str, table: &str) -> i64 {
    let db = Db::connect(url, &PoolOptions::default()).await.unwrap();
    let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
    let row = db
        .fetch_optional(prefiq_runtime::Sql::built(sql), vec![])
        .await
        .unwrap()
        .unwrap();
    let n = row.req::<i64>(0).unwrap();
    db.close().await;
    n
}

async fn seeds_once(backend: Backend) {
    let (database, url) = Database::create(backend).await;
    let first = seed(&url);
    assert!(
        first.contains("Company 3") && first.contains("Deal 4"),
        "{first}"
    );
    let second = seed(&url);
    assert!(
        second.contains("0 rows") && second.contains("(+3 already there)"),
        "{second}"
    );
    for (table, rows) in [
        ("companies", 3),
        ("contacts", 4),
        ("deals", 4),
        ("activities", 2),
    ] {
        assert_eq!(count(&url, table).await, rows, "{table}");
    }
    database.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_sqlite_is_idempotent() {
    seeds_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_postgres_is_idempotent() {
    seeds_once(Backend::Postgres).await;
}
