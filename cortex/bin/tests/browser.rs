//! Cortex in a real browser: cortex/e2e/admin.e2e.mjs drives the admin UI, and
//! cortex/e2e/frontend.e2e.mjs the CRM's own frontend served by Cortex at /apps/crm/, signing in
//! with PKCE. Debian's headless Chromium, driven by playwright-core; screenshots are kept under
//! target/e2e/cortex-admin/ and target/e2e/cortex-frontend/ as test artifacts.

use crate::common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Cortex};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::Backend;
use prefiq_testkit::tools::repo_root;
use serde_json::json;

/// Tells `user` of `tenant` that a webhook was disabled (`title`), as the server does.
async fn notify(cortex: &Cortex, user: Uuid, tenant: Uuid, title: &str) {
    let mut tx = cortex
        .db
        .begin(&std::sync::Arc::new(prefiq_runtime::Principal::system(
            tenant,
        )))
        .await
        .unwrap();
    cortex::notifications::notify(
        &mut tx,
        &Default::default(),
        &cortex::notifications::Recipient {
            id: user,
            tenant,
            email: "someone@example.com".into(),
        },
        &cortex::notifications::Notice {
            kind: "webhook_disabled",
            title: title.into(),
            body: Some("disabled after 10 failed deliveries in a row; the last: the receiver answered 500 Internal Server Error".into()),
            link: Some("/admin/cortex/webhooks".into()),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ui_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium package (`apt-get install chromium`; .ci/run does) or set CHROMIUM"
    );
    let playwright = repo_root().join(".ci/node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "run `npm ci --prefix .ci` (cargo xtask test does)"
    );
    let cortex = Cortex::start(Backend::Sqlite).await;
    cortex
        .post(
            "/api/crm/companies",
            &cortex.admin_token,
            &json!({"name": "Analytical Engines"}),
        )
        .await
        .expect(201);
    let a = cortex.tenant("browser-a").await;
    let b = cortex.tenant("browser-b").await;
    let (admin_a_id, admin_a) = cortex.user("admin-a@example.com", a, &["admin"]).await;
    // Something for the bell: a notification of tenant A's administrator.
    notify(
        &cortex,
        admin_a_id,
        a,
        "A webhook to https://receiver.example.com/a-rather-long/path/that-must-wrap-on-a-phone was disabled",
    )
    .await;
    let (_, admin_b) = cortex.user("admin-b@example.com", b, &["admin"]).await;
    // A webhook of tenant A, an event of A's and a failed attempt to deliver it, as the
    // dispatcher and the delivery job record them: what the Webhooks page lists and sends again.
    let hook = cortex
        .post(
            "/api/cortex/webhooks",
            &admin_a,
            &json!({"url": "https://receiver.example.com/hooks/a-rather-long-path/for-the-crm", "events": ["crm.*"]}),
        )
        .await
        .expect(201)
        .body;
    let mut tx = cortex
        .db
        .begin(&std::sync::Arc::new(prefiq_runtime::Principal::system(a)))
        .await
        .unwrap();
    let event = prefiq_runtime::events::publish_raw(
        &mut tx,
        "crm",
        None,
        "crm.deal_won",
        None,
        json!({"deal_id": Uuid::now_v7(), "amount": "10.00"}),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    cortex
        .owner
        .execute(
            cortex.owner.pick(
                "",
                "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, attempt, outcome, status, latency_ms, response, at) \
                 VALUES (?1, ?2, ?3, ?4, 'crm.deal_won', 1, 'failed', 500, 84, 'Internal Server Error: the receiver is down for maintenance', ?5)",
            ),
            vec![
                prefiq_runtime::SqlValue::Uuid(Uuid::now_v7()),
                prefiq_runtime::SqlValue::Uuid(a),
                prefiq_runtime::SqlValue::Uuid(hook["id"].as_str().unwrap().parse().unwrap()),
                prefiq_runtime::SqlValue::Uuid(event),
                prefiq_runtime::SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await
        .unwrap();
    cortex
        .post(
            "/api/crm/companies",
            &admin_a,
            &json!({"name": "Alpha Widgets"}),
        )
        .await
        .expect(201);
    let b_company = cortex
        .post(
            "/api/crm/companies",
            &admin_b,
            &json!({"name": "Beta Confidential"}),
        )
        .await
        .expect(201)
        .body;
    let screenshots = repo_root().join("target/e2e/cortex-admin");
    let _ = std::fs::remove_dir_all(&screenshots);
    let script = repo_root().join("cortex/e2e/admin.e2e.mjs");
    let base = cortex.base.clone();
    let b_id = b_company["id"].as_str().unwrap().to_owned();
    let shots = screenshots.clone();
    let output = tokio::task::spawn_blocking(move || {
        prefiq_testkit::tools::output(
            std::process::Command::new("node")
                .arg(&script)
                .current_dir(repo_root().join(".ci"))
                .env("TOOLS", repo_root().join(".ci/package.json"))
                .env("CHROMIUM", chromium)
                .env("CORTEX_URL", base)
                .env("SCREENSHOTS", &shots)
                .env("ADMIN_EMAIL", ADMIN_EMAIL)
                .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("COMPANY", "Analytical Engines")
                .env("TENANT_A_EMAIL", "admin-a@example.com")
                .env("TENANT_A_PASSWORD", ADMIN_PASSWORD)
                .env("TENANT_A_COMPANY", "Alpha Widgets")
                .env("TENANT_B_COMPANY", "Beta Confidential")
                .env("TENANT_B_COMPANY_ID", b_id),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{text}");
    assert_eq!(
        text.matches("ok - ").count(),
        10,
        "every step passed:\n{text}"
    );
    let kept = std::fs::read_dir(&screenshots)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        kept,
        12,
        "the screenshots are kept in {}",
        screenshots.display()
    );
    eprintln!("{text}screenshots: {}", screenshots.display());
    cortex.stop().await;
}

/// The CRM's and the LMS's frontends, built by Vite and served by Cortex at /apps/<app>/: a user
/// signs in through Cortex's sign-in page (authorization code with PKCE), works with the API
/// under their own token, keeps the session over a reload (the rotated refresh token, in this tab
/// only), signs in to the second app without typing a password again, and signs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_frontend_served_by_cortex_signs_in_with_pkce() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium package (`apt-get install chromium`; .ci/run does) or set CHROMIUM"
    );
    prefiq_testkit::tools::link_node_modules(&repo_root());
    let bundles = tempfile::tempdir().expect("a build folder");
    for app in ["crm", "lms"] {
        prefiq_testkit::tools::run_ok(
            std::process::Command::new(prefiq_testkit::tools::tool("node_modules/.bin/vite"))
                .args(["build", "--logLevel", "warn"])
                .current_dir(repo_root().join("apps").join(app).join("src"))
                .env("PREFIQ_OUT_DIR", bundles.path().join(app)),
        );
    }
    let cortex = Cortex::start_with_ui(Backend::Sqlite, bundles.path().to_path_buf()).await;
    cortex
        .post(
            "/api/crm/companies",
            &cortex.admin_token,
            &json!({"name": "Analytical Engines"}),
        )
        .await
        .expect(201);
    // A notification of the administrator's, for the bell of the app's header.
    let me = cortex
        .get("/api/cortex/me", &cortex.admin_token)
        .await
        .expect(200)
        .body;
    notify(
        &cortex,
        me["user"].as_str().unwrap().parse().unwrap(),
        prefiq_runtime::auth::DEFAULT_TENANT,
        "A webhook to https://hooks.example.com/crm was disabled",
    )
    .await;
    // The bare path is sent on to the page, which carries the strict policy.
    let bare = common::browser()
        .get(format!("{}/apps/crm", cortex.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/apps/crm/");
    let page = common::browser()
        .get(format!("{}/apps/crm/", cortex.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    let screenshots = repo_root().join("target/e2e/cortex-frontend");
    let _ = std::fs::remove_dir_all(&screenshots);
    let script = repo_root().join("cortex/e2e/frontend.e2e.mjs");
    let base = cortex.base.clone();
    let shots = screenshots.clone();
    let output = tokio::task::spawn_blocking(move || {
        prefiq_testkit::tools::output(
            std::process::Command::new("node")
                .arg(&script)
                .current_dir(repo_root().join(".ci"))
                .env("TOOLS", repo_root().join(".ci/package.json"))
                .env("CHROMIUM", chromium)
                .env("CORTEX_URL", base)
                .env("SCREENSHOTS", &shots)
                .env("ADMIN_EMAIL", ADMIN_EMAIL)
                .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("COMPANY", "Analytical Engines")
                .env(
                    "NOTICE",
                    "A webhook to https://hooks.example.com/crm was disabled",
                ),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{text}");
    assert_eq!(
        text.matches("ok - ").count(),
        7,
        "every step passed:\n{text}"
    );
    // The company made in the browser was made by the signed-in administrator, under the access
    // token of the sign-in (not a personal token), and audited.
    let audit = cortex
        .get(
            "/api/cortex/audit?app=eq.crm&limit=100",
            &cortex.admin_token,
        )
        .await
        .expect(200)
        .body;
    let admin = cortex
        .get("/api/cortex/me", &cortex.admin_token)
        .await
        .expect(200)
        .body;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["changes"].to_string().contains("Difference Engines"))
        .unwrap_or_else(|| panic!("the browser's create is in the audit log: {audit}"));
    assert_eq!(entry["actor_user"], admin["user"], "{entry}");
    assert_eq!(entry["credential"], "access-token", "{entry}");
    eprintln!("{text}screenshots: {}", screenshots.display());
    cortex.stop().await;
}
