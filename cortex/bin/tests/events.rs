//! Events across apps under Cortex: the LMS subscribes to the CRM's `deal_won` (through the
//! CRM's types crate, never its tables), and Cortex's one dispatcher delivers each event to it
//! as a job in the tenant the deal was won in; a win refused half-way publishes nothing.

use std::time::{Duration, Instant};

use prefiq_runtime::events;
use prefiq_runtime::jobs;
use prefiq_testkit::Backend;
use serde_json::{Value, json};

use crate::common::Cortex;

/// Makes a company and a deal named `name` as the caller of `token`; the deal's id.
async fn a_deal(cortex: &Cortex, token: &str, name: &str) -> String {
    let company = cortex
        .post(
            "/api/crm/companies",
            token,
            &json!({"name": format!("Events Co {}", name.len())}),
        )
        .await
        .expect(201)
        .body;
    let deal = cortex
        .post(
            "/api/crm/deals",
            token,
            &json!({"name": name, "company_id": company["id"], "amount": "1250.50"}),
        )
        .await
        .expect(201)
        .body;
    deal["id"].as_str().unwrap().to_owned()
}

async fn courses(cortex: &Cortex, token: &str, code: &str) -> Vec<Value> {
    let reply = cortex
        .get(&format!("/api/lms/courses?code=eq.{code}"), token)
        .await
        .expect(200);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_won_crm_deal_prepares_an_lms_course_in_its_tenant(backend: Backend) {
    let cortex = Cortex::start(backend).await;
    let (a, b) = (
        cortex.tenant("events-a").await,
        cortex.tenant("events-b").await,
    );
    let (_, alice) = cortex.user("alice@events.example", a, &["admin"]).await;
    let (_, bob) = cortex.user("bob@events.example", b, &["admin"]).await;

    let deal = a_deal(&cortex, &alice, "Harbour expansion").await;
    cortex
        .post(&format!("/api/crm/deals/{deal}/win"), &alice, &json!({}))
        .await
        .expect(200);
    // A win refused half-way (its note makes an activity subject longer than 200 characters)
    // publishes nothing.
    let refused = a_deal(&cortex, &alice, &"n".repeat(200)).await;
    cortex
        .post(
            &format!("/api/crm/deals/{refused}/win"),
            &alice,
            &json!({"note": "Signed"}),
        )
        .await
        .expect(409);

    let published = events::list(&cortex.db, Some("crm"), 100).await.unwrap();
    let won: Vec<_> = published
        .iter()
        .filter(|e| e.event_type == "crm.deal_won")
        .collect();
    assert_eq!(won.len(), 1, "one win published: {published:#?}");
    assert_eq!(won[0].tenant, a);
    assert_eq!(won[0].data["deal_id"], deal.as_str());
    assert_eq!(won[0].data["amount"], "1250.50");
    // Every generated write published its entity's event too, in the writer's tenant.
    let updated: Vec<_> = published
        .iter()
        .filter(|e| e.event_type == "crm.deal.updated" && e.subject.as_deref() == Some(&deal))
        .collect();
    assert_eq!(updated.len(), 1, "{published:#?}");
    assert_eq!(updated[0].data["before"]["stage"], "lead");
    assert_eq!(updated[0].data["after"]["stage"], "won");
    assert!(
        published.iter().all(|e| e.tenant == a),
        "every event is tenant A's"
    );

    let code = app_lms::services::onboarding_code(&deal.parse().unwrap());
    assert!(
        courses(&cortex, &alice, &code).await.is_empty(),
        "no worker ran yet"
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let running = cortex::server::start_workers(
        cortex::server::Work {
            workers: 2,
            lease: 30,
            webhooks: Default::default(),
            ..Default::default()
        },
        &cortex.db,
        &stopping,
    );
    let start = Instant::now();
    let found = loop {
        let found = courses(&cortex, &alice, &code).await;
        if !found.is_empty() || start.elapsed() > Duration::from_secs(20) {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["title"], "Onboarding: Harbour expansion");
    assert_eq!(found[0]["published"], false);
    assert!(
        courses(&cortex, &bob, &code).await.is_empty(),
        "another tenant sees none of it"
    );
    // One delivery, completed; dispatching again delivers nothing more.
    let start = Instant::now();
    let delivered = loop {
        let delivered: Vec<_> = jobs::list(&cortex.db, "lms")
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == "event:offer_onboarding")
            .collect();
        if delivered.iter().all(|j| j.state == "completed") || start.elapsed().as_secs() > 10 {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(
        (delivered[0].state.as_str(), delivered[0].tenant),
        ("completed", a)
    );
    let _ = stop.send(true);
    for task in running {
        task.await.unwrap();
    }
    // Each app's AsyncAPI document is served beside its OpenAPI document, to anyone, as
    // committed (the contract tests run @asyncapi/parser on those files).
    for app in ["cortex", "crm", "lms"] {
        let served = cortex
            .get(&format!("/api/{app}/asyncapi.json"), "")
            .await
            .expect(200)
            .body;
        let path = prefiq_testkit::tools::repo_root().join(if app == "cortex" {
            "cortex/core/asyncapi.json".to_owned()
        } else {
            format!("apps/{app}/core/asyncapi.json")
        });
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(served, committed, "{app}");
        assert_eq!(served["asyncapi"], "3.0.0", "{app}");
    }
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_crm_deal_prepares_an_lms_course_in_its_tenant_on_sqlite() {
    a_won_crm_deal_prepares_an_lms_course_in_its_tenant(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_crm_deal_prepares_an_lms_course_in_its_tenant_on_postgres() {
    a_won_crm_deal_prepares_an_lms_course_in_its_tenant(Backend::Postgres).await;
}
