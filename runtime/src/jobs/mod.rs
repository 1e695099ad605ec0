//! The job queue: work that runs after the request that asked for it, on the database the app
//! already has (PostgreSQL or SQLite), so nothing else must run.
//!
//! - [`enqueue`] writes a job in the caller's transaction: a rolled-back write leaves no job.
//!   On PostgreSQL the insert goes with the commit, so enqueueing adds no round trip.
//! - A [`Worker`] claims due jobs of its app's queues (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
//!   on SQLite one writer claims at a time), runs each under its tenant, and holds it under a
//!   lease it renews while the job runs. A job whose worker died is claimed again once its
//!   lease runs out: within one lease, never hours later.
//! - A failed job is retried after an exponential backoff with jitter, up to its maximum
//!   number of attempts; then it is discarded, with every attempt's error kept, and
//!   [`retry`] runs it again (the dead letters).
//! - A job with a unique key is enqueued once among the jobs of that key not yet finished
//!   (a unique index decides, so concurrent enqueues cannot race past it).
//! - Stopping a worker ([`Worker::run`]'s shutdown) claims nothing more, lets running jobs
//!   finish within a grace period, and gives back those that did not.
//!
//! - [`Registry::cron`] enqueues a job at every tick of a cron expression, once per tick
//!   however many workers run ([`cron`]).
//!
//! The rows live in `prefiq_jobs` ([`crate::migrate::MIGRATIONS`]); on PostgreSQL row-level
//! security keeps each tenant's transactions to their own jobs, and workers act as the platform.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

mod cron;

pub use cron::CronError;

use crate::auth::Principal;
use crate::db::{Db, DbError, Executor, Json, Row, SqlValue};

/// A kind of job: its payload, and the name it is stored under.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The name jobs of this kind are stored under, unique in the app (`send_invoice`).
    const KIND: &'static str;
}

/// How a job is enqueued.
#[derive(Debug, Clone)]
pub struct Options {
    /// Its queue (`default` unless set): each queue has its own concurrency.
    pub queue: String,
    /// A key that at most one unfinished job of the app and tenant holds: enqueueing another
    /// while one waits or runs enqueues nothing.
    pub unique_key: Option<String>,
    /// When it may run first (now unless set).
    pub run_at: Option<DateTime<Utc>>,
    /// How many times it runs before it is discarded.
    pub max_attempts: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: DEFAULT_QUEUE.to_owned(),
            unique_key: None,
            run_at: None,
            max_attempts: 20,
        }
    }
}

/// The queue a job goes to unless its options name another.
pub const DEFAULT_QUEUE: &str = "default";

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its time (`run_at`) and a worker.
    Available,
    /// Claimed by a worker, under a lease.
    Running,
    /// Done.
    Completed,
    /// Failed on its last attempt, or its handler gave up: a dead letter, kept with its errors.
    Discarded,
    /// Cancelled before it ran.
    Cancelled,
}

impl State {
    /// The state named `name` (`available`, `running`, ...).
    pub fn parse(name: &str) -> Option<State> {
        [
            State::Available,
            State::Running,
            State::Completed,
            State::Discarded,
            State::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::Running => "running",
            State::Completed => "completed",
            State::Discarded => "discarded",
            State::Cancelled => "cancelled",
        }
    }
}

/// Enqueues `job` for `app` in the transaction of `db`, under its caller's tenant, with the
/// default options; the job's id.
pub async fn enqueue<J: Job>(db: &mut impl Executor, app: &str, job: &J) -> Result<Uuid, DbError> {
    enqueue_with(db, app, job, Options::default()).await
}

/// Enqueues `job` like [`enqueue`], with `options`. With a unique key that an unfinished job
/// holds already, nothing is enqueued (the id returned is then no job's).
pub async fn enqueue_with<J: Job>(
    db: &mut impl Executor,
    app: &str,
    job: &J,
    options: Options,
) -> Result<Uuid, DbError> {
    let payload = serde_json::to_value(job).map_err(|e| DbError::Internal(e.to_string()))?;
    enqueue_raw(db, app, J::KIND, payload, options).await
}

/// Enqueues a job of `kind` with a JSON `payload`: what [`enqueue`] does, for kinds not known
/// at compile time.
pub async fn enqueue_raw(
    db: &mut impl Executor,
    app: &str,
    kind: &str,
    payload: Value,
    options: Options,
) -> Result<Uuid, DbError> {
    let tenant = db.principal().map(|p| p.tenant).ok_or_else(|| {
        DbError::Internal(
            "a job is enqueued for a caller: begin the transaction with Db::begin".into(),
        )
    })?;
    insert(db, tenant, app, kind, payload, options).await
}

/// Enqueues a job like [`enqueue_raw`], under `tenant`.
pub(crate) async fn insert(
    db: &mut impl Executor,
    tenant: Uuid,
    app: &str,
    kind: &str,
    payload: Value,
    options: Options,
) -> Result<Uuid, DbError> {
    if options.max_attempts < 1 {
        return Err(DbError::Internal(
            "a job runs at least once: max_attempts ≥ 1".into(),
        ));
    }
    let id = Uuid::now_v7();
    let now = crate::db::now();
    let sql = db.pick(
        "INSERT INTO prefiq_jobs (id, tenant_id, app, queue, kind, payload, state, unique_key, \
         max_attempts, run_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'available', $7, $8, $9, $10) \
         ON CONFLICT (app, tenant_id, unique_key) \
         WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING",
        "INSERT INTO prefiq_jobs (id, tenant_id, app, queue, kind, payload, state, unique_key, \
         max_attempts, run_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'available', ?7, ?8, ?9, ?10) \
         ON CONFLICT (app, tenant_id, unique_key) \
         WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING",
    );
    // Sent with the commit on PostgreSQL: enqueueing costs the request no round trip.
    db.defer(
        sql,
        vec![
            SqlValue::Uuid(id),
            SqlValue::Uuid(tenant),
            SqlValue::Text(app.to_owned()),
            SqlValue::Text(options.queue),
            SqlValue::Text(kind.to_owned()),
            SqlValue::Json(payload),
            SqlValue::text(options.unique_key.as_ref()),
            SqlValue::Int32(options.max_attempts),
            SqlValue::DateTime(options.run_at.unwrap_or(now)),
            SqlValue::DateTime(now),
        ],
    )
    .await?;
    Ok(id)
}

/// Why a job's run did not complete it.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// It failed: run it again after a backoff, unless that was its last attempt.
    Retry(String),
    /// It can never succeed: discard it now, whatever attempts remain.
    Discard(String),
    /// Not now: run it again after this long, without counting this run as an attempt.
    Snooze(Duration),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Retry(error.to_string())
    }
}

/// What a job's handler is given besides its payload.
#[derive(Clone)]
pub struct JobContext {
    /// The job's id: the key to deduplicate its effects by (it may run more than once).
    pub id: Uuid,
    /// Its kind.
    pub kind: String,
    /// This run's number, from 1.
    pub attempt: i32,
    /// The tenant it was enqueued under.
    pub tenant: Uuid,
    /// The server acting in that tenant: begin transactions with it (`db.begin(&ctx.principal)`).
    pub principal: Arc<Principal>,
    /// The database.
    pub db: Db,
}

type Run = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;
type Handler = Arc<dyn Fn(JobContext, Value) -> Run + Send + Sync>;

/// An app's subscriber to a type of event: the job kind its deliveries run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The event's type, as in `crm.deal.created`.
    pub event: String,
    /// The kind of the jobs that deliver it: `event:` and the subscriber's name.
    pub kind: String,
}

/// The handlers of an app's job kinds, its cron schedules and its subscribers to events.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
    crons: Vec<cron::Cron>,
    subscriptions: Vec<Subscription>,
}

impl Registry {
    /// No handlers.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Runs jobs of kind `J` with `handler`.
    pub fn on<J, F, Fut>(mut self, handler: F) -> Registry
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let run: Handler = Arc::new(move |ctx, payload| {
            let handler = handler.clone();
            Box::pin(async move {
                // A payload its kind cannot read never will: no retry helps.
                let job: J = serde_json::from_value(payload).map_err(|e| {
                    Failure::Discard(format!("the payload is not a {}: {e}", J::KIND))
                })?;
                handler(ctx, job).await
            })
        });
        self.handlers.insert(J::KIND.to_owned(), run);
        self
    }

    /// Runs `handler` for every event of type `E` (of any app under the same host), as a job of
    /// this app under the event's tenant: at least once, so `handler` deduplicates its effects
    /// by the event's id. `name` names the subscriber, unique in the app.
    pub fn on_event<E, F, Fut>(self, name: &str, handler: F) -> Registry
    where
        E: crate::events::Event + DeserializeOwned + Send + 'static,
        F: Fn(JobContext, crate::events::Delivered<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        self.on_event_type(E::TYPE, name, handler)
    }

    /// Runs `handler` for every event of `event_type`, its data read as `T`: what
    /// [`Registry::on_event`] does for types named at run time, as an entity's events
    /// (`crm.deal.created`, with [`crate::events::EntityChange`] data).
    pub fn on_event_type<T, F, Fut>(mut self, event_type: &str, name: &str, handler: F) -> Registry
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(JobContext, crate::events::Delivered<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        let kind = format!("event:{name}");
        let handler = Arc::new(handler);
        let event = event_type.to_owned();
        let run: Handler = Arc::new(move |ctx, payload| {
            let handler = handler.clone();
            let event = event.clone();
            Box::pin(async move {
                let delivered: crate::events::Delivered<T> = serde_json::from_value(payload)
                    .map_err(|e| Failure::Discard(format!("the event is not a {event}: {e}")))?;
                handler(ctx, delivered).await
            })
        });
        self.handlers.insert(kind.clone(), run);
        self.subscriptions.retain(|s| s.kind != kind);
        self.subscriptions.push(Subscription {
            event: event_type.to_owned(),
            kind,
        });
        self
    }

    /// Its subscribers to events.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Enqueues `job` at every tick of `expression`, a cron expression of five fields as in
    /// crontab (`*/15 * * * *`: every quarter hour) or six with seconds first, in UTC. The
    /// schedule is `name`'s, unique in the app; each tick enqueues one job however many
    /// workers run.
    pub fn cron<J: Job>(
        mut self,
        name: &str,
        expression: &str,
        job: J,
    ) -> Result<Registry, CronError> {
        let cron = cron::Cron::new(name, expression, &job)?;
        self.crons.retain(|c| c.name != cron.name);
        self.crons.push(cron);
        Ok(self)
    }

    /// The handlers and schedules of both (`other`'s win where both name one).
    pub fn merge(mut self, other: Registry) -> Registry {
        self.handlers.extend(other.handlers);
        for subscription in other.subscriptions {
            self.subscriptions.retain(|s| s.kind != subscription.kind);
            self.subscriptions.push(subscription);
        }
        for cron in other.crons {
            self.crons.retain(|c| c.name != cron.name);
            self.crons.push(cron);
        }
        self
    }

    /// The same, with the runtime's own jobs: the hourly expiry of idempotency keys, and the
    /// daily deletion of dispatched events older than [`EVENT_RETENTION_DAYS`].
    pub fn with_runtime_jobs(self) -> Registry {
        let registry = self
            .on(|ctx: JobContext, _: ExpireIdempotencyKeys| async move {
                crate::idempotency::expire(&ctx.db).await?;
                Ok(())
            })
            .on(|ctx: JobContext, _: PruneEvents| async move {
                crate::events::prune(&ctx.db, EVENT_RETENTION_DAYS).await?;
                Ok(())
            });
        let scheduled = registry
            .clone()
            .cron(
                "prefiq-expire-idempotency-keys",
                "17 * * * *",
                ExpireIdempotencyKeys {},
            )
            .and_then(|r| r.cron("prefiq-prune-events", "41 3 * * *", PruneEvents {}));
        match scheduled {
            Ok(registry) => registry,
            Err(error) => {
                tracing::error!(%error, "the runtime's own schedule is invalid");
                registry
            }
        }
    }

    /// Its cron schedules: each one's name, expression, the kind of job it enqueues and its
    /// next tick after `at`.
    pub fn schedules(&self, at: DateTime<Utc>) -> Vec<ScheduleInfo> {
        self.crons
            .iter()
            .map(|c| ScheduleInfo {
                name: c.name.clone(),
                expression: c.expression.clone(),
                kind: c.kind().to_owned(),
                next: c.next_after(at),
            })
            .collect()
    }

    /// The kinds it has handlers for.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<_> = self.handlers.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }
}

/// The runtime's job that deletes expired idempotency keys ([`crate::idempotency::expire`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ExpireIdempotencyKeys {}

impl Job for ExpireIdempotencyKeys {
    const KIND: &'static str = "prefiq_expire_idempotency_keys";
}

/// How long dispatched events stay in the outbox.
pub const EVENT_RETENTION_DAYS: u32 = 30;

/// The runtime's job that deletes old dispatched events ([`crate::events::prune`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PruneEvents {}

impl Job for PruneEvents {
    const KIND: &'static str = "prefiq_prune_events";
}

/// How a [`Worker`] works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in the jobs it claims (unique per process: a random suffix is added).
    pub name: String,
    /// The queues it claims from, each with how many of its jobs run at once.
    pub queues: Vec<(String, usize)>,
    /// How long a claimed job is its own without a heartbeat; renewed every third of it.
    pub lease: Duration,
    /// How long it waits before looking again when it found nothing to do.
    pub poll: Duration,
    /// How long running jobs may take to finish after shutdown, before they are given back.
    pub grace: Duration,
    /// The first retry's delay; each later one doubles it (plus up to a quarter of jitter).
    pub backoff: Duration,
    /// The longest delay before a retry.
    pub max_backoff: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            name: "worker".into(),
            queues: vec![(DEFAULT_QUEUE.to_owned(), 10)],
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            grace: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// The delay before attempt `attempt + 1` after attempt `attempt` failed: `base` doubled for
/// each attempt after the first, at most `max`, plus up to a quarter more at random so that
/// jobs that failed together do not retry together.
pub fn backoff(attempt: i32, base: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let delay = base.saturating_mul(1u32 << doublings).min(max);
    let random = (Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
    delay + delay.mul_f64(random / 4.0)
}

/// A claimed job.
struct Claimed {
    id: Uuid,
    tenant: Uuid,
    kind: String,
    payload: Value,
    attempt: i32,
    max_attempts: i32,
}

impl Claimed {
    fn read(row: &Row) -> Result<Claimed, DbError> {
        let Json(payload) = row.req::<Json<Value>>(3)?;
        Ok(Claimed {
            id: row.req(0)?,
            tenant: row.req(1)?,
            kind: row.req(2)?,
            payload,
            attempt: row.req(4)?,
            max_attempts: row.req(5)?,
        })
    }
}

/// Runs an app's jobs.
pub struct Worker {
    db: Db,
    app: String,
    registry: Arc<Registry>,
    options: WorkerOptions,
    /// The platform, for what the worker itself reads and writes.
    system: Arc<Principal>,
    name: String,
    /// Where jobs that completed are sent, to be recorded together ([`Worker::record_completions`]).
    completions: tokio::sync::mpsc::UnboundedSender<Completion>,
    completed: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Completion>>>,
    /// Bumped whenever PostgreSQL says the app has new jobs: idle queues look again at once.
    woken: tokio::sync::watch::Sender<u64>,
}

/// The channel new jobs are announced on (the app as payload; migration 0007).
pub const CHANNEL: &str = "prefiq_jobs";

/// A job that completed, and where to say once that is recorded.
type Completion = (Uuid, tokio::sync::oneshot::Sender<Result<(), DbError>>);

/// The most completions recorded in one transaction.
const COMPLETIONS_PER_TRANSACTION: usize = 256;

impl Worker {
    /// A worker for `app`'s jobs on `db`, with the handlers of `registry`.
    pub fn new(db: Db, app: &str, registry: Registry, options: WorkerOptions) -> Worker {
        let name = format!(
            "{}-{}",
            options.name,
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let (completions, completed) = tokio::sync::mpsc::unbounded_channel();
        Worker {
            db,
            app: app.to_owned(),
            registry: Arc::new(registry),
            options,
            system: Arc::new(Principal::system(crate::auth::DEFAULT_TENANT)),
            name,
            completions,
            completed: std::sync::Mutex::new(Some(completed)),
            woken: tokio::sync::watch::channel(0).0,
        }
    }

    /// Its name, as the jobs it claims record it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Works until `shutdown` resolves, then claims nothing more, lets running jobs finish
    /// within the grace period and gives back the rest.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let worker = Arc::new(self);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut queues = tokio::task::JoinSet::new();
        if !worker.registry.crons.is_empty() {
            queues.spawn(cron::follow(
                worker.db.clone(),
                worker.app.clone(),
                worker.registry.crons.clone(),
                worker.system.clone(),
                stopped.clone(),
            ));
        }
        for (queue, concurrency) in worker.options.queues.clone() {
            let worker = worker.clone();
            let stopped = stopped.clone();
            queues
                .spawn(async move { worker.work_queue(queue, concurrency.max(1), stopped).await });
        }
        let completed = worker.completed.lock().ok().and_then(|mut c| c.take());
        let listener = {
            let worker = worker.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move { worker.listen(stopped).await })
        };
        let (done, finishing) = tokio::sync::watch::channel(false);
        let recorder = completed.map(|completed| {
            let worker = worker.clone();
            tokio::spawn(async move { worker.record_completions(completed, finishing).await })
        });
        shutdown.await;
        let _ = stop.send(true);
        while queues.join_next().await.is_some() {}
        listener.abort();
        // Every job has its end recorded by now; the recorder stops.
        let _ = done.send(true);
        if let Some(recorder) = recorder {
            let _ = recorder.await;
        }
    }

    /// On PostgreSQL, wakes the idle queues whenever the app's new jobs are announced, over a
    /// connection of its own, listening again a second after it is lost; until stopped.
    async fn listen(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.db.listen(CHANNEL).await {
                None => return, // SQLite: the queues poll.
                Some(Ok(mut announced)) => loop {
                    tokio::select! {
                        app = announced.recv() => match app {
                            Some(app) if app == self.app => {
                                self.woken.send_modify(|n| *n = n.wrapping_add(1));
                            }
                            Some(_) => {}
                            None => break,
                        },
                        _ = stopped.changed() => return,
                    }
                },
                Some(Err(error)) => {
                    tracing::warn!(app = %self.app, %error, "listening for new jobs failed; polling");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.changed() => return,
            }
        }
    }

    /// Records completed jobs as they come, many in one transaction: a busy worker spends one
    /// transaction (one round trip on PostgreSQL) on a batch rather than on each job.
    async fn record_completions(
        &self,
        mut completed: tokio::sync::mpsc::UnboundedReceiver<Completion>,
        mut done: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut batch: Vec<Completion> = Vec::new();
        loop {
            let first = tokio::select! {
                next = completed.recv() => next,
                _ = done.wait_for(|d| *d) => completed.try_recv().ok(),
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < COMPLETIONS_PER_TRANSACTION {
                match completed.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let recorded = self.complete(batch.iter().map(|(id, _)| *id)).await;
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(match &recorded {
                    Ok(()) => Ok(()),
                    Err(error) => Err(DbError::Internal(error.to_string())),
                });
            }
        }
    }

    /// Marks `ids` completed, in one transaction, where this worker still holds them.
    async fn complete(&self, ids: impl Iterator<Item = Uuid>) -> Result<(), DbError> {
        let now = crate::db::now();
        let mut tx = self.db.begin(&self.system).await?;
        for id in ids {
            let sql = tx.pick(
                "UPDATE prefiq_jobs SET state = 'completed', finished_at = $3, lease_until = NULL \
                 WHERE id = $1 AND worker = $2 AND state = 'running'",
                "UPDATE prefiq_jobs SET state = 'completed', finished_at = ?3, lease_until = NULL \
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
            );
            tx.defer(
                sql,
                vec![
                    SqlValue::Uuid(id),
                    SqlValue::Text(self.name.clone()),
                    SqlValue::DateTime(now),
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Claims and runs the jobs of one queue, at most `concurrency` at once, until stopped.
    async fn work_queue(
        self: Arc<Self>,
        queue: String,
        concurrency: usize,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut running = tokio::task::JoinSet::new();
        // The jobs of this queue whose handlers have not returned: what is given back if the
        // grace period ends first (a job whose handler returned has its end recorded instead).
        let unfinished: Unfinished = Arc::default();
        let mut woken = self.woken.subscribe();
        loop {
            if *stopped.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self.claim(&queue, free).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(app = %self.app, queue, %error, "claiming jobs failed");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for job in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let worker = self.clone();
                let unfinished = unfinished.clone();
                running.spawn(async move { worker.run_job(job, permit, unfinished).await });
            }
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(self.options.poll) => {}
                    // New jobs announced (PostgreSQL): look now, not at the next poll.
                    _ = woken.changed() => {}
                    _ = stopped.changed() => {}
                }
            } else if slots.available_permits() == 0 {
                // Every slot busy: claim again once one is free, after letting the jobs that
                // are about to end end too (a claim is a transaction: one for many jobs rather
                // than one per job).
                tokio::select! {
                    permit = slots.clone().acquire_owned() => drop(permit),
                    _ = stopped.changed() => {}
                }
                for _ in 0..16 {
                    if slots.available_permits() * 2 >= concurrency {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        // Stopped: the running jobs get the grace period; what is left is given back.
        let finished = tokio::time::timeout(self.options.grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            running.abort_all();
            while running.join_next().await.is_some() {}
            let left: Vec<Uuid> = unfinished
                .lock()
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default();
            if let Err(error) = self.give_back(&left).await {
                tracing::warn!(app = %self.app, %error, "giving back unfinished jobs failed");
            }
        }
    }

    /// Claims at most `limit` due jobs of `queue`, and jobs of it whose lease ran out; first
    /// discards the jobs whose lease ran out on their last attempt.
    async fn claim(&self, queue: &str, limit: usize) -> Result<Vec<Claimed>, DbError> {
        // SQLite has one writer: an idle worker looks before it takes the write lock, so that
        // polling an empty queue never makes a request's write wait.
        if self.db.dialect() == crate::db::Dialect::Sqlite && !self.anything_due(queue).await? {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin(&self.system).await?;
        // The time once the transaction is ours (on SQLite, once the write lock is): a lease
        // starts when the claim can commit, not when it began to wait.
        let now = crate::db::now();
        let lease_until = now + chrono::Duration::from_std(self.options.lease).unwrap_or_default();
        let expired = tx.pick(
            "UPDATE prefiq_jobs SET state = 'discarded', finished_at = $1, lease_until = NULL, \
             errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', $1::text, \
             'error', 'its worker stopped before it finished (lease expired)')) \
             WHERE app = $2 AND queue = $3 AND state = 'running' AND lease_until < $1 \
             AND attempt >= max_attempts",
            "UPDATE prefiq_jobs SET state = 'discarded', finished_at = ?1, lease_until = NULL, \
             errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'at', ?1, \
             'error', 'its worker stopped before it finished (lease expired)')) \
             WHERE app = ?2 AND queue = ?3 AND state = 'running' AND lease_until < ?1 \
             AND attempt >= max_attempts",
        );
        tx.defer(
            expired,
            vec![
                SqlValue::DateTime(now),
                SqlValue::Text(self.app.clone()),
                SqlValue::Text(queue.to_owned()),
            ],
        )
        .await?;
        // Due jobs and jobs whose lease ran out, each read in index order (one condition on
        // `state` apiece: an `OR` of the two would make the database sort every due job).
        let claim = tx.pick(
            "WITH due AS (SELECT id FROM prefiq_jobs WHERE app = $3 AND queue = $4 \
             AND state = 'available' AND run_at <= $5 ORDER BY run_at, id LIMIT $6 FOR UPDATE SKIP LOCKED), \
             expired AS (SELECT id FROM prefiq_jobs WHERE app = $3 AND queue = $4 \
             AND state = 'running' AND lease_until < $5 ORDER BY run_at, id LIMIT $6 FOR UPDATE SKIP LOCKED) \
             UPDATE prefiq_jobs SET state = 'running', attempt = attempt + 1, lease_until = $1, worker = $2 \
             WHERE id IN (SELECT id FROM (SELECT id FROM expired UNION ALL SELECT id FROM due) c LIMIT $6) \
             RETURNING id, tenant_id, kind, payload, attempt, max_attempts",
            "UPDATE prefiq_jobs SET state = 'running', attempt = attempt + 1, lease_until = ?1, worker = ?2 \
             WHERE id IN (SELECT id FROM (SELECT id FROM (SELECT id FROM prefiq_jobs WHERE app = ?3 AND queue = ?4 \
             AND state = 'running' AND lease_until < ?5 ORDER BY run_at, id LIMIT ?6) \
             UNION ALL SELECT id FROM (SELECT id FROM prefiq_jobs WHERE app = ?3 AND queue = ?4 \
             AND state = 'available' AND run_at <= ?5 ORDER BY run_at, id LIMIT ?6)) LIMIT ?6) \
             RETURNING id, tenant_id, kind, payload, attempt, max_attempts",
        );
        let rows = tx
            .fetch_all(
                claim,
                vec![
                    SqlValue::DateTime(lease_until),
                    SqlValue::Text(self.name.clone()),
                    SqlValue::Text(self.app.clone()),
                    SqlValue::Text(queue.to_owned()),
                    SqlValue::DateTime(now),
                    SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                ],
            )
            .await?;
        tx.commit().await?;
        rows.iter().map(Claimed::read).collect()
    }

    /// Whether `queue` holds a job to claim now (read only).
    async fn anything_due(&self, queue: &str) -> Result<bool, DbError> {
        let now = crate::db::now();
        let mut tx = self.db.begin_read(&self.system).await?;
        let probe = tx.pick(
            "SELECT 1 FROM prefiq_jobs WHERE app = $1 AND queue = $2 \
             AND ((state = 'available' AND run_at <= $3) OR (state = 'running' AND lease_until < $3)) LIMIT 1",
            "SELECT 1 FROM prefiq_jobs WHERE app = ?1 AND queue = ?2 \
             AND ((state = 'available' AND run_at <= ?3) OR (state = 'running' AND lease_until < ?3)) LIMIT 1",
        );
        let due = tx
            .fetch_optional(
                probe,
                vec![
                    SqlValue::Text(self.app.clone()),
                    SqlValue::Text(queue.to_owned()),
                    SqlValue::DateTime(now),
                ],
            )
            .await?;
        tx.end_read();
        Ok(due.is_some())
    }

    /// Runs one claimed job under its tenant, renewing its lease while it runs, and records how
    /// it ended.
    /// Runs `job` in its slot (`permit`), which is freed once the handler returns: recording the
    /// outcome (with a batch of others) does not keep another job from starting.
    async fn run_job(
        &self,
        job: Claimed,
        permit: tokio::sync::OwnedSemaphorePermit,
        unfinished: Unfinished,
    ) {
        if let Ok(mut ids) = unfinished.lock() {
            ids.insert(job.id);
        }
        let ctx = JobContext {
            id: job.id,
            kind: job.kind.clone(),
            attempt: job.attempt,
            tenant: job.tenant,
            principal: Arc::new(Principal::system(job.tenant)),
            db: self.db.clone(),
        };
        // The lease is renewed until the job's end is recorded, not only while it runs: a
        // worker waiting for the database to take its verdict still holds the job.
        let mut heartbeat = tokio::time::interval(self.options.lease / 3);
        heartbeat.tick().await;
        let outcome = match self.registry.handlers.get(job.kind.as_str()) {
            None => Err(Failure::Retry(format!(
                "no handler for jobs of kind `{}` in this worker",
                job.kind
            ))),
            Some(handler) => {
                // Its own task: a panic in the handler is this job's failure, not the worker's.
                let task = tokio::spawn(handler(ctx, job.payload.clone()));
                // Stopped past its grace, this job is given back: its handler stops with it,
                // so that it never runs beside the next attempt.
                let _stop = AbortOnDrop(task.abort_handle());
                match self.renewing(job.id, &mut heartbeat, task).await {
                    Ok(outcome) => outcome,
                    Err(error) if error.is_panic() => Err(Failure::Retry(format!(
                        "the handler panicked: {}",
                        panic_text(error)
                    ))),
                    Err(_) => return,
                }
            }
        };
        drop(permit);
        if let Ok(mut ids) = unfinished.lock() {
            ids.remove(&job.id);
        }
        let recorded = match outcome {
            // Completions are recorded together; the rest one by one.
            Ok(()) => {
                let (reply, recorded) = tokio::sync::oneshot::channel();
                match self.completions.send((job.id, reply)) {
                    Ok(()) => {
                        self.renewing(job.id, &mut heartbeat, async {
                            recorded.await.unwrap_or_else(|_| {
                                Err(DbError::Internal("the worker stopped".into()))
                            })
                        })
                        .await
                    }
                    Err(_) => {
                        self.renewing(job.id, &mut heartbeat, self.finish(&job, Ok(())))
                            .await
                    }
                }
            }
            Err(failure) => {
                let finish = self.finish(&job, Err(failure));
                self.renewing(job.id, &mut heartbeat, finish).await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(job = %job.id, %error, "recording a job's end failed; its lease will run out and it will run again");
        }
    }

    /// Awaits `work`, renewing job `id`'s lease at every tick of `heartbeat` meanwhile.
    async fn renewing<T>(
        &self,
        id: Uuid,
        heartbeat: &mut tokio::time::Interval,
        work: impl Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = heartbeat.tick() => {
                    if let Err(error) = self.renew(id).await {
                        tracing::warn!(job = %id, %error, "renewing a job's lease failed");
                    }
                }
            }
        }
    }

    /// Extends the lease of job `id`, while this worker holds it.
    async fn renew(&self, id: Uuid) -> Result<(), DbError> {
        let lease_until =
            crate::db::now() + chrono::Duration::from_std(self.options.lease).unwrap_or_default();
        self.system_write(
            "UPDATE prefiq_jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 AND state = 'running'",
            "UPDATE prefiq_jobs SET lease_until = ?1 WHERE id = ?2 AND worker = ?3 AND state = 'running'",
            vec![
                SqlValue::DateTime(lease_until),
                SqlValue::Uuid(id),
                SqlValue::Text(self.name.clone()),
            ],
        )
        .await
        .map(drop)
    }

    /// Records how `job`'s run ended: completed, to run again later, or discarded. Nothing
    /// changes if the job is no longer this worker's (its lease ran out and another claimed it).
    async fn finish(&self, job: &Claimed, outcome: Result<(), Failure>) -> Result<(), DbError> {
        let now = crate::db::now();
        let mine = [SqlValue::Uuid(job.id), SqlValue::Text(self.name.clone())];
        let error = |message: &str| {
            SqlValue::Json(
                json!({ "attempt": job.attempt, "at": now.to_rfc3339(), "error": message }),
            )
        };
        let (postgres, sqlite, mut params) = match outcome {
            Ok(()) => (
                "UPDATE prefiq_jobs SET state = 'completed', finished_at = $3, lease_until = NULL \
                 WHERE id = $1 AND worker = $2 AND state = 'running'",
                "UPDATE prefiq_jobs SET state = 'completed', finished_at = ?3, lease_until = NULL \
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                vec![SqlValue::DateTime(now)],
            ),
            Err(Failure::Snooze(wait)) => (
                "UPDATE prefiq_jobs SET state = 'available', run_at = $3, attempt = attempt - 1, \
                 lease_until = NULL, worker = NULL WHERE id = $1 AND worker = $2 AND state = 'running'",
                "UPDATE prefiq_jobs SET state = 'available', run_at = ?3, attempt = attempt - 1, \
                 lease_until = NULL, worker = NULL WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                vec![SqlValue::DateTime(
                    now + chrono::Duration::from_std(wait).unwrap_or_default(),
                )],
            ),
            Err(Failure::Retry(message)) if job.attempt < job.max_attempts => {
                let wait = backoff(job.attempt, self.options.backoff, self.options.max_backoff);
                (
                    "UPDATE prefiq_jobs SET state = 'available', run_at = $3, lease_until = NULL, \
                     worker = NULL, errors = errors || jsonb_build_array($4) WHERE id = $1 AND worker = $2 AND state = 'running'",
                    "UPDATE prefiq_jobs SET state = 'available', run_at = ?3, lease_until = NULL, \
                     worker = NULL, errors = json_insert(errors, '$[#]', json(?4)) \
                     WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                    vec![
                        SqlValue::DateTime(
                            now + chrono::Duration::from_std(wait).unwrap_or_default(),
                        ),
                        error(&message),
                    ],
                )
            }
            Err(Failure::Retry(message) | Failure::Discard(message)) => (
                "UPDATE prefiq_jobs SET state = 'discarded', finished_at = $3, lease_until = NULL, \
                 errors = errors || jsonb_build_array($4) WHERE id = $1 AND worker = $2 AND state = 'running'",
                "UPDATE prefiq_jobs SET state = 'discarded', finished_at = ?3, lease_until = NULL, \
                 errors = json_insert(errors, '$[#]', json(?4)) \
                 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                vec![SqlValue::DateTime(now), error(&message)],
            ),
        };
        let mut all = mine.to_vec();
        all.append(&mut params);
        self.system_write(postgres, sqlite, all).await.map(drop)
    }

    /// Gives this worker's running jobs back to the queue, as if never claimed.
    async fn give_back(&self, ids: &[Uuid]) -> Result<u64, DbError> {
        let mut given = 0;
        for id in ids {
            given += self
                .system_write(
                    "UPDATE prefiq_jobs SET state = 'available', attempt = attempt - 1, lease_until = NULL, \
                     worker = NULL WHERE id = $1 AND worker = $2 AND state = 'running'",
                    "UPDATE prefiq_jobs SET state = 'available', attempt = attempt - 1, lease_until = NULL, \
                     worker = NULL WHERE id = ?1 AND worker = ?2 AND state = 'running'",
                    vec![SqlValue::Uuid(*id), SqlValue::Text(self.name.clone())],
                )
                .await?;
        }
        Ok(given)
    }

    /// One statement of the worker's own, in a transaction of its own; how many rows it changed.
    async fn system_write(
        &self,
        postgres: &'static str,
        sqlite: &'static str,
        params: Vec<SqlValue>,
    ) -> Result<u64, DbError> {
        system_write(&self.db, &self.system, postgres, sqlite, params).await
    }
}

async fn system_write(
    db: &Db,
    system: &Arc<Principal>,
    postgres: &'static str,
    sqlite: &'static str,
    params: Vec<SqlValue>,
) -> Result<u64, DbError> {
    let mut tx = db.begin(system).await?;
    let sql = tx.pick(postgres, sqlite);
    let changed = tx.execute(sql, params).await?;
    tx.commit().await?;
    Ok(changed)
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs a completed job of `app` once more (a webhook delivery sent again, with the same
/// event id), from its first attempt; whether there was such a job. A job of the same unique
/// key that waits or runs already makes this a no-op.
pub async fn run_again(db: &Db, app: &str, id: Uuid) -> Result<bool, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let changed = system_write(
        db,
        &system,
        "UPDATE prefiq_jobs SET state = 'available', attempt = 0, run_at = $3, finished_at = NULL, \
         worker = NULL WHERE id = $1 AND app = $2 AND state = 'completed' AND NOT EXISTS \
         (SELECT 1 FROM prefiq_jobs w WHERE w.app = $2 AND w.unique_key = prefiq_jobs.unique_key \
         AND w.tenant_id = prefiq_jobs.tenant_id AND w.state IN ('available', 'running'))",
        "UPDATE prefiq_jobs SET state = 'available', attempt = 0, run_at = ?3, finished_at = NULL, \
         worker = NULL WHERE id = ?1 AND app = ?2 AND state = 'completed' AND NOT EXISTS \
         (SELECT 1 FROM prefiq_jobs w WHERE w.app = ?2 AND w.unique_key = prefiq_jobs.unique_key \
         AND w.tenant_id = prefiq_jobs.tenant_id AND w.state IN ('available', 'running'))",
        vec![
            SqlValue::Uuid(id),
            SqlValue::Text(app.to_owned()),
            SqlValue::DateTime(crate::db::now()),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Runs a discarded or cancelled job of `app` again, from its first attempt (its error history
/// stays); whether there was such a job.
pub async fn retry(db: &Db, app: &str, id: Uuid) -> Result<bool, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let changed = system_write(
        db,
        &system,
        "UPDATE prefiq_jobs SET state = 'available', attempt = 0, run_at = $3, finished_at = NULL, \
         worker = NULL WHERE id = $1 AND app = $2 AND state IN ('discarded', 'cancelled')",
        "UPDATE prefiq_jobs SET state = 'available', attempt = 0, run_at = ?3, finished_at = NULL, \
         worker = NULL WHERE id = ?1 AND app = ?2 AND state IN ('discarded', 'cancelled')",
        vec![
            SqlValue::Uuid(id),
            SqlValue::Text(app.to_owned()),
            SqlValue::DateTime(crate::db::now()),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Cancels a job of `app` that has not started; whether there was such a job.
pub async fn cancel(db: &Db, app: &str, id: Uuid) -> Result<bool, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let changed = system_write(
        db,
        &system,
        "UPDATE prefiq_jobs SET state = 'cancelled', finished_at = $3 \
         WHERE id = $1 AND app = $2 AND state = 'available'",
        "UPDATE prefiq_jobs SET state = 'cancelled', finished_at = ?3 \
         WHERE id = ?1 AND app = ?2 AND state = 'available'",
        vec![
            SqlValue::Uuid(id),
            SqlValue::Text(app.to_owned()),
            SqlValue::DateTime(crate::db::now()),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// A job as stored, for tools, tests and the admin.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Its id.
    pub id: Uuid,
    /// Its tenant.
    pub tenant: Uuid,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: Value,
    /// Where it stands (`available`, `running`, `completed`, `discarded`, `cancelled`).
    pub state: String,
    /// How many times it was claimed.
    pub attempt: i32,
    /// The errors of its failed attempts, oldest first.
    pub errors: Value,
    /// Its unique key, if any.
    pub unique_key: Option<String>,
}

/// The jobs of `app`, oldest first (every tenant's: the platform's view).
pub async fn list(db: &Db, app: &str) -> Result<Vec<JobRecord>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let sql = tx.pick(
        "SELECT id, tenant_id, queue, kind, payload, state, attempt, errors, unique_key \
         FROM prefiq_jobs WHERE app = $1 ORDER BY created_at, id",
        "SELECT id, tenant_id, queue, kind, payload, state, attempt, errors, unique_key \
         FROM prefiq_jobs WHERE app = ?1 ORDER BY created_at, id",
    );
    let rows = tx
        .fetch_all(sql, vec![SqlValue::Text(app.to_owned())])
        .await?;
    tx.end_read();
    rows.iter()
        .map(|row| {
            let Json(payload) = row.req::<Json<Value>>(4)?;
            let Json(errors) = row.req::<Json<Value>>(7)?;
            Ok(JobRecord {
                id: row.req(0)?,
                tenant: row.req(1)?,
                queue: row.req(2)?,
                kind: row.req(3)?,
                payload,
                state: row.req(5)?,
                attempt: row.req(6)?,
                errors,
                unique_key: row.opt(8)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_non_zero_base_up_to_its_maximum_with_jitter() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..=10 {
            let expected = base.saturating_mul(1 << (attempt - 1)).min(max);
            let delay = backoff(attempt, base, max);
            assert!(
                delay >= expected && delay <= expected + expected / 4,
                "attempt {attempt}: {delay:?} is not within {expected:?} + 25%"
            );
        }
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, base, max)).collect();
        assert!(delays.len() > 1, "the jitter varies: {delays:?}");
        assert!(backoff(1000, base, max) <= max + max / 4);
    }
}

/// A cron schedule of a registry, as an operator sees it ([`Registry::schedules`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleInfo {
    /// Its name.
    pub name: String,
    /// Its cron expression.
    pub expression: String,
    /// The kind of job it enqueues.
    pub kind: String,
    /// When it fires next.
    pub next: Option<DateTime<Utc>>,
}

/// How many jobs of an app's queue are in a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The app.
    pub app: String,
    /// The queue.
    pub queue: String,
    /// The state.
    pub state: String,
    /// How many.
    pub count: i64,
}

/// How many jobs each app's queues hold in each state, by app, queue and state.
pub async fn counts(db: &Db) -> Result<Vec<Count>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let rows = tx
        .fetch_all(
            "SELECT app, queue, state, count(*) FROM prefiq_jobs GROUP BY app, queue, state \
             ORDER BY app, queue, state"
                .into(),
            Vec::new(),
        )
        .await?;
    tx.end_read();
    rows.iter()
        .map(|row| {
            Ok(Count {
                app: row.req(0)?,
                queue: row.req(1)?,
                state: row.req(2)?,
                count: row.req(3)?,
            })
        })
        .collect()
}

/// The ids of a queue's jobs whose handlers have not returned.
type Unfinished = Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>;

/// Aborts a task when dropped: a handler outlives no job run.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many jobs of one kind failed: waiting to be retried, or discarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failures {
    /// The app.
    pub app: String,
    /// The kind, as `webhook_delivery`.
    pub kind: String,
    /// `retrying` (failed, waiting for its next attempt) or `discarded` (the dead letters).
    pub state: String,
    /// How many.
    pub count: i64,
}

/// The jobs that failed, by app, kind and `retrying` or `discarded`: what `/metrics` reports
/// as failures (a webhook's failed deliveries among them).
pub async fn failures(db: &Db) -> Result<Vec<Failures>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let rows = tx
        .fetch_all(
            "SELECT app, kind, CASE WHEN state = 'discarded' THEN 'discarded' ELSE 'retrying' END, count(*) \
             FROM prefiq_jobs WHERE state = 'discarded' OR (state = 'available' AND attempt > 0) \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
                .into(),
            Vec::new(),
        )
        .await?;
    tx.end_read();
    rows.iter()
        .map(|row| {
            Ok(Failures {
                app: row.req(0)?,
                kind: row.req(1)?,
                state: row.req(2)?,
                count: row.req(3)?,
            })
        })
        .collect()
}

/// A job as an operator's list shows it ([`recent`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    /// Its id.
    pub id: Uuid,
    /// Its app.
    pub app: String,
    /// Its tenant.
    pub tenant: Uuid,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Where it stands.
    pub state: String,
    /// How many times it was claimed.
    pub attempt: i32,
    /// How many times it may be.
    pub max_attempts: i32,
    /// When it runs (next).
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last attempt's error, if one failed.
    pub last_error: Option<String>,
}

/// The newest `limit` jobs of every app, in `state` if given (`discarded`: the dead letters).
pub async fn recent(
    db: &Db,
    state: Option<State>,
    limit: usize,
) -> Result<Vec<JobSummary>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let limit = SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = match state {
        Some(state) => {
            let sql = tx.pick(
                "SELECT id, app, tenant_id, queue, kind, state, attempt, max_attempts, run_at, \
                 created_at, finished_at, errors FROM prefiq_jobs WHERE state = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2",
                "SELECT id, app, tenant_id, queue, kind, state, attempt, max_attempts, run_at, \
                 created_at, finished_at, errors FROM prefiq_jobs WHERE state = ?1 \
                 ORDER BY created_at DESC, id DESC LIMIT ?2",
            );
            tx.fetch_all(sql, vec![SqlValue::Text(state.as_str().to_owned()), limit])
                .await?
        }
        None => {
            let sql = tx.pick(
                "SELECT id, app, tenant_id, queue, kind, state, attempt, max_attempts, run_at, \
                 created_at, finished_at, errors FROM prefiq_jobs \
                 ORDER BY created_at DESC, id DESC LIMIT $1",
                "SELECT id, app, tenant_id, queue, kind, state, attempt, max_attempts, run_at, \
                 created_at, finished_at, errors FROM prefiq_jobs \
                 ORDER BY created_at DESC, id DESC LIMIT ?1",
            );
            tx.fetch_all(sql, vec![limit]).await?
        }
    };
    tx.end_read();
    rows.iter()
        .map(|row| {
            let Json(errors) = row.req::<Json<Value>>(11)?;
            let last_error = errors
                .as_array()
                .and_then(|e| e.last())
                .and_then(|e| e.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(JobSummary {
                id: row.req(0)?,
                app: row.req(1)?,
                tenant: row.req(2)?,
                queue: row.req(3)?,
                kind: row.req(4)?,
                state: row.req(5)?,
                attempt: row.req(6)?,
                max_attempts: row.req(7)?,
                run_at: row.req(8)?,
                created_at: row.req(9)?,
                finished_at: row.opt(10)?,
                last_error,
            })
        })
        .collect()
}

/// When each schedule last fired, by app and name.
pub async fn last_ticks(db: &Db) -> Result<HashMap<(String, String), DateTime<Utc>>, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let rows = tx
        .fetch_all(
            "SELECT app, name, last_tick FROM prefiq_cron".into(),
            Vec::new(),
        )
        .await?;
    tx.end_read();
    rows.iter()
        .map(|row| Ok(((row.req(0)?, row.req(1)?), row.req(2)?)))
        .collect()
}
