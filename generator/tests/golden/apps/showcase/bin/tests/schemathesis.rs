//! Schemathesis fuzzes the showcase app (patterns, client-chosen integer keys, a discriminated union, self-references, decimals) from its OpenAPI document with every check
//! (`--checks all`): every operation, 25 examples each in the default run (200 under
//! `cargo xtask test --deep`), positive and negative, plus stateful sequences along the
//! document's links. No response may be a server error, break its documented schema, refuse
//! data the document admits or accept data it refuses, and valid requests must succeed (see
//! `Server::assert_meets_its_document`).

use prefiq_testkit::{Backend, Server};

async fn fuzz(backend: Backend) {
    let server = Server::start(
        backend,
        "showcase",
        app_showcase::generated::MIGRATIONS,
        |db| app_showcase::router(app_showcase::services::Service::new(db.clone()), db),
    )
    .await;
    server
        .assert_meets_its_document(app_showcase::generated::OPERATIONS)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_meets_its_document_under_every_check() {
    fuzz(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_meets_its_document_under_every_check() {
    fuzz(Backend::Postgres).await;
}
