//! The admin web UI: server-rendered with askama, styled from the design tokens in
//! `resources/design/`, usable without JavaScript. Every page reads and writes through the same
//! API routers the public API serves, called in-process as the signed-in user, so permissions,
//! tenancy, validation and the audit log hold exactly as they do over HTTP.
//!
//! Sessions are server-side (a random cookie, `HttpOnly`, `SameSite=Strict`, `Secure` in
//! production); every form carries the session's anti-forgery token; every value is escaped by
//! askama; responses carry a content-security policy that allows nothing from elsewhere.

mod forms;
mod pages;
mod platform;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use prefiq_runtime::catalog::AppCatalog;
use prefiq_runtime::{Db, Principal};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::identity::{self, Session};
use crate::oauth::Tokens;

pub use crate::web::{Peer, SESSION_COOKIE, cookie, message_page, security_headers, set_cookie};
/// The admin routes: sign-in, every page under `/admin`, and the platform operators' own.
pub fn routes(admin: Arc<Admin>) -> Router {
    pages::routes(admin.clone()).merge(platform::routes(admin))
}

/// The anti-forgery cookie of the sign-in form (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "prefiq_login_csrf";

/// What the admin pages share.
pub struct Admin {
    /// Every API route, unwrapped: pages call it in-process as the signed-in user.
    pub api: Router,
    /// The request pool.
    pub db: Db,
    /// Cortex's catalog first, then each installed app's.
    pub catalogs: Vec<&'static AppCatalog>,
    /// Each app's OpenAPI document, parsed, by app.
    pub documents: BTreeMap<String, Value>,
    /// The token service (personal tokens).
    pub tokens: Arc<Tokens>,
    /// Production mode: `Secure` cookies.
    pub production: bool,
    /// The design tokens as CSS custom properties.
    pub tokens_css: &'static str,
    /// How people are told (e-mail, when Cortex has an SMTP server).
    pub notifier: crate::notifications::Notifier,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// An API response, read completely.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
}

impl Reply {
    /// The problem's detail, or a plain description of the status.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the request failed ({})", self.status))
    }
}

impl Admin {
    /// Calls the API as `principal`.
    pub async fn call(
        &self,
        principal: &Arc<Principal>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method.clone()).uri(path);
        if let Some(tag) = if_match {
            request = request.header(header::IF_MATCH, tag);
        }
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let Ok(mut request) = request.body(body) else {
            return Reply {
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                body: Value::Null,
            };
        };
        request.extensions_mut().insert(principal.clone());
        let response = match self.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The catalog of `app`.
    pub fn catalog(&self, app: &str) -> Option<&'static AppCatalog> {
        self.catalogs.iter().copied().find(|c| c.name == app)
    }

    /// Whether `principal` may do `action` (`read`, `create`, `update`, `delete`) on `entity` of
    /// `app`, as the app's catalog names the permission and its scope: a page offers only what
    /// the API would allow.
    pub fn may(&self, principal: &Principal, app: &str, entity: &str, action: &str) -> bool {
        self.catalog(app)
            .and_then(|c| {
                c.permissions
                    .iter()
                    .find(|p| p.entity == Some(entity) && p.action == action)
            })
            .is_some_and(|p| principal.may(p.scope, p.name))
    }

    /// The OpenAPI component `name` of `app`'s document.
    pub fn schema(&self, app: &str, name: &str) -> Value {
        self.documents
            .get(app)
            .map(|d| d["components"]["schemas"][name].clone())
            .unwrap_or(Value::Null)
    }

    /// Resolves a `$ref` within `app`'s document.
    pub fn resolve(&self, app: &str, schema: &Value) -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => self
                .documents
                .get(app)
                .and_then(|d| d.pointer(reference.trim_start_matches('#')))
                .cloned()
                .unwrap_or(Value::Null),
            None => schema.clone(),
        }
    }
}

/// Renders a template, or a plain 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// The signed-in user of a request, with their principal.
pub struct Visitor {
    /// Their session.
    pub session: Session,
    /// Who they are to the API.
    pub principal: Arc<Principal>,
    /// The active tenants they may act in, `(id, name)`, by name: theirs, those a platform
    /// operator let them into, or every one for a platform operator.
    pub tenants: Vec<(prefiq_runtime::deps::uuid::Uuid, String)>,
    /// How many of their notifications in the tenant they act in are unread (the bell).
    pub unread: i64,
}

/// The most tenants the switcher lists.
const SWITCHABLE: i64 = 200;

/// The active tenants `user` may act in, by name.
async fn switchable(
    tx: &mut prefiq_runtime::Tx,
    user: &identity::User,
) -> Result<Vec<(prefiq_runtime::deps::uuid::Uuid, String)>, prefiq_runtime::db::DbError> {
    use prefiq_runtime::{Executor as _, SqlValue};
    let statement = tx.pick(
        "SELECT id, name FROM tenants WHERE active ORDER BY name LIMIT $1",
        "SELECT id, name FROM tenants WHERE active ORDER BY name LIMIT ?1",
    );
    let rows = tx
        .fetch_all(statement, vec![SqlValue::Int(SWITCHABLE)])
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let id = row.req(0)?;
        if user.may_enter(id) {
            out.push((id, row.req(1)?));
        }
    }
    Ok(out)
}

/// The visitor of a request, or the redirect to the sign-in page.
pub async fn visitor(admin: &Admin, headers: &HeaderMap, here: &str) -> Result<Visitor, Response> {
    let to_login = || {
        Redirect::to(&crate::oauth::url_with(
            "/login",
            &[("next", here.to_owned())],
        ))
        .into_response()
    };
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Err(to_login());
    };
    let unavailable = |error: prefiq_runtime::db::DbError| {
        tracing::error!(%error, "cannot read the session");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            message_page("Unavailable", "The database cannot be reached; try again."),
        )
            .into_response()
    };
    let mut tx = identity::read(&admin.db).await.map_err(unavailable)?;
    let Some(session) = identity::session(&mut tx, &secret)
        .await
        .map_err(unavailable)?
    else {
        return Err(to_login());
    };
    let principal = identity::principal(
        &mut tx,
        &session.user,
        session.tenant,
        prefiq_runtime::auth::Credential::Session,
    )
    .await
    .map_err(unavailable)?;
    let tenants = switchable(&mut tx, &session.user)
        .await
        .map_err(unavailable)?;
    tx.end_read();
    let principal = Arc::new(principal);
    // As the visitor, in the tenant they act in: row-level security binds the count too.
    let mut tx = admin.db.begin_read(&principal).await.map_err(unavailable)?;
    let unread = crate::notifications::unread(&mut tx, session.user.id, session.tenant)
        .await
        .map_err(unavailable)?;
    tx.end_read();
    Ok(Visitor {
        session,
        principal,
        tenants,
        unread,
    })
}

/// The visitor of a request, as a handler's argument. Without a session the answer is the
/// sign-in page, which leads back to the page asked for; after a form was sent, to the dashboard
/// (a redirect cannot send a form again).
impl axum::extract::FromRequestParts<Arc<Admin>> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        admin: &Arc<Admin>,
    ) -> Result<Self, Response> {
        let back = if parts.method == Method::GET {
            pages::here(&parts.uri)
        } else {
            "/admin".to_owned()
        };
        visitor(admin, &parts.headers, &back).await
    }
}

/// A form sent by a signed-in visitor, as a handler's argument: the handler runs only when the
/// form carries the session's anti-forgery token; otherwise the answer is 403.
pub struct SignedForm {
    /// Who sent it.
    pub visitor: Visitor,
    /// Its fields, each name with every value sent.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl axum::extract::FromRequest<Arc<Admin>> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request<Body>, admin: &Arc<Admin>) -> Result<Self, Response> {
        use axum::extract::FromRequestParts as _;
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, admin).await?;
        // Read as a handler's `Bytes` argument reads it, within axum's default body limit.
        let body = axum::body::Bytes::from_request(Request::from_parts(parts, body), admin)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = parse_form(&body);
        if !csrf_ok(&visitor.session, &fields) {
            return Err(pages::forbidden());
        }
        Ok(SignedForm { visitor, fields })
    }
}

/// Whether a form's anti-forgery token is the session's.
pub fn csrf_ok(session: &Session, form: &BTreeMap<String, Vec<String>>) -> bool {
    form.get("csrf")
        .and_then(|v| v.first())
        .is_some_and(|token| identity::same(token, &session.csrf))
}

/// A form body, each name with every value sent.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        out.entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    out
}

/// The design tokens (`resources/design/tokens.json`) as CSS custom properties, light and dark,
/// as `prefiq codegen` makes them for the apps' frontends too.
pub const TOKENS_CSS: &str = include_str!("../../../../resources/design/generated/tokens.css");
