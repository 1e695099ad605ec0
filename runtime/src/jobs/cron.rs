//! Schedules: jobs enqueued on a cron schedule, once per tick however many workers run.
//!
//! Every worker of the app follows every schedule, and each tick is claimed in the database
//! before its job is enqueued: a row per schedule in `prefiq_cron` records the last tick
//! fired, and only the worker whose upsert moves it forward enqueues the job, in the same
//! transaction. The job's unique key names the tick, so it is enqueued once even if a tick
//! were claimed twice. A tick that passed while no worker ran is not made up.

use std::str::FromStr as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Job, Options};
use crate::auth::Principal;
use crate::db::{Db, DbError, Executor, SqlValue};

/// A schedule: a job enqueued at every tick of a cron expression.
#[derive(Clone)]
pub(super) struct Cron {
    /// Its name, unique in the app.
    pub name: String,
    /// Its cron expression, as written.
    pub expression: String,
    schedule: Arc<cron::Schedule>,
    kind: &'static str,
    payload: Value,
    queue: String,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the schedule `{name}` has an invalid cron expression `{expression}`: {reason} (five fields, `minute hour day-of-month month day-of-week` as in crontab, or six with seconds first: `0 30 3 * * *` is 03:30:00 every day)"
)]
pub struct CronError {
    /// The schedule.
    pub name: String,
    /// Its expression.
    pub expression: String,
    /// What the parser said.
    pub reason: String,
}

impl Cron {
    /// A schedule named `name` that enqueues `job` at every tick of `expression`: five fields as
    /// crontab (`*/15 * * * *`), or six with seconds first.
    pub(super) fn new<J: Job>(name: &str, expression: &str, job: &J) -> Result<Cron, CronError> {
        let refused = |reason: String| CronError {
            name: name.to_owned(),
            expression: expression.to_owned(),
            reason,
        };
        let fields = expression.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expression}"),
            6 | 7 => expression.to_owned(),
            n => return Err(refused(format!("it has {n} fields"))),
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| refused(e.to_string()))?;
        let payload = serde_json::to_value(job).map_err(|e| refused(e.to_string()))?;
        Ok(Cron {
            name: name.to_owned(),
            expression: expression.to_owned(),
            schedule: Arc::new(schedule),
            kind: J::KIND,
            payload,
            queue: super::DEFAULT_QUEUE.to_owned(),
        })
    }

    /// The kind of job it enqueues.
    pub(super) fn kind(&self) -> &'static str {
        self.kind
    }

    /// The first tick after `at`.
    pub(super) fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&at).next()
    }

    /// Claims `tick` for this schedule and enqueues its job, unless another worker claimed it
    /// (or a later one) first; whether this worker did.
    pub(super) async fn fire(
        &self,
        db: &Db,
        app: &str,
        system: &Arc<Principal>,
        tick: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut tx = db.begin(system).await?;
        let claim = tx.pick(
            "INSERT INTO prefiq_cron (app, name, last_tick) VALUES ($1, $2, $3) \
             ON CONFLICT (app, name) DO UPDATE SET last_tick = excluded.last_tick \
             WHERE prefiq_cron.last_tick < excluded.last_tick RETURNING name",
            "INSERT INTO prefiq_cron (app, name, last_tick) VALUES (?1, ?2, ?3) \
             ON CONFLICT (app, name) DO UPDATE SET last_tick = excluded.last_tick \
             WHERE prefiq_cron.last_tick < excluded.last_tick RETURNING name",
        );
        let claimed = tx
            .fetch_all(
                claim,
                vec![
                    SqlValue::Text(app.to_owned()),
                    SqlValue::Text(self.name.clone()),
                    SqlValue::DateTime(tick),
                ],
            )
            .await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            return Ok(false);
        }
        let options = Options {
            queue: self.queue.clone(),
            unique_key: Some(format!("cron:{}:{}", self.name, tick.to_rfc3339())),
            ..Options::default()
        };
        super::enqueue_raw(&mut tx, app, self.kind, self.payload.clone(), options).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Follows `crons` for `app` until `stopped` says so: fires each tick once it is due.
pub(super) async fn follow(
    db: Db,
    app: String,
    crons: Vec<Cron>,
    system: Arc<Principal>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let started = crate::db::now();
    let mut next: Vec<Option<DateTime<Utc>>> =
        crons.iter().map(|c| c.next_after(started)).collect();
    loop {
        let Some(soonest) = next.iter().flatten().min().copied() else {
            return;
        };
        let wait = (soonest - crate::db::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
        let now = crate::db::now();
        for (cron, due) in crons.iter().zip(next.iter_mut()) {
            let Some(tick) = due.filter(|tick| *tick <= now) else {
                continue;
            };
            if let Err(error) = cron.fire(&db, &app, &system, tick).await {
                tracing::warn!(app, schedule = cron.name, %error, "firing a schedule failed");
            }
            *due = cron.next_after(now);
        }
    }
}
