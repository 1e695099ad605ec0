//! The audit log.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

use super::{Admin, Layout, Shared, Visitor, layout, query_param, render};

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<Activity>,
    next: String,
    filters: Vec<(String, String)>,
    error: String,
}

pub(super) async fn audit(
    State(admin): State<Shared>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Response {
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

/// A line of recent activity.
pub(super) struct Activity {
    pub(super) at: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) what: String,
    pub(super) href: String,
}

/// Audit entries the visitor may read, as `(lines, next cursor)`.
pub(super) async fn entries(
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
