//! The admin UI over HTTP, without a browser: sign-in and sessions, forms made from the
//! schemas with errors next to their fields, anti-forgery tokens, escaping of hostile values,
//! conflicts explained, the security headers, and the merged document and reference.

use crate::common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Cortex, browser, hidden, page, read, submit};
use prefiq_testkit::Backend;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ui_works_without_javascript_and_safely() {
    let cortex = Cortex::start(Backend::Sqlite).await;
    let client = browser();
    // Signed out: to the sign-in page, which comes back.
    let first = page(&cortex, &client, "/admin/crm/contacts").await;
    assert_eq!(first.status, 303);
    assert_eq!(
        first.headers["location"],
        "/login?next=%2Fadmin%2Fcrm%2Fcontacts"
    );
    // A forged sign-in form (no anti-forgery cookie) is refused.
    let forged = read(
        reqwest::Client::new()
            .post(format!("{}/login", cortex.base))
            .form(&[
                ("csrf", "x"),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forged.status, 403);
    let wrong = cortex
        .sign_in(&client, ADMIN_EMAIL, "not the password")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("The e-mail or the password is wrong."));
    let signed = cortex.sign_in(&client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(signed.status, 303);
    let cookie = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("prefiq_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "Secure only in production (plain http here)"
    );
    // The dashboard, with the security headers.
    let dashboard = page(&cortex, &client, "/admin").await;
    assert_eq!(dashboard.status, 200);
    let csp = dashboard.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(dashboard.headers["x-content-type-options"], "nosniff");
    for text in ["crm", "lms", "Companies", "Recent activity"] {
        assert!(dashboard.text.contains(text), "the dashboard shows {text}");
    }
    // The audit log is a read-only entity: listed and shown like any other, with no forms.
    let log = page(&cortex, &client, "/admin/cortex/audit?sort=-at").await;
    assert_eq!(log.status, 200, "{}", log.text);
    assert!(log.text.contains("Credential"), "its columns are listed");
    assert!(
        log.text.contains("Entity id"),
        "only a reference is named after its target"
    );
    assert!(
        !log.text.contains("/admin/cortex/audit/new"),
        "no New button"
    );
    for path in ["/admin/cortex/audit/new", "/admin/cortex/audit/x/edit"] {
        assert_eq!(page(&cortex, &client, path).await.status, 404, "{path}");
    }
    // A form made from the schema: inputs typed by format, selects for enums and references.
    let company = cortex
        .post(
            "/api/crm/companies",
            &cortex.admin_token,
            &json!({"name": "Form Co"}),
        )
        .await
        .expect(201)
        .body;
    let form = page(&cortex, &client, "/admin/crm/contacts/new").await;
    assert_eq!(form.status, 200);
    assert!(
        form.text.contains(r#"name="email" type="email""#),
        "e-mail input"
    );
    assert!(
        form.text
            .contains(r#"<select id="f-company_id" name="company_id""#),
        "a reference is a select"
    );
    assert!(
        form.text.contains("Form Co"),
        "its options are the rows it may name"
    );
    let csrf = hidden(&form.text, "csrf").unwrap();
    let company_id = company["id"].as_str().unwrap();
    // Without the anti-forgery token: refused.
    let no_token = submit(
        &cortex,
        &client,
        "/admin/crm/contacts/new",
        &[
            ("first_name", "A"),
            ("last_name", "B"),
            ("email", "a@example.com"),
            ("company_id", company_id),
        ],
    )
    .await;
    assert_eq!(no_token.status, 403);
    // A validation error is shown next to its field, with what was typed kept.
    let invalid = submit(
        &cortex,
        &client,
        "/admin/crm/contacts/new",
        &[
            ("csrf", &csrf),
            ("first_name", "Grace"),
            ("last_name", "Hopper"),
            ("email", "not-an-email"),
            ("company_id", company_id),
        ],
    )
    .await;
    assert_eq!(invalid.status, 422);
    assert!(
        invalid.text.contains(r#"id="error-email""#),
        "the error is next to the e-mail field"
    );
    assert!(
        invalid.text.contains(r#"value="Grace""#),
        "what was typed is kept"
    );
    let created = submit(
        &cortex,
        &client,
        "/admin/crm/contacts/new",
        &[
            ("csrf", &csrf),
            ("first_name", "Grace"),
            ("last_name", "Hopper"),
            ("email", "grace@example.com"),
            ("company_id", company_id),
        ],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let detail_path = created.headers["location"].to_str().unwrap().to_owned();
    let detail = page(&cortex, &client, &detail_path).await;
    assert!(detail.text.contains("grace@example.com"));
    assert!(
        detail.text.contains("create"),
        "the history shows the audit entry"
    );
    // Hostile values are shown as text, never run.
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    cortex
        .post(
            "/api/crm/companies",
            &cortex.admin_token,
            &json!({"name": hostile}),
        )
        .await
        .expect(201);
    let list = page(&cortex, &client, "/admin/crm/companies").await;
    assert!(
        !list.text.contains("<script>alert"),
        "no script tag from data"
    );
    assert!(!list.text.contains("<img src=x"), "no element from data");
    assert!(
        list.text
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "shown as text"
    );
    let search = page(
        &cortex,
        &client,
        "/admin/crm/companies?field=name&op=like&value=%3Cscript%3E*",
    )
    .await;
    assert!(
        search.text.contains("&#60;script&#62;"),
        "the filter value is escaped in the form too"
    );
    assert!(!search.text.contains("value=\"<script>"));
    // A stale edit is refused and explained.
    let id = detail_path.rsplit('/').next().unwrap().to_owned();
    let edit = page(&cortex, &client, &format!("{detail_path}/edit")).await;
    let csrf = hidden(&edit.text, "csrf").unwrap();
    let version = hidden(&edit.text, "version").unwrap();
    cortex
        .call(
            reqwest::Method::PATCH,
            &format!("/api/crm/contacts/{id}"),
            &cortex.admin_token,
            Some(&json!({"last_name": "Hopper-Murray"})),
            None,
        )
        .await
        .expect(200);
    let stale = submit(
        &cortex,
        &client,
        &format!("{detail_path}/edit"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("first_name", "Grace"),
            ("last_name", "H."),
            ("email", "grace@example.com"),
            ("company_id", company_id),
        ],
    )
    .await;
    assert_eq!(stale.status, 412);
    assert!(
        stale.text.contains("Someone changed this record"),
        "the conflict is explained"
    );
    // Signing out ends the session.
    let dashboard = page(&cortex, &client, "/admin").await;
    let csrf = hidden(&dashboard.text, "csrf").unwrap();
    let out = submit(&cortex, &client, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(page(&cortex, &client, "/admin").await.status, 303);
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_merged_document_and_an_offline_reference() {
    let cortex = Cortex::start(Backend::Sqlite).await;
    let document = cortex.get("/openapi.json", "").await.expect(200).body;
    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/api/crm/companies",
        "/api/lms/courses",
        "/api/cortex/users",
        "/api/cortex/audit",
        "/auth/token",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(document["security"], json!([{"bearer": []}]));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every reference resolves.
    let text = document.to_string();
    let mut start = 0;
    while let Some(found) = text[start..].find("\"$ref\":\"#/") {
        let at = start + found + 8;
        let end = text[at..].find('"').unwrap() + at;
        let pointer = &text[at + 1..end];
        assert!(document.pointer(pointer).is_some(), "{pointer} resolves");
        start = end;
    }
    // openapi-spec-validator accepts it.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    prefiq_testkit::tools::run_ok(
        std::process::Command::new(prefiq_testkit::tools::openapi_spec_validator())
            .arg(file.path()),
    );
    let reference = read(reqwest::get(format!("{}/docs", cortex.base)).await.unwrap()).await;
    assert_eq!(reference.status, 200);
    assert!(reference.text.contains("/api/crm/deals/{id}/win"));
    assert!(
        reference.text.contains("crm.winDeal"),
        "permissions are shown"
    );
    for remote in ["src=\"http", "href=\"http", "@import", "cdn"] {
        assert!(
            !reference.text.contains(remote),
            "the reference loads nothing from elsewhere ({remote})"
        );
    }
    cortex.stop().await;
}

/// The path templates of every form the admin UI accepts (`POST` routes), read from its
/// sources, so that a new form cannot escape the test below.
fn posted_routes() -> Vec<String> {
    let mut routes = Vec::new();
    for file in ["src/admin/pages/mod.rs", "src/admin/platform.rs"] {
        let source =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
                .unwrap();
        for chunk in source.split(".route(").skip(1) {
            let call = chunk.split(".route(").next().unwrap_or(chunk);
            let call = call.split(".with_state(").next().unwrap_or(call);
            let path = call.split('"').nth(1).unwrap_or_default();
            if call.contains("post(") && path.starts_with('/') {
                routes.push(path.to_owned());
            }
        }
    }
    routes.sort();
    routes
}

/// Every state-changing form refuses a request without the session's anti-forgery token, or
/// with another, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_refuses_a_missing_or_wrong_anti_forgery_token() {
    let cortex = Cortex::start(Backend::Sqlite).await;
    let client = browser();
    cortex
        .sign_in(&client, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect(303);
    let admin = &cortex.admin_token;
    let organisation = cortex
        .post(
            "/api/cortex/organisations",
            admin,
            &json!({"name": "Untouched"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (user, user_token) = cortex
        .user(
            "forms@example.com",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["member"],
        )
        .await;
    let (client_id, _) = cortex
        .client(
            "untouched",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["viewer"],
            &[],
            false,
        )
        .await;
    let tokens = page(&cortex, &client, "/admin/tokens").await;
    let token_id = tokens
        .text
        .split("/admin/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the administrator's token is listed")
        .to_owned();
    let user = user.to_string();
    let filled = |template: &str| {
        let id = if template.starts_with("/admin/cortex/users/") {
            &user
        } else if template.starts_with("/admin/tokens/") {
            &token_id
        } else if template.starts_with("/admin/clients/") {
            &client_id
        } else {
            &organisation
        };
        template
            .replace("{app}/{plural}", "cortex/organisations")
            .replace("{id}", id)
    };
    let member_grants = || async {
        cortex
            .get(
                "/api/cortex/roles?name=eq.member&tenant_id=eq.00000000-0000-0000-0000-000000000000",
                admin,
            )
            .await
            .expect(200)
            .body["items"][0]["permissions"]
            .clone()
    };
    let grants_before = member_grants().await;
    let routes = posted_routes();
    assert!(routes.len() >= 12, "{routes:?}");
    for template in &routes {
        let path = filled(template);
        for (csrf, why) in [(None, "no token"), (Some("forged"), "another token")] {
            let mut form = vec![
                ("name", "Changed"),
                ("password", "a password nobody asked for"),
                ("tenant", "00000000-0000-0000-0000-000000000000"),
                ("email", ADMIN_EMAIL),
                ("grant", "member|crm.deal.delete"),
                ("version", "1"),
            ];
            if let Some(csrf) = csrf {
                form.push(("csrf", csrf));
            }
            let reply = submit(&cortex, &client, &path, &form).await;
            assert_eq!(reply.status, 403, "POST {path} with {why}: {}", reply.text);
        }
    }
    // Nothing changed: the row, the user's password and token, the client, the session.
    let kept = cortex
        .get(&format!("/api/cortex/organisations/{organisation}"), admin)
        .await
        .expect(200);
    assert_eq!(kept.body["name"], "Untouched");
    assert_eq!(kept.body["version"], 1);
    cortex.get("/api/cortex/me", &user_token).await.expect(200);
    cortex
        .sign_in(&browser(), "forms@example.com", ADMIN_PASSWORD)
        .await
        .expect(303);
    cortex.get("/api/cortex/me", admin).await.expect(200);
    assert_eq!(member_grants().await, grants_before, "no grant changed");
    let clients =
        cortex::identity::as_server(&cortex.db, async |tx| cortex::oauth::clients(tx).await)
            .await
            .unwrap();
    assert!(
        clients
            .iter()
            .any(|c| c.id == client_id && c.revoked_at.is_none())
    );
    assert_eq!(
        page(&cortex, &client, "/admin").await.status,
        200,
        "still signed in"
    );
    cortex.stop().await;
}
