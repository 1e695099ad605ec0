//! The admin UI in a real browser: cortex/e2e/admin.e2e.mjs drives Debian's headless Chromium
//! with playwright-core against a running Cortex. Screenshots are kept under
//! target/e2e/cortex-admin/ as test artifacts.

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Cortex};
use prefiq_testkit::Backend;
use prefiq_testkit::tools::repo_root;
use serde_json::json;

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
    let (_, admin_a) = cortex.user("admin-a@example.com", a, &["admin"]).await;
    let (_, admin_b) = cortex.user("admin-b@example.com", b, &["admin"]).await;
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
        7,
        "every step passed:\n{text}"
    );
    let kept = std::fs::read_dir(&screenshots)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        kept,
        6,
        "the screenshots are kept in {}",
        screenshots.display()
    );
    eprintln!("{text}screenshots: {}", screenshots.display());
    cortex.stop().await;
}
