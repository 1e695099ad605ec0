//! The hand-written baselines of `cargo xtask bench serve`: the CRM app's company endpoints as a
//! good Rust team would write them by hand, on the tables the generated CRM's migrations make.
//!
//! - `GET /api/crm/companies/{id}`: the row with its `ETag`.
//! - `GET /api/crm/companies?industry=eq.X&sort=-annual_revenue&limit=20`: a keyset-paginated
//!   page (`items`, `next_cursor`) filtered by industry and sorted by any sortable column.
//! - `POST /api/crm/companies`: validated, inserted, 201 with `Location` and `ETag`.
//! - `PATCH /api/crm/companies/{id}`: a JSON merge patch, validated, guarded by `If-Match`
//!   (strong comparison), 412 when the version moved.
//!
//! Two services, chosen with `--service`:
//! - `plain` (axum + sqlx): the tenant a `WHERE` clause, no row-level security, no audit log;
//! - `guarded` (axum + tokio-postgres): the generated service's guarantees, row-level security
//!   on every request and an audit entry with every write, by hand.
//!
//! Every error is problem+json. `DATABASE_URL` names the database, `--bind` the address, and
//! `JWT_KEYS` (a JSON Web Key Set of Ed25519 keys, as Cortex publishes) turns on access tokens:
//! each request then needs a valid EdDSA token, whose tenant and permissions it acts with.

mod auth;
mod company;
mod guarded;
mod plain;

use axum::routing::get;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let args: Vec<String> = std::env::args().collect();
    let bind = flag(&args, "--bind").unwrap_or_else(|| "127.0.0.1:8090".into());
    let service = flag(&args, "--service").unwrap_or_else(|| "plain".into());
    let connections: u32 = std::env::var("DB_MAX_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let keys = std::env::var("JWT_KEYS").ok();
    let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "prefiq".into());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "prefiq".into());
    let auth = auth::Auth::new(keys.as_deref(), &issuer, &audience)?;
    let app = match service.as_str() {
        "plain" => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections)
                // No ping before each use: a round trip per request saved, as an expert would.
                .test_before_acquire(false)
                .connect(&url)
                .await?;
            plain::router(pool, auth)
        }
        "guarded" => {
            let pool = guarded::pool(&url, connections as usize)?;
            // Connect once now, so that a wrong URL fails at start-up.
            drop(pool.get().await.map_err(|e| e.to_string())?);
            guarded::router(pool, auth)
        }
        other => return Err(format!("--service {other}: plain or guarded").into()),
    };
    let app = app.route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
