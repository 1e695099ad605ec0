//! How many times a generated request waits for PostgreSQL, counted on the wire by a proxy in
//! front of it (`prefiq-roundtrips`): a count, not a timing, so a change that adds a round trip
//! fails here. The counts are what `cargo xtask bench serve` prints and the README quotes.
//!
//! Row-level security stays forced on every request and every write keeps its audit entry in
//! its own transaction: what the runtime saves is waiting, not work. A connection prepares each
//! statement the first time it runs it (one more round trip, once); the counts below are of a
//! second round, when every statement is prepared.

use std::collections::BTreeMap;

use prefiq_testkit::roundtrips::Counts;
use prefiq_testkit::{Identity, Reply, Server};
use serde_json::json;

async fn start() -> Server {
    Server::start_counted("crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

/// What one request cost on the wire, with its reply.
async fn spent<F>(server: &Server, request: F) -> (Counts, Reply)
where
    F: std::future::Future<Output = Reply>,
{
    let before = server.round_trips();
    let reply = request.await;
    // A session dropped with its transaction open rolls back on a task of its own: give it the
    // moment it needs, so that it is counted against this request.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (server.round_trips() - before, reply)
}

fn etag(reply: &Reply) -> String {
    reply.header("etag").expect("an ETag").to_owned()
}

/// Every kind of request once, each counted: `round` keeps the rows of two rounds apart.
async fn requests(server: &Server, round: usize) -> BTreeMap<&'static str, Counts> {
    let mut counts = BTreeMap::new();
    let company = server
        .create("companies", json!({ "name": format!("Seed {round}") }))
        .await;
    let id = company["id"].as_str().unwrap().to_owned();

    let (c, reply) = spent(server, server.get(&format!("/api/crm/companies/{id}"))).await;
    reply.expect(200);
    counts.insert("get", c);

    let (c, reply) = spent(
        server,
        server.get("/api/crm/companies?industry=eq.other&sort=-annual_revenue&limit=20"),
    )
    .await;
    reply.expect(200);
    counts.insert("list", c);

    let (c, reply) = spent(
        server,
        server.get("/api/crm/companies?limit=20&count=exact"),
    )
    .await;
    assert_eq!(reply.expect(200).body["total"], 2 * round - 1);
    counts.insert("list with count", c);

    // The insert, its audit entry and BEGIN/COMMIT: one flight.
    let (c, created) = spent(
        server,
        server.post(
            "/api/crm/companies",
            &json!({ "name": format!("Acme {round}"), "tags": ["a"] }),
        ),
    )
    .await;
    let created = created.expect(201);
    counts.insert("create", c);
    let created_id = created.body["id"].as_str().unwrap().to_owned();

    // The row locked and read; then the update, its audit entry and COMMIT.
    let (c, patched) = spent(
        server,
        server.patch(
            &format!("/api/crm/companies/{created_id}"),
            &json!({ "employee_count": 12 }),
            Some(&etag(&created)),
        ),
    )
    .await;
    let patched = patched.expect(200);
    assert_eq!(patched.body["employee_count"], 12);
    assert_eq!(etag(&patched), "\"2\"");
    counts.insert("patch", c);

    // A stale PATCH reads, refuses, and rolls back (off the request's path, but counted).
    let (c, reply) = spent(
        server,
        server.patch(
            &format!("/api/crm/companies/{created_id}"),
            &json!({ "employee_count": 13 }),
            Some(&etag(&created)),
        ),
    )
    .await;
    reply.problem(412);
    counts.insert("stale patch", c);

    // A create whose hook (`before_create_deal`) does no database work, with a reference that
    // is checked in the database in the same flight.
    let (c, reply) = spent(
        server,
        server.post(
            "/api/crm/deals",
            &json!({ "name": "Deal", "company_id": created_id, "amount": "10.00" }),
        ),
    )
    .await;
    let deal_id = reply.expect(201).body["id"].as_str().unwrap().to_owned();
    counts.insert("create with hook and reference", c);

    // A reference to no row of the tenant fails that flight, with the member's name (the same
    // 409 as SQLite's check before the write gives).
    let (c, reply) = spent(
        server,
        server.post(
            "/api/crm/deals",
            &json!({ "name": "Deal", "company_id": "0190b7a2-0000-7000-8000-000000000000", "amount": "1.00" }),
        ),
    )
    .await;
    let problem = reply.problem(409);
    assert_eq!(problem["errors"][0]["pointer"], "/company_id", "{problem}");
    counts.insert("create with missing reference", c);

    // A custom operation takes what its service asks for.
    let (c, reply) = spent(
        server,
        server.post(&format!("/api/crm/deals/{deal_id}/win"), &json!({})),
    )
    .await;
    reply.expect(200);
    counts.insert("win_deal", c);

    let activity = server
        .create(
            "activities",
            json!({ "kind": "note", "subject": "Call", "deal_id": deal_id }),
        )
        .await;
    let activity_id = activity["id"].as_str().unwrap();
    let (c, reply) = spent(
        server,
        server.delete(&format!("/api/crm/activities/{activity_id}"), Some("\"1\"")),
    )
    .await;
    reply.expect(204);
    counts.insert("delete", c);
    let (c, reply) = spent(
        server,
        server.delete(&format!("/api/crm/deals/{deal_id}"), Some("\"2\"")),
    )
    .await;
    reply.expect(204);
    counts.insert("delete with cascades", c);

    // Another tenant on the same connection: its context is set in the same flight.
    let other = server.token(&Identity::user(
        prefiq_runtime::deps::uuid::Uuid::now_v7(),
        &["crm.*"],
    ));
    let bearer = format!("Bearer {other}");
    let (c, reply) = spent(
        server,
        server.send(
            reqwest::Method::GET,
            &format!("/api/crm/companies/{id}"),
            None,
            &[("authorization", &bearer)],
        ),
    )
    .await;
    reply.problem(404);
    counts.insert("get as another tenant", c);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_wait_for_postgresql_as_few_times_as_they_can() {
    let server = start().await;
    let cold = requests(&server, 1).await;
    let warm = requests(&server, 2).await;
    let pair = |c: &Counts| (c.round_trips, c.statements);
    // (round trips, statements) once every statement is prepared.
    let expected: [(&str, (u64, u64)); 13] = [
        ("get", (1, 1)),
        ("list", (1, 1)),
        ("list with count", (1, 2)),
        // BEGIN, the insert, its audit entry, its event, COMMIT.
        ("create", (1, 5)),
        // BEGIN and the row locked; the update, its audit entry, its event, COMMIT.
        ("patch", (2, 6)),
        // BEGIN and the row locked; ROLLBACK.
        ("stale patch", (2, 3)),
        // BEGIN, the reference checked, the insert, its audit entry, its event, COMMIT.
        ("create with hook and reference", (1, 6)),
        ("create with missing reference", (1, 6)),
        // BEGIN and the deal locked; the update; its audit entry, its event, the follow-up job,
        // the `deal_won` event and COMMIT (enqueueing and publishing ride with the commit: no
        // round trip of their own).
        ("win_deal", (3, 8)),
        // The row locked; the delete, its audit entry, its event, COMMIT.
        ("delete", (2, 6)),
        // One more round trip per level of rows a deletion cascades to, read first so that each
        // gets its audit entry.
        ("delete with cascades", (3, 7)),
        // BEGIN, the context, the read, COMMIT.
        ("get as another tenant", (1, 4)),
        ("get", (1, 1)),
    ];
    for (name, counts) in expected {
        assert_eq!(pair(&warm[name]), counts, "{name}: {:?}", warm[name]);
        // The first time, each flight first prepares what the connection has not prepared yet,
        // together: at most one more round trip per flight.
        let first = cold[name];
        assert!(
            first.round_trips <= 2 * counts.0 && first.statements == counts.1,
            "{name} on a cold connection: {first:?}"
        );
    }
    assert_eq!(
        server.transaction_warnings(),
        Vec::<String>::new(),
        "PostgreSQL warned about transaction state"
    );
    server.stop().await;
}
