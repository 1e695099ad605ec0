//! The visitor's own account: personal access tokens and the password.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use prefiq_runtime::deps::uuid::Uuid;
use serde_json::Value;

use crate::identity;

use super::{
    Admin, Layout, SESSION_COOKIE, Shared, SignedForm, Visitor, cookie, cortex_user_table, layout,
    message_page, not_found, render,
};

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<identity::PersonalToken>,
    created: String,
    csrf: String,
    error: String,
}

async fn tokens_page(admin: &Admin, visitor: &Visitor, created: String, error: String) -> Response {
    let user = visitor.session.user.id;
    let tokens = identity::as_server(&admin.db, async |tx| {
        identity::personal_tokens(tx, user).await
    })
    .await
    .unwrap_or_default();
    render(&TokensPage {
        layout: layout(admin, visitor, "Personal access tokens"),
        tokens,
        created,
        csrf: visitor.session.csrf.clone(),
        error,
    })
}

pub(super) async fn tokens(State(admin): State<Shared>, visitor: Visitor) -> Response {
    tokens_page(&admin, &visitor, String::new(), String::new()).await
}

pub(super) async fn create_token(
    State(admin): State<Shared>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let name = form
        .get("name")
        .and_then(|v| v.first())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let days = form
        .get("days")
        .and_then(|v| v.first())
        .and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| (1..=3650).contains(d));
    if name.is_empty() || name.chars().count() > 100 {
        return tokens_page(
            &admin,
            &visitor,
            String::new(),
            "Name the token (1 to 100 characters).".into(),
        )
        .await;
    }
    let (user, tenant) = (visitor.session.user.id, visitor.session.tenant);
    let made = identity::as_server(&admin.db, async |tx| {
        identity::create_personal_token(tx, user, tenant, &name, days.map(chrono::Duration::days))
            .await
    })
    .await;
    match made {
        Ok(token) => tokens_page(&admin, &visitor, token, String::new()).await,
        Err(_) => {
            tokens_page(
                &admin,
                &visitor,
                String::new(),
                "The token could not be made; try again.".into(),
            )
            .await
        }
    }
}

pub(super) async fn revoke_token(
    State(admin): State<Shared>,
    Path(id): Path<Uuid>,
    SignedForm { visitor, .. }: SignedForm,
) -> Response {
    let user = visitor.session.user.id;
    let _ = identity::as_server(&admin.db, async |tx| {
        identity::revoke_personal_token(tx, user, id).await
    })
    .await;
    Redirect::to("/admin/tokens").into_response()
}

pub(super) async fn set_password(
    State(admin): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    // The user as the visitor may see them: a tenant's administrator reaches only their own
    // tenant's users, and never a platform operator's password.
    let target = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("/api/cortex/users/{id}"),
            None,
            None,
        )
        .await;
    if !target.status.is_success() {
        return not_found();
    }
    let operator = target.body["operator"] == Value::Bool(true);
    if !admin.may(&visitor.principal, "cortex", "User", "update")
        || (operator && !visitor.principal.operator)
    {
        return (
            StatusCode::FORBIDDEN,
            message_page(
                "Forbidden",
                if operator {
                    "A platform operator's password is set by a platform operator."
                } else {
                    "Setting a password needs the permission cortex.user.update."
                },
            ),
        )
            .into_response();
    }
    let password = form
        .get("password")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let own = id == visitor.session.user.id;
    let tenant: Option<Uuid> = target.body["tenant_id"]
        .as_str()
        .and_then(|t| t.parse().ok());
    let current = cookie(&headers, SESSION_COOKIE);
    // The password, the end of the user's other credentials and the audit entries commit
    // together or not at all.
    let result: Result<(), String> = async {
        let mut tx = admin
            .db
            .begin(&visitor.principal)
            .await
            .map_err(|e| e.to_string())?;
        identity::set_password(&mut tx, id, &password).await?;
        identity::end_credentials(
            &mut tx,
            id,
            identity::Ending {
                keep_session: if own { current.as_deref() } else { None },
                personal_tokens: !own,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        // Recorded like any other change (never the password or its hash), in the user's
        // tenant's log too when a platform operator set it from another.
        let changes = serde_json::json!({"password": {"from": prefiq_runtime::audit::REDACTED, "to": prefiq_runtime::audit::REDACTED}});
        let table = cortex_user_table();
        let action = prefiq_runtime::audit::Action::Update;
        if let Some(tenant) = tenant.filter(|t| *t != visitor.principal.tenant) {
            prefiq_runtime::audit::record_in(&mut tx, tenant, table, action, &id.to_string(), changes.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        prefiq_runtime::audit::record(&mut tx, table, action, &id.to_string(), changes)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/admin/cortex/users/{id}")).into_response(),
        Err(why) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            message_page("Password not set", &why),
        )
            .into_response(),
    }
}
