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
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            Problem::malformed_json(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                e.to_string().split(" at line").next().unwrap_or_default()
            ))
        })
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, Problem> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Problem::payload_too_large(limit))
        }
        Err(error) => Err(Problem::bad_request(format!(
            "the body could not be read: {error}"
        ))),
    }
}

/// The `If-Match` precondition of a `PATCH` or `DELETE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No precondition.
    Any,
    /// `If-Match: *`: the resource must exist.
    Exists,
    /// One or more versions, any of which may be current.
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Parses the header value; tags that are not ours can never match, so they fail with 412.
    pub fn parse(value: Option<&str>) -> IfMatch {
        let Some(value) = value else {
            return IfMatch::Any;
        };
        if value.trim() == "*" {
            return IfMatch::Exists;
        }
        IfMatch::Versions(
            value
                .split(',')
                .filter_map(|tag| {
                    let tag = tag.trim();
                    let tag = tag.strip_prefix("W/").unwrap_or(tag);
                    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
                })
                .collect(),
        )
    }

    /// Whether the client sent a version to compare with.
    pub fn is_conditional(&self) -> bool {
        matches!(self, IfMatch::Versions(_))
    }

    /// Passes if `current` satisfies the precondition; otherwise 412 with the current ETag.
    pub fn check(&self, current: i64) -> Result<(), Problem> {
        match self {
            IfMatch::Versions(versions) if !versions.contains(&current) => {
                Err(Problem::precondition_failed(current))
            }
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::IF_MATCH)
            .map(|v| v.to_str().unwrap_or("\"\""));
        Ok(IfMatch::parse(value))
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
        Ok(QueryPairs(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
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

/// Parses a path key; a key that cannot exist is a 404, like any other unknown key.
pub fn parse_key<T: std::str::FromStr>(raw: &str, entity: &str) -> Result<T, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found(format!("no {entity} has the id `{raw}`")))
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
    fn if_match_accepts_strong_weak_and_lists() {
        assert_eq!(IfMatch::parse(None), IfMatch::Any);
        assert_eq!(IfMatch::parse(Some("*")), IfMatch::Exists);
        assert_eq!(IfMatch::parse(Some("\"3\"")), IfMatch::Versions(vec![3]));
        assert_eq!(
            IfMatch::parse(Some("W/\"3\", \"4\"")),
            IfMatch::Versions(vec![3, 4])
        );
    }

    #[test]
    fn a_foreign_tag_never_matches() {
        let precondition = IfMatch::parse(Some("\"abc\""));
        assert_eq!(precondition.check(1).unwrap_err().status, 412);
        assert!(IfMatch::parse(Some("\"1\"")).check(1).is_ok());
    }
}
