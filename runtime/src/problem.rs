//! RFC 9457 `application/problem+json` errors: the one error type every handler returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid member of a request, located by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where the problem is in the request body (`""` is the whole body, `/name` a member).
    pub pointer: String,
    /// What is wrong, in words a client developer can act on.
    pub detail: String,
    /// The JSON Schema keyword that failed, when there is one (`maxLength`, `required`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
}

/// An HTTP error response in the shape of RFC 9457.
///
/// 4xx problems explain what the client should change. 5xx problems never reveal internals:
/// the cause is logged with the request id, which the response carries in `x-request-id`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// An explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid members of the request, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Response headers the problem needs (`WWW-Authenticate`, `Retry-After`).
    #[serde(skip)]
    pub headers: Option<Box<Vec<(&'static str, String)>>>,
}

/// The most errors a 422 lists.
pub const MAX_ERRORS: usize = 100;

impl Problem {
    /// A problem with the given status, a `type` slug under `https://prefiq.dev/problems/` and a title.
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("https://prefiq.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            headers: None,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .push((name, value.into()));
        self
    }

    /// 401: the request carries no valid credentials. `challenge` is the `WWW-Authenticate`
    /// header (RFC 6750 for bearer tokens).
    pub fn unauthorized(detail: impl Into<String>, challenge: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            .with_detail(detail)
            .with_header("www-authenticate", challenge)
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    /// 429: too many attempts; retry after `seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
        )
        .with_detail(format!("too many attempts; retry in {seconds} s"))
        .with_header("retry-after", seconds.to_string())
    }

    /// Adds an explanation of this occurrence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds invalid members.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// The same problem with another status (a service returns it as a declared response).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The status code as an `http` type.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400: the request could not be understood (malformed JSON, bad query parameter).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").with_detail(detail)
    }

    /// 400 for a malformed JSON body, pointing at where parsing stopped.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON body",
        )
        .with_detail(detail)
    }

    /// 400 for one invalid query parameter.
    pub fn bad_parameter(name: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid query parameter",
        )
        .with_detail(format!("`{name}`: {detail}"))
    }

    /// 404: no resource at this URL.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").with_detail(detail)
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
    }

    /// 409: the request conflicts with the stored data (unique or foreign-key constraint).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
    }

    /// 409: a body the document admits, refused by the state it would apply to or by a rule the
    /// schema does not state (a service's business rule, or a merge patch whose result would
    /// break the schema, RFC 5789 §2.2). The members to blame are listed as in a 422, which
    /// stays the answer for bodies the document itself refuses.
    pub fn refused(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => one.detail.clone(),
            many => format!(
                "{} members conflict with a rule or the stored state",
                many.len()
            ),
        };
        let mut errors = errors;
        errors.truncate(MAX_ERRORS);
        Self::new(StatusCode::CONFLICT, "refused", "Refused by a rule")
            .with_detail(detail)
            .with_errors(errors)
    }

    /// 412: `If-Match` names a version that is no longer current.
    pub fn precondition_failed(current_version: i64) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
        )
        .with_detail(format!(
            "the resource was changed by someone else; its current ETag is \"{current_version}\". \
             Fetch it again, reapply your change and retry"
        ))
    }

    /// 413: the body is larger than the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
        )
        .with_detail(format!("request bodies are limited to {limit} bytes"))
    }

    /// 415: the body is not JSON.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail(format!("send the body as `{expected}`"))
    }

    /// 422: the body is JSON but breaks the schema.
    pub fn unprocessable(mut errors: Vec<FieldError>) -> Self {
        let total = errors.len();
        let mut detail = match total {
            1 => "1 member of the request body is invalid".to_owned(),
            n => format!("{n} members of the request body are invalid"),
        };
        // However large the body, the answer stays small: the first errors only.
        if total > MAX_ERRORS {
            errors.truncate(MAX_ERRORS);
            detail.push_str(&format!("; the first {MAX_ERRORS} are listed"));
        }
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation failed",
        )
        .with_detail(detail)
        .with_errors(errors)
    }

    /// 500: something failed on our side. The cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
        .with_detail("the server failed to handle this request; quote the x-request-id header when reporting it")
    }

    /// 503: a dependency (the database) is unavailable.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "service unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
        )
        .with_detail("the database is not reachable; retry later")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers.iter().flat_map(|h| h.iter()) {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_problem_lists_each_member_with_its_pointer() {
        let problem = Problem::unprocessable(vec![FieldError {
            pointer: "/name".into(),
            detail: "must not be empty".into(),
            keyword: Some("minLength".into()),
        }]);
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["status"], 422);
        assert_eq!(json["type"], "https://prefiq.dev/problems/validation");
        assert_eq!(json["errors"][0]["pointer"], "/name");
        assert_eq!(json["errors"][0]["keyword"], "minLength");
    }

    #[test]
    fn a_problem_response_has_the_problem_media_type() {
        let response = Problem::not_found("no such company").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
