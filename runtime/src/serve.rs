//! Server start-up for an app binary: configuration, tracing, the database pool, migrations,
//! the shared middleware (request ids, tracing, panics as problems, body limit), and graceful shutdown.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Response};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::db::{Db, PoolOptions};
use crate::http::BodyLimit;
use crate::migrate::{self, Migration};
use crate::problem::Problem;

/// What an app binary needs to know about its app.
#[derive(Debug, Clone, Copy)]
pub struct AppSpec {
    /// The app name, as in `crm`.
    pub name: &'static str,
    /// Its migrations.
    pub migrations: &'static [Migration],
}

/// Command line and environment of an app binary.
#[derive(Debug, Clone, Parser)]
#[command(about = "Serves a Prefiq app over HTTP", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PREFIQ_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Database to use: postgres://... or sqlite:path. Defaults to an SQLite file under .prefiq/.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PREFIQ_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Most database connections.
    #[arg(long, env = "PREFIQ_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,
    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "PREFIQ_NO_MIGRATE")]
    pub no_migrate: bool,
}

impl Config {
    /// The database URL, or the embedded default for `app`.
    pub fn database_url(&self, app: &str) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:.prefiq/{app}.db"))
    }
}

/// Starts logging; `PREFIQ_LOG` (or `RUST_LOG`) sets the filter, `info` by default. Colours only
/// on a terminal, and never with `NO_COLOR`.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREFIQ_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

async fn healthz(State(db): State<Db>) -> Response<axum::body::Body> {
    let probe = tokio::time::timeout(
        Duration::from_secs(2),
        db.fetch_optional("SELECT 1", vec![]),
    )
    .await;
    match probe {
        Ok(Ok(_)) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Ok(Err(error)) => Problem::unavailable(&error).into_response(),
        Err(_) => Problem::unavailable(&"health probe timed out").into_response(),
    }
}

async fn not_found() -> Problem {
    Problem::not_found("no route matches this URL")
}

async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<axum::body::Body> {
    Problem::internal(&"a handler panicked").into_response()
}

/// Wraps an app router with `/healthz`, problem+json fallbacks, request ids, tracing,
/// panic recovery and the body limit. Tests call this too, so they see what clients see.
pub fn with_middleware(app: Router, db: Db, body_limit: usize) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    app.route("/healthz", get(healthz).with_state(db))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(BodyLimit(body_limit)))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Connects to the configured database and applies pending migrations.
pub async fn prepare(spec: &AppSpec, config: &Config) -> Result<Db, Box<dyn std::error::Error>> {
    let url = config.database_url(spec.name);
    let options = PoolOptions {
        max_connections: config.max_connections,
        ..PoolOptions::default()
    };
    let db = Db::connect(&url, &options)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    if !config.no_migrate {
        let report = migrate::apply(&db, spec.name, spec.migrations).await?;
        if !report.applied.is_empty() {
            tracing::info!(app = spec.name, applied = ?report.applied, "database migrated");
        }
    }
    Ok(db)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Serves `router` on the configured address until SIGINT or SIGTERM, finishing open requests.
/// Prints `listening on http://ADDR` on standard output once the socket is bound.
pub async fn serve(router: Router, config: &Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// The `main` of a generated app binary: parse configuration, open and migrate the database,
/// build the app's router with `build`, and serve it.
pub fn main<F>(spec: AppSpec, build: F) -> ExitCode
where
    F: FnOnce(Db) -> Result<Router, Box<dyn std::error::Error>>,
{
    init_tracing();
    let config = Config::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = runtime.block_on(async {
        let db = prepare(&spec, &config).await?;
        let router = with_middleware(build(db.clone())?, db.clone(), config.body_limit);
        serve(router, &config).await?;
        db.close().await;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
