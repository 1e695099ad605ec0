//! End-to-end tests of the generated CRM service over real HTTP, against SQLite and PostgreSQL.
//! Every scenario runs on both backends.

use std::collections::BTreeSet;

use prefiq_testkit::{Backend, Server};
use reqwest::Method;
use serde_json::{Value, json};

/// The CRM service with its hand-written services, on `backend`.
async fn start(backend: Backend) -> Server {
    Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
    // Every response must match the OpenAPI document: status, media type and body.
    .with_contract(&prefiq_testkit::tools::repo_root().join("apps/crm/core/openapi.json"))
}

/// Runs a scenario against both databases, as two tests.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = super::start(super::Backend::Sqlite).await;
                    super::$name(&server).await;
                    assert!(server.contract.as_ref().is_some_and(|c| c.checked() > 0));
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = super::start(super::Backend::Postgres).await;
                    super::$name(&server).await;
                    assert!(server.contract.as_ref().is_some_and(|c| c.checked() > 0));
                    server.stop().await;
                }
            )*
        }
    };
}

on_both_backends!(
    crud_round_trip,
    every_error_is_a_problem_with_the_right_status,
    constraint_violations_are_conflicts,
    stale_etags_are_refused,
    concurrent_updates_are_never_lost,
    filters_select_the_right_rows,
    sorting_and_paging_cover_every_row_once,
    service_hooks_run_around_writes,
    values_round_trip_exactly,
    custom_operations_close_deals,
    an_operation_either_fully_happens_or_not_at_all,
    pipeline_report_aggregates_in_sql,
    contact_search_finds_people_and_companies,
);

async fn company(server: &Server, name: &str) -> Value {
    server.create("companies", json!({ "name": name })).await
}

async fn crud_round_trip(server: &Server) {
    let created = server
        .post(
            "/api/crm/companies",
            &json!({
                "name": "Acme",
                "domain": "acme.example",
                "tags": ["vip", "partner"],
                "address": { "street": "Main 1", "city": "Berlin", "country": "DE" }
            }),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/crm/companies/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["industry"], "other", "defaults are filled in");
    assert!(
        created.header("x-request-id").is_some(),
        "every response carries a request id"
    );

    let read = server
        .get(&format!("/api/crm/companies/{id}"))
        .await
        .expect(200);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.body, created.body);

    // A merge patch: set one member, remove another, merge into a nested object.
    let patched = server
        .patch(
            &format!("/api/crm/companies/{id}"),
            &json!({ "employee_count": 42, "domain": null, "address": { "city": "Hamburg" } }),
            Some("\"1\""),
        )
        .await
        .expect(200);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(patched.body["version"], 2);
    assert_eq!(patched.body["employee_count"], 42);
    assert!(
        patched.body.get("domain").is_none(),
        "null removes the member: {}",
        patched.body
    );
    assert_eq!(
        patched.body["address"],
        json!({ "street": "Main 1", "city": "Hamburg", "country": "DE" })
    );
    assert_eq!(patched.body["name"], "Acme", "untouched members stay");
    assert_eq!(patched.body["created_at"], created.body["created_at"]);
    assert_ne!(patched.body["updated_at"], created.body["updated_at"]);

    let listed = server.get("/api/crm/companies").await.expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["next_cursor"], Value::Null);

    server
        .delete(&format!("/api/crm/companies/{id}"), Some("\"2\""))
        .await
        .expect(204);
    server
        .get(&format!("/api/crm/companies/{id}"))
        .await
        .problem(404);
    server
        .delete(&format!("/api/crm/companies/{id}"), None)
        .await
        .problem(404);
}

async fn every_error_is_a_problem_with_the_right_status(server: &Server) {
    // 400: malformed JSON, with where parsing stopped.
    let problem = server
        .send_raw(
            Method::POST,
            "/api/crm/companies",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await
        .problem(400);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("line 1"),
        "{problem}"
    );
    // 415: not JSON.
    server
        .send_raw(
            Method::POST,
            "/api/crm/companies",
            Some("text/plain"),
            b"name=Acme".to_vec(),
        )
        .await
        .problem(415);
    server
        .send_raw(Method::POST, "/api/crm/companies", None, b"{}".to_vec())
        .await
        .problem(415);
    // 422: every invalid member, each with its pointer.
    let problem = server
        .post("/api/crm/companies", &json!({ "name": "", "industry": "space", "employee_count": -1, "website": 7, "nickname": "x", "id": "y" }))
        .await
        .problem(422);
    let pointers: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        BTreeSet::from([
            "/employee_count",
            "/id",
            "/industry",
            "/name",
            "/nickname",
            "/website"
        ])
    );
    let id = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pointer"] == "/id")
        .unwrap();
    assert_eq!(id["detail"], "is read-only: the server sets it");
    // 422: a missing required member, pointed at.
    let problem = server
        .post("/api/crm/contacts", &json!({ "first_name": "Ada" }))
        .await
        .problem(422);
    let pointers: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert!(
        pointers.contains("/email")
            && pointers.contains("/company_id")
            && pointers.contains("/last_name"),
        "{problem}"
    );
    // 422: nested members and array items.
    let problem = server
        .post("/api/crm/companies", &json!({ "name": "Nested", "address": { "street": "x", "city": "y", "country": "germany" }, "tags": ["ok", ""] }))
        .await
        .problem(422);
    let pointers: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(pointers, BTreeSet::from(["/address/country", "/tags/1"]));
    // 422: a decimal with too many places, and one that is not a number.
    let acme = company(server, "Decimal Corp").await;
    let problem = server
        .post(
            "/api/crm/deals",
            &json!({ "name": "d", "company_id": acme["id"], "amount": "12.345" }),
        )
        .await
        .problem(422);
    assert_eq!(problem["errors"][0]["pointer"], "/amount", "{problem}");
    server
        .post(
            "/api/crm/deals",
            &json!({ "name": "d", "company_id": acme["id"], "amount": "1e5" }),
        )
        .await
        .problem(422);
    // 422: a patch that removes a required member.
    server
        .patch(
            &format!("/api/crm/companies/{}", acme["id"].as_str().unwrap()),
            &json!({ "name": null }),
            None,
        )
        .await
        .problem(422);
    // 404: unknown ids, ids that cannot exist, unknown routes.
    server
        .get("/api/crm/companies/0190b7a2-0000-7000-8000-000000000000")
        .await
        .problem(404);
    server
        .get("/api/crm/companies/not-a-uuid")
        .await
        .problem(404);
    server
        .patch(
            "/api/crm/companies/0190b7a2-0000-7000-8000-000000000000",
            &json!({ "name": "x" }),
            None,
        )
        .await
        .problem(404);
    server.get("/api/crm/nothing-here").await.problem(404);
    // 405: a route without that method.
    server
        .send(Method::PUT, "/api/crm/companies", Some(&json!({})), &[])
        .await
        .problem(405);
    // 400: bad list parameters.
    for query in [
        "limit=0",
        "limit=1001",
        "sort=website",
        "nickname=eq.x",
        "employee_count=gt.many",
        "industry=eq.space",
        "cursor=not%20base64",
        "count=maybe",
        "industry=software",
        "sort=",
        "name=in.()",
    ] {
        server
            .get(&format!("/api/crm/companies?{query}"))
            .await
            .problem(400);
    }
    // A well-formed cursor this API did not make names no page.
    server
        .get("/api/crm/companies?cursor=garbage")
        .await
        .problem(404);
    // 413: a body over the limit.
    let big = json!({ "name": "Big", "tags": ["x".repeat(prefiq_testkit::BODY_LIMIT)] });
    server.post("/api/crm/companies", &big).await.problem(413);
}

async fn constraint_violations_are_conflicts(server: &Server) {
    company(server, "Unique Ltd").await;
    let problem = server
        .post("/api/crm/companies", &json!({ "name": "Unique Ltd" }))
        .await
        .problem(409);
    assert_eq!(problem["errors"][0]["pointer"], "/name", "{problem}");
    // A reference to a company that does not exist.
    let problem = server
        .post("/api/crm/contacts", &json!({ "company_id": "0190b7a2-0000-7000-8000-000000000000", "first_name": "A", "last_name": "B", "email": "a@b.example" }))
        .await
        .problem(409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("existing"),
        "{problem}"
    );
    // A unique value taken by a patch.
    let other = company(server, "Other Ltd").await;
    let problem = server
        .patch(
            &format!("/api/crm/companies/{}", other["id"].as_str().unwrap()),
            &json!({ "name": "Unique Ltd" }),
            None,
        )
        .await
        .problem(409);
    assert_eq!(problem["errors"][0]["pointer"], "/name");
}

async fn stale_etags_are_refused(server: &Server) {
    let acme = company(server, "Etag GmbH").await;
    let url = format!("/api/crm/companies/{}", acme["id"].as_str().unwrap());
    server
        .patch(&url, &json!({ "employee_count": 1 }), Some("\"1\""))
        .await
        .expect(200);
    let problem = server
        .patch(&url, &json!({ "employee_count": 2 }), Some("\"1\""))
        .await
        .problem(412);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("\"2\""),
        "the problem names the current ETag: {problem}"
    );
    server.delete(&url, Some("\"1\"")).await.problem(412);
    // If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches.
    server
        .patch(&url, &json!({ "employee_count": 3 }), Some("W/\"2\""))
        .await
        .problem(412);
    // An empty or malformed If-Match is a bad request, not a conflict.
    for bad in ["", "2", "\"2", "*, \"2\""] {
        server
            .patch(&url, &json!({ "employee_count": 3 }), Some(bad))
            .await
            .problem(400);
    }
    // Two If-Match lines are one list.
    let reply = server
        .send(
            reqwest::Method::PATCH,
            &url,
            Some(&json!({ "employee_count": 3 })),
            &[("if-match", "\"1\""), ("if-match", "\"2\"")],
        )
        .await
        .expect(200);
    assert_eq!(reply.header("etag"), Some("\"3\""));
    // An invalid body is a 422 even with a stale tag: the body is checked first.
    server
        .patch(&url, &json!({ "employee_count": "many" }), Some("\"1\""))
        .await
        .problem(422);
    // A patch that changes nothing keeps the version.
    let same = server
        .patch(&url, &json!({}), Some("\"3\""))
        .await
        .expect(200);
    assert_eq!(same.header("etag"), Some("\"3\""));
    assert_eq!(same.body["version"], 3);
    let same = server
        .patch(&url, &json!({ "employee_count": 3 }), None)
        .await
        .expect(200);
    assert_eq!(
        same.body["version"], 3,
        "writing the same value is no change"
    );
    server.delete(&url, Some("\"3\"")).await.expect(204);
}

async fn concurrent_updates_are_never_lost(server: &Server) {
    // Ten clients read version 1 and race to update it: exactly one wins, nine get 412.
    let acme = company(server, "Race AG").await;
    let url = format!("/api/crm/companies/{}", acme["id"].as_str().unwrap());
    let racers = (0..10).map(|i| {
        let url = url.clone();
        async move {
            server
                .patch(&url, &json!({ "employee_count": i }), Some("\"1\""))
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(racers).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        9,
        "{statuses:?}"
    );

    // Without If-Match, concurrent patches of different members all land: none is lost.
    let members = [
        json!({ "domain": "race.example" }),
        json!({ "website": "https://race.example" }),
        json!({ "employee_count": 500 }),
        json!({ "annual_revenue": "1000000.00" }),
        json!({ "industry": "finance" }),
        json!({ "tags": ["raced"] }),
    ];
    let writers = members.iter().map(|patch| {
        let url = url.clone();
        async move { server.patch(&url, patch, None).await.status.as_u16() }
    });
    let statuses = futures_util::future::join_all(writers).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let row = server.get(&url).await.expect(200).body;
    for patch in &members {
        for (name, value) in patch.as_object().unwrap() {
            assert_eq!(&row[name], value, "the update of `{name}` was lost: {row}");
        }
    }
    assert_eq!(row["version"], 2 + members.len() as u64);
}

async fn seed_deals(server: &Server) -> Vec<Value> {
    let acme = company(server, "Filter Corp").await;
    let globex = company(server, "Globex").await;
    let mut deals = Vec::new();
    for i in 0..23u32 {
        let stage = ["lead", "qualified", "proposal", "won", "lost"][(i % 5) as usize];
        let company = if i % 3 == 0 { &globex } else { &acme };
        let mut body = json!({
            "name": format!("{} deal {i:02}", if i % 4 == 0 { "Big" } else { "small" }),
            "company_id": company["id"],
            "stage": stage,
            "amount": format!("{}.{:02}", (i * 137) % 2000, i),
            "probability": (i * 7) % 101,
            "tags": if i % 2 == 0 { json!(["vip"]) } else { json!([]) },
        });
        if i % 3 != 1 {
            body["expected_close_date"] = json!(format!("2027-0{}-1{}", 1 + i % 9, i % 10));
        }
        if stage == "lost" {
            body["lost_reason"] = json!("budget");
        }
        deals.push(server.create("deals", body).await);
    }
    deals
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn filters_select_the_right_rows(server: &Server) {
    let deals = seed_deals(server).await;
    let expect = |keep: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        names(
            &deals
                .iter()
                .filter(|d| keep(d))
                .cloned()
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .collect()
    };
    let amount = |d: &Value| d["amount"].as_str().unwrap().parse::<f64>().unwrap();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("stage=eq.won", expect(&|d| d["stage"] == "won")),
        (
            "stage=in.(won,lost)",
            expect(&|d| d["stage"] == "won" || d["stage"] == "lost"),
        ),
        ("stage=ne.lead", expect(&|d| d["stage"] != "lead")),
        ("amount=gte.1000", expect(&|d| amount(d) >= 1000.0)),
        (
            "amount=lt.500.5&amount=gt.100",
            expect(&|d| amount(d) < 500.5 && amount(d) > 100.0),
        ),
        (
            "probability=lte.30",
            expect(&|d| d["probability"].as_i64().unwrap() <= 30),
        ),
        (
            "name=like.Big*",
            expect(&|d| d["name"].as_str().unwrap().starts_with("Big")),
        ),
        ("name=like.big*", BTreeSet::new()),
        (
            "name=ilike.big*",
            expect(&|d| d["name"].as_str().unwrap().starts_with("Big")),
        ),
        (
            "expected_close_date=is.null",
            expect(&|d| d.get("expected_close_date").is_none()),
        ),
        (
            "expected_close_date=is.notnull",
            expect(&|d| d.get("expected_close_date").is_some()),
        ),
        (
            "expected_close_date=gte.2027-05-01",
            expect(&|d| {
                d.get("expected_close_date")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v >= "2027-05-01")
            }),
        ),
        ("tags=cs.vip", expect(&|d| d["tags"] == json!(["vip"]))),
        ("company_id=eq.".to_owned().leak(), BTreeSet::new()),
        (
            "or=(stage.eq.won,amount.gt.1500)",
            expect(&|d| d["stage"] == "won" || amount(d) > 1500.0),
        ),
        (
            "stage=eq.won&or=(probability.lt.20,tags.cs.vip)",
            expect(&|d| {
                d["stage"] == "won"
                    && (d["probability"].as_i64().unwrap() < 20 || d["tags"] == json!(["vip"]))
            }),
        ),
    ];
    for (query, expected) in cases {
        if query.ends_with("eq.") {
            // A malformed UUID in a filter is a 400, not an empty page.
            server
                .get(&format!("/api/crm/deals?{query}"))
                .await
                .problem(400);
            continue;
        }
        let (items, _) = server
            .all_pages("deals", &format!("{query}&limit=1000"))
            .await;
        let found: BTreeSet<String> = names(&items).into_iter().collect();
        assert_eq!(found, expected, "filter {query}");
    }
    // The total counts every matching row, not just the page.
    let page = server
        .get("/api/crm/deals?stage=in.(won,lost)&count=exact&limit=2")
        .await
        .expect(200)
        .body;
    assert_eq!(
        page["total"],
        expect(&|d| d["stage"] == "won" || d["stage"] == "lost").len()
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

async fn sorting_and_paging_cover_every_row_once(server: &Server) {
    let deals = seed_deals(server).await;
    // Sorted by a nullable key descending, then name: NULLs last, pages of 5.
    let (items, pages) = server
        .all_pages("deals", "sort=-expected_close_date,name&limit=5")
        .await;
    assert_eq!(pages, 5);
    assert_eq!(items.len(), deals.len(), "every row once");
    let ids: BTreeSet<&str> = items.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), deals.len(), "no row twice");
    let mut expected = deals.clone();
    expected.sort_by(|a, b| {
        let (x, y) = (
            a.get("expected_close_date").and_then(Value::as_str),
            b.get("expected_close_date").and_then(Value::as_str),
        );
        let by_date = match (x, y) {
            (Some(x), Some(y)) => y.cmp(x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_date.then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
    });
    assert_eq!(names(&items), names(&expected));

    // Sorted by amount as a number (not as text), ascending, over pages of 4.
    let (items, _) = server.all_pages("deals", "sort=amount&limit=4").await;
    let amounts: Vec<f64> = items
        .iter()
        .map(|d| d["amount"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(amounts.windows(2).all(|w| w[0] <= w[1]), "{amounts:?}");
    assert_eq!(amounts.len(), deals.len());

    // Filters and sorting together, with a total.
    let page = server
        .get("/api/crm/deals?stage=ne.lead&sort=-probability&limit=3&count=exact")
        .await
        .expect(200)
        .body;
    let probabilities: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["probability"].as_i64().unwrap())
        .collect();
    assert!(
        probabilities.windows(2).all(|w| w[0] >= w[1]),
        "{probabilities:?}"
    );
    assert_eq!(
        page["total"],
        deals.iter().filter(|d| d["stage"] != "lead").count()
    );

    // A cursor belongs to its sort.
    let first = server
        .get("/api/crm/deals?sort=name&limit=2")
        .await
        .expect(200)
        .body;
    let cursor = first["next_cursor"].as_str().unwrap();
    server
        .get(&format!("/api/crm/deals?sort=-name&cursor={cursor}"))
        .await
        .problem(404);
}

async fn service_hooks_run_around_writes(server: &Server) {
    let acme = company(server, "Hooked Inc").await;
    let deal = server
        .create(
            "deals",
            json!({ "name": "Hook", "company_id": acme["id"], "amount": "100.00" }),
        )
        .await;
    assert!(deal.get("closed_at").is_none());
    let url = format!("/api/crm/deals/{}", deal["id"].as_str().unwrap());
    let won = server
        .patch(&url, &json!({ "stage": "won" }), None)
        .await
        .expect(200)
        .body;
    assert!(
        won["closed_at"].is_string(),
        "winning stamps closed_at: {won}"
    );
    // The rule `deal-lost-reason` (core/validation/deal.yaml) judges the merged result: a
    // 422 at the member it blames, with its message, on both databases.
    let problem = server
        .patch(&url, &json!({ "stage": "lost" }), None)
        .await
        .problem(422);
    assert_eq!(problem["errors"][0]["pointer"], "/lost_reason", "{problem}");
    assert_eq!(problem["errors"][0]["detail"], "say why the deal was lost");
    assert_eq!(problem["errors"][0]["keyword"], "x-prefiq-rules");
    let problem = server
        .patch(&url, &json!({ "stage": "lost", "lost_reason": "" }), None)
        .await
        .problem(422);
    assert_eq!(problem["errors"][0]["pointer"], "/lost_reason", "{problem}");
    let lost = server
        .patch(
            &url,
            &json!({ "stage": "lost", "lost_reason": "budget" }),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(lost["lost_reason"], "budget");
    let reopened = server
        .patch(&url, &json!({ "stage": "negotiation" }), None)
        .await
        .expect(200)
        .body;
    assert!(
        reopened.get("closed_at").is_none(),
        "reopening clears closed_at: {reopened}"
    );

    // An activity is about a deal or a contact, exactly one (the rule `activity-subject`).
    let problem = server
        .post(
            "/api/crm/activities",
            &json!({ "kind": "call", "subject": "Intro" }),
        )
        .await
        .problem(422);
    let blamed: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(blamed, ["/deal_id", "/contact_id"], "{problem}");
    let contact = server
        .create("contacts", json!({ "company_id": acme["id"], "first_name": "Ada", "last_name": "Hook", "email": "ada@hook.example" }))
        .await;
    let both = json!({ "kind": "call", "subject": "Intro", "deal_id": deal["id"], "contact_id": contact["id"] });
    let problem = server.post("/api/crm/activities", &both).await.problem(422);
    assert_eq!(
        problem["errors"][0]["detail"],
        "an activity is about a deal or a contact, exactly one"
    );
    let activity = server.create("activities", json!({ "kind": "call", "subject": "Intro", "deal_id": deal["id"], "due_at": "2027-01-02T10:00:00+02:00" })).await;
    assert_eq!(
        activity["due_at"], "2027-01-02T08:00:00Z",
        "instants are stored in UTC"
    );
    // Deleting the deal deletes its activities (on-delete: cascade).
    server.delete(&url, None).await.expect(204);
    server
        .get(&format!(
            "/api/crm/activities/{}",
            activity["id"].as_str().unwrap()
        ))
        .await
        .problem(404);
    // The repository deleted it, not the database, so its removal is in the audit log too.
    let deleted: Vec<String> = server
        .db
        .fetch_all(
            "SELECT entity_id FROM prefiq_audit WHERE entity = 'Activity' AND action = 'delete'",
            vec![],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.req::<String>(0).unwrap())
        .collect();
    assert_eq!(
        deleted
            .iter()
            .filter(|id| id.as_str() == activity["id"].as_str().unwrap())
            .count(),
        1,
        "one audit entry for the cascaded activity: {deleted:?}"
    );
}

async fn values_round_trip_exactly(server: &Server) {
    let acme = server
        .create("companies", json!({ "name": "Exact", "annual_revenue": "12345678901234.56", "employee_count": 9007199254740991u64 }))
        .await;
    assert_eq!(acme["annual_revenue"], "12345678901234.56");
    assert_eq!(acme["employee_count"], 9007199254740991u64);
    let contact = server
        .create(
            "contacts",
            json!({
                "company_id": acme["id"],
                "first_name": "Zoë",
                "last_name": "O'Brien",
                "email": "zoe@exact.example",
                "phone": "+4930123456",
                "birthday": "1990-02-28",
                "preferred_channel": { "kind": "phone", "best_time": "morning" },
                "marketing_opt_in": true
            }),
        )
        .await;
    let read = server
        .get(&format!(
            "/api/crm/contacts/{}",
            contact["id"].as_str().unwrap()
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(read, contact);
    assert_eq!(
        read["preferred_channel"],
        json!({ "kind": "phone", "best_time": "morning" })
    );
    assert_eq!(read["last_name"], "O'Brien");
    assert_eq!(read["birthday"], "1990-02-28");
    let problem = server
        .post("/api/crm/contacts", &json!({ "company_id": acme["id"], "first_name": "A", "last_name": "B", "email": "x@y.example", "preferred_channel": { "kind": "pigeon" } }))
        .await
        .problem(422);
    assert!(
        problem["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/preferred_channel"),
        "{problem}"
    );
}

async fn custom_operations_close_deals(server: &Server) {
    let acme = company(server, "Closing Co").await;
    let deal = server
        .create(
            "deals",
            json!({ "name": "Big one", "company_id": acme["id"], "amount": "5000.00" }),
        )
        .await;
    let id = deal["id"].as_str().unwrap();
    // Inputs are validated before the service runs.
    server
        .post(
            &format!("/api/crm/deals/{id}/win"),
            &json!({ "amount": "12.345" }),
        )
        .await
        .problem(422);
    server
        .post(&format!("/api/crm/deals/{id}/lose"), &json!({}))
        .await
        .problem(422);
    // A custom operation's body keeps its rules too (`lose-deal-competitor`), before the
    // service runs: the deal stays open.
    let problem = server
        .post(
            &format!("/api/crm/deals/{id}/lose"),
            &json!({ "reason": "price", "competitor": "" }),
        )
        .await
        .problem(422);
    assert_eq!(problem["errors"][0]["pointer"], "/competitor", "{problem}");
    assert_eq!(problem["errors"][0]["keyword"], "x-prefiq-rules");
    server
        .post("/api/crm/deals/not-a-uuid/win", &json!({}))
        .await
        .problem(400);
    server
        .post(
            "/api/crm/deals/0190b7a2-0000-7000-8000-000000000000/win",
            &json!({}),
        )
        .await
        .problem(404);
    // A stale If-Match is refused; the current one works.
    let stale = server
        .send(
            Method::POST,
            &format!("/api/crm/deals/{id}/win"),
            Some(&json!({})),
            &[("if-match", "\"7\"")],
        )
        .await;
    stale.problem(412);
    let won = server
        .send(
            Method::POST,
            &format!("/api/crm/deals/{id}/win"),
            Some(&json!({ "amount": "5500.00", "note": "Signed today" })),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(200)
        .body;
    assert_eq!(won["stage"], "won");
    assert_eq!(won["amount"], "5500.00");
    assert!(won["closed_at"].is_string());
    // The note became an activity of the deal.
    let (notes, _) = server
        .all_pages("activities", &format!("deal_id=eq.{id}"))
        .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["notes"], "Signed today");
    // A closed deal cannot be closed again.
    server
        .post(
            &format!("/api/crm/deals/{id}/lose"),
            &json!({ "reason": "changed mind" }),
        )
        .await
        .problem(409);

    let other = server
        .create(
            "deals",
            json!({ "name": "Small one", "company_id": acme["id"], "amount": "10.00" }),
        )
        .await;
    let lost = server
        .post(
            &format!("/api/crm/deals/{}/lose", other["id"].as_str().unwrap()),
            &json!({ "reason": "price", "competitor": "Initech" }),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(lost["stage"], "lost");
    assert_eq!(lost["lost_reason"], "price (lost to Initech)");
}

/// `winDeal` writes the deal, then an activity for its note; `loseDeal` writes a reason built
/// from two inputs. When a later write is refused, the earlier ones are rolled back, and no
/// write that breaks its schema is stored, whoever built the row.
async fn an_operation_either_fully_happens_or_not_at_all(server: &Server) {
    let acme = company(server, "Atomic Co").await;
    // A 200-character deal name makes the activity's subject ("Won: " + name) 205 characters,
    // beyond its maxLength of 200: the activity insert is refused after the deal was saved.
    let long_name = "n".repeat(200);
    let deal = server
        .create(
            "deals",
            json!({ "name": long_name, "company_id": acme["id"], "amount": "100.00" }),
        )
        .await;
    let id = deal["id"].as_str().unwrap();
    let refused = server
        .post(
            &format!("/api/crm/deals/{id}/win"),
            &json!({ "note": "Signed", "amount": "150.00" }),
        )
        .await
        .problem(409);
    assert_eq!(refused["errors"][0]["pointer"], "/subject", "{refused}");
    let after = server
        .get(&format!("/api/crm/deals/{id}"))
        .await
        .expect(200);
    assert_eq!(
        after.body["stage"], "lead",
        "the deal was not won: {}",
        after.body
    );
    assert_eq!(after.body["amount"], "100.00");
    assert_eq!(after.body["version"], 1);
    assert_eq!(after.header("etag"), Some("\"1\""));
    let (activities, _) = server
        .all_pages("activities", &format!("deal_id=eq.{id}"))
        .await;
    assert!(
        activities.is_empty(),
        "no activity was written: {activities:?}"
    );
    // Without the note, the same operation succeeds: nothing was left half-done to block it.
    let won = server
        .post(&format!("/api/crm/deals/{id}/win"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(won["stage"], "won");
    assert_eq!(won["version"], 2);

    // A service that builds a value longer than the schema allows cannot store it: 500
    // characters of reason and 200 of competitor make a `lost_reason` beyond its maxLength.
    // The request itself was valid, so the refusal is a 409 that names the member.
    let other = server
        .create(
            "deals",
            json!({ "name": "Long story", "company_id": acme["id"], "amount": "10.00" }),
        )
        .await;
    let other_id = other["id"].as_str().unwrap();
    let refused = server
        .post(
            &format!("/api/crm/deals/{other_id}/lose"),
            &json!({ "reason": "r".repeat(500), "competitor": "c".repeat(200) }),
        )
        .await
        .problem(409);
    assert_eq!(refused["errors"][0]["pointer"], "/lost_reason", "{refused}");
    let untouched = server
        .get(&format!("/api/crm/deals/{other_id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(untouched["stage"], "lead");
    assert!(untouched.get("lost_reason").is_none_or(Value::is_null));
    // Every later patch still works: nothing invalid was stored.
    server
        .patch(
            &format!("/api/crm/deals/{other_id}"),
            &json!({ "tags": ["x"] }),
            None,
        )
        .await
        .expect(200);
}

async fn pipeline_report_aggregates_in_sql(server: &Server) {
    let acme = company(server, "Report Co").await;
    for (stage, amount, probability, currency, close) in [
        ("lead", "100.00", 10, "EUR", "2027-01-10"),
        ("lead", "300.50", 20, "EUR", "2027-02-10"),
        ("proposal", "1000.00", 50, "EUR", "2027-03-10"),
        ("won", "700.25", 100, "EUR", "2027-01-20"),
        ("proposal", "999.00", 50, "USD", "2027-03-10"),
    ] {
        server
            .create("deals", json!({ "name": format!("{stage} {amount}"), "company_id": acme["id"], "stage": stage, "amount": amount, "probability": probability, "currency": currency, "expected_close_date": close }))
            .await;
    }
    let report = server
        .get("/api/crm/reports/pipeline?currency=EUR")
        .await
        .expect(200)
        .body;
    let stage = |name: &str| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(stage("lead")["deals"], 2);
    assert_eq!(stage("lead")["amount"], "400.50");
    assert_eq!(stage("lead")["weighted_amount"], "70.10");
    assert_eq!(stage("proposal")["amount"], "1000.00");
    assert_eq!(stage("won")["deals"], 1);
    assert_eq!(stage("lost")["deals"], 0);
    assert_eq!(report["open_deals"], 3);
    assert_eq!(report["open_amount"], "1400.50");
    assert_eq!(
        report["stages"].as_array().unwrap().len(),
        6,
        "every stage, in pipeline order"
    );
    assert_eq!(report["stages"][0]["stage"], "lead");

    let january = server
        .get("/api/crm/reports/pipeline?from=2027-01-01&to=2027-01-31")
        .await
        .expect(200)
        .body;
    assert_eq!(january["open_deals"], 1);
    assert_eq!(january["from"], "2027-01-01");
    for bad in ["from=yesterday", "currency=euro", "to=2027-13-01"] {
        server
            .get(&format!("/api/crm/reports/pipeline?{bad}"))
            .await
            .problem(400);
    }
}

async fn contact_search_finds_people_and_companies(server: &Server) {
    let acme = company(server, "Searchable GmbH").await;
    let other = company(server, "Elsewhere").await;
    for (first, last, email, company) in [
        ("Ada", "Lovelace", "ada@analytical.example", &acme),
        ("Grace", "Hopper", "grace@navy.example", &other),
        ("Alan", "Turing", "alan@bletchley.example", &other),
    ] {
        server.create("contacts", json!({ "company_id": company["id"], "first_name": first, "last_name": last, "email": email })).await;
    }
    let names = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let hits = server
        .get("/api/crm/contacts/search?q=LOVE")
        .await
        .expect(200)
        .body;
    assert_eq!(names(&hits), vec!["Ada Lovelace"]);
    assert_eq!(hits["items"][0]["company_name"], "Searchable GmbH");
    let hits = server
        .get("/api/crm/contacts/search?q=elsewhere")
        .await
        .expect(200)
        .body;
    assert_eq!(
        names(&hits),
        vec!["Grace Hopper", "Alan Turing"],
        "matches by company, ordered by last name"
    );
    let hits = server.get("/api/crm/contacts/search?q=a&limit=2").await;
    hits.problem(400);
    let hits = server
        .get("/api/crm/contacts/search?q=example&limit=2")
        .await
        .expect(200)
        .body;
    assert_eq!(names(&hits).len(), 2);
    let hits = server
        .get("/api/crm/contacts/search?q=100%25")
        .await
        .expect(200)
        .body;
    assert!(
        names(&hits).is_empty(),
        "LIKE wildcards in the text match literally"
    );
    server.get("/api/crm/contacts/search").await.problem(400);
    server
        .get("/api/crm/contacts/search?q=ab&limit=0")
        .await
        .problem(400);
}
