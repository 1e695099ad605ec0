//! The hand-written baseline of `cargo xtask bench serve`: the CRM app's company endpoints as a
//! good Rust team would write them by hand with axum and sqlx, on the tables the generated CRM's
//! migrations make, in the default tenant.
//!
//! - `GET /api/crm/companies/{id}`: the row with its `ETag`.
//! - `GET /api/crm/companies?industry=eq.X&sort=-annual_revenue&limit=20`: a keyset-paginated
//!   page (`items`, `next_cursor`) filtered by industry and sorted by any sortable column.
//! - `POST /api/crm/companies`: validated, inserted, 201 with `Location` and `ETag`.
//! - `PATCH /api/crm/companies/{id}`: a JSON merge patch, validated, applied in one statement
//!   guarded by `If-Match` (strong comparison), 412 when the version moved.
//!
//! Every error is problem+json. `DATABASE_URL` names the database; `--bind` the address.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

/// The default tenant: the only one this baseline serves.
const TENANT: Uuid = Uuid::nil();

/// The columns of a company, in `Company`'s order.
macro_rules! columns {
    () => {
        "id, name, domain, website, industry, employee_count, annual_revenue, address, tags, \
         created_at, updated_at, version"
    };
}

const INDUSTRIES: [&str; 7] = [
    "software",
    "manufacturing",
    "retail",
    "finance",
    "healthcare",
    "education",
    "other",
];

#[derive(Debug, Serialize)]
struct Company {
    id: Uuid,
    name: String,
    domain: Option<String>,
    website: Option<String>,
    industry: String,
    employee_count: Option<i64>,
    annual_revenue: Option<Decimal>,
    address: Option<sqlx::types::Json<Value>>,
    tags: sqlx::types::Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Company {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Company {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            domain: row.try_get("domain")?,
            website: row.try_get("website")?,
            industry: row.try_get("industry")?,
            employee_count: row.try_get("employee_count")?,
            annual_revenue: row.try_get("annual_revenue")?,
            address: row.try_get("address")?,
            tags: row.try_get("tags")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: row.try_get("version")?,
        })
    }
}

/// An error as RFC 9457 problem+json.
struct Problem {
    status: StatusCode,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
        }
    }

    fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Problem {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Problem::new(
                StatusCode::CONFLICT,
                "a company with this name or domain exists",
            ),
            _ => {
                eprintln!("database error: {error}");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the database failed")
            }
        }
    }
}

/// The company with its `ETag`.
fn entity(status: StatusCode, company: Company) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", company.version)).expect("a header");
    let mut response = (status, Json(&company)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    if status == StatusCode::CREATED {
        let location = format!("/api/crm/companies/{}", company.id);
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("a header"),
        );
    }
    response
}

fn parse_id(id: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(id).map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "id: not a UUID"))
}

async fn get_company(
    State(pool): State<PgPool>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let company: Option<Company> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM companies WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(TENANT)
    .bind(id)
    .fetch_optional(&pool)
    .await?;
    match company {
        Some(company) => Ok(entity(StatusCode::OK, company)),
        None => Err(Problem::new(StatusCode::NOT_FOUND, "no such company")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    industry: Option<String>,
    sort: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Company>,
    next_cursor: Option<String>,
}

/// A sortable column and the SQL type its cursor value is cast to.
fn sortable(column: &str) -> Option<&'static str> {
    Some(match column {
        "name" | "industry" => "text",
        "employee_count" => "bigint",
        "annual_revenue" => "numeric",
        "created_at" | "updated_at" => "timestamptz",
        _ => return None,
    })
}

async fn list_companies(
    State(pool): State<PgPool>,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let bad = |detail: &str| Problem::new(StatusCode::BAD_REQUEST, detail);
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit: between 1 and 1000"));
    }
    let industry = match &query.industry {
        None => None,
        Some(filter) => match filter.strip_prefix("eq.") {
            Some(value) if INDUSTRIES.contains(&value) => Some(value.to_owned()),
            _ => return Err(bad("industry: eq. and one of the industries")),
        },
    };
    let sort = query.sort.as_deref().unwrap_or("created_at");
    let (column, descending) = match sort.strip_prefix('-') {
        Some(column) => (column, true),
        None => (sort, false),
    };
    let Some(cast) = sortable(column) else {
        return Err(bad("sort: a sortable column, - for descending"));
    };
    // The cursor is the last row's sort value and id; NULLs sort last either way.
    let after: Option<(Option<String>, Uuid)> = match &query.cursor {
        None => None,
        Some(cursor) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(|| bad("cursor: not one this server gave"))?,
        ),
    };
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql = format!(
        "SELECT {}, {column}::text AS sort_key FROM companies WHERE tenant_id = $1 \
         AND ($2::text IS NULL OR industry = $2)",
        columns!()
    );
    match &after {
        Some((Some(_), _)) => sql.push_str(&format!(
            " AND ({column} {cmp} $3::{cast} OR ({column} = $3::{cast} AND id {cmp} $4) \
             OR {column} IS NULL)"
        )),
        Some((None, _)) => sql.push_str(&format!(" AND {column} IS NULL AND id {cmp} $4")),
        None => sql.push_str(" AND $3::text IS NULL AND $4::uuid IS NULL"),
    }
    sql.push_str(&format!(
        " ORDER BY {column} {dir} NULLS LAST, id {dir} LIMIT $5"
    ));
    let (value, id) = match after {
        Some((value, id)) => (value, Some(id)),
        None => (None, None),
    };
    // `column` is one of `sortable`'s names, never the client's text.
    let rows: Vec<(Company, Option<String>)> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(TENANT)
        .bind(industry)
        .bind(value)
        .bind(id)
        .bind(limit + 1)
        .try_map(|row: sqlx::postgres::PgRow| {
            use sqlx::{FromRow as _, Row as _};
            Ok((Company::from_row(&row)?, row.try_get("sort_key")?))
        })
        .fetch_all(&pool)
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut next_cursor = None;
    for (index, (company, key)) in rows.into_iter().enumerate() {
        if index as i64 == limit {
            break;
        }
        if index as i64 == limit - 1 {
            next_cursor = Some((key, company.id));
        }
        items.push(company);
    }
    let more = items.len() as i64 == limit;
    let next_cursor = next_cursor.filter(|_| more).map(|cursor| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&cursor).expect("a cursor"))
    });
    Ok(Json(Page { items, next_cursor }).into_response())
}

/// A nested address, as the schema defines it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Address {
    street: String,
    city: String,
    region: Option<String>,
    postal_code: Option<String>,
    country: String,
}

impl Address {
    fn check(&self) -> Result<(), Problem> {
        text("address.street", &self.street, 1, 200)?;
        text("address.city", &self.city, 1, 100)?;
        if let Some(region) = &self.region {
            text("address.region", region, 0, 100)?;
        }
        if let Some(code) = &self.postal_code {
            text("address.postal_code", code, 0, 20)?;
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Problem::invalid("address.country: two capital letters"));
        }
        Ok(())
    }
}

fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), Problem> {
    let chars = value.chars().count();
    if chars < min || chars > max || value.contains('\0') {
        return Err(Problem::invalid(format!(
            "{field}: {min} to {max} characters, no NUL"
        )));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), Problem> {
    let valid = domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(Problem::invalid("domain: a host name"))
    }
}

fn check_website(url: &str) -> Result<(), Problem> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(Problem::invalid("website: an http(s) URL")),
    }
}

fn check_industry(industry: &str) -> Result<(), Problem> {
    if INDUSTRIES.contains(&industry) {
        Ok(())
    } else {
        Err(Problem::invalid("industry: one of the industries"))
    }
}

/// Revenue: at most 14 digits before the point and 2 after.
fn check_revenue(revenue: &str) -> Result<Decimal, Problem> {
    let (whole, fraction) = revenue
        .strip_prefix('-')
        .unwrap_or(revenue)
        .split_once('.')
        .unwrap_or((revenue.strip_prefix('-').unwrap_or(revenue), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let shape = (1..=14).contains(&whole.len())
        && digits(whole)
        && fraction.len() <= 2
        && digits(fraction)
        && !(revenue.contains('.') && fraction.is_empty());
    if !shape {
        return Err(Problem::invalid(
            "annual_revenue: a decimal of at most 14 digits and 2 decimals",
        ));
    }
    revenue
        .parse()
        .map_err(|_| Problem::invalid("annual_revenue: a decimal"))
}

fn check_tags(tags: &[String]) -> Result<(), Problem> {
    if tags.len() > 20 {
        return Err(Problem::invalid("tags: at most 20"));
    }
    for (i, tag) in tags.iter().enumerate() {
        text("tags[]", tag, 1, 40)?;
        if tags[..i].contains(tag) {
            return Err(Problem::invalid("tags: each tag once"));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyCreate {
    name: String,
    domain: Option<String>,
    website: Option<String>,
    #[serde(default = "other")]
    industry: String,
    employee_count: Option<i64>,
    annual_revenue: Option<String>,
    address: Option<Address>,
    #[serde(default)]
    tags: Vec<String>,
}

fn other() -> String {
    "other".into()
}

async fn create_company(
    State(pool): State<PgPool>,
    body: Result<Json<CompanyCreate>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    let Json(input) = body.map_err(|e| Problem::invalid(e.body_text()))?;
    text("name", &input.name, 1, 200)?;
    if let Some(domain) = &input.domain {
        check_domain(domain)?;
    }
    if let Some(website) = &input.website {
        check_website(website)?;
    }
    check_industry(&input.industry)?;
    if input.employee_count.is_some_and(|n| n < 0) {
        return Err(Problem::invalid("employee_count: at least 0"));
    }
    let revenue = input
        .annual_revenue
        .as_deref()
        .map(check_revenue)
        .transpose()?;
    if let Some(address) = &input.address {
        address.check()?;
    }
    check_tags(&input.tags)?;
    let now = Utc::now();
    let company: Company = sqlx::query_as(concat!(
        "INSERT INTO companies (id, tenant_id, name, domain, website, industry, employee_count, \
         annual_revenue, address, tags, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) RETURNING ",
        columns!(),
        ""
    ))
    .bind(Uuid::now_v7())
    .bind(TENANT)
    .bind(&input.name)
    .bind(&input.domain)
    .bind(&input.website)
    .bind(&input.industry)
    .bind(input.employee_count)
    .bind(revenue)
    .bind(input.address.map(sqlx::types::Json))
    .bind(sqlx::types::Json(&input.tags))
    .bind(now)
    .fetch_one(&pool)
    .await?;
    Ok(entity(StatusCode::CREATED, company))
}

/// A merge-patch member: absent, null, or a value.
#[derive(Debug, Default)]
enum Member<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Member<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Member::Value(value),
            None => Member::Null,
        })
    }
}

impl<T> Member<T> {
    /// (whether to set it, the new value).
    fn set(self) -> (bool, Option<T>) {
        match self {
            Member::Absent => (false, None),
            Member::Null => (true, None),
            Member::Value(value) => (true, Some(value)),
        }
    }

    fn is_absent(&self) -> bool {
        matches!(self, Member::Absent)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CompanyPatch {
    name: Member<String>,
    domain: Member<String>,
    website: Member<String>,
    industry: Member<String>,
    employee_count: Member<i64>,
    annual_revenue: Member<String>,
    address: Member<Address>,
    tags: Member<Vec<String>>,
}

impl CompanyPatch {
    fn is_empty(&self) -> bool {
        self.name.is_absent()
            && self.domain.is_absent()
            && self.website.is_absent()
            && self.industry.is_absent()
            && self.employee_count.is_absent()
            && self.annual_revenue.is_absent()
            && self.address.is_absent()
            && self.tags.is_absent()
    }
}

/// The version `If-Match` names: `None` for `*` or no header; 400 when malformed; weak tags
/// never match (RFC 9110 strong comparison), so they are a 412.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let values: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    let joined = values.join(",");
    let mut wanted = None;
    for tag in joined.split(',').map(str::trim) {
        if tag == "*" {
            return Ok(None);
        }
        let weak = tag.starts_with("W/");
        let quoted = tag.trim_start_matches("W/");
        let inner = quoted
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "If-Match: quoted entity tags"))?;
        if !weak && let Ok(version) = inner.parse::<i64>() {
            wanted = Some(version);
        }
    }
    // A list of tags none of which can match is a version no row has.
    Ok(Some(wanted.unwrap_or(-1)))
}

async fn patch_company(
    State(pool): State<PgPool>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !media.starts_with("application/merge-patch+json") && !media.starts_with("application/json")
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/merge-patch+json",
        ));
    }
    let patch: CompanyPatch =
        serde_json::from_slice(&body).map_err(|e| Problem::invalid(e.to_string()))?;
    let expected = if_match(&headers)?;
    let nothing = patch.is_empty();
    let (set_name, name) = patch.name.set();
    if set_name && name.is_none() {
        return Err(Problem::invalid("name: required"));
    }
    if let Some(name) = &name {
        text("name", name, 1, 200)?;
    }
    let (set_domain, domain) = patch.domain.set();
    if let Some(domain) = &domain {
        check_domain(domain)?;
    }
    let (set_website, website) = patch.website.set();
    if let Some(website) = &website {
        check_website(website)?;
    }
    let (set_industry, industry) = patch.industry.set();
    if set_industry {
        check_industry(industry.as_deref().unwrap_or(""))?;
    }
    let (set_count, employee_count) = patch.employee_count.set();
    if employee_count.is_some_and(|n| n < 0) {
        return Err(Problem::invalid("employee_count: at least 0"));
    }
    let (set_revenue, revenue) = patch.annual_revenue.set();
    let revenue = revenue.as_deref().map(check_revenue).transpose()?;
    let (set_address, address) = patch.address.set();
    if let Some(address) = &address {
        address.check()?;
    }
    let (set_tags, tags) = patch.tags.set();
    if set_tags && tags.is_none() {
        return Err(Problem::invalid("tags: required"));
    }
    if let Some(tags) = &tags {
        check_tags(tags)?;
    }
    // One statement: each column keeps its value unless the patch sets it, guarded by the
    // version. An empty patch changes nothing and keeps the version.
    let updated: Option<Company> = if nothing {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM companies WHERE tenant_id = $1 AND id = $2 \
             AND ($3::bigint IS NULL OR version = $3)"
        ))
        .bind(TENANT)
        .bind(id)
        .bind(expected)
        .fetch_optional(&pool)
        .await?
    } else {
        sqlx::query_as(concat!(
            "UPDATE companies SET \
             name = CASE WHEN $4 THEN $5 ELSE name END, \
             domain = CASE WHEN $6 THEN $7 ELSE domain END, \
             website = CASE WHEN $8 THEN $9 ELSE website END, \
             industry = CASE WHEN $10 THEN $11 ELSE industry END, \
             employee_count = CASE WHEN $12 THEN $13 ELSE employee_count END, \
             annual_revenue = CASE WHEN $14 THEN $15 ELSE annual_revenue END, \
             address = CASE WHEN $16 THEN $17 ELSE address END, \
             tags = CASE WHEN $18 THEN $19 ELSE tags END, \
             updated_at = now(), version = version + 1 \
             WHERE tenant_id = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3) \
             RETURNING ",
            columns!(),
            ""
        ))
        .bind(TENANT)
        .bind(id)
        .bind(expected)
        .bind(set_name)
        .bind(name)
        .bind(set_domain)
        .bind(domain)
        .bind(set_website)
        .bind(website)
        .bind(set_industry)
        .bind(industry)
        .bind(set_count)
        .bind(employee_count)
        .bind(set_revenue)
        .bind(revenue)
        .bind(set_address)
        .bind(address.map(sqlx::types::Json))
        .bind(set_tags)
        .bind(tags.map(sqlx::types::Json))
        .fetch_optional(&pool)
        .await?
    };
    if let Some(company) = updated {
        return Ok(entity(StatusCode::OK, company));
    }
    // Nothing matched: the row is gone, or its version moved.
    let exists: Option<(i64,)> =
        sqlx::query_as("SELECT version FROM companies WHERE tenant_id = $1 AND id = $2")
            .bind(TENANT)
            .bind(id)
            .fetch_optional(&pool)
            .await?;
    Err(match exists {
        None => Problem::new(StatusCode::NOT_FOUND, "no such company"),
        Some(_) => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "the company changed since you read it",
        ),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let args: Vec<String> = std::env::args().collect();
    let bind = args
        .windows(2)
        .find(|w| w[0] == "--bind")
        .map_or("127.0.0.1:8090", |w| w[1].as_str())
        .to_owned();
    let connections = std::env::var("DB_MAX_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url)
        .await?;
    let app = axum::Router::new()
        .route(
            "/api/crm/companies",
            get(list_companies).post(create_company),
        )
        .route(
            "/api/crm/companies/{id}",
            get(get_company).patch(patch_company),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
