//! `/metrics`: what a server did and holds, in the OpenMetrics text format that Prometheus
//! scrapes (through `prometheus-client`, the Prometheus project's own Rust library).
//!
//! - HTTP requests by method, route template and status, with a latency histogram per route
//!   (counted by the shared middleware stack, so every app and Cortex report the same way; a
//!   request no route matched is counted under the route `unmatched`, so a scanner cannot make
//!   a label per URL);
//! - the database pool (connections open, idle and the most allowed);
//! - jobs by app, queue and state, the outbox (events not yet dispatched, and how old the
//!   oldest is), read from the database when scraped.
//!
//! Nothing is open by default: the metrics are read by a platform operator, or with the token
//! of `PREFIQ_METRICS_TOKEN` (what a Prometheus scrape job sends as its bearer token).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::db::{Db, DbError, Executor as _};
use crate::problem::Problem;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    app: String,
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    app: String,
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

/// The process's HTTP metrics, counted by [`track`].
struct Http {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

fn http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| Http {
        requests: Family::default(),
        latency: Family::new_with_constructor(|| {
            // 1 ms to about 8 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 14,
            ))
        }),
    })
}

/// Who may read `/metrics` besides platform operators.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsSettings {
    /// A token a metrics scraper (Prometheus) sends as its bearer token to read `/metrics`;
    /// without one, only platform operators may read them.
    #[arg(long, env = "PREFIQ_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// A file holding that token (a mounted secret).
    #[arg(
        long,
        env = "PREFIQ_METRICS_TOKEN_FILE",
        conflicts_with = "metrics_token"
    )]
    pub metrics_token_file: Option<std::path::PathBuf>,
}

impl MetricsSettings {
    /// Applies the settings to the process's `/metrics` (the file read first).
    pub fn apply(&self) -> Result<(), String> {
        let token = match &self.metrics_token_file {
            Some(path) => Some(crate::serve::secret_file(
                "PREFIQ_METRICS_TOKEN_FILE",
                path,
            )?),
            None => self.metrics_token.clone(),
        };
        configure(token.as_deref());
        Ok(())
    }
}

/// The SHA-256 of the metrics token, once configured.
static TOKEN: OnceLock<Option<[u8; 32]>> = OnceLock::new();

/// Sets the token a scraper may present instead of a platform operator's credentials; `None`
/// leaves the metrics to platform operators. The first call wins.
pub fn configure(token: Option<&str>) {
    let _ = TOKEN.set(token.filter(|t| !t.is_empty()).map(digest));
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The route template a request matched, carried from the router to [`track`] on the response.
#[derive(Clone)]
pub(crate) struct Route(pub MatchedPath);

/// Copies the matched route template onto the response, for [`track`] (which wraps the router,
/// so it sees the request before routing).
pub(crate) async fn keep_route(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Counts every request by method, route and status, and times it.
pub(crate) async fn track(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let metrics = http();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub(crate) async fn serve(
    axum::extract::State(db): axum::extract::State<Db>,
    request: Request<axum::body::Body>,
) -> Response {
    let (mut parts, _) = request.into_parts();
    if !by_token(&parts.headers) {
        match <crate::auth::Caller as axum::extract::FromRequestParts<()>>::from_request_parts(
            &mut parts,
            &(),
        )
        .await
        {
            Ok(caller) if caller.0.operator => {}
            Ok(_) => {
                return Problem::forbidden(
                    "only a platform operator, or a scraper with the metrics token \
                     (PREFIQ_METRICS_TOKEN), may read the metrics",
                )
                .into_response();
            }
            Err(problem) => return problem.into_response(),
        }
    }
    match render(&db).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => Problem::unavailable(&error).into_response(),
    }
}

fn by_token(headers: &HeaderMap) -> bool {
    let Some(Some(expected)) = TOKEN.get() else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| digest(presented.trim()) == *expected)
}

/// The metrics as OpenMetrics text: the HTTP counters, and what the database holds now.
pub async fn render(db: &Db) -> Result<String, DbError> {
    let mut registry = Registry::with_prefix("prefiq");
    let metrics = http();
    registry.register(
        "http_requests",
        "HTTP requests answered, by method, route template and status",
        metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by method and route template",
        metrics.latency.clone(),
    );

    let pool = Family::<PoolLabels, Gauge>::default();
    let usage = db.pool_usage();
    for (state, value) in [
        ("open", usage.open),
        ("idle", usage.idle),
        ("max", usage.max),
    ] {
        pool.get_or_create(&PoolLabels {
            state: state.into(),
        })
        .set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    registry.register(
        "db_pool_connections",
        "Database connections: open, idle among them, and the most the pool opens",
        pool,
    );

    let jobs = Family::<JobLabels, Gauge>::default();
    for count in crate::jobs::counts(db).await? {
        jobs.get_or_create(&JobLabels {
            app: count.app,
            queue: count.queue,
            state: count.state,
        })
        .set(count.count);
    }
    registry.register("jobs", "Jobs by app, queue and state", jobs);
    let failed = Family::<FailureLabels, Gauge>::default();
    for failure in crate::jobs::failures(db).await? {
        failed
            .get_or_create(&FailureLabels {
                app: failure.app,
                kind: failure.kind,
                state: failure.state,
            })
            .set(failure.count);
    }
    registry.register(
        "job_failures",
        "Jobs that failed, by app and kind: retrying, or discarded (webhook deliveries among them)",
        failed,
    );

    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin_read(&system).await?;
    let pending = tx
        .fetch_optional(
            "SELECT count(*), min(created_at) FROM prefiq_events WHERE dispatched_at IS NULL"
                .into(),
            Vec::new(),
        )
        .await?;
    tx.end_read();
    let (count, oldest) = match pending {
        Some(row) => (
            row.req::<i64>(0)?,
            row.opt::<chrono::DateTime<chrono::Utc>>(1)?,
        ),
        None => (0, None),
    };
    let outbox = Gauge::<i64>::default();
    outbox.set(count);
    registry.register(
        "outbox_pending_events",
        "Events published and not yet dispatched",
        outbox,
    );
    let lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    lag.set(oldest.map_or(0.0, |at| {
        (crate::db::now() - at).num_milliseconds().max(0) as f64 / 1000.0
    }));
    registry.register(
        "outbox_lag_seconds",
        "How long the oldest event not yet dispatched has waited",
        lag,
    );

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| DbError::Internal(e.to_string()))?;
    Ok(text)
}
