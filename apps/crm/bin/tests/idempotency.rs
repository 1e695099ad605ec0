//! `Idempotency-Key` on the generated POSTs and custom operations, on SQLite and PostgreSQL:
//! a retry replays the first response and the operation happens once, even when 100 copies
//! arrive at once; another request under the same key is refused; keys are the caller's own.

use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::{Backend, Identity, Server};
use reqwest::Method;
use serde_json::json;

async fn start(backend: Backend) -> Server {
    Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

async fn companies_named(server: &Server, name: &str) -> usize {
    server
        .all_pages("companies", &format!("name=eq.{name}"))
        .await
        .0
        .len()
}

async fn a_retry_replays_the_first_response_and_creates_once(backend: Backend) {
    let server = start(backend).await;
    let key = Uuid::now_v7().to_string();
    let body = json!({"name": "Once Co"});
    let headers = [("idempotency-key", key.as_str())];
    let first = server
        .send(Method::POST, "/api/crm/companies", Some(&body), &headers)
        .await
        .expect(201);
    assert_eq!(first.header("idempotency-replayed"), None);
    let again = server
        .send(Method::POST, "/api/crm/companies", Some(&body), &headers)
        .await
        .expect(201);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the first response, replayed");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.content_type(), first.content_type());
    assert_eq!(companies_named(&server, "Once Co").await, 1);

    // Another request under the same key is refused; it changes nothing.
    let other = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&json!({"name": "Twice Co"})),
            &headers,
        )
        .await
        .problem(422);
    assert!(
        other["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused"),
        "{other}"
    );
    assert_eq!(companies_named(&server, "Twice Co").await, 0);

    // The key is the caller's: another tenant's caller with the same key and body creates its own.
    let stranger = server.token(&Identity::user(Uuid::now_v7(), &["*"]));
    let auth = format!("Bearer {stranger}");
    let theirs = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&body),
            &[
                ("idempotency-key", key.as_str()),
                ("authorization", auth.as_str()),
            ],
        )
        .await
        .expect(201);
    assert_eq!(theirs.header("idempotency-replayed"), None);
    assert_ne!(theirs.body["id"], first.body["id"]);

    // A key that is no key is a 400, and nothing is created.
    let bad = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&json!({"name": "Bad Key Co"})),
            &[("idempotency-key", "two words")],
        )
        .await
        .problem(400);
    assert!(
        bad["detail"].as_str().unwrap().contains("Idempotency-Key"),
        "{bad}"
    );
    assert_eq!(companies_named(&server, "Bad Key Co").await, 0);

    // A refused request changed nothing, so its key is not kept: the retry runs again (and
    // a corrected retry under the same key succeeds).
    let refused_key = [("idempotency-key", "refused-1")];
    let invalid = json!({"name": ""});
    server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&invalid),
            &refused_key,
        )
        .await
        .problem(422);
    let again = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&invalid),
            &refused_key,
        )
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(
        again.header("idempotency-replayed"),
        None,
        "a refusal is not replayed"
    );
    let fixed = json!({"name": "Fixed Co"});
    server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&fixed),
            &refused_key,
        )
        .await
        .expect(201);

    // Expired keys are deleted by the runtime's job, and the key then runs anew.
    let long_ago = match backend {
        Backend::Postgres => "now() - interval '1 day'",
        Backend::Sqlite => "'2000-01-01T00:00:00.000000Z'",
    };
    server
        .db
        .execute(
            prefiq_runtime::Sql::built(format!(
                "UPDATE prefiq_idempotency SET expires_at = {long_ago}"
            )),
            vec![],
        )
        .await
        .unwrap();
    assert!(
        prefiq_runtime::idempotency::expire(server.serving())
            .await
            .unwrap()
            >= 3
    );
    server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&invalid),
            &refused_key,
        )
        .await
        .problem(422);
    server.stop().await;
}

async fn a_hundred_concurrent_copies_make_one_row(backend: Backend) {
    let server = start(backend).await;
    let body = json!({"name": "Crowded Co"});
    let replies = futures_util::future::join_all((0..100).map(|_| {
        server.send(
            Method::POST,
            "/api/crm/companies",
            Some(&body),
            &[("idempotency-key", "crowd")],
        )
    }))
    .await;
    let mut created = None;
    for reply in &replies {
        match reply.status.as_u16() {
            201 => {
                let id = reply.body["id"].clone();
                assert!(
                    created.get_or_insert(id.clone()) == &id,
                    "every 201 is the one row"
                );
            }
            409 => {
                assert_eq!(reply.header("retry-after"), Some("1"), "{:?}", reply.body);
                assert!(
                    reply.body["type"]
                        .as_str()
                        .unwrap()
                        .ends_with("idempotency-key-in-use")
                );
            }
            other => panic!("{other}: {:?}", reply.body),
        }
    }
    assert!(created.is_some(), "the first one ran");
    assert_eq!(companies_named(&server, "Crowded Co").await, 1);
    server.stop().await;
}

async fn a_custom_operation_runs_once_under_one_key(backend: Backend) {
    let server = start(backend).await;
    let company = server.create("companies", json!({"name": "Op Co"})).await;
    let deal = server
        .create(
            "deals",
            json!({"name": "Op deal", "company_id": company["id"], "amount": "1.00"}),
        )
        .await;
    let path = format!("/api/crm/deals/{}/win", deal["id"].as_str().unwrap());
    let body = json!({"note": "Signed"});
    let headers = [("idempotency-key", "win-once")];
    let first = server
        .send(Method::POST, &path, Some(&body), &headers)
        .await
        .expect(200);
    let again = server
        .send(Method::POST, &path, Some(&body), &headers)
        .await
        .expect(200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    // Without the key, the same request is a new one: the deal is won already.
    server
        .send(Method::POST, &path, Some(&body), &[])
        .await
        .problem(409);
    let (notes, _) = server
        .all_pages(
            "activities",
            &format!("deal_id=eq.{}", deal["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        notes.len(),
        1,
        "one note: the operation ran once: {notes:?}"
    );
    let jobs = prefiq_runtime::jobs::list(server.serving(), "crm")
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "one follow-up job");
    server.stop().await;
}

/// Makes the key's first request look as if its server had stopped after the operation's
/// transaction and before its response was kept: the key still running, its lock run out.
async fn lose_the_response(server: &Server, key: &str) {
    let db = server.db.clone();
    let sql = db.pick(
        "UPDATE prefiq_idempotency SET state = 'running', status = NULL, headers = NULL, body = NULL, \
         locked_until = $1 WHERE idempotency_key = $2",
        "UPDATE prefiq_idempotency SET state = 'running', status = NULL, headers = NULL, body = NULL, \
         locked_until = ?1 WHERE idempotency_key = ?2",
    );
    let changed = db
        .execute(
            sql,
            vec![
                prefiq_runtime::SqlValue::DateTime(
                    prefiq_runtime::db::now() - prefiq_runtime::deps::chrono::Duration::minutes(5),
                ),
                prefiq_runtime::SqlValue::Text(key.to_owned()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1, "the key is stored");
}

async fn a_first_request_that_wrote_never_runs_again_even_when_its_response_was_lost(
    backend: Backend,
) {
    let server = start(backend).await;
    let send = async |key: &str, name: &str| {
        server
            .send(
                Method::POST,
                "/api/crm/companies",
                Some(&json!({"name": name})),
                &[("idempotency-key", key)],
            )
            .await
    };
    // The key marks, in the create's own transaction, that its request wrote.
    let wrote = Uuid::now_v7().to_string();
    send(&wrote, "Lost Answer Co").await.expect(201);
    lose_the_response(&server, &wrote).await;
    let lost = send(&wrote, "Lost Answer Co").await.problem(409);
    assert!(
        lost["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-outcome-lost"),
        "{lost}"
    );
    assert!(
        lost["detail"]
            .as_str()
            .unwrap()
            .contains("read the resource"),
        "{lost}"
    );
    assert_eq!(
        companies_named(&server, "Lost Answer Co").await,
        1,
        "created once"
    );

    // A first request that wrote nothing (refused) released its key: a retry runs. And one
    // whose server stopped before it wrote anything runs again once its lock ran out.
    let refused = Uuid::now_v7().to_string();
    send(&refused, "").await.problem(422);
    send(&refused, "Second Try Co").await.expect(201);
    let unwritten = Uuid::now_v7().to_string();
    send(&unwritten, "Never Written Co").await.expect(201);
    lose_the_response(&server, &unwritten).await;
    {
        // As if it had stopped before its write: no row, no mark.
        let db = server.db.clone();
        let sql = db.pick(
            "UPDATE prefiq_idempotency SET committed_at = NULL WHERE idempotency_key = $1",
            "UPDATE prefiq_idempotency SET committed_at = NULL WHERE idempotency_key = ?1",
        );
        db.execute(sql, vec![prefiq_runtime::SqlValue::Text(unwritten.clone())])
            .await
            .unwrap();
        db.execute(
            prefiq_runtime::Sql::from("DELETE FROM companies WHERE name = 'Never Written Co'"),
            vec![],
        )
        .await
        .unwrap();
    }
    send(&unwritten, "Never Written Co").await.expect(201);
    assert_eq!(companies_named(&server, "Never Written Co").await, 1);
    server.stop().await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both!(
    a_retry_replays_the_first_response_and_creates_once,
    a_hundred_concurrent_copies_make_one_row,
    a_custom_operation_runs_once_under_one_key,
    a_first_request_that_wrote_never_runs_again_even_when_its_response_was_lost,
);
