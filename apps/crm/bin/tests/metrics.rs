//! `/metrics` on SQLite and PostgreSQL: read only by a platform operator, and what it says is
//! parsed by the Prometheus project's own Python parser (OpenMetrics), then checked against what
//! the test did: requests by route template and status (an unknown URL under `unmatched`),
//! their latency, the pool, the jobs waiting, the failed ones (a webhook's deliveries among
//! them) and the events not yet dispatched.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::{Backend, Identity, Server, tools};
use reqwest::Method;
use serde_json::{Value, json};

/// Parses OpenMetrics text with `prometheus_client`'s parser; each sample as
/// `{"name", "labels", "value"}`.
fn parse(text: &str) -> Vec<Value> {
    let python = tools::tool(".venv/bin/python");
    let script = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append({'family': family.name, 'type': family.type, 'name': s.name, 'labels': s.labels, 'value': s.value})\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the text:\n{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|s| s["value"].as_f64())
}

async fn metrics_count_what_the_server_did(backend: Backend) {
    let server = Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await;
    let user = server.token(&Identity::user(Uuid::now_v7(), &["*"]));
    let operator = server.token(&Identity::operator());
    let auth = format!("Bearer {user}");
    let headers = [("authorization", auth.as_str())];
    let company = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&json!({"name": "Metered"})),
            &headers,
        )
        .await
        .expect(201)
        .body;
    let deal = server
        .send(
            Method::POST,
            "/api/crm/deals",
            Some(&json!({"name": "Gauge", "company_id": company["id"], "amount": "5.00"})),
            &headers,
        )
        .await
        .expect(201)
        .body;
    let id = deal["id"].as_str().unwrap();
    server
        .send(
            Method::POST,
            &format!("/api/crm/deals/{id}/win"),
            Some(&json!({})),
            &headers,
        )
        .await
        .expect(200);
    for n in 0..3 {
        server
            .send(Method::GET, &format!("/no/such/{n}"), None, &headers)
            .await
            .expect(404);
    }

    // Two failed webhook deliveries, as Cortex's worker leaves them: one waiting for its
    // retry, one discarded.
    for (state, attempt) in [("available", 2), ("discarded", 20)] {
        let sql = server.db.pick(
            "INSERT INTO prefiq_jobs (id, tenant_id, app, queue, kind, payload, state, attempt, max_attempts, run_at, created_at) \
             VALUES ($1, $2, 'cortex', 'default', 'webhook_delivery', '{}', $3, $4, 20, $5, $5)",
            "INSERT INTO prefiq_jobs (id, tenant_id, app, queue, kind, payload, state, attempt, max_attempts, run_at, created_at) \
             VALUES (?1, ?2, 'cortex', 'default', 'webhook_delivery', '{}', ?3, ?4, 20, ?5, ?5)",
        );
        server
            .db
            .execute(
                sql,
                vec![
                    prefiq_runtime::SqlValue::Uuid(Uuid::now_v7()),
                    prefiq_runtime::SqlValue::Uuid(prefiq_runtime::auth::DEFAULT_TENANT),
                    prefiq_runtime::SqlValue::Text(state.into()),
                    prefiq_runtime::SqlValue::Int32(attempt),
                    prefiq_runtime::SqlValue::DateTime(prefiq_runtime::db::now()),
                ],
            )
            .await
            .unwrap();
    }

    // Nothing is open by default: no token, and a tenant's user, are refused.
    server
        .send(Method::GET, "/metrics", None, &[("authorization", "")])
        .await
        .expect(401);
    server
        .send(Method::GET, "/metrics", None, &headers)
        .await
        .expect(403);
    // A scraper's token (PREFIQ_METRICS_TOKEN) reads them too; another token does not.
    prefiq_runtime::metrics::configure(Some("scrape-secret"));
    for (token, status) in [("scrape-secret", 200), ("scrape-secreT", 401)] {
        let bearer = format!("Bearer {token}");
        server
            .send(Method::GET, "/metrics", None, &[("authorization", &bearer)])
            .await
            .expect(status);
    }
    let bearer = format!("Bearer {operator}");
    let reply = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(
        reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        reply.headers()
    );
    let text = reply.text().await.unwrap();
    let samples = parse(&text);

    let requests = |method: &str, route: &str, status: &str| {
        sample(
            &samples,
            "prefiq_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(requests("POST", "/api/crm/deals", "201"), 1.0, "{text}");
    assert_eq!(
        requests("POST", "/api/crm/deals/{id}/win", "200"),
        1.0,
        "{text}"
    );
    assert_eq!(requests("GET", "unmatched", "404"), 3.0, "{text}");
    assert_eq!(requests("GET", "/metrics", "403"), 1.0, "{text}");
    assert_eq!(requests("GET", "/metrics", "401"), 2.0, "{text}");
    assert_eq!(requests("GET", "/metrics", "200"), 1.0, "{text}");
    assert_eq!(
        sample(
            &samples,
            "prefiq_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/api/crm/companies")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&samples, "prefiq_db_pool_connections", &[("state", "max")]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    // The win's job waits (this server runs no workers), and its events are not dispatched.
    assert_eq!(
        sample(
            &samples,
            "prefiq_jobs",
            &[("app", "crm"), ("queue", "default"), ("state", "available")]
        ),
        Some(1.0),
        "{text}"
    );
    for state in ["retrying", "discarded"] {
        assert_eq!(
            sample(
                &samples,
                "prefiq_job_failures",
                &[
                    ("app", "cortex"),
                    ("kind", "webhook_delivery"),
                    ("state", state)
                ]
            ),
            Some(1.0),
            "{text}"
        );
    }
    let pending = sample(&samples, "prefiq_outbox_pending_events", &[]).unwrap_or(0.0);
    assert_eq!(
        pending, 4.0,
        "company, deal, its update and deal_won: {text}"
    );
    assert!(sample(&samples, "prefiq_outbox_lag_seconds", &[]).unwrap_or(0.0) > 0.0);
    let families: BTreeMap<String, String> = samples
        .iter()
        .map(|s| {
            (
                s["family"].as_str().unwrap().to_owned(),
                s["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(families["prefiq_http_requests"], "counter");
    assert_eq!(
        families["prefiq_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(families["prefiq_jobs"], "gauge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_metrics_count_what_the_server_did() {
    metrics_count_what_the_server_did(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_metrics_count_what_the_server_did() {
    metrics_count_what_the_server_did(Backend::Postgres).await;
}
