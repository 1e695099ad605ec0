//! How many times a generated request waits for PostgreSQL, counted on the wire by a proxy in
//! front of it (`prefiq-roundtrips`): a count, not a timing, so a change that adds a round trip
//! fails here. The counts are what `cargo xtask bench serve` prints and the README quotes.
//!
//! Row-level security stays forced on every request and every write keeps its audit entry in
//! its own transaction: what the runtime saves is waiting, not work.

use prefiq_testkit::roundtrips::Counts;
use prefiq_testkit::{Identity, Server};
use serde_json::json;

async fn start() -> Server {
    Server::start_counted("crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

/// What one request cost on the wire, with its reply.
async fn spent<F, T>(server: &Server, request: F) -> (Counts, T)
where
    F: std::future::Future<Output = T>,
{
    let before = server.round_trips();
    let reply = request.await;
    // A session dropped with its transaction open rolls back on a task of its own: give it the
    // moment it needs, so that it is counted against this request.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (server.round_trips() - before, reply)
}

fn etag(reply: &prefiq_testkit::Reply) -> String {
    reply.header("etag").expect("an ETag").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_wait_for_postgresql_as_few_times_as_they_can() {
    let server = start().await;
    // Warm up: the pool's connection has served the default tenant once.
    let company = server
        .create("companies", json!({ "name": "Warm-up" }))
        .await;
    let id = company["id"].as_str().unwrap().to_owned();

    let (get, reply) = spent(&server, server.get(&format!("/api/crm/companies/{id}"))).await;
    let reply = reply.expect(200);
    assert_eq!(
        (get.round_trips, get.statements),
        (1, 1),
        "GET by id: {get:?}"
    );

    let (list, reply_list) = spent(
        &server,
        server.get("/api/crm/companies?industry=eq.other&sort=-annual_revenue&limit=20"),
    )
    .await;
    reply_list.expect(200);
    assert_eq!(
        (list.round_trips, list.statements),
        (1, 1),
        "list of 20: {list:?}"
    );

    let (counted, reply_counted) = spent(
        &server,
        server.get("/api/crm/companies?limit=20&count=exact"),
    )
    .await;
    assert_eq!(reply_counted.expect(200).body["total"], 1);
    assert_eq!(
        (counted.round_trips, counted.statements),
        (1, 2),
        "list with its count: {counted:?}"
    );

    // The insert, its audit entry and BEGIN/COMMIT: one flight.
    let (create, created) = spent(
        &server,
        server.post(
            "/api/crm/companies",
            &json!({ "name": "Acme", "tags": ["a"] }),
        ),
    )
    .await;
    let created = created.expect(201);
    assert_eq!(
        (create.round_trips, create.statements),
        (1, 4),
        "create: {create:?}"
    );
    let created_id = created.body["id"].as_str().unwrap().to_owned();

    // The row locked and read; then the update, its audit entry and COMMIT.
    let (patch, patched) = spent(
        &server,
        server.patch(
            &format!("/api/crm/companies/{created_id}"),
            &json!({ "employee_count": 12 }),
            Some(&etag(&created)),
        ),
    )
    .await;
    let patched = patched.expect(200);
    assert_eq!(
        (patch.round_trips, patch.statements),
        (2, 5),
        "PATCH with If-Match: {patch:?}"
    );
    assert_eq!(patched.body["employee_count"], 12);
    assert_eq!(etag(&patched), "\"2\"");

    // A stale PATCH reads, refuses, and rolls back (off the request's path, but counted).
    let (stale, reply) = spent(
        &server,
        server.patch(
            &format!("/api/crm/companies/{created_id}"),
            &json!({ "employee_count": 13 }),
            Some(&etag(&reply)),
        ),
    )
    .await;
    reply.problem(412);
    assert_eq!(stale.round_trips, 2, "stale PATCH: {stale:?}");

    // A create whose hook (`before_create_deal`) does no database work, with a reference that
    // is checked in the database in the same flight: still one round trip.
    let (deal, reply) = spent(
        &server,
        server.post(
            "/api/crm/deals",
            &json!({ "name": "Deal", "company_id": created_id, "amount": "10.00" }),
        ),
    )
    .await;
    let deal_id = reply.expect(201).body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        deal.round_trips, 1,
        "create with a hook and a reference: {deal:?}"
    );

    // A reference to no row of the tenant fails that flight, with the member's name (the same
    // 409 as SQLite's check before the write gives).
    let (missing, reply) = spent(
        &server,
        server.post(
            "/api/crm/deals",
            &json!({ "name": "Deal", "company_id": "0190b7a2-0000-7000-8000-000000000000", "amount": "1.00" }),
        ),
    )
    .await;
    let problem = reply.problem(409);
    assert_eq!(problem["errors"][0]["pointer"], "/company_id", "{problem}");
    assert_eq!(
        missing.round_trips, 1,
        "create with a missing reference: {missing:?}"
    );

    // A custom operation takes what its service asks for: `win_deal` locks the deal (1),
    // updates it (2) and commits (3).
    let (win, reply) = spent(
        &server,
        server.post(&format!("/api/crm/deals/{deal_id}/win"), &json!({})),
    )
    .await;
    reply.expect(200);
    assert_eq!(win.round_trips, 3, "win_deal: {win:?}");

    // A delete locks the row (1), then sends the delete, its audit entry and COMMIT (2)...
    let activity = server
        .create(
            "activities",
            json!({ "kind": "note", "subject": "Call", "deal_id": deal_id }),
        )
        .await;
    let activity_id = activity["id"].as_str().unwrap();
    let (delete, reply) = spent(
        &server,
        server.delete(&format!("/api/crm/activities/{activity_id}"), Some("\"1\"")),
    )
    .await;
    reply.expect(204);
    assert_eq!(delete.round_trips, 2, "DELETE: {delete:?}");
    // ...and one more per level of rows its deletion cascades to, which are read first so
    // that each gets its audit entry (a deal's activities).
    let (delete, reply) = spent(
        &server,
        server.delete(&format!("/api/crm/deals/{deal_id}"), Some("\"2\"")),
    )
    .await;
    reply.expect(204);
    assert_eq!(delete.round_trips, 3, "DELETE with cascades: {delete:?}");

    // Another tenant on the same connection: its context is set in the same flight.
    let other = server.token(&Identity::user(
        prefiq_runtime::deps::uuid::Uuid::now_v7(),
        &["crm.*"],
    ));
    let bearer = format!("Bearer {other}");
    let (switch, reply) = spent(
        &server,
        server.send(
            reqwest::Method::GET,
            &format!("/api/crm/companies/{id}"),
            None,
            &[("authorization", &bearer)],
        ),
    )
    .await;
    reply.problem(404);
    assert_eq!(switch.round_trips, 1, "another tenant's GET: {switch:?}");

    assert_eq!(
        server.transaction_warnings(),
        Vec::<String>::new(),
        "PostgreSQL warned about transaction state"
    );
    server.stop().await;
}
