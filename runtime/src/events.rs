//! Events: what happened in an app, written to an outbox in the transaction of the write that
//! caused it, and delivered to subscribers as jobs, at least once.
//!
//! - Every generated write publishes `<app>.<entity>.created`, `.updated` or `.deleted`
//!   ([`EntityChange`] as its data); a service publishes the events its app declares with
//!   [`publish`]. A rolled-back write leaves no event.
//! - A [`Dispatcher`] claims the events not yet dispatched and, in the same transaction,
//!   enqueues one job per subscriber ([`crate::jobs::Registry::on_event`]) under the event's
//!   tenant, keyed by the event's id so that it is enqueued once. It claims rows by their state
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the one writer on SQLite), never by a position, so
//!   an event committed after a later one is never skipped.
//! - A subscriber receives a [`Delivered`] event: its id is the key to deduplicate effects by,
//!   since a job may run more than once.
//!
//! Under Cortex one dispatcher serves every installed app, so a subscriber in one app reacts to
//! another app's events without reading its tables.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use prefiq_check::Event;

use crate::auth::Principal;
use crate::db::{Db, DbError, Executor, Json, Row, SqlValue};
use crate::jobs::{Options, Subscription};

/// An event as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered<T> {
    /// Its id: the same however often it is delivered.
    pub id: Uuid,
    /// Its type, as in `crm.deal.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The app that published it.
    pub app: String,
    /// The tenant it happened in.
    pub tenant: Uuid,
    /// What it is about, as the id of an entity's row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When it was published.
    pub time: DateTime<Utc>,
    /// Its payload.
    pub data: T,
}

/// The data of an entity's `created`, `updated` and `deleted` events: the row before and after
/// the write (without its secret members).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityChange<M> {
    /// The row's key.
    pub id: String,
    /// The row before: absent for `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<M>,
    /// The row after: absent for `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<M>,
}

/// Publishes `event` of `app` in the transaction of `db`, under its caller's tenant; its id.
pub async fn publish<E: Event + Serialize>(
    db: &mut impl Executor,
    app: &str,
    event: &E,
) -> Result<Uuid, DbError> {
    let data = serde_json::to_value(event).map_err(|e| DbError::Internal(e.to_string()))?;
    publish_raw(db, app, None, E::TYPE, None, data).await
}

/// Publishes an event of `event_type` with `data` about `subject`, in the transaction of `db`,
/// under `tenant` (the caller's unless given: only a platform operator's transaction may
/// publish for another tenant on PostgreSQL); its id. Sent with the commit on PostgreSQL, so
/// publishing costs the request no round trip.
pub async fn publish_raw(
    db: &mut impl Executor,
    app: &str,
    tenant: Option<Uuid>,
    event_type: &str,
    subject: Option<&str>,
    data: Value,
) -> Result<Uuid, DbError> {
    let tenant = match tenant {
        Some(tenant) => tenant,
        None => db.principal().map(|p| p.tenant).ok_or_else(|| {
            DbError::Internal(
                "an event is published by a caller: begin the transaction with Db::begin".into(),
            )
        })?,
    };
    let id = Uuid::now_v7();
    let sql = db.pick(
        "INSERT INTO prefiq_events (id, tenant_id, app, type, subject, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "INSERT INTO prefiq_events (id, tenant_id, app, type, subject, data, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    );
    db.defer(
        sql,
        vec![
            SqlValue::Uuid(id),
            SqlValue::Uuid(tenant),
            SqlValue::Text(app.to_owned()),
            SqlValue::Text(event_type.to_owned()),
            SqlValue::text(subject),
            SqlValue::Json(data),
            SqlValue::DateTime(crate::db::now()),
        ],
    )
    .await?;
    Ok(id)
}

pub use prefiq_grammar::entity_event_type;

/// Where a dispatcher sends events of one type: a job of `kind` in `app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The app whose worker runs the subscriber.
    pub app: String,
    /// What it subscribes to.
    pub subscription: Subscription,
}

/// A job a [`FanOut`] wants enqueued for an event.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The app whose worker runs it.
    pub app: String,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: Value,
    /// Its unique key: what makes a second dispatch of the same event enqueue nothing.
    pub unique_key: String,
}

/// Jobs decided per event at dispatch time, beyond the subscribers' (a host's webhooks: one
/// delivery per subscribed URL). Given the events of one tenant, it reads what it needs as that
/// tenant (so row-level security holds) and returns the jobs, which the dispatcher enqueues in
/// its own transaction with the events' marks.
pub trait FanOut: Send + Sync {
    /// The jobs `events` (all of `tenant`) call for.
    fn jobs<'a>(
        &'a self,
        db: &'a Db,
        tenant: Uuid,
        events: &'a [Delivered<Value>],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<NewJob>, DbError>> + Send + 'a>>;
}

/// An event read from the outbox.
struct Pending {
    id: Uuid,
    tenant: Uuid,
    app: String,
    event_type: String,
    subject: Option<String>,
    data: Value,
    time: DateTime<Utc>,
}

impl Pending {
    fn delivered(&self) -> Delivered<Value> {
        Delivered {
            id: self.id,
            event_type: self.event_type.clone(),
            app: self.app.clone(),
            tenant: self.tenant,
            subject: self.subject.clone(),
            time: self.time,
            data: self.data.clone(),
        }
    }

    fn read(row: &Row) -> Result<Pending, DbError> {
        let Json(data) = row.req::<Json<Value>>(5)?;
        Ok(Pending {
            id: row.req(0)?,
            tenant: row.req(1)?,
            app: row.req(2)?,
            event_type: row.req(3)?,
            subject: row.opt(4)?,
            data,
            time: row.req(6)?,
        })
    }
}

/// Moves events from the outbox to their subscribers' queues.
pub struct Dispatcher {
    db: Db,
    /// The app whose events it dispatches; every app's when none (Cortex).
    source: Option<String>,
    routes: Vec<Route>,
    fan_outs: Vec<Arc<dyn FanOut>>,
    /// How long it waits before looking again when it found nothing.
    poll: Duration,
    /// How many events one transaction dispatches at most.
    batch: usize,
    system: Arc<Principal>,
}

impl Dispatcher {
    /// A dispatcher of the events of `source` (every app's when `None`) to `routes`.
    pub fn new(db: Db, source: Option<&str>, routes: Vec<Route>) -> Dispatcher {
        Dispatcher {
            db,
            source: source.map(str::to_owned),
            routes,
            fan_outs: Vec::new(),
            poll: Duration::from_millis(200),
            batch: 200,
            system: Arc::new(Principal::system(crate::auth::DEFAULT_TENANT)),
        }
    }

    /// The same, asking `fan_out` for more jobs per event.
    pub fn fanning_out(mut self, fan_out: Arc<dyn FanOut>) -> Dispatcher {
        self.fan_outs.push(fan_out);
        self
    }

    /// The same, looking for events every `poll` when it found none.
    pub fn polling(mut self, poll: Duration) -> Dispatcher {
        self.poll = poll;
        self
    }

    /// Dispatches until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let wait = match self.dispatch().await {
                Ok(n) if n >= self.batch => Duration::ZERO,
                Ok(_) => self.poll,
                Err(error) => {
                    tracing::warn!(%error, "dispatching events failed");
                    self.poll
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Dispatches one batch of pending events, each to every subscriber of its type, and marks
    /// them dispatched, in one transaction; how many events it dispatched.
    pub async fn dispatch(&self) -> Result<usize, DbError> {
        // SQLite has one writer: look before taking the write lock, so that an idle dispatcher
        // never makes a request's write wait.
        if self.db.dialect() == crate::db::Dialect::Sqlite && !self.anything_pending().await? {
            return Ok(0);
        }
        let mut tx = self.db.begin(&self.system).await?;
        let limit = SqlValue::Int(i64::try_from(self.batch).unwrap_or(i64::MAX));
        let rows = match &self.source {
            Some(app) => {
                let sql = tx.pick(
                    "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                     WHERE dispatched_at IS NULL AND app = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                     WHERE dispatched_at IS NULL AND app = ?1 ORDER BY id LIMIT ?2",
                );
                tx.fetch_all(sql, vec![SqlValue::Text(app.clone()), limit])
                    .await?
            }
            None => {
                let sql = tx.pick(
                    "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                     WHERE dispatched_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                    "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                     WHERE dispatched_at IS NULL ORDER BY id LIMIT ?1",
                );
                tx.fetch_all(sql, vec![limit]).await?
            }
        };
        let events = rows
            .iter()
            .map(Pending::read)
            .collect::<Result<Vec<_>, _>>()?;
        let now = crate::db::now();
        let mut jobs = Vec::new();
        for event in &events {
            for route in self
                .routes
                .iter()
                .filter(|r| r.subscription.event == event.event_type)
            {
                let payload = serde_json::to_value(event.delivered())
                    .map_err(|e| DbError::Internal(e.to_string()))?;
                jobs.push((
                    event.tenant,
                    NewJob {
                        app: route.app.clone(),
                        kind: route.subscription.kind.clone(),
                        payload,
                        unique_key: format!("event:{}:{}", event.id, route.subscription.kind),
                    },
                ));
            }
        }
        if !self.fan_outs.is_empty() {
            let mut tenants: Vec<Uuid> = events.iter().map(|e| e.tenant).collect();
            tenants.sort();
            tenants.dedup();
            for tenant in tenants {
                let of_tenant: Vec<Delivered<Value>> = events
                    .iter()
                    .filter(|e| e.tenant == tenant)
                    .map(Pending::delivered)
                    .collect();
                for fan_out in &self.fan_outs {
                    for job in fan_out.jobs(&self.db, tenant, &of_tenant).await? {
                        jobs.push((tenant, job));
                    }
                }
            }
        }
        for (tenant, job) in jobs {
            let options = Options {
                unique_key: Some(job.unique_key),
                ..Options::default()
            };
            crate::jobs::insert(&mut tx, tenant, &job.app, &job.kind, job.payload, options).await?;
        }
        for event in &events {
            let sql = tx.pick(
                "UPDATE prefiq_events SET dispatched_at = $1 WHERE id = $2",
                "UPDATE prefiq_events SET dispatched_at = ?1 WHERE id = ?2",
            );
            tx.defer(sql, vec![SqlValue::DateTime(now), SqlValue::Uuid(event.id)])
                .await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    async fn anything_pending(&self) -> Result<bool, DbError> {
        let mut tx = self.db.begin_read(&self.system).await?;
        let found = match &self.source {
            Some(app) => {
                let sql = tx.pick(
                    "SELECT 1 FROM prefiq_events WHERE dispatched_at IS NULL AND app = $1 LIMIT 1",
                    "SELECT 1 FROM prefiq_events WHERE dispatched_at IS NULL AND app = ?1 LIMIT 1",
                );
                tx.fetch_optional(sql, vec![SqlValue::Text(app.clone())])
                    .await?
            }
            None => {
                let sql = tx.pick(
                    "SELECT 1 FROM prefiq_events WHERE dispatched_at IS NULL LIMIT 1",
                    "SELECT 1 FROM prefiq_events WHERE dispatched_at IS NULL LIMIT 1",
                );
                tx.fetch_optional(sql, Vec::new()).await?
            }
        };
        tx.end_read();
        Ok(found.is_some())
    }
}

/// Deletes the dispatched events published more than `days` days ago; how many.
pub async fn prune(db: &Db, days: u32) -> Result<u64, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let cutoff = crate::db::now() - chrono::Duration::days(i64::from(days.max(1)));
    let mut tx = db.begin(&system).await?;
    let sql = tx.pick(
        "DELETE FROM prefiq_events WHERE dispatched_at IS NOT NULL AND created_at < $1",
        "DELETE FROM prefiq_events WHERE dispatched_at IS NOT NULL AND created_at < ?1",
    );
    let deleted = tx.execute(sql, vec![SqlValue::DateTime(cutoff)]).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// The event `id` as the caller of `db` may see it (on PostgreSQL, row-level security keeps a
/// tenant's transaction to its own events), while it is kept.
pub async fn find(db: &mut impl Executor, id: Uuid) -> Result<Option<Delivered<Value>>, DbError> {
    let sql = db.pick(
        "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events WHERE id = $1",
        "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events WHERE id = ?1",
    );
    let row = db.fetch_optional(sql, vec![SqlValue::Uuid(id)]).await?;
    row.map(|row| Pending::read(&row).map(|e| e.delivered()))
        .transpose()
}

/// The first `limit` events of `app` (every app's when `None`), oldest first: what an operator
/// or a test reads.
pub async fn list(
    db: &Db,
    app: Option<&str>,
    limit: usize,
) -> Result<Vec<Delivered<Value>>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let limit = SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = match app {
        Some(app) => {
            let sql = tx.pick(
                "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                 WHERE app = $1 ORDER BY id LIMIT $2",
                "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                 WHERE app = ?1 ORDER BY id LIMIT ?2",
            );
            tx.fetch_all(sql, vec![SqlValue::Text(app.to_owned()), limit])
                .await?
        }
        None => {
            let sql = tx.pick(
                "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                 ORDER BY id LIMIT $1",
                "SELECT id, tenant_id, app, type, subject, data, created_at FROM prefiq_events \
                 ORDER BY id LIMIT ?1",
            );
            tx.fetch_all(sql, vec![limit]).await?
        }
    };
    tx.end_read();
    rows.iter()
        .map(|row| Pending::read(row).map(|e| e.delivered()))
        .collect()
}
