//! Small pieces of HTTP answers that any adapter uses, and [`Failure`]: how the
//! HTTP layer's middleware reports a failure without choosing its form.

use poem::http::StatusCode;
use poem::http::header::{self, HeaderValue};
use poem::{IntoResponse, Response};

/// `303 See Other` to `location`: after a form, the browser loads the next page
/// with GET.
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// Adds `Retry-After: seconds` to `resp` (throttled logins, busy hashing).
pub fn with_retry_after(mut resp: Response, seconds: i64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

/// Adds a `Set-Cookie` header to `resp`.
pub fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    resp
}

/// A failure met by middleware (the store down while loading the identity): a
/// status, a title and a message, answered as plain text and carried in the
/// response's extensions, where each adapter's renderer finds it and answers in
/// its own form (an error page, a problem document). Middleware never renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: &'static str,
    pub retry_after: Option<i64>,
}

impl Failure {
    pub fn new(status: StatusCode, title: &'static str, message: &'static str) -> Self {
        Self {
            status,
            title,
            message,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.message).into_response();
        if let Some(seconds) = self.retry_after {
            resp = with_retry_after(resp, seconds);
        }
        resp.extensions_mut().insert(self);
        resp
    }
}
