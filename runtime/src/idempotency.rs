//! `Idempotency-Key` (the IETF httpapi draft, as Stripe's API popularised it): a client that
//! retries a `POST`, `PUT`, `PATCH` or `DELETE` with the key of its first attempt gets the first
//! attempt's response, and the operation happens once.
//!
//! A key is scoped to the caller's tenant, the caller and the route (method and path), and
//! stored with a hash of the request (method, target, content type, preconditions and body):
//! - the first request with a key runs, and its response (status, the headers a client reads
//!   again, body) is kept until the key expires ([`DEFAULT_TTL_SECONDS`]);
//! - the same key with the same request replays that response, marked
//!   `Idempotency-Replayed: true`, without running the handler again;
//! - the same key with another request is a 422 problem;
//! - a key whose first request is still running is a 409 with `Retry-After`.
//!
//! Every write transaction a request under a key commits marks the key in that transaction
//! (`committed_at`), so the key knows whether its operation happened:
//! - a response of a request that wrote is kept, whatever its status; one that wrote nothing
//!   (refused, failed: a generated operation either fully happens or not at all) releases the
//!   key, and a retry runs again, as Stripe does for requests that failed validation;
//! - a first request that never finished (its server stopped) holds its key for
//!   [`LOCK_SECONDS`]; after that a retry runs it if it wrote nothing, and otherwise is a 409
//!   saying the operation happened but its response was lost: it never runs twice.
//!
//! Expired keys are deleted by the runtime's hourly job ([`crate::jobs`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::auth::{Caller, Principal};
use crate::db::{Db, DbError, Executor as _, Json, SqlValue};
use crate::problem::Problem;

/// How long a key holds its response unless configured otherwise: a day.
pub const DEFAULT_TTL_SECONDS: u64 = 24 * 60 * 60;

/// How long a first request that has not finished holds its key.
pub const LOCK_SECONDS: i64 = 60;

/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = prefiq_grammar::MAX_IDEMPOTENCY_KEY;

/// The response headers a replay repeats.
const KEPT_HEADERS: [&str; 4] = ["content-type", "location", "etag", "www-authenticate"];

/// The key of the request being handled, in its task: what [`crate::db::Tx::commit`] marks.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    tenant: uuid::Uuid,
    caller: String,
    route: String,
    key: String,
}

tokio::task_local! {
    static HELD: Held;
}

/// The key of the request this task handles, if it came with one.
pub(crate) fn held() -> Option<Held> {
    HELD.try_with(Held::clone).ok()
}

impl Held {
    /// The statement that marks the key: its request committed a write.
    pub(crate) fn committed(&self, dialect: crate::db::Dialect) -> (crate::db::Sql, Vec<SqlValue>) {
        let sql = match dialect {
            crate::db::Dialect::Postgres => {
                "UPDATE prefiq_idempotency SET committed_at = $5 WHERE tenant_id = $1 AND caller = $2 \
                 AND route = $3 AND idempotency_key = $4 AND state = 'running' AND committed_at IS NULL"
            }
            crate::db::Dialect::Sqlite => {
                "UPDATE prefiq_idempotency SET committed_at = ?5 WHERE tenant_id = ?1 AND caller = ?2 \
                 AND route = ?3 AND idempotency_key = ?4 AND state = 'running' AND committed_at IS NULL"
            }
        };
        let params = vec![
            SqlValue::Uuid(self.tenant),
            SqlValue::Text(self.caller.clone()),
            SqlValue::Text(self.route.clone()),
            SqlValue::Text(self.key.clone()),
            SqlValue::DateTime(crate::db::now()),
        ];
        (crate::db::Sql::from(sql), params)
    }
}

/// What the middleware needs: the database and how long keys hold.
#[derive(Clone)]
pub struct Keys {
    db: Db,
    ttl: Duration,
}

impl Keys {
    /// Keys stored in `db`, each holding its response for `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Keys {
        Keys { db, ttl }
    }
}

/// What a request with a key may do.
enum Claim {
    /// Run: the key is this request's.
    Run,
    /// Answer with the first request's response.
    Replay(Response),
    /// The key's first request was different: a 422, or still running: a 409.
    Refuse(Problem),
}

/// The middleware: requests without the header, or with a safe method, pass untouched.
pub async fn middleware(State(keys): State<Keys>, request: Request, next: Next) -> Response {
    let unsafe_method = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(raw) = request.headers().get("idempotency-key").cloned() else {
        return next.run(request).await;
    };
    if !unsafe_method {
        return next.run(request).await;
    }
    let key = match parse_key(&raw) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    // The caller first: the key is theirs. An anonymous or refused request gets its 401 as
    // ever, and keeps nothing.
    let principal = match Caller::from_request_parts(&mut parts, &()).await {
        Ok(Caller(principal)) => principal,
        Err(problem) => return problem.into_response(),
    };
    let limit = parts
        .extensions
        .get::<crate::http::BodyLimit>()
        .copied()
        .unwrap_or_default()
        .0;
    let bytes = match crate::http::read_limited(body, limit).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    let route = format!("{} {}", parts.method, parts.uri.path());
    let hash = fingerprint(&parts.method, &parts.uri, &parts.headers, &bytes);
    let stored = Stored {
        keys: &keys,
        principal: &principal,
        route: &route,
        key: &key,
    };
    match stored.claim(&hash).await {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay(response)) => return response,
        Ok(Claim::Refuse(problem)) => return problem.into_response(),
        Err(error) => return Problem::from(error).into_response(),
    }
    let held = Held {
        tenant: principal.tenant,
        caller: principal.subject.clone(),
        route: route.clone(),
        key: key.clone(),
    };
    let response = HELD
        .scope(
            held,
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    match stored.keep(response).await {
        Ok(response) => response,
        Err(error) => Problem::from(error).into_response(),
    }
}

/// The key, if it is one ([`prefiq_grammar::IDEMPOTENCY_KEY`]); a 400 otherwise.
fn parse_key(raw: &HeaderValue) -> Result<String, Problem> {
    raw.to_str()
        .ok()
        .and_then(prefiq_grammar::idempotency_key)
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::bad_parameter(
                "Idempotency-Key",
                format!(
                    "must be 1 to {MAX_KEY_LENGTH} visible ASCII characters other than `\"`, such as a UUID, bare or in quotes"
                ),
            )
        })
}

/// A hash of what makes two requests the same one: method, target, content type, preconditions
/// and body.
fn fingerprint(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    // A header sent empty is not a header left out.
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| [&b"+"[..], value.as_bytes()].concat())
            .unwrap_or_default()
    };
    // The preconditions too: a retry must ask the same of the resource as the first request.
    for part in [
        method.as_str().as_bytes().to_vec(),
        uri.path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes()
            .to_vec(),
        header("content-type"),
        header("if-match"),
        header("if-none-match"),
        body.to_vec(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(&part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One caller's key on one route.
struct Stored<'a> {
    keys: &'a Keys,
    principal: &'a Arc<Principal>,
    route: &'a str,
    key: &'a str,
}

impl Stored<'_> {
    fn scope(&self) -> Vec<SqlValue> {
        vec![
            SqlValue::Uuid(self.principal.tenant),
            SqlValue::Text(self.principal.subject.clone()),
            SqlValue::Text(self.route.to_owned()),
            SqlValue::Text(self.key.to_owned()),
        ]
    }

    /// Takes the key for this request, or says what the earlier one with it decides.
    async fn claim(&self, hash: &str) -> Result<Claim, DbError> {
        let now = crate::db::now();
        let ttl = chrono::Duration::from_std(self.keys.ttl).unwrap_or_default();
        let locked_until = now + chrono::Duration::seconds(LOCK_SECONDS);
        let mut tx = self.keys.db.begin(self.principal).await?;
        // A key nobody holds, or one whose holder expired or never finished, becomes this
        // request's.
        let take = tx.pick(
            "INSERT INTO prefiq_idempotency (tenant_id, caller, route, idempotency_key, request_hash, state, \
             locked_until, expires_at) VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) \
             ON CONFLICT (tenant_id, caller, route, idempotency_key) DO UPDATE SET \
             request_hash = excluded.request_hash, state = 'running', status = NULL, headers = NULL, \
             body = NULL, committed_at = NULL, locked_until = excluded.locked_until, expires_at = excluded.expires_at \
             WHERE prefiq_idempotency.expires_at < $8 \
             OR (prefiq_idempotency.state = 'running' AND prefiq_idempotency.locked_until < $8 \
                 AND prefiq_idempotency.request_hash = excluded.request_hash \
                 AND prefiq_idempotency.committed_at IS NULL) \
             RETURNING idempotency_key",
            "INSERT INTO prefiq_idempotency (tenant_id, caller, route, idempotency_key, request_hash, state, \
             locked_until, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7) \
             ON CONFLICT (tenant_id, caller, route, idempotency_key) DO UPDATE SET \
             request_hash = excluded.request_hash, state = 'running', status = NULL, headers = NULL, \
             body = NULL, committed_at = NULL, locked_until = excluded.locked_until, expires_at = excluded.expires_at \
             WHERE prefiq_idempotency.expires_at < ?8 \
             OR (prefiq_idempotency.state = 'running' AND prefiq_idempotency.locked_until < ?8 \
                 AND prefiq_idempotency.request_hash = excluded.request_hash \
                 AND prefiq_idempotency.committed_at IS NULL) \
             RETURNING idempotency_key",
        );
        let mut params = self.scope();
        params.extend([
            SqlValue::Text(hash.to_owned()),
            SqlValue::DateTime(locked_until),
            SqlValue::DateTime(now + ttl),
            SqlValue::DateTime(now),
        ]);
        if !tx.fetch_all(take, params).await?.is_empty() {
            tx.commit().await?;
            return Ok(Claim::Run);
        }
        let read = tx.pick(
            "SELECT request_hash, state, status, headers, body, committed_at IS NOT NULL AND locked_until < $5 \
             FROM prefiq_idempotency WHERE tenant_id = $1 AND caller = $2 AND route = $3 AND idempotency_key = $4",
            "SELECT request_hash, state, status, headers, body, committed_at IS NOT NULL AND locked_until < ?5 \
             FROM prefiq_idempotency WHERE tenant_id = ?1 AND caller = ?2 AND route = ?3 AND idempotency_key = ?4",
        );
        let mut params = self.scope();
        params.push(SqlValue::DateTime(now));
        let row = tx.fetch_optional(read, params).await?;
        tx.commit().await?;
        let Some(row) = row else {
            // Released between the two statements (its first request failed): a retry runs.
            return Ok(Claim::Refuse(running()));
        };
        let first_hash: String = row.req(0)?;
        if first_hash != hash {
            return Ok(Claim::Refuse(reused()));
        }
        let state: String = row.req(1)?;
        if state != "done" {
            let lost: bool = row.req(5)?;
            return Ok(Claim::Refuse(if lost { lost_outcome() } else { running() }));
        }
        let status: i32 = row.req(2)?;
        let Json(headers) = row.req::<Json<Value>>(3)?;
        let body: String = row.req(4)?;
        Ok(Claim::Replay(replay(status, &headers, &body)))
    }

    /// Keeps `response` as the key's if its request wrote, or is a success; releases the key
    /// otherwise (nothing happened); returns it.
    async fn keep(&self, response: Response) -> Result<Response, DbError> {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| DbError::Internal(format!("a response could not be read: {e}")))?;
        let mut tx = self.keys.db.begin(self.principal).await?;
        let released = if parts.status.is_success() || parts.status.is_redirection() {
            false
        } else {
            // Unless the request wrote: then its answer is the operation's, kept like a success.
            let release = tx.pick(
                "DELETE FROM prefiq_idempotency WHERE tenant_id = $1 AND caller = $2 AND route = $3 \
                 AND idempotency_key = $4 AND committed_at IS NULL",
                "DELETE FROM prefiq_idempotency WHERE tenant_id = ?1 AND caller = ?2 AND route = ?3 \
                 AND idempotency_key = ?4 AND committed_at IS NULL",
            );
            tx.execute(release, self.scope()).await? > 0
        };
        if !released {
            let headers: Map<String, Value> = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(*name)?.to_str().ok()?;
                    Some(((*name).to_owned(), Value::String(value.to_owned())))
                })
                .collect();
            let done = tx.pick(
                "UPDATE prefiq_idempotency SET state = 'done', status = $5, headers = $6, body = $7 \
                 WHERE tenant_id = $1 AND caller = $2 AND route = $3 AND idempotency_key = $4",
                "UPDATE prefiq_idempotency SET state = 'done', status = ?5, headers = ?6, body = ?7 \
                 WHERE tenant_id = ?1 AND caller = ?2 AND route = ?3 AND idempotency_key = ?4",
            );
            let mut params = self.scope();
            params.extend([
                SqlValue::Int32(i32::from(parts.status.as_u16())),
                SqlValue::Json(Value::Object(headers)),
                SqlValue::Text(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            ]);
            tx.execute(done, params).await?;
        }
        tx.commit().await?;
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }
}

/// The first request's response, again.
fn replay(status: i32, headers: &Value, body: &str) -> Response {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if let Some(headers) = headers.as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert("idempotency-replayed", HeaderValue::from_static("true"));
    response
}

fn reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency key reused",
    )
    .with_detail(
        "this Idempotency-Key was used for a different request on this route: use a new key for a new request",
    )
    // The body is what differs (or the target's query): a 422 lists what is at fault.
    .with_errors(vec![crate::problem::FieldError {
        pointer: String::new(),
        detail: "differs from the first request sent with this Idempotency-Key".into(),
        keyword: Some("idempotency-key".into()),
    }])
}

fn lost_outcome() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency-key-outcome-lost",
        "Idempotency key used, response lost",
    )
    .with_detail(
        "the first request with this Idempotency-Key made its change, but its server stopped before its response was kept: read the resource to see the outcome, and use a new key to make another change",
    )
}

fn running() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency-key-in-use",
        "Idempotency key in use",
    )
    .with_detail(
        "the first request with this Idempotency-Key is still being processed: retry it shortly",
    )
    .with_header("retry-after", "1")
}

/// Deletes the keys that expired; how many. The runtime's hourly job runs it.
pub async fn expire(db: &Db) -> Result<u64, DbError> {
    let system = Arc::new(Principal::system(crate::auth::DEFAULT_TENANT));
    let mut tx = db.begin(&system).await?;
    let sql = tx.pick(
        "DELETE FROM prefiq_idempotency WHERE expires_at < $1",
        "DELETE FROM prefiq_idempotency WHERE expires_at < ?1",
    );
    let deleted = tx
        .execute(sql, vec![SqlValue::DateTime(crate::db::now())])
        .await?;
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pattern_and_the_check_agree() {
        let pattern = regex::Regex::new(prefiq_grammar::IDEMPOTENCY_KEY).unwrap();
        let long = "k".repeat(255);
        let too_long = "k".repeat(256);
        let quoted_long = format!("\"{long}\"");
        let cases = [
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
            "\"half",
            "half\"",
            "\"",
            "\"\"",
            "a\"b",
            "a b",
            "\t",
            "",
            "!~#",
            long.as_str(),
            too_long.as_str(),
            quoted_long.as_str(),
        ];
        for case in cases {
            assert_eq!(
                pattern.is_match(case),
                prefiq_grammar::idempotency_key(case).is_some(),
                "{case:?}"
            );
        }
        let key = |s: &str| parse_key(&HeaderValue::from_str(s).unwrap());
        assert_eq!(
            key("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"").unwrap(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324"
        );
        assert!(key("a b").is_err());
        assert!(key(&too_long).is_err());
    }

    #[test]
    fn the_fingerprint_tells_requests_apart_by_every_part() {
        let headers = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert("content-type", HeaderValue::from_str(ct).unwrap());
            h
        };
        let uri = |u: &str| u.parse::<axum::http::Uri>().unwrap();
        let base = fingerprint(
            &Method::POST,
            &uri("/a?x=1"),
            &headers("application/json"),
            b"{}",
        );
        assert_eq!(
            base,
            fingerprint(
                &Method::POST,
                &uri("/a?x=1"),
                &headers("application/json"),
                b"{}"
            )
        );
        for other in [
            fingerprint(
                &Method::PUT,
                &uri("/a?x=1"),
                &headers("application/json"),
                b"{}",
            ),
            fingerprint(
                &Method::POST,
                &uri("/a?x=2"),
                &headers("application/json"),
                b"{}",
            ),
            fingerprint(&Method::POST, &uri("/a?x=1"), &headers("text/plain"), b"{}"),
            fingerprint(&Method::POST, &uri("/a?x=1"), &HeaderMap::new(), b"{}"),
            fingerprint(&Method::POST, &uri("/a?x=1"), &headers(""), b"{}"),
            fingerprint(
                &Method::POST,
                &uri("/a?x=1"),
                &headers("application/json"),
                b"{ }",
            ),
        ] {
            assert_ne!(base, other);
        }
    }
}
