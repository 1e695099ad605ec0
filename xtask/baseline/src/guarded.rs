//! "guarded": the same guarantees as the generated service, by hand, with every technique an
//! expert would use to keep a request to one wait for the database.
//!
//! - Row-level security, forced and restrictive, binds every request, reads included: the pool
//!   logs in as `prefiq_app` (no superuser, owns nothing), and each connection's session holds
//!   the tenant in `prefiq.tenant_id`, set only when another tenant used the connection last,
//!   in the same flight as the request's statement. Every statement also names the tenant.
//! - Every write and its audit entry (with a JSON diff of the members it changed) are one
//!   statement: `WITH changed AS (INSERT … RETURNING …), audit AS (INSERT INTO prefiq_audit …)`.
//!   A single statement commits whole or not at all, and leaves no transaction open: a client
//!   that hangs up cannot leave a connection half-way through one.
//! - `PATCH` takes a strong `If-Match`, locks the row and reads its old values in the same
//!   statement (for the diff), and answers 412 or 404 from that one answer.
//! - Statements are prepared once per connection (tokio-postgres), so each request sends only
//!   Bind/Execute.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};
use uuid::Uuid;

use crate::auth::{Auth, Caller};
use crate::company::{self, Company, CompanyCreate, CompanyPatch, ListQuery, Problem, columns};

/// A pooled connection: its client, the tenant its session holds, its prepared statements.
pub(crate) struct Conn {
    client: tokio_postgres::Client,
    tenant: Option<Uuid>,
    prepared: HashMap<String, Statement>,
}

pub(crate) struct Manager {
    config: tokio_postgres::Config,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Conn, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(Conn {
            client,
            tenant: None,
            prepared: HashMap::new(),
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<tokio_postgres::Error> {
        if conn.client.is_closed() {
            return Err(RecycleError::message("closed"));
        }
        Ok(())
    }
}

pub(crate) type Pool = managed::Pool<Manager>;

pub(crate) fn pool(url: &str, size: usize) -> Result<Pool, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("DATABASE_URL: {e}"))?;
    managed::Pool::builder(Manager { config })
        .max_size(size)
        .build()
        .map_err(|e| e.to_string())
}

impl Conn {
    /// Runs `sql` (prepared once per connection) for `tenant`; when the session holds another
    /// tenant, the statement that sets it goes in the same flight.
    async fn query(
        &mut self,
        tenant: Uuid,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = match self.prepared.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client.prepare(sql).await?;
                self.prepared.insert(sql.to_owned(), statement.clone());
                statement
            }
        };
        if self.tenant == Some(tenant) {
            return self.client.query(&statement, params).await;
        }
        // Unknown until the server says it is set. Should setting it fail, the statement that
        // flew with it names the tenant, and row-level security holds the old one: it finds
        // or writes nothing.
        self.tenant = None;
        let text = tenant.to_string();
        let typed: [(&(dyn ToSql + Sync), Type); 1] = [(&text, Type::TEXT)];
        let set = self
            .client
            .query_typed("SELECT set_config('prefiq.tenant_id', $1, false)", &typed);
        let (set, rows) = tokio::join!(set, self.client.query(&statement, params));
        set?;
        self.tenant = Some(tenant);
        rows
    }
}

struct App {
    pool: Pool,
    auth: Auth,
}

type Shared = State<Arc<App>>;

pub(crate) fn router(pool: Pool, auth: Auth) -> axum::Router {
    axum::Router::new()
        .route("/api/crm/companies", get(list).post(create))
        .route("/api/crm/companies/{id}", get(read).patch(patch))
        .with_state(Arc::new(App { pool, auth }))
}

async fn connection(app: &App) -> Result<Object<Manager>, Problem> {
    app.pool.get().await.map_err(Problem::unavailable)
}

fn failed(error: tokio_postgres::Error) -> Problem {
    match error.code() {
        Some(code) if *code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            Problem::conflict()
        }
        _ => Problem::unavailable(error),
    }
}

/// A company from the columns of `columns!()`, starting at `at`.
fn company(row: &Row, at: usize) -> Result<Company, tokio_postgres::Error> {
    Ok(Company {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        domain: row.try_get(at + 2)?,
        website: row.try_get(at + 3)?,
        industry: row.try_get(at + 4)?,
        employee_count: row.try_get(at + 5)?,
        annual_revenue: row.try_get(at + 6)?,
        address: row.try_get(at + 7)?,
        tags: row.try_get(at + 8)?,
        created_at: row.try_get(at + 9)?,
        updated_at: row.try_get(at + 10)?,
        version: row.try_get(at + 11)?,
    })
}

async fn read(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let caller = app.auth.caller(&headers, "crm.company.read")?;
    let id = company::parse_id(&id)?;
    let mut conn = connection(&app).await?;
    let rows = conn
        .query(
            caller.tenant,
            concat!(
                "SELECT ",
                columns!(),
                " FROM companies WHERE tenant_id = $1 AND id = $2"
            ),
            &[&caller.tenant, &id],
        )
        .await
        .map_err(failed)?;
    match rows.first() {
        Some(row) => Ok(company::entity(
            StatusCode::OK,
            company(row, 0).map_err(failed)?,
        )),
        None => Err(Problem::not_found()),
    }
}

async fn list(
    State(app): Shared,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let caller = app.auth.caller(&headers, "crm.company.read")?;
    let page = query.check()?;
    let mut conn = connection(&app).await?;
    let rows = conn
        .query(
            caller.tenant,
            &page.sql,
            &[
                &caller.tenant,
                &page.industry,
                &page.after_value,
                &page.after_id,
                &(page.limit + 1),
            ],
        )
        .await
        .map_err(failed)?;
    let rows = rows
        .iter()
        .map(|row| Ok((company(row, 0)?, row.try_get(12)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(failed)?;
    Ok(company::page(rows, page.limit))
}

/// The audit entry's columns, filled from `changed` (and `$2` the tenant).
const CREATE: &str = concat!(
    "WITH changed AS (INSERT INTO companies (id, tenant_id, name, domain, website, industry, \
     employee_count, annual_revenue, address, tags, created_at, updated_at, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), now(), 1) RETURNING ",
    columns!(),
    "), audit AS (INSERT INTO prefiq_audit (id, tenant_id, at, actor, actor_user, credential, \
     app, entity, entity_id, action, changes) \
     SELECT $11, $2, now(), $12, NULL, $13, 'crm', 'Company', changed.id::text, 'create', \
     (SELECT coalesce(jsonb_object_agg(key, jsonb_build_object('to', value)), '{}'::jsonb) \
      FROM jsonb_each(to_jsonb(changed) - 'id' - 'created_at' - 'updated_at' - 'version') \
      WHERE value <> 'null'::jsonb) \
     FROM changed) \
     SELECT ",
    columns!(),
    " FROM changed"
);

async fn create(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<CompanyCreate>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    let caller: Caller = app.auth.caller(&headers, "crm.company.create")?;
    let Json(input) = body.map_err(|e| Problem::invalid(e.body_text()))?;
    let new = input.check()?;
    let mut conn = connection(&app).await?;
    let rows = conn
        .query(
            caller.tenant,
            CREATE,
            &[
                &Uuid::now_v7(),
                &caller.tenant,
                &new.name,
                &new.domain,
                &new.website,
                &new.industry,
                &new.employee_count,
                &new.annual_revenue,
                &new.address,
                &new.tags,
                &Uuid::now_v7(),
                &caller.subject,
                &caller.credential,
            ],
        )
        .await
        .map_err(failed)?;
    let row = rows.first().ok_or_else(|| Problem::unavailable("no row"))?;
    Ok(company::entity(
        StatusCode::CREATED,
        company(row, 0).map_err(failed)?,
    ))
}

/// The row as it was (locked), the update if the version matches, and its audit entry with
/// the members that changed; answers the version found and the row written.
fn patch_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH before AS (SELECT {cols} FROM companies WHERE tenant_id = $1 AND id = $2 FOR UPDATE), \
             changed AS (UPDATE companies SET {set} WHERE tenant_id = $1 AND id = $2 \
               AND ($3::bigint IS NULL OR version = $3) AND EXISTS (SELECT 1 FROM before) \
               RETURNING {cols}), \
             audit AS (INSERT INTO prefiq_audit (id, tenant_id, at, actor, actor_user, credential, \
               app, entity, entity_id, action, changes) \
               SELECT $20, $1, now(), $21, NULL, $22, 'crm', 'Company', c.id::text, 'update', \
               (SELECT coalesce(jsonb_object_agg(n.key, jsonb_build_object('from', o.value, 'to', n.value)), '{{}}'::jsonb) \
                FROM jsonb_each(to_jsonb(b) - 'updated_at' - 'version') o \
                JOIN jsonb_each(to_jsonb(c) - 'updated_at' - 'version') n ON n.key = o.key \
                WHERE n.value IS DISTINCT FROM o.value) \
               FROM changed c, before b) \
             SELECT b.version, c.* FROM before b LEFT JOIN changed c ON true",
            cols = columns!(),
            set = company::SET_CHANGES,
        )
    })
}

async fn patch(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let caller = app.auth.caller(&headers, "crm.company.update")?;
    let id = company::parse_id(&id)?;
    let changes = CompanyPatch::parse(&headers, &body)?.check()?;
    let expected = company::if_match(&headers)?;
    let mut conn = connection(&app).await?;
    if changes.nothing {
        let rows = conn
            .query(
                caller.tenant,
                concat!(
                    "SELECT version, ",
                    columns!(),
                    " FROM companies WHERE tenant_id = $1 AND id = $2"
                ),
                &[&caller.tenant, &id],
            )
            .await
            .map_err(failed)?;
        let row = rows.first().ok_or_else(Problem::not_found)?;
        let version: i64 = row.try_get(0).map_err(failed)?;
        if expected.is_some_and(|e| e != version) {
            return Err(Problem::stale());
        }
        return Ok(company::entity(
            StatusCode::OK,
            company(row, 1).map_err(failed)?,
        ));
    }
    let rows = conn
        .query(
            caller.tenant,
            patch_sql(),
            &[
                &caller.tenant,
                &id,
                &expected,
                &changes.name.0,
                &changes.name.1,
                &changes.domain.0,
                &changes.domain.1,
                &changes.website.0,
                &changes.website.1,
                &changes.industry.0,
                &changes.industry.1,
                &changes.employee_count.0,
                &changes.employee_count.1,
                &changes.annual_revenue.0,
                &changes.annual_revenue.1,
                &changes.address.0,
                &changes.address.1,
                &changes.tags.0,
                &changes.tags.1,
                &Uuid::now_v7(),
                &caller.subject,
                &caller.credential,
            ],
        )
        .await
        .map_err(failed)?;
    let row = rows.first().ok_or_else(Problem::not_found)?;
    let written: Option<Uuid> = row.try_get(1).map_err(failed)?;
    if written.is_none() {
        return Err(Problem::stale());
    }
    Ok(company::entity(
        StatusCode::OK,
        company(row, 1).map_err(failed)?,
    ))
}
