//! Webhooks under Cortex on SQLite and PostgreSQL: a tenant's webhook receives each event it
//! subscribes to once, signed as Standard Webhooks (verified by the `standardwebhooks` package
//! from npm, not by Cortex's code); every attempt is recorded; a webhook that keeps failing is
//! disabled and says why; and private addresses are refused unless allowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use prefiq_runtime::{events, jobs};
use prefiq_testkit::{Backend, tools};
use serde_json::{Value, json};

use crate::common::{self, Cortex, Reply, browser, hidden, page, submit, until};

/// What the receiver got: the path, the headers that matter, the body.
type Received = Arc<Mutex<Vec<(String, Value, String)>>>;

/// A receiver on a free loopback port: `/ok` answers 204, `/fail` 500. Its base URL.
async fn receiver(received: Received) -> String {
    let record = |path: &'static str, status: StatusCode| {
        let received = received.clone();
        move |headers: HeaderMap, body: String| {
            let received = received.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let seen = json!({
                    "webhook-id": header("webhook-id"),
                    "webhook-timestamp": header("webhook-timestamp"),
                    "webhook-signature": header("webhook-signature"),
                });
                received.lock().unwrap().push((path.into(), seen, body));
                status
            }
        }
    };
    let app = axum::Router::new()
        .route("/ok", post(record("/ok", StatusCode::NO_CONTENT)))
        .route(
            "/fail",
            post(record("/fail", StatusCode::INTERNAL_SERVER_ERROR)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Verifies a delivery with the `standardwebhooks` package; the payload it returns.
fn verified(secret: &str, headers: &Value, body: &str) -> Value {
    tools::link_node_modules(&tools::repo_root());
    tools::tool("node_modules/standardwebhooks");
    let script = "const { Webhook } = require('standardwebhooks');\
        const [secret, headers, body] = process.argv.slice(1);\
        console.log(JSON.stringify(new Webhook(secret).verify(body, JSON.parse(headers))));";
    let output = tools::run_ok(
        std::process::Command::new("node")
            .current_dir(tools::repo_root())
            .args(["-e", script, secret, &headers.to_string(), body]),
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn win_a_deal(cortex: &Cortex, token: &str, company: &str) -> String {
    let company = cortex
        .post("/api/crm/companies", token, &json!({"name": company}))
        .await
        .expect(201)
        .body;
    let deal = cortex
        .post(
            "/api/crm/deals",
            token,
            &json!({"name": "Signed", "company_id": company["id"], "amount": "9.99"}),
        )
        .await
        .expect(201)
        .body;
    let id = deal["id"].as_str().unwrap().to_owned();
    cortex
        .post(&format!("/api/crm/deals/{id}/win"), token, &json!({}))
        .await
        .expect(200);
    id
}

fn work(allow_private: bool) -> cortex::server::Work {
    cortex::server::Work {
        workers: 4,
        lease: 30,
        webhooks: cortex::webhooks::WebhookSettings {
            failure_limit: 2,
            allow_private,
            timeout: Duration::from_secs(5),
        },
        ..Default::default()
    }
}

fn start(
    cortex: &Cortex,
    allow_private: bool,
) -> (
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let running = cortex::server::start_workers(work(allow_private), &cortex.db, &stopping);
    (stop, running)
}

async fn stop(
    (stop, running): (
        tokio::sync::watch::Sender<bool>,
        Vec<tokio::task::JoinHandle<()>>,
    ),
) {
    let _ = stop.send(true);
    for task in running {
        task.await.unwrap();
    }
}

async fn deliveries(cortex: &Cortex, token: &str, webhook: &str) -> Vec<Value> {
    let reply: Reply = cortex
        .get(
            &format!("/api/cortex/webhook-deliveries?webhook_id=eq.{webhook}&sort=at"),
            token,
        )
        .await
        .expect(200);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

async fn webhooks_deliver_each_event_once_signed_and_give_up_on_a_failing_receiver(
    backend: Backend,
) {
    let cortex = Cortex::start(backend).await;
    let (a, b) = (
        cortex.tenant("hooks-a").await,
        cortex.tenant("hooks-b").await,
    );
    let (_, alice) = cortex.user("alice@hooks.example", a, &["admin"]).await;
    let (_, bob) = cortex.user("bob@hooks.example", b, &["admin"]).await;
    let (_, member) = cortex.user("member@hooks.example", a, &["member"]).await;
    let received: Received = Arc::default();
    let base = receiver(received.clone()).await;

    let hook = cortex
        .post(
            "/api/cortex/webhooks",
            &alice,
            &json!({"url": format!("{base}/ok"), "events": ["crm.deal_won"]}),
        )
        .await
        .expect(201)
        .body;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let failing = cortex
        .post(
            "/api/cortex/webhooks",
            &alice,
            &json!({"url": format!("{base}/fail"), "events": ["crm.*"], "description": "broken"}),
        )
        .await
        .expect(201)
        .body;
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    // Another tenant sees none of them, and a member of the tenant may not manage them.
    let seen = cortex.get("/api/cortex/webhooks", &bob).await.expect(200);
    assert_eq!(seen.body["items"], json!([]), "{}", seen.text);
    cortex
        .post(
            "/api/cortex/webhooks",
            &member,
            &json!({"url": format!("{base}/ok"), "events": ["*"]}),
        )
        .await
        .expect(403);

    let deal = win_a_deal(&cortex, &alice, "Hooked").await;
    let workers = start(&cortex, true);
    let delivered = until("the delivery", async || {
        let got = received.lock().unwrap();
        got.iter().find(|(path, ..)| path == "/ok").cloned()
    })
    .await;
    let disabled = until("the failing webhook disabled", async || {
        let reply = cortex
            .get(&format!("/api/cortex/webhooks/{failing_id}"), &alice)
            .await
            .expect(200);
        (reply.body["enabled"] == false).then_some(reply.body)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop(workers).await;

    // Once, signed under the webhook's secret, as verified by the reference implementation.
    let ok: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, ..)| path == "/ok")
        .cloned()
        .collect();
    assert_eq!(ok.len(), 1, "delivered once: {ok:?}");
    let (_, headers, body) = delivered;
    let payload = verified(&secret, &headers, &body);
    assert_eq!(payload["type"], "crm.deal_won");
    assert_eq!(payload["tenant"], a.to_string());
    assert_eq!(payload["data"]["deal_id"], deal);
    assert_eq!(headers["webhook-id"], payload["id"]);
    let tampered = body.replace("9.99", "99.99");
    assert_ne!(tampered, body);
    let refused = std::process::Command::new("node")
        .current_dir(tools::repo_root())
        .args([
            "-e",
            "const { Webhook } = require('standardwebhooks'); const [s, h, b] = process.argv.slice(1); new Webhook(s).verify(b, JSON.parse(h));",
            &secret,
            &headers.to_string(),
            &tampered,
        ])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a changed body fails verification"
    );

    let attempts = deliveries(&cortex, &alice, &hook_id).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (
            &attempts[0]["outcome"],
            &attempts[0]["status"],
            &attempts[0]["event_type"]
        ),
        (&json!("delivered"), &json!(204), &json!("crm.deal_won"))
    );
    assert!(
        deliveries(&cortex, &bob, &hook_id).await.is_empty(),
        "another tenant sees no attempt"
    );

    // The failing receiver: each attempt recorded, then the webhook disabled with the reason.
    let failed = deliveries(&cortex, &alice, &failing_id).await;
    assert!(failed.len() >= 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|d| d["outcome"] == "failed" && d["status"] == 500),
        "{failed:?}"
    );
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("2 failed deliveries"), "{reason}");
    let told: Vec<_> = events::list(&cortex.db, Some("cortex"), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "cortex.webhook_disabled")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0].tenant, &told[0].data["webhook_id"]),
        (a, &json!(failing_id))
    );
    // An operator sees the dead letters on the jobs page, and runs one again from there.
    let operator = browser();
    cortex
        .sign_in(&operator, common::ADMIN_EMAIL, common::ADMIN_PASSWORD)
        .await
        .expect(303);
    let html = page(&cortex, &operator, "/admin/jobs?state=discarded")
        .await
        .expect(200)
        .text;
    assert!(
        html.contains("webhook_delivery") && html.contains("Retry"),
        "{html}"
    );
    let dead = jobs::recent(&cortex.db, Some(jobs::State::Discarded), 10)
        .await
        .unwrap();
    let letter = dead
        .iter()
        .find(|j| j.kind == "webhook_delivery")
        .expect("a discarded delivery");
    assert!(
        letter
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("500"),
        "{letter:?}"
    );
    let csrf = hidden(&html, "csrf").expect("the form's token");
    submit(
        &cortex,
        &operator,
        &format!("/admin/jobs/cortex/{}/retry", letter.id),
        &[("csrf", &csrf)],
    )
    .await
    .expect(303);
    let again = jobs::list(&cortex.db, "cortex").await.unwrap();
    assert_eq!(
        again
            .iter()
            .find(|j| j.id == letter.id)
            .map(|j| j.state.as_str()),
        Some("available"),
        "retried"
    );
    // A delivered event is sent again from the same page ("run again"), with the same id.
    let sent = jobs::list(&cortex.db, "cortex")
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.kind == "webhook_delivery" && j.payload["webhook_id"] == hook_id.as_str())
        .expect("the delivery job");
    assert_eq!(sent.state, "completed");
    submit(
        &cortex,
        &operator,
        &format!("/admin/jobs/cortex/{}/run-again", sent.id),
        &[("csrf", &csrf)],
    )
    .await
    .expect(303);
    let workers = start(&cortex, true);
    let again = until("the redelivery", async || {
        let got = received.lock().unwrap();
        let ok: Vec<_> = got
            .iter()
            .filter(|(path, ..)| path == "/ok")
            .cloned()
            .collect();
        (ok.len() == 2).then_some(ok)
    })
    .await;
    stop(workers).await;
    assert_eq!(
        again[1].1["webhook-id"], again[0].1["webhook-id"],
        "the same event id"
    );
    assert_eq!(deliveries(&cortex, &alice, &hook_id).await.len(), 2);

    // The tenant's administrator sends it once more from their Webhooks page; what is not
    // theirs to send, or cannot be sent, is refused first.
    let event_id = again[0].1["webhook-id"].as_str().unwrap().to_owned();
    let resend = async |token: &str, hook: &str, body: Value| {
        cortex
            .post(
                &format!("/api/cortex/webhooks/{hook}/redeliver"),
                token,
                &body,
            )
            .await
    };
    resend(&member, &hook_id, json!({"event_id": event_id}))
        .await
        .expect(403);
    resend(&bob, &hook_id, json!({"event_id": event_id}))
        .await
        .expect(404);
    resend(
        &alice,
        &hook_id,
        json!({"event_id": prefiq_runtime::deps::uuid::Uuid::now_v7()}),
    )
    .await
    .expect(404);
    let disabled_hook = resend(&alice, &failing_id, json!({"event_id": event_id}))
        .await
        .expect(409);
    assert!(
        disabled_hook.text.contains("disabled"),
        "{}",
        disabled_hook.text
    );
    resend(&alice, &hook_id, json!({"event": "nope"}))
        .await
        .expect(400);
    let ui = browser();
    cortex
        .sign_in(&ui, "alice@hooks.example", common::ADMIN_PASSWORD)
        .await
        .expect(303);
    let listing = page(&cortex, &ui, "/admin/webhooks").await.expect(200).text;
    assert!(
        listing.contains(&format!("{base}/ok"))
            && listing.contains("Send again")
            && listing.contains("<strong>disabled</strong>"),
        "{listing}"
    );
    let member_ui = browser();
    cortex
        .sign_in(&member_ui, "member@hooks.example", common::ADMIN_PASSWORD)
        .await
        .expect(303);
    page(&cortex, &member_ui, "/admin/webhooks")
        .await
        .expect(403);
    let csrf = hidden(&listing, "csrf").expect("the form's token");
    let queued = submit(
        &cortex,
        &ui,
        &format!("/admin/webhooks/{hook_id}/redeliver"),
        &[("csrf", &csrf), ("event_id", &event_id)],
    )
    .await
    .expect(200);
    assert!(queued.text.contains("on its way again"), "{}", queued.text);
    let workers = start(&cortex, true);
    let thrice = until("the tenant's redelivery", async || {
        let got = received.lock().unwrap();
        let ok: Vec<_> = got
            .iter()
            .filter(|(path, ..)| path == "/ok")
            .cloned()
            .collect();
        (ok.len() == 3).then_some(ok)
    })
    .await;
    stop(workers).await;
    assert_eq!(
        thrice[2].1["webhook-id"],
        json!(event_id),
        "the same event id again"
    );
    assert_eq!(deliveries(&cortex, &alice, &hook_id).await.len(), 3);
    // Enabling it again clears its failures; the server's members are not the client's.
    let enabled = cortex
        .call(
            reqwest::Method::PATCH,
            &format!("/api/cortex/webhooks/{failing_id}"),
            &alice,
            Some(&json!({"enabled": true, "failures": 0})),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        (&enabled["failures"], &enabled["disabled_reason"]),
        (&json!(0), &Value::Null)
    );

    // Without the setting, a loopback receiver is refused before anything is sent.
    cortex
        .call(
            reqwest::Method::DELETE,
            &format!("/api/cortex/webhooks/{failing_id}"),
            &alice,
            None,
            None,
        )
        .await
        .expect(204);
    let before = received.lock().unwrap().len();
    win_a_deal(&cortex, &alice, "Hooked again").await;
    let workers = start(&cortex, false);
    let refused = until("the refused attempt", async || {
        let attempts = deliveries(&cortex, &alice, &hook_id).await;
        attempts.iter().find(|d| d["outcome"] == "refused").cloned()
    })
    .await;
    stop(workers).await;
    assert!(
        refused["response"]
            .as_str()
            .unwrap()
            .contains("a loopback address"),
        "{refused}"
    );
    assert_eq!(received.lock().unwrap().len(), before, "nothing was sent");
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_webhooks_deliver_each_event_once_signed_and_give_up_on_a_failing_receiver() {
    webhooks_deliver_each_event_once_signed_and_give_up_on_a_failing_receiver(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_webhooks_deliver_each_event_once_signed_and_give_up_on_a_failing_receiver() {
    webhooks_deliver_each_event_once_signed_and_give_up_on_a_failing_receiver(Backend::Postgres)
        .await;
}
