//! The admin pages: the routes, the layout every page shares, and one module per area.

mod account;
mod audit;
mod dashboard;
mod grants;
mod notifications;
mod password;
mod rows;
mod session;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use prefiq_runtime::catalog::EntityInfo;

use super::forms::{self, Field};
use super::{
    Admin, LOGIN_CSRF_COOKIE, Peer, SESSION_COOKIE, SignedForm, Visitor, cookie, csrf_ok,
    message_page, parse_form, render, set_cookie, visitor,
};

use account::{create_token, revoke_token, set_password, tokens};
use audit::audit;
use dashboard::dashboard;
use grants::{grants, save_grants};
use notifications::{notifications_page, read_all, read_one, save_preferences};
use password::{choose, choose_page, forgot, forgot_page};
use rows::{create, delete, detail, edit_form, list, new_form, update};
use session::{login, login_page, logout, switch_tenant};
use webhooks::{redeliver, webhooks_page};

type Shared = Arc<Admin>;

/// The admin routes: sign-in, and every page under `/admin`.
pub(super) fn routes(admin: Shared) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(choose_page).post(choose))
        .route("/password/forgot", get(forgot_page).post(forgot))
        .route("/admin", get(dashboard))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/assets/{file}", get(asset))
        .route("/admin/audit", get(audit))
        .route("/admin/grants", get(grants).post(save_grants))
        .route("/admin/tenant", post(switch_tenant))
        .route("/admin/notifications", get(notifications_page))
        .route("/admin/notifications/read", post(read_all))
        .route("/admin/notifications/{id}/read", post(read_one))
        .route("/admin/notifications/preferences", post(save_preferences))
        .route("/admin/webhooks", get(webhooks_page))
        .route("/admin/webhooks/{id}/redeliver", post(redeliver))
        .route("/admin/tokens", get(tokens).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/cortex/users/{id}/password", post(set_password))
        .route("/admin/{app}/{plural}", get(list))
        .route("/admin/{app}/{plural}/new", get(new_form).post(create))
        .route("/admin/{app}/{plural}/{id}", get(detail))
        .route(
            "/admin/{app}/{plural}/{id}/edit",
            get(edit_form).post(update),
        )
        .route("/admin/{app}/{plural}/{id}/delete", post(delete))
        .with_state(admin)
}

/// A link in the navigation.
pub(super) struct NavLink {
    /// Where.
    pub href: String,
    /// What.
    pub text: String,
}

/// An app's links in the navigation.
pub(super) struct NavGroup {
    /// The app.
    pub app: String,
    /// Its entities.
    pub links: Vec<NavLink>,
}

/// What every page's layout shows.
pub(super) struct Layout {
    /// The page title.
    pub title: String,
    /// Who is signed in.
    pub user: String,
    /// The tenant they act in, by name.
    pub tenant: String,
    /// The tenants they may switch to, `(id, name, current)`: empty when there is only one.
    pub tenants: Vec<(String, String, bool)>,
    /// Whether they are a platform operator.
    pub operator: bool,
    /// The anti-forgery token for the sign-out form.
    pub csrf: String,
    /// The navigation.
    pub nav: Vec<NavGroup>,
    /// Their unread notifications (the bell).
    pub unread: i64,
    /// Whether they may see the tenant's webhooks.
    pub webhooks: bool,
}

pub(super) fn layout(admin: &Admin, visitor: &Visitor, title: &str) -> Layout {
    let nav = admin
        .catalogs
        .iter()
        .map(|catalog| NavGroup {
            app: catalog.name.to_owned(),
            links: catalog
                .entities
                .iter()
                .filter(|e| admin.may(&visitor.principal, catalog.name, e.name, "read"))
                .map(|e| NavLink {
                    href: format!("/admin/{}/{}", catalog.name, e.plural),
                    text: plural_label(e),
                })
                .collect(),
        })
        .filter(|g| !g.links.is_empty())
        .collect();
    let current = visitor.session.tenant;
    Layout {
        title: title.to_owned(),
        user: visitor.session.user.email.clone(),
        tenant: visitor
            .tenants
            .iter()
            .find(|(id, _)| *id == current)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| current.to_string()),
        tenants: if visitor.tenants.len() > 1 {
            visitor
                .tenants
                .iter()
                .map(|(id, name)| (id.to_string(), name.clone(), *id == current))
                .collect()
        } else {
            Vec::new()
        },
        operator: visitor.principal.operator,
        csrf: visitor.session.csrf.clone(),
        nav,
        unread: visitor.unread,
        webhooks: admin.may(&visitor.principal, "cortex", "Webhook", "read"),
    }
}

fn plural_label(entity: &EntityInfo) -> String {
    forms::label(&entity.plural.replace('-', "_"))
}

pub(super) fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/admin".into())
}

async fn asset(State(admin): State<Shared>, Path(file): Path<String>) -> Response {
    let (body, content_type): (String, &str) = match file.as_str() {
        "admin.css" => (
            include_str!("../../../assets/admin.css").to_owned(),
            "text/css",
        ),
        "admin.js" => (
            include_str!("../../../assets/admin.js").to_owned(),
            "text/javascript",
        ),
        "tokens.css" => (admin.tokens_css.to_owned(), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn query_param(query: &Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        message_page("Not found", "There is no such page."),
    )
        .into_response()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The 403 page of a form the visitor may not use.
fn not_allowed(entity: &str, action: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        message_page(
            "Not allowed",
            &format!("You may not {action} a {entity} here: your roles do not allow it, or it is a platform operator's to do."),
        ),
    )
        .into_response()
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        message_page(
            "Forbidden",
            "The form did not come from this site, or your session changed; reload the page.",
        ),
    )
        .into_response()
}

fn cortex_user_table() -> &'static prefiq_runtime::meta::TableMeta {
    &crate::generated::user::TABLE
}
