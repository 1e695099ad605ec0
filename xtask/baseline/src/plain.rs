//! "plain": axum + sqlx, the way most teams write such a service: each request one statement
//! on a pooled connection, the tenant a `WHERE` clause, no row-level security and no audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde_json::Value;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

use crate::auth::Auth;
use crate::company::{self, Company, CompanyCreate, CompanyPatch, ListQuery, Problem, columns};

struct App {
    pool: PgPool,
    auth: Auth,
}

type Shared = State<Arc<App>>;

pub(crate) fn router(pool: PgPool, auth: Auth) -> axum::Router {
    axum::Router::new()
        .route("/api/crm/companies", get(list).post(create))
        .route("/api/crm/companies/{id}", get(read).patch(patch))
        .with_state(Arc::new(App { pool, auth }))
}

fn unavailable(error: sqlx::Error) -> Problem {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Problem::conflict(),
        _ => Problem::unavailable(error),
    }
}

fn company(row: &PgRow) -> Result<Company, sqlx::Error> {
    Ok(Company {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        domain: row.try_get("domain")?,
        website: row.try_get("website")?,
        industry: row.try_get("industry")?,
        employee_count: row.try_get("employee_count")?,
        annual_revenue: row.try_get("annual_revenue")?,
        address: row
            .try_get::<Option<sqlx::types::Json<Value>>, _>("address")?
            .map(|a| a.0),
        tags: row.try_get::<sqlx::types::Json<Value>, _>("tags")?.0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

async fn read(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let caller = app.auth.caller(&headers, "crm.company.read")?;
    let id = company::parse_id(&id)?;
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM companies WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(caller.tenant)
    .bind(id)
    .fetch_optional(&app.pool)
    .await
    .map_err(unavailable)?;
    match row {
        Some(row) => Ok(company::entity(
            StatusCode::OK,
            company(&row).map_err(unavailable)?,
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(page.sql))
        .bind(caller.tenant)
        .bind(page.industry)
        .bind(page.after_value)
        .bind(page.after_id)
        .bind(page.limit + 1)
        .try_map(|row: PgRow| Ok((company(&row)?, row.try_get("sort_key")?)))
        .fetch_all(&app.pool)
        .await
        .map_err(unavailable)?;
    Ok(company::page(rows, page.limit))
}

async fn create(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<CompanyCreate>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    let caller = app.auth.caller(&headers, "crm.company.create")?;
    let Json(input) = body.map_err(|e| Problem::invalid(e.body_text()))?;
    let new = input.check()?;
    let row = sqlx::query(concat!(
        "INSERT INTO companies (id, tenant_id, name, domain, website, industry, employee_count, \
         annual_revenue, address, tags, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) RETURNING ",
        columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(caller.tenant)
    .bind(&new.name)
    .bind(&new.domain)
    .bind(&new.website)
    .bind(&new.industry)
    .bind(new.employee_count)
    .bind(new.annual_revenue)
    .bind(new.address.map(sqlx::types::Json))
    .bind(sqlx::types::Json(&new.tags))
    .bind(Utc::now())
    .fetch_one(&app.pool)
    .await
    .map_err(unavailable)?;
    Ok(company::entity(
        StatusCode::CREATED,
        company(&row).map_err(unavailable)?,
    ))
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
    // One statement: each column keeps its value unless the patch sets it, guarded by the
    // version. An empty patch changes nothing and keeps the version.
    let updated = if changes.nothing {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM companies WHERE tenant_id = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3)"
        ))
        .bind(caller.tenant)
        .bind(id)
        .bind(expected)
        .fetch_optional(&app.pool)
        .await
    } else {
        let sql = format!(
            "UPDATE companies SET {} WHERE tenant_id = $1 AND id = $2 \
             AND ($3::bigint IS NULL OR version = $3) RETURNING {}",
            company::SET_CHANGES,
            columns!()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(caller.tenant)
            .bind(id)
            .bind(expected)
            .bind(changes.name.0)
            .bind(changes.name.1)
            .bind(changes.domain.0)
            .bind(changes.domain.1)
            .bind(changes.website.0)
            .bind(changes.website.1)
            .bind(changes.industry.0)
            .bind(changes.industry.1)
            .bind(changes.employee_count.0)
            .bind(changes.employee_count.1)
            .bind(changes.annual_revenue.0)
            .bind(changes.annual_revenue.1)
            .bind(changes.address.0)
            .bind(changes.address.1.map(sqlx::types::Json))
            .bind(changes.tags.0)
            .bind(changes.tags.1.map(sqlx::types::Json))
            .fetch_optional(&app.pool)
            .await
    }
    .map_err(unavailable)?;
    if let Some(row) = updated {
        return Ok(company::entity(
            StatusCode::OK,
            company(&row).map_err(unavailable)?,
        ));
    }
    // Nothing matched: the row is gone, or its version moved.
    let exists = sqlx::query("SELECT version FROM companies WHERE tenant_id = $1 AND id = $2")
        .bind(caller.tenant)
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .map_err(unavailable)?;
    Err(match exists {
        None => Problem::not_found(),
        Some(_) => Problem::stale(),
    })
}
