//! Setting a password from a one-time link: asking for a reset link (`/password/forgot`),
//! and choosing the password the link (an invitation's or a reset's) lets one set
//! (`/password?token=…`). Neither needs a session; both carry the sign-in form's anti-forgery
//! cookie. Whether an e-mail has an account is never told.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use prefiq_runtime::Principal;
use prefiq_runtime::jobs;

use crate::identity;
use crate::notifications::{self, Purpose, SendPasswordLink};

use super::{
    LOGIN_CSRF_COOKIE, Shared, cookie, cortex_user_table, parse_form, query_param, render,
    set_cookie,
};

/// Reset links one account is sent in an hour, at most.
const RESETS_PER_HOUR: i64 = 3;

#[derive(Template, Default)]
#[template(path = "password.html")]
struct PasswordPage {
    title: &'static str,
    csrf: String,
    /// The link's secret: the form to choose a password, when not empty.
    token: String,
    /// The form to ask for a link.
    asking: bool,
    notice: String,
    error: String,
}

/// `page` with a new anti-forgery token, as `status`.
fn respond(admin: &Shared, status: StatusCode, mut page: PasswordPage) -> Response {
    let csrf = identity::new_secret();
    page.csrf = csrf.clone();
    let mut response = render(&page);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, admin.production),
    );
    // The page's address may hold the link's secret: never cached.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn field(form: &std::collections::BTreeMap<String, Vec<String>>, name: &str) -> String {
    form.get(name)
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default()
}

fn forged(headers: &HeaderMap, form: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    let expected = cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    expected.is_empty() || !identity::same(&expected, &field(form, "csrf"))
}

const EXPIRED: &str = "This link has expired or was used already. Ask for a new one below.";

pub(super) async fn forgot_page(State(admin): State<Shared>) -> Response {
    let error = if admin.notifier.mails() {
        String::new()
    } else {
        "Cortex sends no e-mail here: ask an administrator to set a new password for you.".into()
    };
    respond(
        &admin,
        StatusCode::OK,
        PasswordPage {
            title: "Forgot your password?",
            asking: admin.notifier.mails(),
            error,
            ..Default::default()
        },
    )
}

pub(super) async fn forgot(
    State(admin): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let asking = |status, notice: &str, error: &str| {
        respond(
            &admin,
            status,
            PasswordPage {
                title: "Forgot your password?",
                asking: error.is_empty() || status == StatusCode::FORBIDDEN,
                notice: notice.to_owned(),
                error: error.to_owned(),
                ..Default::default()
            },
        )
    };
    if forged(&headers, &form) {
        return asking(
            StatusCode::FORBIDDEN,
            "",
            "The form expired or did not come from this site; try again.",
        );
    }
    if !admin.notifier.mails() {
        return asking(
            StatusCode::CONFLICT,
            "",
            "Cortex sends no e-mail here: ask an administrator to set a new password for you.",
        );
    }
    let email = field(&form, "email");
    if let Err(error) = send_reset(&admin, email.trim()).await {
        tracing::error!(%error, "cannot send a password reset link");
        return asking(
            StatusCode::SERVICE_UNAVAILABLE,
            "",
            "The server cannot send a link right now; try again later.",
        );
    }
    // The same answer whether the e-mail has an account or not.
    asking(
        StatusCode::OK,
        "If an account has this e-mail, a link to choose a new password is on its way. It works once, for an hour.",
        "",
    )
}

/// Enqueues a reset link for the active user with `email`, unless they were sent enough.
async fn send_reset(admin: &Shared, email: &str) -> Result<(), prefiq_runtime::db::DbError> {
    let mut tx = identity::read(&admin.db).await?;
    let found = identity::user_by_email(&mut tx, email).await?;
    let Some((user, _)) = found.filter(|(u, _)| u.active) else {
        tx.end_read();
        return Ok(());
    };
    let sent = notifications::recent_resets(&mut tx, user.id).await?;
    tx.end_read();
    if sent >= RESETS_PER_HOUR {
        return Ok(());
    }
    // In the user's tenant, so that the e-mail carries its name; one waits at a time.
    let mut tx = admin
        .db
        .begin(&Arc::new(Principal::system(user.tenant)))
        .await?;
    let job = SendPasswordLink {
        user_id: user.id,
        purpose: Purpose::Reset,
        inviter: None,
    };
    let options = jobs::Options {
        unique_key: Some(format!("password_reset:{}", user.id)),
        ..jobs::Options::default()
    };
    jobs::enqueue_with(&mut tx, "cortex", &job, options).await?;
    tx.commit().await
}

pub(super) async fn choose_page(
    State(admin): State<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let token = query_param(&query, "token").unwrap_or_default();
    let valid = match identity::read(&admin.db).await {
        Ok(mut tx) => {
            let user = notifications::link_user(&mut tx, &token).await;
            tx.end_read();
            user.ok().flatten().is_some()
        }
        Err(_) => false,
    };
    if !valid {
        return expired(&admin);
    }
    respond(
        &admin,
        StatusCode::OK,
        PasswordPage {
            title: "Choose your password",
            token,
            ..Default::default()
        },
    )
}

fn expired(admin: &Shared) -> Response {
    respond(
        admin,
        StatusCode::GONE,
        PasswordPage {
            title: "Forgot your password?",
            asking: admin.notifier.mails(),
            error: EXPIRED.into(),
            ..Default::default()
        },
    )
}

pub(super) async fn choose(
    State(admin): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let token = field(&form, "token");
    let again = |status, error: &str| {
        respond(
            &admin,
            status,
            PasswordPage {
                title: "Choose your password",
                token: token.clone(),
                error: error.to_owned(),
                ..Default::default()
            },
        )
    };
    if forged(&headers, &form) {
        return again(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site; try again.",
        );
    }
    let password = field(&form, "password");
    if password != field(&form, "confirm") {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords differ.",
        );
    }
    if let Err(why) = identity::check_new_password(&password) {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Choose another: {why}."),
        );
    }
    match set_from_link(&admin, &token, &password).await {
        Ok(true) => respond(
            &admin,
            StatusCode::OK,
            PasswordPage {
                title: "Your password is set",
                notice: "Sign in with it now. Every other session of yours has ended.".into(),
                ..Default::default()
            },
        ),
        Ok(false) => expired(&admin),
        Err(error) => {
            tracing::error!(%error, "cannot set a password from a link");
            again(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot set it right now; try again.",
            )
        }
    }
}

/// Uses the link and sets the password it is for, ending the user's sessions, tokens and other
/// links, with an audit entry, all or nothing; false when the link no longer works.
async fn set_from_link(admin: &Shared, token: &str, password: &str) -> Result<bool, String> {
    let mut tx = identity::write(&admin.db)
        .await
        .map_err(|e| e.to_string())?;
    let Some(user) = notifications::use_link(&mut tx, token)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    identity::set_password(&mut tx, user, password).await?;
    identity::end_credentials(
        &mut tx,
        user,
        identity::Ending {
            keep_session: None,
            personal_tokens: true,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let tenant = crate::generated::user::find(&mut tx, &user)
        .await
        .map_err(|e| e.to_string())?
        .map(|u| u.tenant_id)
        .unwrap_or(prefiq_runtime::auth::DEFAULT_TENANT);
    let changes = serde_json::json!({"password": {"from": prefiq_runtime::audit::REDACTED, "to": prefiq_runtime::audit::REDACTED}});
    prefiq_runtime::audit::record_in(
        &mut tx,
        tenant,
        cortex_user_table(),
        prefiq_runtime::audit::Action::Update,
        &user.to_string(),
        changes,
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(true)
}
