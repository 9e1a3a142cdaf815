//! Small pieces of HTTP answers that any adapter uses, and [`Failure`]: how the
//! HTTP layer's middleware reports a failure without choosing its form.

use std::borrow::Cow;

use poem::http::StatusCode;
use poem::http::header::{self, HeaderValue};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

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

/// A static file compressed once at build time: always gzip, brotli when it was
/// worth embedding, and the plain bytes when they are small enough to embed too.
pub struct Precompressed {
    pub plain: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
    pub gzip: &'static [u8],
    pub content_type: &'static str,
}

impl Precompressed {
    /// The encoding `req` accepts best (brotli, then gzip, then none), cached for a
    /// year (the path carries the version), with `Vary: Accept-Encoding`. A client
    /// that takes no encoding gets the plain bytes, inflated here when only the
    /// compressed forms are embedded.
    pub fn answer(&self, req: &Request) -> Response {
        // Brotli only when this asset has it; gzip only when the client takes it
        // (a client that takes brotli alone gets the plain bytes of a gzip-only
        // asset).
        let (body, encoding): (Cow<'static, [u8]>, _) = match self.brotli {
            Some(brotli) if accepts_encoding(req, "br") => (Cow::Borrowed(brotli), Some("br")),
            _ if accepts_encoding(req, "gzip") => (Cow::Borrowed(self.gzip), Some("gzip")),
            _ => match self.plain {
                Some(plain) => (Cow::Borrowed(plain), None),
                None => (Cow::Owned(gunzip(self.gzip)), None),
            },
        };
        let mut resp = Response::builder()
            .header(header::CONTENT_TYPE, self.content_type)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header(header::VARY, "Accept-Encoding");
        if let Some(encoding) = encoding {
            resp = resp.header(header::CONTENT_ENCODING, encoding);
        }
        match body {
            Cow::Borrowed(bytes) => resp.body(bytes),
            Cow::Owned(bytes) => resp.body(bytes),
        }
    }
}

fn gunzip(gzip: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut plain = Vec::new();
    if let Err(err) = flate2::read::GzDecoder::new(gzip).read_to_end(&mut plain) {
        tracing::error!(error = %err, "an embedded asset does not inflate");
    }
    plain
}

/// Whether `Accept-Encoding` allows `name` (by name or `*`; a `q` of 0 refuses).
fn accepts_encoding(req: &Request, name: &str) -> bool {
    let mut by_name = None;
    let mut any = false;
    let items = req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in items {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if coding.eq_ignore_ascii_case(name) {
            by_name = Some(by_name.unwrap_or(true) && !refused);
        } else if coding == "*" {
            any = !refused;
        }
    }
    by_name.unwrap_or(any)
}

/// HTML bodies at least this long are sent gzip-compressed to clients that take it;
/// below it the header costs more than compression saves.
pub const COMPRESS_HTML_FROM: usize = 1024;

/// Compresses HTML answers of [`COMPRESS_HTML_FROM`] bytes or more with gzip when
/// the client accepts it, and marks every HTML answer `Vary: Accept-Encoding`.
/// Safe against BREACH because no page holds a secret that stays the same between
/// responses: the CSRF token is salted afresh each time, and session and API
/// tokens are never in a page. (`/auth` never gets here: its answers have no body.)
pub fn compress_html<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req| async move {
        let gzip = accepts_encoding(&req, "gzip");
        let resp = ep.call(req).await?.into_response();
        let is_html = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/html"));
        if !is_html || resp.headers().contains_key(header::CONTENT_ENCODING) {
            return Ok(resp);
        }
        let (mut parts, body) = resp.into_parts();
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        let body = body.into_vec().await?;
        if !gzip || body.len() < COMPRESS_HTML_FROM {
            return Ok(Response::from_parts(parts, body.into()));
        }
        let compressed = gzip_bytes(&body);
        parts
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(Response::from_parts(parts, compressed.into()))
    })
}

fn gzip_bytes(plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain.len() / 3),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(plain);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asset_embedded_only_compressed_is_inflated_for_plain_clients() {
        use std::io::Write;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(b"body { color: red }").unwrap();
        let gzip: &'static [u8] = Box::leak(gzip.finish().unwrap().into_boxed_slice());
        let asset = Precompressed {
            plain: None,
            brotli: None,
            gzip,
            content_type: "text/css",
        };
        let plain = Request::builder().finish();
        let resp = asset.answer(&plain);
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        let body = futures::executor::block_on(resp.into_body().into_vec()).unwrap();
        assert_eq!(body, b"body { color: red }");
        // A client that takes brotli alone gets the plain bytes, not gzip.
        let br = Request::builder()
            .header(header::ACCEPT_ENCODING, "br")
            .finish();
        let resp = asset.answer(&br);
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        let body = futures::executor::block_on(resp.into_body().into_vec()).unwrap();
        assert_eq!(body, b"body { color: red }");
    }

    async fn html_answer(len: usize, content_type: &'static str, accept: &str) -> Response {
        let page = poem::endpoint::make_sync(move |_| {
            Response::builder()
                .content_type(content_type)
                .body("x".repeat(len))
        });
        let req = Request::builder()
            .header(header::ACCEPT_ENCODING, accept)
            .finish();
        compress_html(page).call(req).await.unwrap()
    }

    #[tokio::test]
    async fn html_is_compressed_from_the_threshold_on_and_nothing_else_is() {
        let big = html_answer(COMPRESS_HTML_FROM, "text/html; charset=utf-8", "gzip").await;
        assert_eq!(big.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(big.headers()[header::VARY], "Accept-Encoding");
        let body = big.into_body().into_vec().await.unwrap();
        assert!(body.len() < COMPRESS_HTML_FROM / 4);
        let small = html_answer(COMPRESS_HTML_FROM - 1, "text/html", "gzip").await;
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(small.headers()[header::VARY], "Accept-Encoding");
        for (content_type, accept) in [
            ("application/json", "gzip"),
            ("text/html", "identity"),
            ("text/html", "br, gzip;q=0"),
        ] {
            let resp = html_answer(4096, content_type, accept).await;
            assert!(
                resp.headers().get(header::CONTENT_ENCODING).is_none(),
                "{content_type} {accept}"
            );
            assert_eq!(resp.into_body().into_vec().await.unwrap().len(), 4096);
        }
    }

    /// The encoding an asset with both compressed forms is answered in.
    fn encoding(accept: &str) -> Option<String> {
        let asset = Precompressed {
            plain: Some(b"plain"),
            brotli: Some(b"br"),
            gzip: b"gz",
            content_type: "text/plain",
        };
        let req = Request::builder()
            .header(header::ACCEPT_ENCODING, accept)
            .finish();
        asset
            .answer(&req)
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_best_accepted_encoding_is_chosen() {
        assert_eq!(encoding("gzip, deflate, br, zstd").as_deref(), Some("br"));
        assert_eq!(encoding("gzip").as_deref(), Some("gzip"));
        assert_eq!(encoding("br;q=0, gzip;q=0.5").as_deref(), Some("gzip"));
        assert_eq!(encoding("identity"), None);
        assert_eq!(encoding("*").as_deref(), Some("br"));
        assert_eq!(encoding("*, br;q=0").as_deref(), Some("gzip"));
        assert_eq!(encoding(""), None);
    }
}
