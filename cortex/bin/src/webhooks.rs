//! Webhooks: every event a tenant's webhook subscribes to is POSTed to its URL as a Standard
//! Webhooks delivery (<https://www.standardwebhooks.com>): `webhook-id` (the event's id, the
//! same on every attempt), `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
//! HMAC-SHA256 of `id.timestamp.body` under each secret in use).
//!
//! - The dispatcher asks [`Webhooks`] (a [`FanOut`]) which webhooks of the event's tenant
//!   subscribe to it, and enqueues one [`Deliver`] job per webhook in its own transaction,
//!   keyed by the event and the webhook: each event is delivered once per webhook.
//! - A delivery is retried with the job queue's backoff; every attempt is recorded
//!   (`webhook_deliveries`: outcome, status, latency, the start of the answer). After
//!   [`WebhookSettings::failure_limit`] failures in a row the webhook is disabled, says why,
//!   and Cortex publishes `cortex.webhook_disabled` and an audit entry, so the tenant is told.
//! - No server-side request forgery: the URL's host is resolved once, every address it names
//!   must be public (not private, loopback, link-local, shared, multicast or reserved), and the
//!   request goes to the address that was checked; redirects are not followed. Tests allow
//!   loopback with [`WebhookSettings::allow_private`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::events::{Delivered, FanOut, NewJob};
use prefiq_runtime::jobs::{Failure, Job, JobContext, Registry};
use prefiq_runtime::{Db, Executor, SqlValue};
use serde_json::Value;

use crate::generated::webhook;

/// How webhooks are delivered.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Failed deliveries in a row after which a webhook is disabled.
    pub failure_limit: i32,
    /// Whether URLs may name private, loopback and link-local addresses (never in production).
    pub allow_private: bool,
    /// How long a receiver has to answer.
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            failure_limit: 10,
            allow_private: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The job that delivers one event to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
pub struct Deliver {
    /// The webhook.
    pub webhook_id: Uuid,
    /// The event, as it is sent.
    pub event: Delivered<Value>,
}

impl Job for Deliver {
    const KIND: &'static str = "webhook_delivery";
}

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random numbers");
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp`, under each of
/// `secrets` (`v1,<base64>` each, separated by spaces).
pub fn sign(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let engine = base64::engine::general_purpose::STANDARD;
    secrets
        .iter()
        .filter_map(|secret| {
            let key = engine
                .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
                .ok()?;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            Some(format!("v1,{}", engine.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a webhook subscribed to `patterns` receives events of `event_type`: a pattern is
/// the type itself, `app.*` (every event of an app) or `*`.
pub fn subscribes(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|pattern| {
        pattern == "*"
            || pattern == event_type
            || pattern
                .strip_suffix(".*")
                .is_some_and(|app| event_type.split('.').next() == Some(app))
    })
}

/// Why an address may not receive deliveries, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
            {
                Some("a reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("a private (unique local) address")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified()
                || v6.is_multicast()
                || first == 0x2001 && v6.segments()[1] == 0x0db8
            {
                Some("a reserved address")
            } else {
                None
            }
        }
    }
}

/// The webhooks' part of the dispatcher: which webhooks receive each event.
pub struct Webhooks;

impl FanOut for Webhooks {
    fn jobs<'a>(
        &'a self,
        db: &'a Db,
        tenant: Uuid,
        events: &'a [Delivered<Value>],
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Vec<NewJob>, prefiq_runtime::db::DbError>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let principal = Arc::new(prefiq_runtime::Principal::system(tenant));
            let mut tx = db.begin_read(&principal).await?;
            let sql = tx.pick(
                "SELECT id, events FROM webhooks WHERE tenant_id = $1 AND enabled",
                "SELECT id, events FROM webhooks WHERE tenant_id = ?1 AND enabled",
            );
            let rows = tx.fetch_all(sql, vec![SqlValue::Uuid(tenant)]).await?;
            tx.end_read();
            let mut hooks = Vec::new();
            for row in rows {
                let id: Uuid = row.req(0)?;
                let patterns: Vec<String> = row.req_json(1)?;
                hooks.push((id, patterns));
            }
            let mut jobs = Vec::new();
            for event in events {
                for (id, patterns) in &hooks {
                    if !subscribes(patterns, &event.event_type) {
                        continue;
                    }
                    let payload = serde_json::to_value(Deliver {
                        webhook_id: *id,
                        event: event.clone(),
                    })
                    .map_err(|e| prefiq_runtime::db::DbError::Internal(e.to_string()))?;
                    jobs.push(NewJob {
                        app: "cortex".into(),
                        kind: Deliver::KIND.into(),
                        payload,
                        unique_key: format!("webhook:{}:{id}", event.id),
                    });
                }
            }
            Ok(jobs)
        })
    }
}

/// Sends the event `event` to the webhook `hook` again, as a new delivery in `tx` (a
/// transaction of the webhook's tenant): the job's id. Refused when either is not the tenant's
/// (or the event is no longer kept), the webhook does not subscribe to it, or it is disabled.
pub async fn redeliver(
    tx: &mut prefiq_runtime::Tx,
    hook: Uuid,
    event: Uuid,
) -> Result<Uuid, prefiq_runtime::Problem> {
    use prefiq_runtime::Problem;
    let unavailable = |e: prefiq_runtime::db::DbError| Problem::unavailable(&e);
    let tenant = tx.principal().map(|p| p.tenant);
    let found = webhook::find(tx, &hook).await.map_err(unavailable)?;
    let found =
        found.ok_or_else(|| Problem::not_found(format!("no webhook has the id `{hook}`")))?;
    let delivered = prefiq_runtime::events::find(tx, event)
        .await
        .map_err(unavailable)?
        .filter(|e| Some(e.tenant) == tenant)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no event of this tenant has the id `{event}` (events are kept for 30 days)"
            ))
        })?;
    if !subscribes(&found.events, &delivered.event_type) {
        return Err(Problem::conflict(format!(
            "the webhook does not subscribe to `{}`",
            delivered.event_type
        )));
    }
    if !found.enabled {
        return Err(Problem::conflict(
            "the webhook is disabled: enable it, then send the event again",
        ));
    }
    let job = Deliver {
        webhook_id: found.id,
        event: delivered,
    };
    // Once while one waits: a second click sends nothing more.
    let options = prefiq_runtime::jobs::Options {
        unique_key: Some(format!("webhook:{event}:{hook}:again")),
        ..prefiq_runtime::jobs::Options::default()
    };
    prefiq_runtime::jobs::enqueue_with(tx, "cortex", &job, options)
        .await
        .map_err(unavailable)
}

/// `POST /api/cortex/webhooks/{id}/redeliver` with `{"event_id": …}`: [`redeliver`] as the
/// caller, who needs `cortex.webhook.update`; 202 with the delivery job's id.
pub fn api(db: Db) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/cortex/webhooks/{id}/redeliver",
            axum::routing::post(redeliver_route),
        )
        .with_state(db)
}

async fn redeliver_route(
    axum::extract::State(db): axum::extract::State<Db>,
    ctx: prefiq_runtime::RequestContext,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, axum::Json<Value>), prefiq_runtime::Problem> {
    use prefiq_runtime::Problem;
    ctx.principal.require("cortex.webhook.update")?;
    let hook: Uuid = id
        .parse()
        .map_err(|_| Problem::bad_request(format!("`{id}` is not a webhook id (a UUID)")))?;
    let event: Uuid = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| {
            b.get("event_id")
                .and_then(Value::as_str)
                .and_then(|e| e.parse().ok())
        })
        .ok_or_else(|| {
            Problem::bad_request("the body is `{\"event_id\": \"<the event's id>\"}`")
        })?;
    let mut tx = db
        .begin(&ctx.principal)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let job = redeliver(&mut tx, hook, event).await?;
    tx.commit().await.map_err(|e| Problem::unavailable(&e))?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"job_id": job})),
    ))
}

/// The handler of [`Deliver`] jobs, with `settings`.
pub fn jobs(settings: WebhookSettings) -> Registry {
    Registry::new().on(move |ctx: JobContext, job: Deliver| deliver(ctx, job, settings))
}

/// What one attempt came to.
struct Attempt {
    outcome: &'static str,
    status: Option<i32>,
    response: Option<String>,
}

async fn deliver(ctx: JobContext, job: Deliver, settings: WebhookSettings) -> Result<(), Failure> {
    let mut tx = ctx.db.begin_read(&ctx.principal).await?;
    let hook = webhook::find(&mut tx, &job.webhook_id).await?;
    tx.end_read();
    let Some(hook) = hook.filter(|h| h.enabled) else {
        return Ok(()); // deleted or disabled since: nothing to deliver
    };
    let body = serde_json::to_vec(&job.event).map_err(|e| Failure::Discard(e.to_string()))?;
    let now = prefiq_runtime::db::now();
    let mut secrets: Vec<&str> = hook.secret.iter().map(String::as_str).collect();
    if let (Some(previous), Some(until)) = (&hook.previous_secret, hook.previous_secret_until)
        && until > now
    {
        secrets.push(previous);
    }
    let id = job.event.id.to_string();
    let signature = sign(&secrets, &id, now.timestamp(), &body);
    let started = Instant::now();
    let attempt = post(&hook.url, &id, now.timestamp(), &signature, body, settings).await;
    let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);

    let mut tx = ctx.db.begin(&ctx.principal).await?;
    let sql = tx.pick(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, attempt, \
         outcome, status, latency_ms, response, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, attempt, \
         outcome, status, latency_ms, response, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    );
    tx.execute(
        sql,
        vec![
            SqlValue::Uuid(Uuid::now_v7()),
            SqlValue::Uuid(ctx.tenant),
            SqlValue::Uuid(hook.id),
            SqlValue::Uuid(job.event.id),
            SqlValue::Text(job.event.event_type.clone()),
            SqlValue::Int32(ctx.attempt),
            SqlValue::Text(attempt.outcome.to_owned()),
            attempt
                .status
                .map(SqlValue::Int32)
                .unwrap_or(SqlValue::Null(prefiq_runtime::meta::ColumnKind::Int32)),
            SqlValue::Int(latency),
            SqlValue::text(attempt.response.as_deref()),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await?;
    if attempt.outcome == "delivered" {
        let sql = tx.pick(
            "UPDATE webhooks SET failures = 0 WHERE id = $1 AND tenant_id = $2 AND failures <> 0",
            "UPDATE webhooks SET failures = 0 WHERE id = ?1 AND tenant_id = ?2 AND failures <> 0",
        );
        tx.execute(
            sql,
            vec![SqlValue::Uuid(hook.id), SqlValue::Uuid(ctx.tenant)],
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let why = attempt
        .response
        .clone()
        .unwrap_or_else(|| "the delivery failed".into());
    let sql = tx.pick(
        "UPDATE webhooks SET failures = failures + 1 WHERE id = $1 AND tenant_id = $2 RETURNING failures",
        "UPDATE webhooks SET failures = failures + 1 WHERE id = ?1 AND tenant_id = ?2 RETURNING failures",
    );
    let failures: i32 = match tx
        .fetch_optional(
            sql,
            vec![SqlValue::Uuid(hook.id), SqlValue::Uuid(ctx.tenant)],
        )
        .await?
    {
        Some(row) => row.req(0)?,
        None => 0,
    };
    if failures > settings.failure_limit {
        // Another delivery's failure disabled it already.
        tx.commit().await?;
        return Err(Failure::Discard(format!("the webhook is disabled: {why}")));
    }
    if failures == settings.failure_limit {
        let reason = format!(
            "disabled after {failures} failed deliveries in a row; the last: {}",
            why.chars().take(300).collect::<String>()
        );
        disable(&mut tx, &hook, &reason).await?;
        tx.commit().await?;
        return Err(Failure::Discard(reason));
    }
    tx.commit().await?;
    Err(Failure::Retry(why))
}

/// Disables `hook` with `reason`: recorded in the audit log and published as
/// `cortex.webhook_disabled`, so that the tenant hears of it.
async fn disable(
    tx: &mut prefiq_runtime::Tx,
    hook: &cortex_types::Webhook,
    reason: &str,
) -> Result<(), prefiq_runtime::db::DbError> {
    let sql = tx.pick(
        "UPDATE webhooks SET enabled = false, disabled_reason = $1, version = version + 1 WHERE id = $2",
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?1, version = version + 1 WHERE id = ?2",
    );
    tx.execute(
        sql,
        vec![SqlValue::Text(reason.to_owned()), SqlValue::Uuid(hook.id)],
    )
    .await?;
    let changes = serde_json::json!({
        "enabled": {"from": true, "to": false},
        "disabled_reason": {"from": hook.disabled_reason, "to": reason},
    });
    prefiq_runtime::audit::record(
        tx,
        &webhook::TABLE,
        prefiq_runtime::audit::Action::Update,
        &hook.id.to_string(),
        changes,
    )
    .await?;
    let disabled = cortex_types::WebhookDisabled::new(hook.id, hook.url.clone(), reason.to_owned());
    prefiq_runtime::events::publish(tx, "cortex", &disabled).await?;
    Ok(())
}

/// POSTs one delivery to `url`, after checking where it goes.
async fn post(
    url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: Vec<u8>,
    settings: WebhookSettings,
) -> Attempt {
    let refused = |why: String| Attempt {
        outcome: "refused",
        status: None,
        response: Some(why),
    };
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
        _ => return refused(format!("`{url}` is not an http(s) URL")),
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return refused(format!("`{url}` names no host"));
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host_name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addresses: Vec<SocketAddr> = match tokio::net::lookup_host((host_name.as_str(), port)).await
    {
        Ok(found) => found.collect(),
        Err(error) => return failed(None, format!("cannot resolve {host}: {error}")),
    };
    let Some(first) = addresses.first().copied() else {
        return failed(None, format!("{host} has no address"));
    };
    if !settings.allow_private {
        for address in &addresses {
            if let Some(why) = forbidden(address.ip()) {
                return refused(format!(
                    "{host} resolves to {}, {why}: webhooks reach public addresses only",
                    address.ip()
                ));
            }
        }
    }
    // The request goes to the address checked, not to a second lookup's answer.
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .resolve(&host_name, first)
        .build()
    {
        Ok(client) => client,
        Err(error) => return failed(None, error.to_string()),
    };
    let sent = client
        .post(parsed)
        .header("content-type", "application/json")
        .header("user-agent", "Prefiq-Cortex-Webhooks/1")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return failed(None, format!("no answer: {error}")),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(1000).collect();
    if status.is_success() {
        Attempt {
            outcome: "delivered",
            status: Some(i32::from(status.as_u16())),
            response: Some(excerpt),
        }
    } else if status.is_redirection() {
        failed(
            Some(status.as_u16()),
            format!("answered {status}: redirects are not followed"),
        )
    } else {
        failed(
            Some(status.as_u16()),
            format!("answered {status}: {excerpt}"),
        )
    }
}

fn failed(status: Option<u16>, why: String) -> Attempt {
    Attempt {
        outcome: "failed",
        status: status.map(i32::from),
        response: Some(why.chars().take(1000).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_receive_deliveries() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(forbidden(private.parse().unwrap()).is_some(), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert_eq!(forbidden(public.parse().unwrap()), None, "{public}");
        }
    }

    #[test]
    fn patterns_name_a_type_an_app_or_everything() {
        let patterns = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(subscribes(&patterns(&["crm.deal_won"]), "crm.deal_won"));
        assert!(subscribes(&patterns(&["crm.*"]), "crm.deal.created"));
        assert!(!subscribes(&patterns(&["crm.*"]), "crmx.deal.created"));
        assert!(subscribes(&patterns(&["*"]), "lms.course.deleted"));
        assert!(!subscribes(
            &patterns(&["crm.deal_won"]),
            "crm.deal.updated"
        ));
    }

    #[test]
    fn a_signature_is_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let signature = sign(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
