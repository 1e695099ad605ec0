//! Schemathesis fuzzes the live CRM service from its OpenAPI document with every check
//! (`--checks all`): every operation, at least 100 examples each, positive and negative, plus
//! stateful sequences along the document's links. No response may be a server error, break its
//! documented schema, refuse data the document admits or accept data it refuses.

use prefiq_testkit::tools::run_schemathesis;
use prefiq_testkit::{Backend, Server};

async fn fuzz(backend: Backend) {
    let server = Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await;
    let schema = format!("{}/openapi.json", server.base);
    let authorization = format!("Authorization: Bearer {}", server.token);
    let run = tokio::task::spawn_blocking(move || run_schemathesis(&schema, &authorization, 100))
        .await
        .unwrap();
    assert!(run.passed, "Schemathesis found failures:\n{}", run.text);
    // Every generated and custom operation, and /healthz.
    let operations = app_crm::generated::OPERATIONS + 1;
    assert!(
        run.text.contains(&format!("Tested: {operations}")),
        "every operation was tested:\n{}",
        run.summary()
    );
    assert!(!run.text.contains(" failed"), "{}", run.summary());
    eprintln!("{}", run.summary());
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
