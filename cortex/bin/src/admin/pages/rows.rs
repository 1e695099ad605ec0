//! An entity's rows: the list with its filter, sort and pages, the detail, and the forms that
//! create, change and delete a row through the app's own API.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use prefiq_grammar::Operator;
use prefiq_runtime::catalog::{AppCatalog, EntityInfo};
use serde_json::Value;

use super::audit::{Activity, entries};
use super::{
    Admin, Field, Layout, Shared, SignedForm, Visitor, encode, forms, layout, message_page,
    not_allowed, not_found, plural_label, query_param, render,
};

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

/// A value as plain text: nothing for null, a list of texts joined with commas, JSON otherwise.
pub(super) fn plain_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The text of a value in a cell.
fn cell_text(value: &Value) -> String {
    let text = plain_text(value);
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

/// What a list page was asked for: a filter (field, operator, value) and a sort, kept in every
/// link the page makes.
struct ListRequest {
    filter_field: String,
    filter_op: String,
    filter_value: String,
    sort: String,
    cursor: Option<String>,
}

impl ListRequest {
    fn from_query(query: &Option<String>) -> ListRequest {
        let param = |name: &str| query_param(query, name).unwrap_or_default();
        ListRequest {
            filter_field: param("field"),
            filter_op: param("op"),
            filter_value: param("value"),
            sort: param("sort"),
            cursor: query_param(query, "cursor"),
        }
    }

    /// The query string of the API's list request: a page of 50 with its total.
    fn api_query(&self) -> String {
        let mut api_query = form_urlencoded::Serializer::new(String::new());
        api_query.append_pair("limit", "50");
        api_query.append_pair("count", "exact");
        if !self.sort.is_empty() {
            api_query.append_pair("sort", &self.sort);
        }
        if let Some(cursor) = &self.cursor {
            api_query.append_pair("cursor", cursor);
        }
        if !self.filter_field.is_empty() && !self.filter_value.is_empty() {
            let operator = Operator::parse(&self.filter_op).unwrap_or(Operator::Eq);
            api_query.append_pair(
                &self.filter_field,
                &filter_param(operator, &self.filter_value),
            );
        }
        api_query.finish()
    }

    /// The page's own query string with the filter kept and `extra` added.
    fn keep(&self, extra: &[(&str, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("field", &self.filter_field),
            ("op", &self.filter_op),
            ("value", &self.filter_value),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// The members a list shows as columns: the first seven that are neither objects nor the
/// version.
fn shown_members(admin: &Admin, app: &str, entity: &EntityInfo) -> Vec<String> {
    let model = admin.schema(app, entity.schemas[0]);
    model["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, s)| admin.resolve(app, s)["type"] != "object" && name.as_str() != "version")
        .map(|(name, _)| name.clone())
        .take(7)
        .collect()
}

pub(super) async fn list(
    State(admin): State<Shared>,
    visitor: Visitor,
    Path((app, plural)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((catalog, entity)) = entity(&admin, &app, &plural) else {
        return not_found();
    };
    let asked = ListRequest::from_query(&query);
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("{}?{}", entity.collection, asked.api_query()),
            None,
            None,
        )
        .await;
    let base = format!("/admin/{app}/{plural}");
    if reply.status == StatusCode::FORBIDDEN || reply.status == StatusCode::NOT_FOUND {
        return (reply.status, message_page("Not allowed", &reply.detail())).into_response();
    }
    let error = if reply.status.is_success() {
        String::new()
    } else {
        reply.detail()
    };
    let names = shown_members(&admin, &app, entity);
    let sortable: Vec<&str> = entity
        .table
        .columns
        .iter()
        .filter(|c| c.sortable)
        .map(|c| c.field)
        .collect();
    let columns = names
        .iter()
        .map(|name| Column {
            label: forms::field_label(entity.table, name),
            sort_href: if sortable.contains(&name.as_str()) {
                let next = if asked.sort == *name {
                    format!("-{name}")
                } else {
                    name.clone()
                };
                format!("{base}?{}", asked.keep(&[("sort", next)]))
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
            if !asked.sort.is_empty() {
                extra.push(("sort", asked.sort.clone()));
            }
            format!("{base}?{}", asked.keep(&extra))
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
        filter_field: asked.filter_field,
        filter_op: asked.filter_op,
        operators: Operator::ALL
            .into_iter()
            .map(|op| (op.name(), op.meaning().replace('`', "")))
            .collect(),
        filter_value: asked.filter_value,
        sort: asked.sort,
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

/// The row `id` of `entity` as the visitor may read it, or the page that says it is not there.
async fn fetch_row(
    admin: &Admin,
    visitor: &Visitor,
    entity: &EntityInfo,
    id: &str,
) -> Result<Value, Response> {
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("{}/{}", entity.collection, encode(id)),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return Err((reply.status, message_page("Not found", &reply.detail())).into_response());
    }
    Ok(reply.body)
}

pub(super) async fn detail(
    State(admin): State<Shared>,
    visitor: Visitor,
    Path((app, plural, id)): Path<(String, String, String)>,
) -> Response {
    let Some((catalog, entity)) = entity(&admin, &app, &plural) else {
        return not_found();
    };
    let row = match fetch_row(&admin, &visitor, entity, &id).await {
        Ok(row) => row,
        Err(page) => return page,
    };
    let members = row
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
        version: row["version"].to_string(),
        members,
        can_edit: !entity.read_only && admin.may(&visitor.principal, &app, entity.name, "update"),
        can_delete: !entity.read_only && admin.may(&visitor.principal, &app, entity.name, "delete"),
        // A platform operator's password is a platform operator's to set.
        password_form: app == "cortex"
            && entity.name == "User"
            && admin.may(&visitor.principal, &app, entity.name, "update")
            && (visitor.principal.operator || row["operator"] != Value::Bool(true)),
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

pub(super) async fn new_form(
    State(admin): State<Shared>,
    visitor: Visitor,
    Path((app, plural)): Path<(String, String)>,
) -> Response {
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

pub(super) async fn create(
    State(admin): State<Shared>,
    Path((app, plural)): Path<(String, String)>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
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

pub(super) async fn edit_form(
    State(admin): State<Shared>,
    visitor: Visitor,
    Path((app, plural, id)): Path<(String, String, String)>,
) -> Response {
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
    let row = match fetch_row(&admin, &visitor, entity, &id).await {
        Ok(row) => row,
        Err(page) => return page,
    };
    if !admin.may(&visitor.principal, &app, entity.name, "update") {
        return not_allowed(entity.name, "change");
    }
    let fields = forms::fields(&admin, &visitor.principal, &app, entity, &row).await;
    render(&FormPage {
        layout: layout(&admin, &visitor, &format!("Edit {}", entity.name)),
        action: format!("/admin/{app}/{plural}/{}/edit", encode(&id)),
        cancel: format!("/admin/{app}/{plural}/{}", encode(&id)),
        heading: format!("Edit {} {id}", entity.label),
        fields,
        errors: Vec::new(),
        version: row["version"].to_string(),
        conflict: false,
        csrf: visitor.session.csrf.clone(),
    })
}

pub(super) async fn update(
    State(admin): State<Shared>,
    Path((app, plural, id)): Path<(String, String, String)>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
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

pub(super) async fn delete(
    State(admin): State<Shared>,
    Path((app, plural, id)): Path<(String, String, String)>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let Some((_, entity)) = writable_entity(&admin, &app, &plural) else {
        return not_found();
    };
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
    (reply.status, message_page("Not deleted", &message)).into_response()
}
