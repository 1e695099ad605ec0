//! Schemathesis with every check (`--checks all`) against Cortex's merged document, on SQLite
//! and on PostgreSQL: Cortex's own API (OAuth endpoints included) and every installed app's, as
//! Cortex serves them, with an administrator's token. Cortex keeps every tenant an active
//! administrator and refuses to delete the caller's own tenant or the admin role, so the fuzzer
//! cannot lock itself out part-way; the apps' operations are fuzzed in full by their own tests.

mod common;

use common::Cortex;
use prefiq_testkit::Backend;
use prefiq_testkit::tools::run_schemathesis;

async fn fuzz(backend: Backend) {
    let cortex = Cortex::start(backend).await;
    let schema = format!("{}/openapi.json", cortex.base);
    let document: serde_json::Value = reqwest::get(&schema)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the merged document")
        .json()
        .await
        .expect("the merged document is JSON");
    let authorization = format!("Authorization: Bearer {}", cortex.admin_token);
    let run = tokio::task::spawn_blocking(move || {
        run_schemathesis(&schema, &document, &authorization, 50)
    })
    .await
    .unwrap();
    assert!(run.passed, "Schemathesis found failures:\n{}", run.text);
    assert!(
        run.text.contains("Tested: ") && run.text.contains(" passed"),
        "{}",
        run.summary()
    );
    eprintln!("{}", run.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_meets_the_merged_document_under_every_check() {
    fuzz(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_meets_the_merged_document_under_every_check() {
    fuzz(Backend::Postgres).await;
}
