//! Hostile and edge-case requests get the right 4xx problem, never a 5xx, and the same answer
//! on SQLite and PostgreSQL: NUL bytes, array operators, oversized filters, out-of-range dates,
//! exact decimals, Unicode case folding, HTTP-layer limits and bounded error lists.

use prefiq_testkit::{Backend, Server};
use serde_json::{Value, json};

async fn start(backend: Backend) -> Server {
    Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = super::start(super::Backend::Sqlite).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = super::start(super::Backend::Postgres).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}

on_both_backends!(
    nul_bytes_are_refused_everywhere,
    arrays_filter_as_sets,
    oversized_filters_are_refused,
    out_of_range_dates_are_refused,
    decimals_are_exact_and_canonical,
    case_insensitive_matching_folds_unicode,
    http_limits_answer_with_problems,
    error_lists_are_bounded,
    set_null_moves_the_version_and_operations_send_etags,
);

async fn company(server: &Server, body: Value) -> Value {
    server.create("companies", body).await
}

async fn nul_bytes_are_refused_everywhere(server: &Server) {
    let acme = company(server, json!({"name": "Nul Co"})).await;
    let id = acme["id"].as_str().unwrap();
    server
        .get("/api/crm/companies?name=eq.a%00b")
        .await
        .problem(400);
    server
        .get("/api/crm/companies?name=like.*%00*")
        .await
        .problem(400);
    server
        .get("/api/crm/companies?cursor=%00")
        .await
        .problem(400);
    server
        .get("/api/crm/contacts/search?q=a%00")
        .await
        .problem(400);
    let body = server
        .post("/api/crm/companies", &json!({"name": "a\u{0}b"}))
        .await
        .problem(422);
    assert_eq!(body["errors"][0]["pointer"], "/name");
    server
        .post(
            "/api/crm/companies",
            &json!({"name": "ok", "tags": ["x\u{0}"]}),
        )
        .await
        .problem(422);
    server
        .patch(
            &format!("/api/crm/companies/{id}"),
            &json!({"website": "http://a\u{0}b"}),
            None,
        )
        .await
        .problem(422);
    server.get("/api/crm/companies/a%00b").await.problem(404);
}

async fn arrays_filter_as_sets(server: &Server) {
    company(server, json!({"name": "Tagged A", "tags": ["red", "blue"]})).await;
    company(server, json!({"name": "Tagged B", "tags": ["red"]})).await;
    company(server, json!({"name": "Tagged C", "tags": []})).await;
    let names = |reply: prefiq_testkit::Reply| -> Vec<String> {
        let mut names: Vec<String> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .filter(|n| n.starts_with("Tagged"))
            .collect();
        names.sort();
        names
    };
    let contains = server
        .get("/api/crm/companies?tags=cs.{red,blue}")
        .await
        .expect(200);
    assert_eq!(names(contains), ["Tagged A"]);
    let single = server
        .get("/api/crm/companies?tags=cs.red")
        .await
        .expect(200);
    assert_eq!(names(single), ["Tagged A", "Tagged B"]);
    let within = server
        .get("/api/crm/companies?tags=cd.{red}")
        .await
        .expect(200);
    assert_eq!(names(within), ["Tagged B", "Tagged C"]);
    let overlap = server
        .get("/api/crm/companies?tags=ov.{blue,green}")
        .await
        .expect(200);
    assert_eq!(names(overlap), ["Tagged A"]);
    for bad in [
        "tags=in.(a)",
        "tags=eq.a",
        "tags=a",
        "tags=lt.a",
        "tags=cs.{}",
    ] {
        server
            .get(&format!("/api/crm/companies?{bad}"))
            .await
            .problem(400);
    }
}

async fn oversized_filters_are_refused(server: &Server) {
    let terms: Vec<String> = (0..200).map(|i| format!("name.eq.n{i}")).collect();
    server
        .get(&format!("/api/crm/companies?or=({})", terms.join(",")))
        .await
        .problem(400);
    let values: Vec<String> = (0..101).map(|i| format!("n{i}")).collect();
    server
        .get(&format!(
            "/api/crm/companies?name=in.({})",
            values.join(",")
        ))
        .await
        .problem(400);
    let many: Vec<String> = (0..60).map(|i| format!("name=ne.n{i}")).collect();
    server
        .get(&format!("/api/crm/companies?{}", many.join("&")))
        .await
        .problem(400);
    // Within the limits, the same request works.
    let few: Vec<String> = (0..20).map(|i| format!("name.eq.n{i}")).collect();
    server
        .get(&format!("/api/crm/companies?or=({})", few.join(",")))
        .await
        .expect(200);
}

async fn out_of_range_dates_are_refused(server: &Server) {
    for bad in [
        "-5000-01-01",
        "10000-01-01",
        "0000-01-01",
        "2023-02-30",
        "2023-1-1",
    ] {
        server
            .get(&format!("/api/crm/deals?expected_close_date=lt.{bad}"))
            .await
            .problem(400);
    }
    server
        .get("/api/crm/activities?due_at=gt.-4714-11-24T00:00:00Z")
        .await
        .problem(400);
    server
        .get("/api/crm/deals?expected_close_date=lt.9999-12-31")
        .await
        .expect(200);
}

async fn decimals_are_exact_and_canonical(server: &Server) {
    let acme = company(
        server,
        json!({"name": "Decimal Co", "annual_revenue": "1.5"}),
    )
    .await;
    assert_eq!(
        acme["annual_revenue"], "1.50",
        "stored and returned with its scale"
    );
    server
        .post(
            "/api/crm/companies",
            &json!({"name": "Tiny", "annual_revenue": "0.00000000000000000000000000001"}),
        )
        .await
        .problem(422);
    server
        .post(
            "/api/crm/companies",
            &json!({"name": "Scale", "annual_revenue": "1.500"}),
        )
        .await
        .problem(422);
    // Sixteen digits: as doubles, .97, .98 and .99 are not three different numbers.
    for revenue in [
        "99999999999999.97",
        "99999999999999.98",
        "99999999999999.99",
    ] {
        company(
            server,
            json!({"name": format!("Big {revenue}"), "annual_revenue": revenue}),
        )
        .await;
    }
    let amounts = |reply: prefiq_testkit::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["annual_revenue"].as_str().unwrap().to_owned())
            .collect()
    };
    let exact = server
        .get("/api/crm/companies?annual_revenue=eq.99999999999999.98")
        .await
        .expect(200);
    assert_eq!(amounts(exact), ["99999999999999.98"], "equality is exact");
    let between = server
        .get("/api/crm/companies?annual_revenue=gt.99999999999999.97&annual_revenue=lt.99999999999999.99")
        .await
        .expect(200);
    assert_eq!(amounts(between), ["99999999999999.98"], "ranges are exact");
    let sorted = server
        .get("/api/crm/companies?annual_revenue=gte.99999999999999.97&sort=-annual_revenue")
        .await
        .expect(200);
    assert_eq!(
        amounts(sorted),
        [
            "99999999999999.99",
            "99999999999999.98",
            "99999999999999.97"
        ],
        "sorting is exact"
    );
}

async fn case_insensitive_matching_folds_unicode(server: &Server) {
    let acme = company(server, json!({"name": "Ärger GmbH"})).await;
    server
        .create(
            "contacts",
            json!({"company_id": acme["id"], "first_name": "Ödön", "last_name": "Ärgerlich", "email": "odon@example.com"}),
        )
        .await;
    let found = server
        .get("/api/crm/companies?name=ilike.*ärger*")
        .await
        .expect(200);
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
    let search = server
        .get("/api/crm/contacts/search?q=%C3%84rg")
        .await
        .expect(200);
    assert_eq!(
        search.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        search.body
    );
    let search = server
        .get("/api/crm/contacts/search?q=%C3%B6d%C3%B6n")
        .await
        .expect(200);
    assert_eq!(search.body["items"].as_array().unwrap().len(), 1);
}

async fn http_limits_answer_with_problems(server: &Server) {
    let long = "a".repeat(9000);
    server
        .get(&format!("/api/crm/companies?name=eq.{long}"))
        .await
        .problem(414);
    let big = "x".repeat(20_000);
    server
        .send(
            reqwest::Method::GET,
            "/api/crm/companies",
            None,
            &[("x-one", &big), ("x-two", &big)],
        )
        .await
        .problem(431);
}

async fn error_lists_are_bounded(server: &Server) {
    let tags: Vec<Value> = (0..500).map(|_| json!("")).collect();
    let problem = server
        .post(
            "/api/crm/companies",
            &json!({"name": "", "tags": tags, "employee_count": -1}),
        )
        .await
        .problem(422);
    let errors = problem["errors"].as_array().unwrap();
    assert!(
        errors.len() <= prefiq_runtime::problem::MAX_ERRORS,
        "{}",
        errors.len()
    );
}

async fn set_null_moves_the_version_and_operations_send_etags(server: &Server) {
    let acme = company(server, json!({"name": "SetNull Co"})).await;
    let contact = server
        .create(
            "contacts",
            json!({"company_id": acme["id"], "first_name": "A", "last_name": "B", "email": "setnull@example.com"}),
        )
        .await;
    let deal = server
        .create(
            "deals",
            json!({"name": "Linked", "company_id": acme["id"], "contact_id": contact["id"], "amount": "1.00"}),
        )
        .await;
    server
        .delete(
            &format!("/api/crm/contacts/{}", contact["id"].as_str().unwrap()),
            None,
        )
        .await
        .expect(204);
    let after = server
        .get(&format!("/api/crm/deals/{}", deal["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(after.body["contact_id"], Value::Null);
    assert_eq!(
        after.body["version"], 2,
        "the cleared reference is a new version"
    );
    assert_ne!(after.body["updated_at"], deal["updated_at"]);
    let won = server
        .post(
            &format!("/api/crm/deals/{}/win", deal["id"].as_str().unwrap()),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(
        won.header("etag"),
        Some("\"3\""),
        "an operation that returns an entity sends its ETag"
    );
}
