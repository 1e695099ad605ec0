//! What both hand-written services share: the company as clients read it, the checks of what
//! they send, problem+json, `If-Match`, and the one SQL text of a page.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The columns of a company, in `Company`'s order.
macro_rules! columns {
    () => {
        "id, name, domain, website, industry, employee_count, annual_revenue, address, tags, \
         created_at, updated_at, version"
    };
}
pub(crate) use columns;

pub(crate) const INDUSTRIES: [&str; 7] = [
    "software",
    "manufacturing",
    "retail",
    "finance",
    "healthcare",
    "education",
    "other",
];

#[derive(Debug, Serialize)]
pub(crate) struct Company {
    pub id: Uuid,
    pub name: String,
    pub domain: Option<String>,
    pub website: Option<String>,
    pub industry: String,
    pub employee_count: Option<i64>,
    pub annual_revenue: Option<Decimal>,
    pub address: Option<Value>,
    pub tags: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// An error as RFC 9457 problem+json.
#[derive(Debug)]
pub(crate) struct Problem {
    pub status: StatusCode,
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub(crate) fn bad(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn not_found() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "no such company")
    }

    pub(crate) fn stale() -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "the company changed since you read it",
        )
    }

    pub(crate) fn conflict() -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "a company with this name or domain exists",
        )
    }

    pub(crate) fn unavailable(error: impl std::fmt::Display) -> Problem {
        eprintln!("database error: {error}");
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the database failed")
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

/// The company with its `ETag` (and `Location`, when created).
pub(crate) fn entity(status: StatusCode, company: Company) -> Response {
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

pub(crate) fn parse_id(id: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(id).map_err(|_| Problem::bad("id: not a UUID"))
}

/// The query of a page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    industry: Option<String>,
    sort: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A checked page query: the SQL that reads it (`$1` tenant, `$2` industry, `$3` the cursor's
/// sort value as text, `$4` its id, `$5` the limit plus one) and its values.
pub(crate) struct Page {
    pub sql: String,
    pub industry: Option<String>,
    pub after_value: Option<String>,
    pub after_id: Option<Uuid>,
    pub limit: i64,
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

impl ListQuery {
    pub(crate) fn check(self) -> Result<Page, Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Problem::bad("limit: between 1 and 1000"));
        }
        let industry = match &self.industry {
            None => None,
            Some(filter) => match filter.strip_prefix("eq.") {
                Some(value) if INDUSTRIES.contains(&value) => Some(value.to_owned()),
                _ => return Err(Problem::bad("industry: eq. and one of the industries")),
            },
        };
        let sort = self.sort.as_deref().unwrap_or("created_at");
        let (column, descending) = match sort.strip_prefix('-') {
            Some(column) => (column, true),
            None => (sort, false),
        };
        let Some(cast) = sortable(column) else {
            return Err(Problem::bad("sort: a sortable column, - for descending"));
        };
        // The cursor is the last row's sort value and id; NULLs sort last either way.
        let after: Option<(Option<String>, Uuid)> = match &self.cursor {
            None => None,
            Some(cursor) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .ok_or_else(|| Problem::bad("cursor: not one this server gave"))?,
            ),
        };
        let (cmp, dir) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        // `column` is one of `sortable`'s names, never the client's text.
        let mut sql = format!(
            "SELECT {}, {column}::text AS sort_key FROM companies WHERE tenant_id = $1 \
             AND ($2::text IS NULL OR industry = $2)",
            columns!()
        );
        match &after {
            Some((Some(_), _)) => sql.push_str(&format!(
                " AND ({column} {cmp} $3::text::{cast} OR ({column} = $3::text::{cast} AND id {cmp} $4) \
                 OR {column} IS NULL)"
            )),
            Some((None, _)) => sql.push_str(&format!(" AND {column} IS NULL AND id {cmp} $4")),
            None => sql.push_str(" AND $3::text IS NULL AND $4::uuid IS NULL"),
        }
        sql.push_str(&format!(
            " ORDER BY {column} {dir} NULLS LAST, id {dir} LIMIT $5"
        ));
        let (after_value, after_id) = match after {
            Some((value, id)) => (value, Some(id)),
            None => (None, None),
        };
        Ok(Page {
            sql,
            industry,
            after_value,
            after_id,
            limit,
        })
    }
}

/// The JSON of a page: at most `limit` of `rows` (each with its sort key), and the cursor of
/// the next when there is one.
pub(crate) fn page(rows: Vec<(Company, Option<String>)>, limit: i64) -> Response {
    #[derive(Serialize)]
    struct Body {
        items: Vec<Company>,
        next_cursor: Option<String>,
    }
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
    Json(Body { items, next_cursor }).into_response()
}

/// A nested address, as the schema defines it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Address {
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
pub(crate) struct CompanyCreate {
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

/// A checked new company.
pub(crate) struct NewCompany {
    pub name: String,
    pub domain: Option<String>,
    pub website: Option<String>,
    pub industry: String,
    pub employee_count: Option<i64>,
    pub annual_revenue: Option<Decimal>,
    pub address: Option<Value>,
    pub tags: Value,
}

impl CompanyCreate {
    pub(crate) fn check(self) -> Result<NewCompany, Problem> {
        text("name", &self.name, 1, 200)?;
        if let Some(domain) = &self.domain {
            check_domain(domain)?;
        }
        if let Some(website) = &self.website {
            check_website(website)?;
        }
        check_industry(&self.industry)?;
        if self.employee_count.is_some_and(|n| n < 0) {
            return Err(Problem::invalid("employee_count: at least 0"));
        }
        let annual_revenue = self
            .annual_revenue
            .as_deref()
            .map(check_revenue)
            .transpose()?;
        if let Some(address) = &self.address {
            address.check()?;
        }
        check_tags(&self.tags)?;
        Ok(NewCompany {
            name: self.name,
            domain: self.domain,
            website: self.website,
            industry: self.industry,
            employee_count: self.employee_count,
            annual_revenue,
            address: self
                .address
                .map(|a| serde_json::to_value(a).expect("an address")),
            tags: serde_json::to_value(self.tags).expect("tags"),
        })
    }
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
pub(crate) struct CompanyPatch {
    name: Member<String>,
    domain: Member<String>,
    website: Member<String>,
    industry: Member<String>,
    employee_count: Member<i64>,
    annual_revenue: Member<String>,
    address: Member<Address>,
    tags: Member<Vec<String>>,
}

/// A checked patch: for each column, whether it is set and to what. Bound as `$4` … `$19`
/// (set, value) pairs in `Company`'s column order, name first.
pub(crate) struct Changes {
    pub nothing: bool,
    pub name: (bool, Option<String>),
    pub domain: (bool, Option<String>),
    pub website: (bool, Option<String>),
    pub industry: (bool, Option<String>),
    pub employee_count: (bool, Option<i64>),
    pub annual_revenue: (bool, Option<Decimal>),
    pub address: (bool, Option<Value>),
    pub tags: (bool, Option<Value>),
}

/// The `SET` list of an update by [`Changes`] (`$4` … `$19`), moving the version.
pub(crate) const SET_CHANGES: &str = "name = CASE WHEN $4 THEN $5 ELSE name END, \
     domain = CASE WHEN $6 THEN $7 ELSE domain END, \
     website = CASE WHEN $8 THEN $9 ELSE website END, \
     industry = CASE WHEN $10 THEN $11 ELSE industry END, \
     employee_count = CASE WHEN $12 THEN $13 ELSE employee_count END, \
     annual_revenue = CASE WHEN $14 THEN $15 ELSE annual_revenue END, \
     address = CASE WHEN $16 THEN $17 ELSE address END, \
     tags = CASE WHEN $18 THEN $19 ELSE tags END, \
     updated_at = now(), version = version + 1";

impl CompanyPatch {
    /// The patch of a request body sent as merge-patch (or JSON).
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<CompanyPatch, Problem> {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !media.starts_with("application/merge-patch+json")
            && !media.starts_with("application/json")
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/merge-patch+json",
            ));
        }
        serde_json::from_slice(body).map_err(|e| Problem::invalid(e.to_string()))
    }

    pub(crate) fn check(self) -> Result<Changes, Problem> {
        let nothing = self.name.is_absent()
            && self.domain.is_absent()
            && self.website.is_absent()
            && self.industry.is_absent()
            && self.employee_count.is_absent()
            && self.annual_revenue.is_absent()
            && self.address.is_absent()
            && self.tags.is_absent();
        let name = self.name.set();
        if name.0 && name.1.is_none() {
            return Err(Problem::invalid("name: required"));
        }
        if let Some(name) = &name.1 {
            text("name", name, 1, 200)?;
        }
        let domain = self.domain.set();
        if let Some(domain) = &domain.1 {
            check_domain(domain)?;
        }
        let website = self.website.set();
        if let Some(website) = &website.1 {
            check_website(website)?;
        }
        let industry = self.industry.set();
        if industry.0 {
            check_industry(industry.1.as_deref().unwrap_or(""))?;
        }
        let employee_count = self.employee_count.set();
        if employee_count.1.is_some_and(|n| n < 0) {
            return Err(Problem::invalid("employee_count: at least 0"));
        }
        let (set_revenue, revenue) = self.annual_revenue.set();
        let annual_revenue = (
            set_revenue,
            revenue.as_deref().map(check_revenue).transpose()?,
        );
        let (set_address, address) = self.address.set();
        if let Some(address) = &address {
            address.check()?;
        }
        let (set_tags, tags) = self.tags.set();
        if set_tags && tags.is_none() {
            return Err(Problem::invalid("tags: required"));
        }
        if let Some(tags) = &tags {
            check_tags(tags)?;
        }
        Ok(Changes {
            nothing,
            name,
            domain,
            website,
            industry,
            employee_count,
            annual_revenue,
            address: (
                set_address,
                address.map(|a| serde_json::to_value(a).expect("an address")),
            ),
            tags: (
                set_tags,
                tags.map(|t| serde_json::to_value(t).expect("tags")),
            ),
        })
    }
}

/// The version `If-Match` names: `None` for `*` or no header; 400 when malformed; weak tags
/// never match (RFC 9110 strong comparison), so they are a 412.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
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
            .ok_or_else(|| Problem::bad("If-Match: quoted entity tags"))?;
        if !weak && let Ok(version) = inner.parse::<i64>() {
            wanted = Some(version);
        }
    }
    // A list of tags none of which can match is a version no row has.
    Ok(Some(wanted.unwrap_or(-1)))
}
