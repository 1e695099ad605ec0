//! The webhooks of the tenant the visitor acts in: each with its state, the latest delivery
//! attempts with the receiver's answer, and a button to send an event again. Read and written
//! through the API as the visitor, so its permissions and tenancy hold.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::rows::plain_text as text;
use super::{Admin, Layout, Shared, SignedForm, Visitor, layout, message_page, render};

/// The most delivery attempts listed.
const LISTED: usize = 50;

struct Hook {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    reason: String,
    failures: i64,
}

struct Attempt {
    webhook_id: String,
    url: String,
    event_id: String,
    event_type: String,
    attempt: i64,
    outcome: String,
    status: String,
    latency_ms: i64,
    response: String,
    at: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    hooks: Vec<Hook>,
    deliveries: Vec<Attempt>,
    may_send: bool,
    csrf: String,
    notice: String,
    error: String,
}

async fn page(admin: &Admin, visitor: &Visitor, notice: &str, error: &str) -> Response {
    if !admin.may(&visitor.principal, "cortex", "Webhook", "read") {
        return (
            StatusCode::FORBIDDEN,
            message_page(
                "Forbidden",
                "The webhooks are their tenant's administrators' (cortex.webhook.read).",
            ),
        )
            .into_response();
    }
    let listed = admin
        .call(
            &visitor.principal,
            Method::GET,
            "/api/cortex/webhooks?limit=200&sort=url",
            None,
            None,
        )
        .await;
    let attempts = admin
        .call(
            &visitor.principal,
            Method::GET,
            &format!("/api/cortex/webhook-deliveries?sort=-at&limit={LISTED}"),
            None,
            None,
        )
        .await;
    if !listed.status.is_success() || !attempts.status.is_success() {
        let why = if listed.status.is_success() {
            attempts.detail()
        } else {
            listed.detail()
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            message_page("Webhooks unavailable", &why),
        )
            .into_response();
    }
    let items =
        |reply: &super::super::Reply| reply.body["items"].as_array().cloned().unwrap_or_default();
    let hooks: Vec<Hook> = items(&listed)
        .iter()
        .map(|h| Hook {
            id: text(&h["id"]),
            url: text(&h["url"]),
            events: text(&h["events"]),
            enabled: h["enabled"] == json!(true),
            reason: text(&h["disabled_reason"]),
            failures: h["failures"].as_i64().unwrap_or(0),
        })
        .collect();
    let deliveries = items(&attempts)
        .iter()
        .map(|d| {
            let webhook_id = text(&d["webhook_id"]);
            Attempt {
                url: hooks
                    .iter()
                    .find(|h| h.id == webhook_id)
                    .map(|h| h.url.clone())
                    .unwrap_or_default(),
                webhook_id,
                event_id: text(&d["event_id"]),
                event_type: text(&d["event_type"]),
                attempt: d["attempt"].as_i64().unwrap_or(0),
                outcome: text(&d["outcome"]),
                status: text(&d["status"]),
                latency_ms: d["latency_ms"].as_i64().unwrap_or(0),
                response: text(&d["response"]).chars().take(200).collect(),
                at: text(&d["at"]).replace('T', " ").chars().take(19).collect(),
            }
        })
        .collect();
    render(&WebhooksPage {
        layout: layout(admin, visitor, "Webhooks"),
        hooks,
        deliveries,
        may_send: admin.may(&visitor.principal, "cortex", "Webhook", "update"),
        csrf: visitor.session.csrf.clone(),
        notice: notice.to_owned(),
        error: error.to_owned(),
    })
}

pub(super) async fn webhooks_page(State(admin): State<Shared>, visitor: Visitor) -> Response {
    page(&admin, &visitor, "", "").await
}

pub(super) async fn redeliver(
    State(admin): State<Shared>,
    Path(id): Path<prefiq_runtime::deps::uuid::Uuid>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let event = form
        .get("event_id")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let sent = admin
        .call(
            &visitor.principal,
            Method::POST,
            &format!("/api/cortex/webhooks/{id}/redeliver"),
            Some(&json!({"event_id": event})),
            None,
        )
        .await;
    if sent.status.is_success() {
        page(
            &admin,
            &visitor,
            "The event is on its way again; its attempt shows here once made.",
            "",
        )
        .await
    } else {
        let mut response = page(&admin, &visitor, "", &sent.detail()).await;
        if response.status().is_success() {
            *response.status_mut() = sent.status;
        }
        response
    }
}
