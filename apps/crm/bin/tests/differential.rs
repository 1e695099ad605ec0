//! One behaviour, two databases: the same request corpus (filters, sorts, cursors, decimals,
//! Unicode, dates and instants, foreign-key errors, preconditions, hostile input) goes to the CRM
//! on SQLite and on PostgreSQL, and the answers must be identical once ids and server-set times
//! are normalised. A difference fails the test unless [`ALLOWED`] lists it with its reason.

use std::collections::BTreeMap;

use prefiq_testkit::{Backend, Server};
use serde_json::{Value, json};

/// Requests whose answers may differ between the databases, and why. Empty: none may.
const ALLOWED: &[(&str, &str)] = &[];

/// What one request answered, normalised.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Value,
}

struct Run<'a> {
    server: &'a Server,
    /// Ids in the order the corpus created them: the same order on both databases.
    ids: Vec<String>,
    answers: BTreeMap<String, Answer>,
}

/// Members the server sets from the clock, or from the caller (each server has its own test
/// identity).
const CLOCK: &[&str] = &["created_at", "updated_at", "closed_at", "owner_id"];

impl Run<'_> {
    fn normalise(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => {
                let mut s = s.clone();
                for (n, id) in self.ids.iter().enumerate() {
                    s = s.replace(id.as_str(), &format!("<id {n}>"));
                }
                Value::String(s)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.normalise(v)).collect()),
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| {
                        let v = if CLOCK.contains(&k.as_str()) && v.is_string() {
                            json!("<time>")
                        } else if k == "next_cursor" && v.is_string() {
                            json!("<cursor>")
                        } else {
                            self.normalise(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn path(&self, template: &str) -> String {
        let mut path = template.to_owned();
        for (n, id) in self.ids.iter().enumerate().rev() {
            path = path.replace(&format!("{{{n}}}"), id);
        }
        path
    }

    async fn send(
        &mut self,
        name: &str,
        method: reqwest::Method,
        template: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
        let path = self.path(template);
        let body = body.map(|b| {
            let text = self.path(&b.to_string());
            serde_json::from_str::<Value>(&text).unwrap()
        });
        let reply = self
            .server
            .send(method, &path, body.as_ref(), headers)
            .await;
        let raw = reply.body.clone();
        if reply.status.as_u16() == 201
            && let Some(id) = raw["id"].as_str()
        {
            self.ids.push(id.to_owned());
        }
        let answer = Answer {
            status: reply.status.as_u16(),
            etag: reply.header("etag").map(str::to_owned),
            body: self.normalise(&raw),
        };
        assert!(
            answer.status < 500,
            "{name}: a server error on {:?}: {raw}",
            self.server.url.split(':').next().unwrap_or("")
        );
        assert!(
            self.answers.insert(name.to_owned(), answer).is_none(),
            "{name} is named twice"
        );
        raw
    }

    async fn get(&mut self, name: &str, template: &str) -> Value {
        self.send(name, reqwest::Method::GET, template, None, &[])
            .await
    }

    async fn post(&mut self, name: &str, template: &str, body: Value) -> Value {
        self.send(name, reqwest::Method::POST, template, Some(body), &[])
            .await
    }
}

/// The corpus. Rows are created in a fixed order, so `{n}` in a path or body is the n-th id.
async fn corpus(server: &Server) -> BTreeMap<String, Answer> {
    let mut run = Run {
        server,
        ids: Vec::new(),
        answers: BTreeMap::new(),
    };
    // Companies 0..=6: Unicode names, decimals in several written forms, arrays.
    let companies = [
        ("Ärger GmbH", Some("1.1"), json!(["b2b", "dach"])),
        ("ärger AG", Some("1.10"), json!(["dach"])),
        ("Straße KG", Some("99999999999999.98"), json!([])),
        ("École SA", Some("99999999999999.99"), json!(["b2b"])),
        (
            "acme",
            Some("99999999999999.97"),
            json!(["b2b", "us", "dach"]),
        ),
        ("ACME Corp", Some("0.5"), json!(["us"])),
        ("Zeta", None, json!([])),
    ];
    for (n, (name, revenue, tags)) in companies.iter().enumerate() {
        run.post(
            &format!("create company {n}"),
            "/api/crm/companies",
            json!({ "name": name, "annual_revenue": revenue, "tags": tags }),
        )
        .await;
    }
    // Deals 7..=12 on those companies, amounts on both sides of a cent.
    let deals = [
        ("Alpha", 0, "99999999999.97", "lead", "2027-01-31"),
        ("Beta", 1, "99999999999.98", "qualified", "2027-02-28"),
        ("Gamma", 2, "99999999999.99", "proposal", "9999-12-31"),
        ("Delta", 3, "0.01", "negotiation", "0001-01-01"),
        ("Epsilon", 4, "1.5", "lead", "2024-02-29"),
        ("Zeta deal", 4, "100", "qualified", "2027-06-30"),
    ];
    for (n, (name, company, amount, stage, close)) in deals.iter().enumerate() {
        run.post(
            &format!("create deal {n}"),
            "/api/crm/deals",
            json!({ "name": name, "company_id": format!("{{{company}}}"), "amount": amount, "stage": stage, "expected_close_date": close, "probability": 10 * n }),
        )
        .await;
    }
    // Contacts 13..=14, activities 15..=17: instants with offsets, a leap second.
    run.post(
        "create contact 0",
        "/api/crm/contacts",
        json!({ "first_name": "Jürgen", "last_name": "Ärgerlich", "email": "j@example.com", "company_id": "{0}", "birthday": "1970-01-01" }),
    )
    .await;
    run.post(
        "create contact 1",
        "/api/crm/contacts",
        json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "company_id": "{4}" }),
    )
    .await;
    for (n, due) in [
        "2027-01-02T10:00:00+02:00",
        "2016-12-31T23:59:60Z",
        "2027-01-02T08:00:00.123456789Z",
    ]
    .iter()
    .enumerate()
    {
        run.post(
            &format!("create activity {n}"),
            "/api/crm/activities",
            json!({ "kind": "call", "subject": format!("Call {n}"), "deal_id": "{7}", "due_at": due }),
        )
        .await;
    }

    let lists = [
        // Sorting text, decimals and nulls, with the id as the tie-breaker.
        "/api/crm/companies?sort=name",
        "/api/crm/companies?sort=-name",
        "/api/crm/companies?sort=annual_revenue",
        "/api/crm/companies?sort=-annual_revenue,name",
        "/api/crm/deals?sort=-amount&count=exact",
        "/api/crm/deals?sort=expected_close_date",
        // Decimal comparisons, exact to the cent.
        "/api/crm/deals?amount=eq.99999999999.98",
        "/api/crm/deals?amount=gt.99999999999.97&amount=lt.99999999999.99",
        "/api/crm/companies?annual_revenue=eq.1.1",
        "/api/crm/companies?annual_revenue=eq.1.100",
        "/api/crm/companies?annual_revenue=in.(0.5,1.10)",
        "/api/crm/companies?annual_revenue=is.null",
        // Unicode, case-insensitively.
        "/api/crm/companies?name=ilike.*ärger*",
        "/api/crm/companies?name=ilike.*ÄRGER*",
        "/api/crm/companies?name=like.*ärger*",
        "/api/crm/companies?name=ilike.école*",
        "/api/crm/companies?name=ilike.acme*",
        "/api/crm/contacts/search?q=%C3%A4rg",
        "/api/crm/contacts/search?q=ADA",
        // Arrays.
        "/api/crm/companies?tags=cs.{b2b,dach}",
        "/api/crm/companies?tags=cd.{b2b,dach}",
        "/api/crm/companies?tags=ov.{us}",
        "/api/crm/companies?tags=cs.b2b",
        // Or groups, enums, dates.
        "/api/crm/deals?or=(stage.eq.lead,amount.lt.1)&sort=name",
        "/api/crm/deals?stage=in.(qualified,proposal)&sort=name",
        "/api/crm/deals?expected_close_date=gte.2027-01-31&sort=name",
        "/api/crm/deals?expected_close_date=eq.0001-01-01",
        "/api/crm/activities?sort=due_at",
        "/api/crm/activities?due_at=gte.2027-01-02T08:00:00Z&sort=due_at",
        "/api/crm/reports/pipeline",
        // Refusals.
        "/api/crm/deals?expected_close_date=eq.0000-01-01",
        "/api/crm/deals?expected_close_date=eq.-4714-01-01",
        "/api/crm/deals?amount=eq.1.234",
        "/api/crm/deals?tags=in.(a)",
        "/api/crm/companies?name=eq.a%00b",
        "/api/crm/companies?name=eq.a",
        "/api/crm/companies?nope=eq.1",
        "/api/crm/companies?sort=address",
        "/api/crm/deals?cursor=eyJ4IjoxfQ",
    ];
    for path in lists {
        run.get(path, path).await;
    }
    // Cursors: every page of a sort with ties and nulls.
    let mut path = "/api/crm/companies?sort=-annual_revenue&limit=2".to_owned();
    for page in 0.. {
        let body = run.get(&format!("page {page}"), &path).await;
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/crm/companies?sort=-annual_revenue&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    // Writes: foreign keys, decimals, preconditions, a no-op patch, delete with referrers.
    run.post(
        "deal with an unknown company",
        "/api/crm/deals",
        json!({ "name": "Orphan", "company_id": "00000000-0000-7000-8000-000000000000" }),
    )
    .await;
    run.post(
        "decimal with too many places",
        "/api/crm/deals",
        json!({ "name": "Precise", "company_id": "{0}", "amount": "1.001" }),
    )
    .await;
    run.post(
        "NUL in a body",
        "/api/crm/companies",
        json!({ "name": "a\u{0}b" }),
    )
    .await;
    let patch = |tag: &'static str| [("if-match", tag)];
    for (name, body, tag) in [
        ("patch with a weak tag", json!({ "tags": ["x"] }), "W/\"1\""),
        ("patch with a stale tag", json!({ "tags": ["x"] }), "\"7\""),
        ("patch with an empty tag", json!({ "tags": ["x"] }), ""),
        ("patch that changes nothing", json!({}), "\"1\""),
        ("patch revenue", json!({ "annual_revenue": "2.5" }), "\"1\""),
    ] {
        run.send(
            name,
            reqwest::Method::PATCH,
            "/api/crm/companies/{6}",
            Some(body),
            &patch(tag),
        )
        .await;
    }
    run.get("company after patches", "/api/crm/companies/{6}")
        .await;
    run.send(
        "delete a company its deals refer to",
        reqwest::Method::DELETE,
        "/api/crm/companies/{4}",
        None,
        &[],
    )
    .await;
    run.get("a deal whose company was deleted", "/api/crm/deals/{11}")
        .await;
    run.post(
        "win a deal",
        "/api/crm/deals/{8}/win",
        json!({ "amount": "250.005" }),
    )
    .await;
    run.post(
        "win a deal exactly",
        "/api/crm/deals/{8}/win",
        json!({ "amount": "250.5" }),
    )
    .await;
    run.get("the pipeline after", "/api/crm/reports/pipeline")
        .await;
    run.answers
}

async fn start(backend: Backend) -> Server {
    Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_answer_the_corpus_alike() {
    let sqlite = start(Backend::Sqlite).await;
    let postgres = start(Backend::Postgres).await;
    let on_sqlite = corpus(&sqlite).await;
    let on_postgres = corpus(&postgres).await;
    assert!(on_sqlite.len() > 60, "the corpus ran: {}", on_sqlite.len());
    let mut differences = Vec::new();
    for (name, answer) in &on_sqlite {
        let other = &on_postgres[name];
        if answer != other && !ALLOWED.iter().any(|(allowed, _)| allowed == name) {
            differences.push(format!(
                "{name}\n  sqlite:   {} {:?} {}\n  postgres: {} {:?} {}",
                answer.status, answer.etag, answer.body, other.status, other.etag, other.body
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n{}",
        differences.len(),
        on_sqlite.len(),
        differences.join("\n")
    );
    sqlite.stop().await;
    postgres.stop().await;
}
