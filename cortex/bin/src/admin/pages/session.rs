//! Signing in and out, and switching the tenant a platform operator acts in.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use prefiq_runtime::deps::uuid::Uuid;

use crate::identity;

use super::{
    LOGIN_CSRF_COOKIE, Peer, SESSION_COOKIE, Shared, SignedForm, cookie, cortex_user_table,
    csrf_ok, forbidden, message_page, parse_form, query_param, render, set_cookie, visitor,
};

/// Where to go after signing in: `next` if it is a path of this site
/// ([`crate::web::local_path`]), `/admin` when there is none; anything else (another origin, or
/// a trick to reach one) is refused with the reason, for [`bad_next`].
fn next_page(next: Option<&str>) -> Result<String, &'static str> {
    match next {
        None | Some("") => Ok("/admin".into()),
        Some(path) => crate::web::local_path(path).map(str::to_owned),
    }
}

/// The 400 page of a refused `next`.
fn bad_next(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        message_page(
            "Cannot sign in",
            &format!(
                "The page to return to after signing in is refused: {why}. Only a path of this site is accepted."
            ),
        ),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: String,
}

pub(super) async fn login_page(State(admin): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let next = match next_page(query_param(&query, "next").as_deref()) {
        Ok(next) => next,
        Err(why) => return bad_next(why),
    };
    let csrf = identity::new_secret();
    let page = LoginPage {
        csrf: csrf.clone(),
        next,
        email: String::new(),
        error: String::new(),
    };
    let mut response = render(&page);
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, admin.production),
    );
    response
}

pub(super) async fn login(
    State(admin): State<Shared>,
    Peer(address): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let field = |name: &str| {
        form.get(name)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    let next = match next_page(Some(&field("next"))) {
        Ok(next) => next,
        Err(why) => return bad_next(why),
    };
    let again = |status: StatusCode, error: &str| {
        let csrf = identity::new_secret();
        let mut response = render(&LoginPage {
            csrf: csrf.clone(),
            next: next.clone(),
            email: field("email"),
            error: error.to_owned(),
        });
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, admin.production),
        );
        response
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !identity::same(&expected, &field("csrf")) {
        return again(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site; sign in again.",
        );
    }
    let max = crate::settings::integer(
        &admin.db,
        prefiq_runtime::auth::DEFAULT_TENANT,
        "login.max-failures",
    )
    .await;
    match identity::sign_in(
        &admin.db,
        &field("email"),
        &field("password"),
        &address,
        max,
    )
    .await
    {
        Ok(user) => {
            let started = identity::as_server(&admin.db, async |tx| {
                identity::start_session(tx, user.id, user.tenant).await
            })
            .await;
            let Ok(secret) = started else {
                return again(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server cannot sign you in right now.",
                );
            };
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &secret,
                    identity::SESSION_HOURS * 3600,
                    admin.production,
                ),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, "", 0, admin.production),
            );
            response
        }
        Err(identity::SignInError::Invalid) => again(
            StatusCode::UNAUTHORIZED,
            "The e-mail or the password is wrong.",
        ),
        Err(identity::SignInError::Throttled(_)) => {
            let mut response = again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins. Wait 15 minutes, then try again.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
            response
        }
    }
}

pub(super) async fn logout(
    State(admin): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Ok(visitor) = visitor(&admin, &headers, "/admin").await {
        if csrf_ok(&visitor.session, &form) {
            if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
                let _ = identity::as_server(&admin.db, async |tx| {
                    identity::end_session(tx, &secret).await
                })
                .await;
            }
        } else {
            return (
                StatusCode::FORBIDDEN,
                message_page("Forbidden", "The form did not come from this site."),
            )
                .into_response();
        }
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, admin.production),
    );
    response
}

/// `POST /admin/tenant`: the signed-in user acts in another tenant they may enter, from now on.
/// Recorded in both tenants' audit logs, in one transaction with the switch.
pub(super) async fn switch_tenant(
    State(admin): State<Shared>,
    headers: HeaderMap,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let wanted: Option<Uuid> = form
        .get("tenant")
        .and_then(|v| v.first())
        .and_then(|t| t.parse().ok());
    let Some(wanted) = wanted.filter(|t| visitor.tenants.iter().any(|(id, _)| id == t)) else {
        return (
            StatusCode::FORBIDDEN,
            message_page(
                "Forbidden",
                "You may not act in that tenant: ask a platform operator to let you in.",
            ),
        )
            .into_response();
    };
    let from = visitor.session.tenant;
    if wanted == from {
        return Redirect::to("/admin").into_response();
    }
    let Some(secret) = cookie(&headers, SESSION_COOKIE) else {
        return forbidden();
    };
    // The entries are the user's; only appending the second one to the other tenant's log
    // needs the platform's right, which this transaction uses for nothing else.
    let recorder = Arc::new(prefiq_runtime::Principal {
        operator: true,
        ..(*visitor.principal).clone()
    });
    let result: Result<(), prefiq_runtime::db::DbError> = async {
        let mut tx = admin.db.begin(&recorder).await?;
        identity::move_session(&mut tx, &secret, wanted).await?;
        let changes = serde_json::json!({"acting_tenant": {"from": from, "to": wanted}});
        let user = visitor.session.user.id.to_string();
        let table = cortex_user_table();
        let action = prefiq_runtime::audit::Action::Update;
        prefiq_runtime::audit::record(&mut tx, table, action, &user, changes.clone()).await?;
        prefiq_runtime::audit::record_in(&mut tx, wanted, table, action, &user, changes).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot switch tenant");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                message_page(
                    "Unavailable",
                    "The tenant could not be switched; try again.",
                ),
            )
                .into_response()
        }
    }
}
