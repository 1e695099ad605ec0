//! Request extractors and response types shared by every generated handler, each failing with
//! a [`Problem`] rather than axum's plain-text rejections.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::auth::{Caller, Principal};
use crate::problem::Problem;

/// The largest request body accepted, in bytes; set once by the server as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        BodyLimit(1024 * 1024)
    }
}

/// A request body parsed as JSON, not yet validated.
///
/// Rejections: 415 if it is not JSON, 413 over the [`BodyLimit`], 400 if it does not parse.
#[derive(Debug)]
pub struct JsonBody(pub Value);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type("application/json"));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .copied()
            .unwrap_or_default()
            .0;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(Problem::payload_too_large(limit));
        }
        let bytes = read_limited(req.into_body(), limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Problem::malformed_json(
                "the body is empty; send a JSON object",
            ));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Problem::malformed_json(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                e.to_string().split(" at line").next().unwrap_or_default()
            ))
        })?;
        if let Some(pointer) = nul_at(&value, String::new()) {
            return Err(Problem::unprocessable(vec![crate::problem::FieldError {
                pointer,
                detail: "may not contain the NUL character (U+0000)".into(),
                keyword: Some("pattern".into()),
            }]));
        }
        Ok(JsonBody(value))
    }
}

/// The JSON pointer of the first string (or member name) holding a NUL character, which no
/// text column of PostgreSQL can store.
fn nul_at(value: &Value, at: String) -> Option<String> {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(text) if text.contains('\0') => Some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{at}/{i}"))),
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            let here = format!("{at}/{}", escape(key));
            if key.contains('\0') {
                Some(here)
            } else {
                nul_at(item, here)
            }
        }),
        _ => None,
    }
}

/// Whether the body's read failed because the body timeout passed (the timeout's error arrives
/// wrapped, in the chain of sources).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = error.source();
    }
    false
}

pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, Problem> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Problem::payload_too_large(limit))
        }
        Err(error) if timed_out(error.as_ref()) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "Request timeout",
        )
        .with_detail("the body did not arrive in time")),
        Err(error) => Err(Problem::bad_request(format!(
            "the body could not be read: {error}"
        ))),
    }
}

/// The `If-Match` precondition of a `PATCH` or `DELETE` (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No precondition.
    Any,
    /// `If-Match: *`: the resource must exist.
    Exists,
    /// Entity tags, any of which may be current. Weak tags and tags that are not one of our
    /// versions are kept as `None`: If-Match compares strongly, so they never match.
    Tags(Vec<Option<i64>>),
}

/// How a header value lists entity tags: `"3"`, `W/"3"`, comma-separated, or `*`.
fn entity_tags(value: &str) -> Option<Vec<Option<i64>>> {
    let mut tags = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        let tail = tail.strip_prefix('"')?;
        let end = tail.find('"')?;
        let opaque = &tail[..end];
        // etagc: %x21 / %x23-7E / obs-text
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        tags.push(if weak {
            None
        } else {
            opaque.parse::<i64>().ok()
        });
        rest = tail[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    (!tags.is_empty()).then_some(tags)
}

impl IfMatch {
    /// Parses the header's values (repeated headers are one list, RFC 9110 §5.3); an empty or
    /// malformed value is a 400.
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<IfMatch, Problem> {
        let values: Vec<&str> = values.into_iter().collect();
        if values.is_empty() {
            return Ok(IfMatch::Any);
        }
        let malformed = || {
            Problem::bad_request(
                "If-Match must be `*` or a list of entity tags such as `\"3\"` (the ETag you read)",
            )
        };
        if values.len() == 1 && values[0].trim() == "*" {
            return Ok(IfMatch::Exists);
        }
        let mut tags = Vec::new();
        for value in values {
            if value.trim() == "*" {
                return Err(malformed());
            }
            tags.extend(entity_tags(value).ok_or_else(malformed)?);
        }
        Ok(IfMatch::Tags(tags))
    }

    /// Parses one header value (tests and tools).
    pub fn parse(value: Option<&str>) -> IfMatch {
        IfMatch::parse_all(value).unwrap_or(IfMatch::Tags(vec![None]))
    }

    /// Whether the client sent a version to compare with.
    pub fn is_conditional(&self) -> bool {
        matches!(self, IfMatch::Tags(_))
    }

    /// Passes if `current` satisfies the precondition; otherwise 412 with the current ETag.
    pub fn check(&self, current: i64) -> Result<(), Problem> {
        match self {
            IfMatch::Tags(tags) if !tags.contains(&Some(current)) => {
                Err(Problem::precondition_failed(current))
            }
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = Vec::new();
        for value in parts.headers.get_all(header::IF_MATCH) {
            values.push(
                value
                    .to_str()
                    .map_err(|_| Problem::bad_request("If-Match must be ASCII entity tags"))?,
            );
        }
        IfMatch::parse_all(values)
    }
}

/// Facts about the request that handlers and services need: who calls, its id (for logs) and
/// its headers. Extracting it authenticates the request: without valid credentials the request
/// ends with a 401 problem before any handler runs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The `x-request-id` the server assigned or the client sent.
    pub request_id: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// Who calls.
    pub principal: Arc<Principal>,
}

impl RequestContext {
    /// The 403 problem unless the caller holds `permission`.
    pub fn require(&self, permission: &str) -> Result<(), Problem> {
        self.principal.require(permission)
    }

    /// The 403 problem unless the caller may do an operation of `scope` that needs
    /// `permission` (a platform operation needs a platform operator).
    pub fn require_in(&self, scope: crate::auth::Scope, permission: &str) -> Result<(), Problem> {
        self.principal.require_in(scope, permission)
    }

    /// A context for the server acting on its own (start-up tasks, jobs) as `principal`.
    pub fn internal(principal: Principal) -> RequestContext {
        RequestContext {
            request_id: String::new(),
            headers: HeaderMap::new(),
            principal: Arc::new(principal),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(RequestContext {
            request_id,
            headers: parts.headers.clone(),
            principal,
        })
    }
}

/// The decoded `name=value` pairs of the query string, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(Problem::bad_parameter(
                &name.replace('\0', ""),
                "a query parameter may not contain the NUL character (U+0000)",
            ));
        }
        Ok(QueryPairs(pairs))
    }
}

/// The one path parameter of an item route (`/{id}`), as sent.
#[derive(Debug, Clone)]
pub struct PathKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::not_found("no route matches this URL"))?;
        params
            .iter()
            .next()
            .map(|(_, value)| PathKey(value.to_owned()))
            .ok_or_else(|| Problem::not_found("no route matches this URL"))
    }
}

/// Every path parameter of a route, as sent.
#[derive(Debug, Clone, Default)]
pub struct PathParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::not_found("no route matches this URL"))?;
        Ok(PathParams(
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

/// Parses a path key; a key that cannot exist is a 404, like any other unknown key. Only the
/// key's own written form is one (a UUID with its hyphens, an integer without leading zeros),
/// as the document's formats say.
pub fn parse_key<T: std::str::FromStr + std::fmt::Display>(
    raw: &str,
    entity: &str,
) -> Result<T, Problem> {
    let missing = || Problem::not_found(format!("no {entity} has the id `{}`", raw.escape_debug()));
    if raw.contains('\0') {
        return Err(missing());
    }
    let key: T = raw.parse().map_err(|_| missing())?;
    if !key.to_string().eq_ignore_ascii_case(raw) {
        return Err(missing());
    }
    Ok(key)
}

/// The `ETag` of a row at `version`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// 200 with a JSON body and its `ETag`.
#[derive(Debug)]
pub struct Tagged<T> {
    /// The row version the `ETag` names.
    pub version: i64,
    /// The body.
    pub body: T,
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.body).into_response();
        response
            .headers_mut()
            .insert(header::ETAG, etag(self.version));
        response
    }
}

/// 201 with a JSON body, its `ETag` and a `Location`.
#[derive(Debug)]
pub struct Created<T> {
    /// The URL of the new resource.
    pub location: String,
    /// The row version the `ETag` names.
    pub version: i64,
    /// The body.
    pub body: T,
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::CREATED, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag(self.version));
        if let Ok(location) = HeaderValue::from_str(&self.location) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// 204 with no body.
#[derive(Debug)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_strongly_and_combines_headers() {
        assert_eq!(IfMatch::parse_all([]).unwrap(), IfMatch::Any);
        assert_eq!(IfMatch::parse_all(["*"]).unwrap(), IfMatch::Exists);
        assert_eq!(
            IfMatch::parse_all(["\"3\""]).unwrap(),
            IfMatch::Tags(vec![Some(3)])
        );
        // A weak tag never matches (RFC 9110 §13.1.1 uses the strong comparison).
        let weak = IfMatch::parse_all(["W/\"3\", \"4\""]).unwrap();
        assert_eq!(weak, IfMatch::Tags(vec![None, Some(4)]));
        assert_eq!(weak.check(3).unwrap_err().status, 412);
        assert!(weak.check(4).is_ok());
        // Two header lines are one list.
        let both = IfMatch::parse_all(["\"1\"", "\"2\""]).unwrap();
        assert!(both.check(2).is_ok());
        // Empty and malformed values are 400.
        for bad in ["", " ", "3", "\"3", "\"3\" \"4\"", "*, \"3\"", "\"a b\""] {
            assert_eq!(
                IfMatch::parse_all([bad]).unwrap_err().status,
                400,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_foreign_tag_never_matches() {
        let precondition = IfMatch::parse(Some("\"abc\""));
        assert_eq!(precondition.check(1).unwrap_err().status, 412);
        assert!(IfMatch::parse(Some("\"1\"")).check(1).is_ok());
    }
}
