//! Schemathesis fuzzes the live CRM service from its OpenAPI document with every check
//! (`--checks all`): every operation, 25 examples each in the default run (200 under
//! `cargo xtask test --deep`), positive and negative, plus stateful sequences along the
//! document's links. No response may be a server error, break its documented schema, refuse
//! data the document admits or accept data it refuses, and valid requests must succeed (see
//! `Server::assert_meets_its_document`).

use prefiq_testkit::{Backend, Server};

async fn fuzz(backend: Backend) {
    let server = Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await;
    // An activity names an existing deal or an existing contact, exactly one (a rule and two
    // references): the ids Schemathesis makes up name no row, and no link of the document hands
    // it a created one, so it never makes an activity.
    server
        .assert_meets_its_document_except(
            app_crm::generated::OPERATIONS,
            &[(
                "POST /api/crm/activities",
                "an activity needs an existing deal or contact",
            )],
        )
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
