//! Schemathesis with every check (`--checks all`) against Cortex's merged document, on SQLite
//! and on PostgreSQL: Cortex's own API (OAuth endpoints included) and every installed app's, as
//! Cortex serves them, with an administrator's token. Cortex keeps every tenant an active
//! administrator and refuses to delete the caller's own tenant or the admin role, so the fuzzer
//! cannot lock itself out part-way; the apps' operations are fuzzed in full by their own tests,
//! and here in every phase but coverage (in every phase under `cargo xtask test --deep`).

use crate::common;

use common::Cortex;
use prefiq_testkit::Backend;
use prefiq_testkit::tools::{run_schemathesis, run_schemathesis_on};

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
    // Valid requests must succeed: every API read without a path parameter (each entity's list,
    // Cortex's and every app's) answers the administrator 2xx at least once. Writes are held to
    // it by each app's own fuzz; many of Cortex's (the OAuth endpoints) need state no fuzzer has.
    let reads: Vec<String> = prefiq_testkit::tools::operations(&document)
        .into_iter()
        .filter(|o| o.starts_with("GET /api/") && !o.contains('{'))
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        if prefiq_testkit::tools::deep() {
            return run_schemathesis(&schema, &document, &authorization, 20);
        }
        // The apps' operations go through Cortex's own layers (its tokens, tenancy and rights)
        // in every phase but coverage: the coverage phase's boundary values, by far the longest
        // part of a run, reach the same handlers in each app's own fuzz. The deep run covers
        // everything here too.
        // The apps' pass goes first: Cortex's own operations include switching an app off for
        // the tenant (its app registration), after which its routes answer 404.
        let apps = "^/api/(?!cortex/)";
        let through_cortex = run_schemathesis_on(
            &schema,
            &document,
            &authorization,
            20,
            &[
                "--include-path-regex",
                apps,
                "--phases",
                "examples,fuzzing,stateful",
            ],
        );
        let own = run_schemathesis_on(
            &schema,
            &document,
            &authorization,
            20,
            &["--exclude-path-regex", apps],
        );
        through_cortex.and(own)
    })
    .await
    .unwrap();
    run.print_statuses();
    assert!(run.passed, "Schemathesis found failures:\n{}", run.text);
    assert!(
        run.text.contains("Tested: ") && run.text.contains(" passed"),
        "{}",
        run.summary()
    );
    assert!(
        reads.len() > 10,
        "the merged document lists every entity: {reads:?}"
    );
    run.assert_valid_requests_succeed(&reads, prefiq_testkit::VALID_SHARE);
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
