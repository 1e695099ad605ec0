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

use crate::auth::{Auth, KeySet, Open, RemoteKeys, TokenVerifier};
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
    /// The handlers and schedules of its jobs (its service's `jobs()`).
    pub jobs: fn() -> crate::jobs::Registry,
}

/// Command line and environment of an app binary.
#[derive(Debug, Clone, Parser)]
#[command(about = "Serves a Prefiq app over HTTP", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PREFIQ_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Database to use: postgres://... or sqlite:path. Defaults to an SQLite file under .prefiq/.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the database URL (a mounted secret), read when DATABASE_URL is not set.
    #[arg(long, env = "DATABASE_URL_FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<std::path::PathBuf>,
    /// On PostgreSQL, the URL requests use: a role that cannot leave row-level security, such
    /// as `prefiq_app` (DATABASE_URL's user migrates). Required in production; elsewhere the
    /// server logs in as `prefiq_app` at DATABASE_URL's server.
    #[arg(long, env = "PREFIQ_APP_DATABASE_URL", hide_env_values = true)]
    pub app_database_url: Option<String>,
    /// A file holding PREFIQ_APP_DATABASE_URL (a mounted secret).
    #[arg(
        long,
        env = "PREFIQ_APP_DATABASE_URL_FILE",
        conflicts_with = "app_database_url"
    )]
    pub app_database_url_file: Option<std::path::PathBuf>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PREFIQ_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Most database connections.
    #[arg(long, env = "PREFIQ_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,
    /// Resource limits of the HTTP server.
    #[command(flatten)]
    pub limits: Limits,
    /// Who may read `/metrics`.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsSettings,
    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "PREFIQ_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Apply pending migrations and exit, without serving (a deployment's migration job).
    #[arg(long, conflicts_with = "no_migrate")]
    pub migrate_only: bool,
    /// Ask the server listening on --bind for `/healthz` and exit 0 if it answers 200: a
    /// container healthcheck that needs no shell or curl in the image.
    #[arg(long)]
    pub probe: bool,
    /// `production` refuses insecure settings (`PREFIQ_AUTH=off`, a missing signing key).
    #[arg(long = "env", env = "PREFIQ_ENV", default_value = "development")]
    pub environment: Environment,
    /// `off` serves every request as a development principal with every permission, for local
    /// development without a Cortex; it warns at every start and is refused in production.
    #[arg(long, env = "PREFIQ_AUTH", default_value = "on")]
    pub auth: AuthMode,
    /// The public keys access tokens are verified with: a JSON Web Key Set, inline or as a path
    /// to a file (as Cortex publishes at `/.well-known/jwks.json`).
    #[arg(long, env = "PREFIQ_JWT_KEYS")]
    pub jwt_keys: Option<String>,
    /// Where to fetch the key set from (an `http://` URL of a Cortex), at start-up and every
    /// ten minutes after.
    #[arg(long, env = "PREFIQ_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// The issuer access tokens must name.
    #[arg(long, env = "PREFIQ_JWT_ISSUER", default_value = "prefiq")]
    pub jwt_issuer: String,
    /// The audience access tokens must name.
    #[arg(long, env = "PREFIQ_JWT_AUDIENCE", default_value = "prefiq")]
    pub jwt_audience: String,
    /// The app's built frontend (the folder `vite build` writes), served at `/` beside the API.
    #[arg(long, env = "PREFIQ_UI_DIR")]
    pub ui: Option<std::path::PathBuf>,
    /// How many of the app's jobs this process runs at once (0: none; run them in `worker`
    /// processes instead).
    #[arg(long, env = "PREFIQ_WORKERS", default_value_t = 10)]
    pub workers: usize,
    /// Seconds a claimed job is its worker's without a heartbeat: a job whose worker died runs
    /// again after at most this long.
    #[arg(long, env = "PREFIQ_JOB_LEASE", default_value_t = 30)]
    pub job_lease: u64,
    /// What to run: nothing named serves the API (and runs jobs, with `--workers`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What an app binary runs besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Runs the app's jobs without serving HTTP, to scale workers apart from servers; stops on
    /// SIGINT or SIGTERM after finishing (or giving back) the jobs it runs.
    Worker,
}

/// What an app serves: its routes, and the handlers of its jobs.
pub struct Served {
    router: Router,
    jobs: crate::jobs::Registry,
}

impl Served {
    /// `router`, with no jobs.
    pub fn new(router: Router) -> Served {
        Served {
            router,
            jobs: crate::jobs::Registry::new(),
        }
    }

    /// The same, running the jobs `registry` handles.
    pub fn with_jobs(self, registry: crate::jobs::Registry) -> Served {
        Served {
            jobs: registry,
            ..self
        }
    }
}

impl From<Router> for Served {
    fn from(router: Router) -> Served {
        Served::new(router)
    }
}

/// What one client may hold of a server: each limit has a flag and an environment variable.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Seconds a client has to send a request's headers (slow and idle partial requests are
    /// closed after it).
    #[arg(long, env = "PREFIQ_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body (408 after it).
    #[arg(long, env = "PREFIQ_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout: u64,
    /// The most connections served at once; more wait to be accepted.
    #[arg(long, env = "PREFIQ_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_open_connections: usize,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "PREFIQ_KEEP_ALIVE", default_value_t = 75)]
    pub keep_alive: u64,
    /// The longest request target (path and query), in bytes (414 beyond).
    #[arg(long, env = "PREFIQ_MAX_URI", default_value_t = 8 * 1024)]
    pub max_uri: usize,
    /// The most header bytes of a request (431 beyond).
    #[arg(long, env = "PREFIQ_MAX_HEADERS", default_value_t = 32 * 1024)]
    pub max_headers: usize,
    /// Milliseconds one database statement may run on PostgreSQL (503 beyond).
    #[arg(long, env = "PREFIQ_STATEMENT_TIMEOUT", default_value_t = 5000)]
    pub statement_timeout: u64,
    /// Seconds an `Idempotency-Key` holds its first request's response.
    #[arg(long, env = "PREFIQ_IDEMPOTENCY_TTL", default_value_t = crate::idempotency::DEFAULT_TTL_SECONDS)]
    pub idempotency_ttl: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: 10,
            body_timeout: 30,
            max_open_connections: 8192,
            keep_alive: 75,
            max_uri: 8 * 1024,
            max_headers: 32 * 1024,
            statement_timeout: 5000,
            idempotency_ttl: crate::idempotency::DEFAULT_TTL_SECONDS,
        }
    }
}

/// Refuses a request target or header block over the limits, as problem+json (hyper itself
/// would answer with an empty body, and only at far larger sizes).
async fn limit_request(
    axum::extract::State(limits): axum::extract::State<Limits>,
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response<axum::body::Body> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if target > limits.max_uri {
        return Problem::new(
            axum::http::StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
        )
        .with_detail(format!(
            "the request target may be at most {} bytes",
            limits.max_uri
        ))
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > limits.max_headers {
        return Problem::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request header fields too large",
        )
        .with_detail(format!(
            "the headers may hold at most {} bytes",
            limits.max_headers
        ))
        .into_response();
    }
    next.run(request).await
}

/// Raises this process's soft limit of open files to its hard limit, so that many idle
/// connections cannot take the last descriptor a real request needs.
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit and setrlimit read and write the plain struct passed by pointer.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes open requests: at most
/// `limits.max_open_connections` connections at once, headers within the header timeout (which
/// closes idle and slow partial requests), HTTP/1.1 keep-alive. Each request carries its peer's
/// address (`ConnectInfo`).
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(
        limits.max_open_connections.max(1),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors or a reset before accept: wait a moment, keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Around the router, not through it: `Router::layer` would wrap every route again for
        // each connection.
        let service = tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            router.clone(),
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(limits.header_timeout.max(1)))
            .keep_alive(limits.keep_alive > 0)
            .max_buf_size((limits.max_headers + limits.max_uri).max(64 * 1024) * 2);
        let connection =
            builder.serve_connection(TokioIo::new(ParseErrorsAsProblems::new(stream)), service);
        let connection = graceful.watch(connection);
        let keep_alive = Duration::from_secs(limits.keep_alive.max(1));
        tokio::spawn(async move {
            // A connection lives at most as long as its keep-alive allows after its last request;
            // hyper closes idle ones itself once the header timeout passes.
            let _ = tokio::time::timeout(keep_alive * 100, connection).await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(Duration::from_secs(30)) => {},
    }
    Ok(())
}

/// A connection whose HTTP-level errors are problem+json too.
///
/// hyper answers a request it cannot parse (a malformed header line, a bad or repeated
/// `Content-Length`, an oversized head) itself, before any service runs, with a bodiless
/// response headed `connection: close` and `content-length: 0`. No response of Prefiq's starts
/// that way, so such a write is replaced by the same status as problem+json; everything else
/// passes through untouched.
struct ParseErrorsAsProblems<S> {
    inner: S,
    /// The replacement still to write, and how many bytes of hyper's it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> ParseErrorsAsProblems<S> {
    fn new(inner: S) -> Self {
        ParseErrorsAsProblems {
            inner,
            pending: None,
        }
    }

    /// hyper's own error response, as problem+json; `None` for any other write.
    fn replacement(head: &[u8]) -> Option<Vec<u8>> {
        let rest = head.strip_prefix(b"HTTP/1.1 ")?;
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let after = &rest[line_end + 2..];
        if !after.starts_with(b"connection: close\r\ncontent-length: 0\r\n") {
            return None;
        }
        let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
        let status = axum::http::StatusCode::from_u16(code).ok()?;
        let reason = status.canonical_reason().unwrap_or("Bad request");
        let problem = match code {
            400 => Problem::bad_request(
                "the request is not valid HTTP/1.1 (a malformed header, or a bad or repeated Content-Length)",
            ),
            _ => Problem::new(status, &reason.to_lowercase().replace(' ', "-"), reason)
                .with_detail("the request's head was refused before it was read"),
        };
        let body = serde_json::to_vec(&problem).ok()?;
        let mut out = format!(
            "HTTP/1.1 {code} {reason}\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\ndate: {}\r\n\r\n",
            body.len(),
            chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT")
        )
        .into_bytes();
        out.extend_from_slice(&body);
        Some(out)
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for ParseErrorsAsProblems<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> ParseErrorsAsProblems<S> {
    /// Writes the pending replacement; `Ready(Ok(n))` with hyper's byte count once it is out.
    fn drain(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        while let Some((bytes, written, stands_for)) = &mut self.pending {
            if *written == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            match std::pin::Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for ParseErrorsAsProblems<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.pending.is_none() {
            match Self::replacement(buf) {
                Some(bytes) => self.pending = Some((bytes, 0, buf.len())),
                None => return std::pin::Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.drain(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.pending.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty());
            match first.and_then(|b| Self::replacement(b)) {
                Some(bytes) => {
                    let total = bufs.iter().map(|b| b.len()).sum();
                    self.pending = Some((bytes, 0, total));
                }
                None => return std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        self.drain(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// A developer's machine: insecure conveniences are allowed, with warnings.
    Development,
    /// Production: they are refused.
    Production,
}

/// Whether requests must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Every request needs a valid access token.
    On,
    /// No checks: every request is the development principal.
    Off,
}

impl Config {
    /// The database URL, or the embedded default for `app`.
    pub fn database_url(&self, app: &str) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:.prefiq/{app}.db"))
    }
}

/// A secret from a file (a mounted Kubernetes or Docker secret): its text without the line end.
/// `setting` names the variable in the error.
pub fn secret_file(setting: &str, path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(format!("{setting}: {} is empty", path.display()));
    }
    Ok(text.to_owned())
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

/// Wraps an app router with `/healthz`, problem+json fallbacks, the authenticator, request ids,
/// tracing, panic recovery, the body limit and timeout, and the request size limits. Tests call
/// this too, so they see what clients see.
pub fn with_middleware(app: Router, db: Db, body_limit: usize, auth: Auth) -> Router {
    with_limits(app, db, body_limit, auth, Limits::default())
}

/// [`with_middleware`], with `limits`.
pub fn with_limits(app: Router, db: Db, body_limit: usize, auth: Auth, limits: Limits) -> Router {
    with_stack(app, db, body_limit, auth, limits, false)
}

/// The middleware around `app`, as one stack built once and wrapped around the whole router.
/// (`Router::layer` would wrap every route in each layer, and each layer would then clone and
/// box a service and a future on every request.) With `open_documents`, the OpenAPI documents
/// served leave their security requirements out (`PREFIQ_AUTH=off`).
fn with_stack(
    app: Router,
    db: Db,
    body_limit: usize,
    auth: Auth,
    limits: Limits,
    open_documents: bool,
) -> Router {
    use axum::body::Body;
    use axum::http::Request;
    let request_id = HeaderName::from_static("x-request-id");
    let app = app
        .route("/healthz", get(healthz).with_state(db.clone()))
        .route(
            "/metrics",
            get(crate::metrics::serve).with_state(db.clone()),
        )
        .layer(axum::middleware::from_fn(crate::metrics::keep_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // The first layer is the outermost.
    let stack = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(limits, limit_request))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                // The path only: a query may carry a secret (a password link's token) or
                // personal data (a filter by e-mail), and no secret is logged.
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(limits.body_timeout.max(1)),
        ))
        .map_request(|request: Request<_>| request.map(Body::new))
        .layer(axum::Extension(BodyLimit(body_limit)))
        .layer(axum::Extension(auth))
        .layer(axum::middleware::from_fn_with_state(
            crate::idempotency::Keys::new(db, Duration::from_secs(limits.idempotency_ttl.max(1))),
            crate::idempotency::middleware,
        ))
        .option_layer(open_documents.then(|| axum::middleware::from_fn(open_document)))
        .map_response(IntoResponse::into_response)
        .service(app);
    Router::new().fallback_service(stack)
}

/// What the frontend's pages may load: their own scripts, styles and API, nothing inline and
/// nothing evaluated (the generated validators need no `eval`), and no framing.
pub const UI_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Serves an app's built frontend (`dir`, as `vite build` writes it: `index.html` and
/// `assets/`) at `/` and `/assets/`, under [`UI_CONTENT_SECURITY_POLICY`]. Every other path is
/// still the API's, and an unknown one still its problem+json 404.
pub fn with_ui(app: Router, dir: &std::path::Path) -> Result<Router, String> {
    Ok(app.merge(ui_routes("", dir)?))
}

/// The routes of a built frontend (`dir`) under `prefix` (`""`, or a path like `/apps/crm`):
/// its page at `{prefix}/`, its files under `{prefix}/assets/`, and `{prefix}` sent on to
/// `{prefix}/` (a bundle built with relative paths finds its files only from there).
pub fn ui_routes(prefix: &str, dir: &std::path::Path) -> Result<Router, String> {
    let index = std::fs::read_to_string(dir.join("index.html")).map_err(|e| {
        format!(
            "{} has no index.html ({e}): build the frontend first (`vite build`)",
            dir.display()
        )
    })?;
    let index = axum::response::Html(index);
    let mut ui = Router::new()
        .route(
            &format!("{prefix}/"),
            get(move || std::future::ready(index.clone())),
        )
        .nest_service(
            &format!("{prefix}/assets"),
            tower_http::services::ServeDir::new(dir.join("assets")),
        );
    if !prefix.is_empty() {
        let slash = format!("{prefix}/");
        ui = ui.route(
            prefix,
            get(move || std::future::ready(axum::response::Redirect::permanent(&slash))),
        );
    }
    Ok(ui.layer(axum::middleware::from_fn(ui_headers)))
}

async fn ui_headers(
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response<axum::body::Body> {
    use axum::http::header::{self, HeaderValue};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Connects to the configured database, applies pending migrations with the connecting user,
/// and returns the pool requests use: on PostgreSQL its connections run as
/// [`crate::db::APP_ROLE`], which row-level security binds.
pub async fn prepare(spec: &AppSpec, config: &Config) -> Result<Db, Box<dyn std::error::Error>> {
    let url = config.database_url(spec.name);
    if !config.no_migrate {
        let owner = Db::connect(
            &url,
            &PoolOptions {
                max_connections: 2,
                ..PoolOptions::default()
            },
        )
        .await
        .map_err(|e| format!("cannot open {}: {e}", crate::db::redact_url(&url)))?;
        let report = migrate::apply(&owner, spec.name, spec.migrations).await;
        owner.close().await;
        let report = report?;
        if !report.applied.is_empty() {
            tracing::info!(app = spec.name, applied = ?report.applied, "database migrated");
        }
    }
    let options = PoolOptions {
        statement_timeout: Some(Duration::from_millis(config.limits.statement_timeout)),
        ..PoolOptions::serving(config.max_connections)
    };
    let owner = Db::connect(
        &url,
        &PoolOptions {
            max_connections: 1,
            ..PoolOptions::default()
        },
    )
    .await
    .map_err(|e| format!("cannot open {}: {e}", crate::db::redact_url(&url)))?;
    let db = crate::db::connect_server(
        &owner,
        crate::db::ServerLogin {
            url: &url,
            app_url: config.app_database_url.as_deref(),
            production: config.environment == Environment::Production,
        },
        &options,
    )
    .await;
    owner.close().await;
    Ok(db?)
}

/// What the served document says of itself with `PREFIQ_AUTH=off`.
pub const AUTH_OFF_WARNING: &str = "**Authentication is off** (`PREFIQ_AUTH=off`): this server \
    checks no credentials and serves every request with every permission in the default tenant. \
    It is for a developer's own machine only, and refused in production.";

/// The document of a server with `PREFIQ_AUTH=off`, telling the truth: no operation requires a
/// credential (no `security` anywhere), and the description says why, first.
pub fn without_security(document: &mut serde_json::Value) {
    use serde_json::Value;
    if let Some(root) = document.as_object_mut() {
        root.remove("security");
    }
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                operation.remove("security");
            }
        }
    }
    if let Some(info) = document.get_mut("info").and_then(Value::as_object_mut) {
        let description = match info.get("description").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => format!("{AUTH_OFF_WARNING}\n\n{text}"),
            _ => AUTH_OFF_WARNING.to_owned(),
        };
        info.insert("description".into(), Value::String(description));
    }
}

/// Rewrites every OpenAPI document a server with `PREFIQ_AUTH=off` serves with
/// [`without_security`].
async fn open_document(
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::Body;
    use axum::response::{IntoResponse as _, Response};
    let document = request.uri().path().ends_with("/openapi.json");
    let response = next.run(request).await;
    if !document || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return Problem::internal(&"the document could not be read").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    without_security(&mut value);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string()))
}

/// The authenticator `config` asks for: access tokens verified against the configured keys,
/// or, with `PREFIQ_AUTH=off` outside production, none at all (with a warning).
pub async fn authenticator(config: &Config) -> Result<Auth, String> {
    if config.auth == AuthMode::Off {
        if config.environment == Environment::Production {
            return Err(
                "PREFIQ_AUTH=off is refused in production (PREFIQ_ENV=production): configure \
                 PREFIQ_JWT_KEYS or PREFIQ_JWKS_URL"
                    .into(),
            );
        }
        tracing::warn!(
            "PREFIQ_AUTH=off: authentication and permissions are OFF, every request has every \
             permission in the default tenant. Never do this outside local development."
        );
        return Ok(Auth(std::sync::Arc::new(Open)));
    }
    let issuer = config.jwt_issuer.clone();
    let audience = config.jwt_audience.clone();
    if let Some(keys) = &config.jwt_keys {
        let text = if keys.trim_start().starts_with('{') {
            keys.clone()
        } else {
            std::fs::read_to_string(keys)
                .map_err(|e| format!("PREFIQ_JWT_KEYS: cannot read {keys}: {e}"))?
        };
        let set: KeySet = serde_json::from_str(&text)
            .map_err(|e| format!("PREFIQ_JWT_KEYS is not a JSON Web Key Set: {e}"))?;
        let verifier = TokenVerifier::new(&set, &issuer, &audience)
            .map_err(|e| format!("PREFIQ_JWT_KEYS: {e}"))?;
        return Ok(Auth(std::sync::Arc::new(verifier)));
    }
    if let Some(url) = &config.jwks_url {
        let remote = RemoteKeys::start(url.clone(), issuer, audience).await?;
        return Ok(Auth(std::sync::Arc::new(remote)));
    }
    Err(
        "no keys to verify access tokens with: set PREFIQ_JWT_KEYS (a JSON Web Key Set, or a \
         file holding one) or PREFIQ_JWKS_URL (a Cortex's /.well-known/jwks.json); for local \
         development without a Cortex, PREFIQ_AUTH=off turns the checks off"
            .into(),
    )
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: call it before announcing the address, so that a signal sent as soon
/// as the server says it listens still shuts it down cleanly.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = handlers;
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => {},
                () = terminate => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

/// Serves `router` on the configured address until SIGINT or SIGTERM, finishing open requests.
/// Prints `listening on http://ADDR` on standard output once the socket is bound.
pub async fn serve(router: Router, config: &Config) -> std::io::Result<()> {
    serve_until(router, config, shutdown_signal()).await
}

/// [`serve`] until `shutdown` resolves.
pub async fn serve_until(
    router: Router,
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    serve_connections(listener, router, config.limits, shutdown).await
}

/// Runs `app`'s jobs with the handlers of `registry` until `stopping` says so, at most
/// `config.workers` at once (none with `--workers 0`), with the runtime's own jobs; and
/// dispatches `app`'s events to its subscribers.
fn start_workers(
    app: &str,
    config: &Config,
    db: &Db,
    registry: crate::jobs::Registry,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let routes = event_routes(app, &registry);
    let workers = spawn_workers(
        app,
        db,
        registry.with_runtime_jobs(),
        (config.workers, config.job_lease),
        stopped(stopping.clone()),
    )?;
    let dispatcher = spawn_dispatcher(db, Some(app), routes, stopped(stopping.clone()));
    Some(tokio::spawn(async move {
        let _ = workers.await;
        let _ = dispatcher.await;
    }))
}

/// Where `app`'s subscribers (in `registry`) want events sent.
pub fn event_routes(app: &str, registry: &crate::jobs::Registry) -> Vec<crate::events::Route> {
    registry
        .subscriptions()
        .iter()
        .map(|subscription| crate::events::Route {
            app: app.to_owned(),
            subscription: subscription.clone(),
        })
        .collect()
}

/// Dispatches the events of `source` (every app's when `None`) to `routes` until `shutdown`
/// resolves. A host of several apps (Cortex) runs one for all of them, with every app's routes.
pub fn spawn_dispatcher(
    db: &Db,
    source: Option<&str>,
    routes: Vec<crate::events::Route>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let dispatcher = crate::events::Dispatcher::new(db.clone(), source, routes);
    tokio::spawn(dispatcher.run(shutdown))
}

/// Runs `app`'s jobs with the handlers of `registry` until `shutdown` resolves: at most
/// `workers` at once (none when 0), each claimed job held under a lease of `lease` seconds.
/// What a host of several apps (Cortex) starts for each.
pub fn spawn_workers(
    app: &str,
    db: &Db,
    registry: crate::jobs::Registry,
    (workers, lease): (usize, u64),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    if workers == 0 || registry.kinds().is_empty() {
        return None;
    }
    let options = crate::jobs::WorkerOptions {
        name: format!("{app}-{}", std::process::id()),
        queues: vec![(crate::jobs::DEFAULT_QUEUE.to_owned(), workers)],
        lease: Duration::from_secs(lease.max(1)),
        ..crate::jobs::WorkerOptions::default()
    };
    let worker = crate::jobs::Worker::new(db.clone(), app, registry, options);
    tracing::info!(app, worker = worker.name(), "running jobs");
    Some(tokio::spawn(worker.run(shutdown)))
}

/// One SIGINT or SIGTERM, heard by everything that stops on it ([`stopped`]).
pub fn shutdown_broadcast() -> tokio::sync::watch::Receiver<bool> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    stopping
}

/// Resolves once `stopping` says so (or its sender is gone).
pub async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// The container healthcheck: `GET /healthz` on the server listening on `bind` (on this host's
/// loopback when it listens on every address), with a two-second budget. Success when it answers
/// 200. Plain HTTP/1.1 over a socket, so images need no shell, curl or wget.
pub fn probe(bind: SocketAddr) -> ExitCode {
    use std::io::{Read, Write};
    let mut target = bind;
    if target.ip().is_unspecified() {
        target.set_ip(match bind {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let budget = Duration::from_secs(2);
    let answer = (|| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&target, budget)?;
        stream.set_read_timeout(Some(budget))?;
        stream.set_write_timeout(Some(budget))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 64];
        let read = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..read]).into_owned())
    })();
    match answer {
        Ok(head) if head.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(head) => {
            eprintln!("unhealthy: {}", head.lines().next().unwrap_or("no answer"));
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("unhealthy: {target}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The `main` of a generated app binary: parse configuration, open and migrate the database,
/// build the app's router with `build`, and serve it.
pub fn main<F, S>(spec: AppSpec, build: F) -> ExitCode
where
    F: FnOnce(Db) -> Result<S, Box<dyn std::error::Error>>,
    S: Into<Served>,
{
    init_tracing();
    let mut config = Config::parse();
    if config.probe {
        return probe(config.bind);
    }
    if let Some(path) = &config.database_url_file {
        match secret_file("DATABASE_URL_FILE", path) {
            Ok(url) => config.database_url = Some(url),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &config.app_database_url_file {
        match secret_file("PREFIQ_APP_DATABASE_URL_FILE", path) {
            Ok(url) => config.app_database_url = Some(url),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(error) = config.metrics.apply() {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
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
        if config.migrate_only {
            prepare(&spec, &config).await?.close().await;
            println!("{}: migrations applied", spec.name);
            return Ok(());
        }
        let stopping = shutdown_broadcast();
        let worker_only = config.command == Some(Command::Worker);
        // Configuration errors first, before the database is touched.
        let auth = match worker_only {
            true => None,
            false => Some(authenticator(&config).await?),
        };
        let db = prepare(&spec, &config).await?;
        let mut served: Served = build(db.clone())?.into();
        served.jobs = (spec.jobs)().merge(served.jobs);
        if worker_only {
            let config = Config {
                workers: config.workers.max(1),
                ..config.clone()
            };
            let Some(workers) = start_workers(spec.name, &config, &db, served.jobs, &stopping)
            else {
                return Err(format!("the {} app has no jobs to run", spec.name).into());
            };
            println!("{}: running jobs", spec.name);
            workers.await?;
            db.close().await;
            return Ok(());
        }
        let auth = auth.ok_or("a server authenticates its callers")?;
        let workers = start_workers(spec.name, &config, &db, served.jobs, &stopping);
        let mut app = served.router;
        if let Some(dir) = &config.ui {
            app = with_ui(app, dir)?;
        }
        let open_documents = config.auth == AuthMode::Off;
        let router = with_stack(
            app,
            db.clone(),
            config.body_limit,
            auth,
            config.limits,
            open_documents,
        );
        serve_until(router, &config, stopped(stopping)).await?;
        if let Some(workers) = workers {
            workers.await?;
        }
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
