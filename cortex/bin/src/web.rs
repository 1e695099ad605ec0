//! What Cortex's HTML and OAuth endpoints share over HTTP: the caller's address, cookies, the
//! security headers of every response, and the one-message page.

use askama::Template;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, header};
use axum::response::{Html, Response};

/// The session cookie.
pub const SESSION_COOKIE: &str = "prefiq_session";

/// The address a request came from (the connection's peer), for the sign-in throttle.
#[derive(Debug, Clone)]
pub struct Peer(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// The longest path [`local_path`] accepts.
const MAX_LOCAL_PATH: usize = 2048;

/// `text` if it is a path of this server and nothing else: where a browser is sent after signing
/// in (`next`) or with an authorization code (a redirect URI). It must start with one `/`, and
/// neither it nor its percent-decoded form may hold a second leading `/` or a `\` (which
/// browsers read as another host) or a control character (which browsers strip or fold), it may
/// hold no white space, and it may not be longer than 2,048 bytes. Anything else is the reason it is refused.
pub fn local_path(text: &str) -> Result<&str, &'static str> {
    if text.len() > MAX_LOCAL_PATH {
        return Err("it is too long");
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(text.as_bytes()).collect();
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err("it holds white space");
    }
    for form in [text.as_bytes(), decoded.as_slice()] {
        if form.first() != Some(&b'/') {
            return Err("it does not start with /");
        }
        if matches!(form.get(1), Some(b'/' | b'\\')) {
            return Err("it names another host");
        }
        if form.contains(&b'\\') {
            return Err("it holds a backslash");
        }
        if form.iter().any(u8::is_ascii_control) {
            return Err("it holds a control character");
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err("it is not UTF-8 once decoded");
    }
    Ok(text)
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The security headers of every Cortex response: nothing runs, loads or frames from elsewhere.
pub async fn security_headers(request: Request<Body>, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A page with a title and one message (errors before there is a layout).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The HTML of a message page.
pub fn message_page(title: &str, message: &str) -> Html<String> {
    Html(
        MessagePage { title, message }
            .render()
            .unwrap_or_else(|_| "error".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_server_are_local() {
        for good in [
            "/admin",
            "/apps/crm/",
            "/admin/crm/deals?sort=-name&limit=20",
            "/a%20b",
            "/%C3%A9t%C3%A9",
        ] {
            assert_eq!(local_path(good), Ok(good), "{good}");
        }
        for bad in [
            "",
            "admin",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "\\evil.example",
            "/admin\\..",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "/\t/evil.example",
            "/admin\n",
            "/ admin",
            "/%0d%0aSet-Cookie:x",
            "/%09/evil.example",
            "/%00",
            "/\u{7f}",
            "/%ff%fe",
            " /admin",
            "javascript:alert(1)",
        ] {
            assert!(local_path(bad).is_err(), "{bad:?} is refused");
        }
        assert!(local_path(&format!("/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; prefiq_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
