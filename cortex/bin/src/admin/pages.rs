//! The admin pages.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use prefiq_grammar::Operator;
use prefiq_runtime::catalog::{AppCatalog, EntityInfo};
use prefiq_runtime::deps::uuid::Uuid;
use serde_json::Value;

use super::forms::{self, Field};
use super::{
    Admin, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Visitor, cookie, csrf_ok, parse_form, render,
    set_cookie, visitor,
};
use crate::identity;

type Shared = Arc<Admin>;

/// The admin routes: sign-in, and every page under `/admin`.
pub fn routes(admin: Shared) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/admin", get(dashboard))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/assets/{file}", get(asset))
        .route("/admin/audit", get(audit))
        .route("/admin/grants", get(grants).post(save_grants))
        .route("/admin/tenant", post(switch_tenant))
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
pub struct NavLink {
    /// Where.
    pub href: String,
    /// What.
    pub text: String,
}

/// An app's links in the navigation.
pub struct NavGroup {
    /// The app.
    pub app: String,
    /// Its entities.
    pub links: Vec<NavLink>,
}

/// What every page's layout shows.
pub struct Layout {
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
    }
}

fn plural_label(entity: &EntityInfo) -> String {
    forms::label(&entity.plural.replace('-', "_"))
}

fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/admin".into())
}

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
        super::message_page(
            "Cannot sign in",
            &format!(
                "The page to return to after signing in is refused: {why}. Only a path of this site is accepted."
            ),
        ),
    )
        .into_response()
}

async fn asset(State(admin): State<Shared>, Path(file): Path<String>) -> Response {
    let (body, content_type): (String, &str) = match file.as_str() {
        "admin.css" => (
            include_str!("../../assets/admin.css").to_owned(),
            "text/css",
        ),
        "admin.js" => (
            include_str!("../../assets/admin.js").to_owned(),
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

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: String,
}

fn query_param(query: &Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn login_page(State(admin): State<Shared>, RawQuery(query): RawQuery) -> Response {
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

async fn login(
    State(admin): State<Shared>,
    super::Peer(address): super::Peer,
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

async fn logout(State(admin): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
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
                super::message_page("Forbidden", "The form did not come from this site."),
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

/// An app's tile on the dashboard.
struct AppTile {
    name: String,
    version: String,
    entities: Vec<(String, String, String)>,
}

/// A line of recent activity.
struct Activity {
    at: String,
    actor: String,
    action: String,
    what: String,
    href: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    apps: Vec<AppTile>,
    recent: Vec<Activity>,
}

async fn dashboard(State(admin): State<Shared>, headers: HeaderMap) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let mut apps = Vec::new();
    for catalog in &admin.catalogs {
        let mut entities = Vec::new();
        for entity in catalog.entities {
            let reply = admin
                .call(
                    &visitor.principal,
                    Method::GET,
                    &format!("{}?limit=1&count=exact", entity.collection),
                    None,
                    None,
                )
                .await;
            if reply.status.is_success() {
                entities.push((
                    plural_label(entity),
                    format!("/admin/{}/{}", catalog.name, entity.plural),
                    reply.body["total"].to_string(),
                ));
            }
        }
        if !entities.is_empty() {
            apps.push(AppTile {
                name: catalog.name.to_owned(),
                version: catalog.version.to_owned(),
                entities,
            });
        }
    }
    let recent = entries(&admin, &visitor, "limit=10")
        .await
        .map(|(items, _)| items)
        .unwrap_or_default();
    let page = DashboardPage {
        layout: layout(&admin, &visitor, "Dashboard"),
        apps,
        recent,
    };
    render(&page)
}

/// Audit entries the visitor may read, as `(lines, next cursor)`.
async fn entries(
    admin: &Admin,
    visitor: &Visitor,
    query: &str,
) -> Option<(Vec<Activity>, Option<String>)> {
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("/api/cortex/audit?sort=-at&{query}"),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return None;
    }
    let lines = reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let app = entry["app"].as_str().unwrap_or_default();
            let entity = entry["entity"].as_str().unwrap_or_default();
            let id = entry["entity_id"].as_str().unwrap_or_default();
            let plural = admin
                .catalog(app)
                .and_then(|c| c.entities.iter().find(|e| e.name == entity))
                .map(|e| e.plural)
                .unwrap_or_default();
            Activity {
                at: entry["at"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                actor: entry["actor"].as_str().unwrap_or_default().to_owned(),
                action: entry["action"].as_str().unwrap_or_default().to_owned(),
                what: format!("{app} {entity} {id} {}", compact(&entry["changes"])),
                href: format!("/admin/{app}/{plural}/{id}"),
            }
        })
        .collect();
    Some((lines, reply.body["next_cursor"].as_str().map(str::to_owned)))
}

fn compact(changes: &Value) -> String {
    let text = changes.to_string();
    if text.chars().count() > 240 {
        format!("{}…", text.chars().take(240).collect::<String>())
    } else {
        text
    }
}

fn entity(
    admin: &Admin,
    app: &str,
    plural: &str,
) -> Option<(&'static AppCatalog, &'static EntityInfo)> {
    let catalog = admin.catalog(app)?;
    let entity = catalog.entities.iter().find(|e| e.plural == plural)?;
    Some((catalog, entity))
}

/// An entity the API writes: a read-only one (the audit log) has no forms.
fn writable_entity(
    admin: &Admin,
    app: &str,
    plural: &str,
) -> Option<(&'static AppCatalog, &'static EntityInfo)> {
    entity(admin, app, plural).filter(|(_, e)| !e.read_only)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        super::message_page("Not found", "There is no such page."),
    )
        .into_response()
}

/// A cell of a list.
struct Cell {
    text: String,
    href: String,
}

/// A sortable column.
struct Column {
    name: String,
    label: String,
    sort_href: String,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    layout: Layout,
    base: String,
    description: Option<String>,
    columns: Vec<Column>,
    rows: Vec<(String, Vec<Cell>)>,
    total: String,
    next: String,
    filterable: Vec<(String, String)>,
    filter_field: String,
    filter_op: String,
    /// Every filter operator of the list grammar: its name and what it means.
    operators: Vec<(&'static str, String)>,
    filter_value: String,
    sort: String,
    can_create: bool,
    error: String,
}

/// The filter of the list page as the API's query writes it: `op.value`, with the list of `in`
/// in parentheses and the set of an array operator in braces (unless the visitor typed them).
fn filter_param(operator: Operator, value: &str) -> String {
    let name = operator.name();
    let value = value.trim();
    let wrapped = |open: char, close: char| {
        if value.starts_with(open) && value.ends_with(close) {
            value.to_owned()
        } else {
            format!("{open}{value}{close}")
        }
    };
    match operator {
        Operator::In => format!("{name}.{}", wrapped('(', ')')),
        Operator::Contains | Operator::ContainedBy | Operator::Overlaps => {
            format!("{name}.{}", wrapped('{', '}'))
        }
        _ => format!("{name}.{value}"),
    }
}

/// The text of a value in a cell.
fn cell_text(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// The link of a reference cell.
fn reference_href(
    admin: &Admin,
    catalog: &AppCatalog,
    entity: &EntityInfo,
    member: &str,
    value: &Value,
) -> String {
    let Some(id) = value.as_str() else {
        return String::new();
    };
    entity
        .table
        .foreign_keys
        .iter()
        .find(|fk| entity.table.field_of(fk.column) == member)
        .and_then(|fk| catalog.entities.iter().find(|e| e.name == fk.entity))
        .map(|target| format!("/admin/{}/{}/{id}", catalog.name, target.plural))
        .filter(|_| admin.catalog(catalog.name).is_some())
        .unwrap_or_default()
}

async fn list(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((catalog, entity)) = entity(&admin, &app, &plural) else {
        return not_found();
    };
    let param = |name: &str| query_param(&query, name).unwrap_or_default();
    let (filter_field, filter_op, filter_value) = (param("field"), param("op"), param("value"));
    let sort = param("sort");
    let api_query = {
        let mut api_query = form_urlencoded::Serializer::new(String::new());
        api_query.append_pair("limit", "50");
        api_query.append_pair("count", "exact");
        if !sort.is_empty() {
            api_query.append_pair("sort", &sort);
        }
        if let Some(cursor) = query_param(&query, "cursor") {
            api_query.append_pair("cursor", &cursor);
        }
        if !filter_field.is_empty() && !filter_value.is_empty() {
            let operator = Operator::parse(&filter_op).unwrap_or(Operator::Eq);
            api_query.append_pair(&filter_field, &filter_param(operator, &filter_value));
        }
        api_query.finish()
    };
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("{}?{api_query}", entity.collection),
            None,
            None,
        )
        .await;
    let base = format!("/admin/{app}/{plural}");
    if reply.status == StatusCode::FORBIDDEN || reply.status == StatusCode::NOT_FOUND {
        return (
            reply.status,
            super::message_page("Not allowed", &reply.detail()),
        )
            .into_response();
    }
    let error = if reply.status.is_success() {
        String::new()
    } else {
        reply.detail()
    };
    let model = admin.schema(&app, entity.schemas[0]);
    let names: Vec<String> = model["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, s)| {
            let (resolved, _) = (admin.resolve(&app, s), ());
            let ty = resolved["type"].clone();
            !(ty == "object" || name.as_str() == "version")
        })
        .map(|(name, _)| name.clone())
        .take(7)
        .collect();
    let sortable: Vec<&str> = entity
        .table
        .columns
        .iter()
        .filter(|c| c.sortable)
        .map(|c| c.field)
        .collect();
    let keep = |extra: &[(&str, String)]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("field", &filter_field),
            ("op", &filter_op),
            ("value", &filter_value),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let columns = names
        .iter()
        .map(|name| Column {
            label: forms::field_label(entity.table, name),
            sort_href: if sortable.contains(&name.as_str()) {
                let next = if sort == *name {
                    format!("-{name}")
                } else {
                    name.clone()
                };
                format!("{base}?{}", keep(&[("sort", next)]))
            } else {
                String::new()
            },
            name: name.clone(),
        })
        .collect();
    let rows = reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let id = row["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| row["id"].to_string());
            let cells = names
                .iter()
                .map(|name| Cell {
                    text: cell_text(&row[name]),
                    href: reference_href(&admin, catalog, entity, name, &row[name]),
                })
                .collect();
            (format!("{base}/{id}"), cells)
        })
        .collect();
    let next = reply.body["next_cursor"]
        .as_str()
        .map(|cursor| {
            let mut extra = vec![("cursor", cursor.to_owned())];
            if !sort.is_empty() {
                extra.push(("sort", sort.clone()));
            }
            format!("{base}?{}", keep(&extra))
        })
        .unwrap_or_default();
    let filterable = entity
        .table
        .columns
        .iter()
        .filter(|c| c.filterable && !c.field.is_empty())
        .map(|c| {
            (
                c.field.to_owned(),
                forms::field_label(entity.table, c.field),
            )
        })
        .collect();
    let page = ListPage {
        layout: layout(&admin, &visitor, &plural_label(entity)),
        description: entity.description.map(str::to_owned),
        base,
        columns,
        rows,
        total: reply.body["total"]
            .as_i64()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        next,
        filterable,
        filter_field,
        filter_op,
        operators: Operator::ALL
            .into_iter()
            .map(|op| (op.name(), op.meaning().replace('`', "")))
            .collect(),
        filter_value,
        sort,
        can_create: !entity.read_only && admin.may(&visitor.principal, &app, entity.name, "create"),
        error,
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage {
    layout: Layout,
    base: String,
    id: String,
    version: String,
    members: Vec<(String, String, String, bool)>,
    can_edit: bool,
    can_delete: bool,
    password_form: bool,
    history: Vec<Activity>,
}

async fn detail(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural, id)): Path<(String, String, String)>,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((catalog, entity)) = entity(&admin, &app, &plural) else {
        return not_found();
    };
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("{}/{}", entity.collection, encode(&id)),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return (
            reply.status,
            super::message_page("Not found", &reply.detail()),
        )
            .into_response();
    }
    let members = reply
        .body
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let pretty = matches!(value, Value::Object(_))
                || matches!(value, Value::Array(a) if a.iter().any(|v| !v.is_string()));
            let text = if pretty {
                serde_json::to_string_pretty(value).unwrap_or_default()
            } else {
                cell_text_full(value)
            };
            (
                forms::field_label(entity.table, name),
                text,
                reference_href(&admin, catalog, entity, name, value),
                pretty,
            )
        })
        .collect();
    let history = entries(
        &admin,
        &visitor,
        &format!(
            "limit=20&app=eq.{app}&entity=eq.{}&entity_id=eq.{}",
            entity.name,
            encode(&id)
        ),
    )
    .await
    .map(|(items, _)| items)
    .unwrap_or_default();
    let page = DetailPage {
        layout: layout(&admin, &visitor, &format!("{} {}", entity.name, id)),
        base: format!("/admin/{app}/{plural}"),
        version: reply.body["version"].to_string(),
        members,
        can_edit: !entity.read_only && admin.may(&visitor.principal, &app, entity.name, "update"),
        can_delete: !entity.read_only && admin.may(&visitor.principal, &app, entity.name, "delete"),
        // A platform operator's password is a platform operator's to set.
        password_form: app == "cortex"
            && entity.name == "User"
            && admin.may(&visitor.principal, &app, entity.name, "update")
            && (visitor.principal.operator || reply.body["operator"] != Value::Bool(true)),
        history,
        id,
    };
    render(&page)
}

fn cell_text_full(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    layout: Layout,
    action: String,
    cancel: String,
    heading: String,
    fields: Vec<Field>,
    errors: Vec<String>,
    version: String,
    conflict: bool,
    csrf: String,
}

async fn new_form(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural)): Path<(String, String)>,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    if !admin.may(&visitor.principal, &app, entity.name, "create") {
        return not_allowed(entity.name, "create");
    }
    let fields = forms::fields(&admin, &visitor.principal, &app, entity, &Value::Null).await;
    render(&FormPage {
        layout: layout(&admin, &visitor, &format!("New {}", entity.name)),
        action: format!("/admin/{app}/{plural}/new"),
        cancel: format!("/admin/{app}/{plural}"),
        heading: format!("New {}", entity.label),
        fields,
        errors: Vec::new(),
        version: String::new(),
        conflict: false,
        csrf: visitor.session.csrf.clone(),
    })
}

/// The 403 page of a form the visitor may not use.
fn not_allowed(entity: &str, action: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        super::message_page(
            "Not allowed",
            &format!("You may not {action} a {entity} here: your roles do not allow it, or it is a platform operator's to do."),
        ),
    )
        .into_response()
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        super::message_page(
            "Forbidden",
            "The form did not come from this site, or your session changed; reload the page.",
        ),
    )
        .into_response()
}

async fn create(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
    let mut fields = forms::fields(&admin, &visitor.principal, &app, entity, &Value::Null).await;
    let (json, local) = forms::body(&fields, &form, false);
    let reply = if local.is_empty() {
        Some(
            admin
                .call(
                    &visitor.principal,
                    Method::POST,
                    entity.collection,
                    Some(&json),
                    None,
                )
                .await,
        )
    } else {
        None
    };
    if let Some(reply) = &reply {
        if reply.status == StatusCode::CREATED {
            let id = reply.body["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| reply.body["id"].to_string());
            return Redirect::to(&format!("/admin/{app}/{plural}/{}", encode(&id))).into_response();
        }
    }
    let problem = reply
        .as_ref()
        .map(|r| r.body.clone())
        .unwrap_or(Value::Null);
    let mut errors = forms::annotate(&mut fields, &form, &local, &problem);
    if let Some(reply) = &reply {
        if problem["errors"].as_array().is_none_or(|e| e.is_empty()) {
            errors.push(reply.detail());
        }
    }
    let status = reply
        .map(|r| r.status)
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mut response = render(&FormPage {
        layout: layout(&admin, &visitor, &format!("New {}", entity.name)),
        action: format!("/admin/{app}/{plural}/new"),
        cancel: format!("/admin/{app}/{plural}"),
        heading: format!("New {}", entity.label),
        fields,
        errors,
        version: String::new(),
        conflict: false,
        csrf: visitor.session.csrf.clone(),
    });
    *response.status_mut() = status;
    response
}

async fn edit_form(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural, id)): Path<(String, String, String)>,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("{}/{}", entity.collection, encode(&id)),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return (
            reply.status,
            super::message_page("Not found", &reply.detail()),
        )
            .into_response();
    }
    if !admin.may(&visitor.principal, &app, entity.name, "update") {
        return not_allowed(entity.name, "change");
    }
    let fields = forms::fields(&admin, &visitor.principal, &app, entity, &reply.body).await;
    render(&FormPage {
        layout: layout(&admin, &visitor, &format!("Edit {}", entity.name)),
        action: format!("/admin/{app}/{plural}/{}/edit", encode(&id)),
        cancel: format!("/admin/{app}/{plural}/{}", encode(&id)),
        heading: format!("Edit {} {id}", entity.label),
        fields,
        errors: Vec::new(),
        version: reply.body["version"].to_string(),
        conflict: false,
        csrf: visitor.session.csrf.clone(),
    })
}

async fn update(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
    let version = form
        .get("version")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let mut fields = forms::fields(&admin, &visitor.principal, &app, entity, &Value::Null).await;
    let (json, local) = forms::body(&fields, &form, true);
    let item = format!("{}/{}", entity.collection, encode(&id));
    let tag = format!("\"{version}\"");
    let reply = if local.is_empty() {
        Some(
            admin
                .call(
                    &visitor.principal,
                    Method::PATCH,
                    &item,
                    Some(&json),
                    Some(&tag),
                )
                .await,
        )
    } else {
        None
    };
    if let Some(reply) = &reply {
        if reply.status.is_success() {
            return Redirect::to(&format!("/admin/{app}/{plural}/{}", encode(&id))).into_response();
        }
    }
    let problem = reply
        .as_ref()
        .map(|r| r.body.clone())
        .unwrap_or(Value::Null);
    let mut errors = forms::annotate(&mut fields, &form, &local, &problem);
    let conflict = reply
        .as_ref()
        .is_some_and(|r| r.status == StatusCode::PRECONDITION_FAILED);
    if conflict {
        errors.push("Someone changed this record after you opened it, so your changes were not saved. Your values are below; open the record again to see theirs, then edit it again.".into());
    } else if let Some(reply) = &reply {
        if problem["errors"].as_array().is_none_or(|e| e.is_empty()) {
            errors.push(reply.detail());
        }
    }
    let status = reply
        .map(|r| r.status)
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mut response = render(&FormPage {
        layout: layout(&admin, &visitor, &format!("Edit {}", entity.name)),
        action: format!("/admin/{app}/{plural}/{}/edit", encode(&id)),
        cancel: format!("/admin/{app}/{plural}/{}", encode(&id)),
        heading: format!("Edit {} {id}", entity.label),
        fields,
        errors,
        version,
        conflict,
        csrf: visitor.session.csrf.clone(),
    });
    *response.status_mut() = status;
    response
}

async fn delete(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((app, plural, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
    let version = form
        .get("version")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let reply = admin
        .call(
            &visitor.principal,
            Method::DELETE,
            &format!("{}/{}", entity.collection, encode(&id)),
            None,
            Some(&format!("\"{version}\"")),
        )
        .await;
    if reply.status.is_success() {
        return Redirect::to(&format!("/admin/{app}/{plural}")).into_response();
    }
    let message = if reply.status == StatusCode::PRECONDITION_FAILED {
        "Someone changed this record after you opened it; it was not deleted. Open it again and decide.".to_owned()
    } else {
        reply.detail()
    };
    (reply.status, super::message_page("Not deleted", &message)).into_response()
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<Activity>,
    next: String,
    filters: Vec<(String, String)>,
    error: String,
}

async fn audit(
    State(admin): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let visitor = match visitor(&admin, &headers, &here(&uri)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let mut filters = Vec::new();
    let api = {
        let mut api = form_urlencoded::Serializer::new(String::new());
        api.append_pair("limit", "50");
        for name in ["app", "entity", "entity_id", "action", "actor"] {
            let value = query_param(&query, name).unwrap_or_default();
            if !value.is_empty() {
                api.append_pair(name, &format!("eq.{value}"));
            }
            filters.push((name.to_owned(), value));
        }
        if let Some(cursor) = query_param(&query, "cursor") {
            api.append_pair("cursor", &cursor);
        }
        api.finish()
    };
    let (entries, next, error) = match entries(&admin, &visitor, &api).await {
        Some((items, next)) => (items, next, String::new()),
        None => (
            Vec::new(),
            None,
            "You may not read the audit log (cortex.audit_entry.read).".to_owned(),
        ),
    };
    let next = next
        .map(|cursor| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &filters {
                if !v.is_empty() {
                    s.append_pair(k, v);
                }
            }
            s.append_pair("cursor", &cursor);
            format!("/admin/audit?{}", s.finish())
        })
        .unwrap_or_default();
    render(&AuditPage {
        layout: layout(&admin, &visitor, "Audit log"),
        entries,
        next,
        filters,
        error,
    })
}

/// A permission's row in the grants matrix: per role, `(role, granted, role has everything)`.
struct GrantRow {
    permission: String,
    cells: Vec<(String, bool, bool)>,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    layout: Layout,
    roles: Vec<String>,
    rows: Vec<GrantRow>,
    csrf: String,
    message: String,
    /// `platform` when the platform's default roles are shown, else empty (the tenant's own).
    scope: String,
    /// The tenant whose roles are shown.
    tenant: String,
}

/// The permissions a role may be granted: a tenant's, never the platform's (which only a
/// platform operator holds, whatever roles say).
fn every_permission(admin: &Admin) -> Vec<(String, String)> {
    admin
        .catalogs
        .iter()
        .flat_map(|c| c.permissions.iter())
        .filter(|p| p.scope == prefiq_runtime::auth::Scope::Tenant)
        .map(|p| (p.name.to_owned(), p.action.to_owned()))
        .collect()
}

/// Which roles the grants page edits: the visitor's tenant's, or with `platform` (operators
/// only) the platform's defaults, which new tenants copy.
fn roles_query(visitor: &Visitor, platform: bool) -> String {
    let tenant = if platform {
        "is.null".to_owned()
    } else {
        format!("eq.{}", visitor.session.tenant)
    };
    format!("/api/cortex/roles?limit=1000&sort=name&tenant_id={tenant}")
}

async fn grants_page(
    admin: &Admin,
    visitor: &Visitor,
    platform: bool,
    message: String,
) -> Response {
    if platform && !visitor.principal.operator {
        return (
            StatusCode::FORBIDDEN,
            super::message_page(
                "Forbidden",
                "The platform's default roles are a platform operator's to change.",
            ),
        )
            .into_response();
    }
    let permissions = every_permission(admin);
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &roles_query(visitor, platform),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return (
            reply.status,
            super::message_page("Not allowed", &reply.detail()),
        )
            .into_response();
    }
    let roles: Vec<(String, Vec<String>)> = reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|role| {
            (
                role["name"].as_str().unwrap_or_default().to_owned(),
                role["permissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect();
    let rows = permissions
        .iter()
        .map(|(permission, _)| GrantRow {
            permission: permission.clone(),
            cells: roles
                .iter()
                .map(|(name, granted)| {
                    (
                        name.clone(),
                        granted
                            .iter()
                            .any(|g| prefiq_runtime::auth::permission_matches(g, permission)),
                        name == "admin",
                    )
                })
                .collect(),
        })
        .collect();
    let layout = layout(admin, visitor, "Roles and grants");
    render(&GrantsPage {
        tenant: if platform {
            "every new tenant".into()
        } else {
            layout.tenant.clone()
        },
        layout,
        roles: roles.into_iter().map(|r| r.0).collect(),
        rows,
        csrf: visitor.session.csrf.clone(),
        message,
        scope: if platform {
            "platform".into()
        } else {
            String::new()
        },
    })
}

async fn grants(
    State(admin): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let platform = query_param(&query, "scope").as_deref() == Some("platform");
    match visitor(&admin, &headers, "/admin/grants").await {
        Ok(visitor) => grants_page(&admin, &visitor, platform, String::new()).await,
        Err(response) => response,
    }
}

async fn save_grants(State(admin): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin/grants").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
    let platform = form
        .get("scope")
        .and_then(|v| v.first())
        .is_some_and(|s| s == "platform");
    if platform && !visitor.principal.operator {
        return grants_page(&admin, &visitor, platform, String::new()).await;
    }
    let known: Vec<String> = every_permission(&admin).into_iter().map(|p| p.0).collect();
    let checked: Vec<(String, String)> = form
        .get("grant")
        .into_iter()
        .flatten()
        .filter_map(|g| g.split_once('|'))
        .map(|(role, permission)| (role.to_owned(), permission.to_owned()))
        .collect();
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &roles_query(&visitor, platform),
            None,
            None,
        )
        .await;
    let mut changed = 0;
    let mut failures = Vec::new();
    if !reply.status.is_success() {
        failures.push(reply.detail());
    }
    for role in reply.body["items"].as_array().into_iter().flatten() {
        let name = role["name"].as_str().unwrap_or_default();
        if name == "admin" {
            continue;
        }
        let current: Vec<String> = role["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        // Grants the matrix does not show (wildcards, other permissions) stay.
        let mut next: Vec<String> = current
            .iter()
            .filter(|p| !known.contains(p))
            .cloned()
            .collect();
        next.extend(
            checked
                .iter()
                .filter(|(r, _)| r == name)
                .map(|(_, p)| p.clone())
                .filter(|p| known.contains(p)),
        );
        next.sort();
        next.dedup();
        let mut before = current.clone();
        before.sort();
        if before == next {
            continue;
        }
        let id = role["id"].as_str().unwrap_or_default();
        let tag = format!("\"{}\"", role["version"]);
        let result = admin
            .call(
                &visitor.principal,
                Method::PATCH,
                &format!("/api/cortex/roles/{id}"),
                Some(&serde_json::json!({ "permissions": next })),
                Some(&tag),
            )
            .await;
        if result.status.is_success() {
            changed += 1;
        } else {
            failures.push(format!("{name}: {}", result.detail()));
        }
    }
    let message = if failures.is_empty() {
        format!("Saved: {changed} role(s) changed.")
    } else {
        format!("Not all saved: {}", failures.join("; "))
    };
    grants_page(&admin, &visitor, platform, message).await
}

/// `POST /admin/tenant`: the signed-in user acts in another tenant they may enter, from now on.
/// Recorded in both tenants' audit logs, in one transaction with the switch.
async fn switch_tenant(State(admin): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
    let wanted: Option<Uuid> = form
        .get("tenant")
        .and_then(|v| v.first())
        .and_then(|t| t.parse().ok());
    let Some(wanted) = wanted.filter(|t| visitor.tenants.iter().any(|(id, _)| id == t)) else {
        return (
            StatusCode::FORBIDDEN,
            super::message_page(
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
                super::message_page(
                    "Unavailable",
                    "The tenant could not be switched; try again.",
                ),
            )
                .into_response()
        }
    }
}

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

async fn tokens(State(admin): State<Shared>, headers: HeaderMap) -> Response {
    match visitor(&admin, &headers, "/admin/tokens").await {
        Ok(visitor) => tokens_page(&admin, &visitor, String::new(), String::new()).await,
        Err(response) => response,
    }
}

async fn create_token(State(admin): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin/tokens").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
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

async fn revoke_token(
    State(admin): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin/tokens").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if !csrf_ok(&visitor.session, &parse_form(&body)) {
        return forbidden();
    }
    let user = visitor.session.user.id;
    let _ = identity::as_server(&admin.db, async |tx| {
        identity::revoke_personal_token(tx, user, id).await
    })
    .await;
    Redirect::to("/admin/tokens").into_response()
}

async fn set_password(
    State(admin): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let visitor = match visitor(&admin, &headers, "/admin").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = parse_form(&body);
    if !csrf_ok(&visitor.session, &form) {
        return forbidden();
    }
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
            super::message_page(
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
            super::message_page("Password not set", &why),
        )
            .into_response(),
    }
}

fn cortex_user_table() -> &'static prefiq_runtime::meta::TableMeta {
    &crate::generated::user::TABLE
}
