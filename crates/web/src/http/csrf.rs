//! Cross-site request forgery defence for every state-changing request made with
//! the session cookie — the login form included, so nobody can log a victim in as
//! the attacker.
//!
//! Two checks, both before any handler runs:
//! - **Where it comes from.** An unsafe request whose `Sec-Fetch-Site` is not
//!   `same-origin` (or `none`), or whose `Origin` is another origin, is refused
//!   outright ([`cross_site`], shared with the JSON API).
//! - **Signed double submit.** The browser holds a random nonce in an HttpOnly cookie
//!   (`__Host-` prefixed when cookies are Secure, so a sibling subdomain cannot plant
//!   one); forms carry a token — the nonce, a fresh salt and
//!   `HMAC-SHA256(key, nonce ‖ salt)` — in a hidden `csrf` field, htmx sends it as
//!   `X-CSRF-Token`. The salt makes the token differ in every response, so that
//!   compressing a page (gzip above a size threshold) cannot leak it byte by byte
//!   (BREACH) even where the page also shows input an attacker chose. The token must be for the
//!   cookie's nonce, or (two tabs opened at once each set a nonce, and the browser
//!   keeps the last) a genuine token on a request the browser itself marks
//!   same-origin. The key is shared by every node.
//!
//! A refused form is not a dead end: the site's `on_refused` renders the same form
//! again with a fresh token and the input kept.
//!
//! Exempt: safe methods, `/auth` (it changes nothing), the JSON API (it runs
//! [`cross_site`] and checks this token itself), and requests authenticated by an
//! API token — which the auth middleware then reads alone, never with the cookie.
//! Any other `Authorization` (Basic, Digest, Negotiate: browsers attach those to
//! cross-site forms by themselves) exempts nothing.

use poem::http::Method;
use poem::http::header::{self, HeaderValue};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response};

use crate::config::Config;
use crate::core::Credential;
use crate::http::AppState;
use crate::http::form::MAX_FORM_BYTES;
use crate::http::{cookies, identity, proxy};

/// The hidden form field carrying the token.
pub use super::csrf_key::CsrfKey;
use super::csrf_key::{NONCE_HEX, new_nonce};
pub use super::form::CSRF_FIELD as FIELD;
/// The request header carrying the token (htmx, scripts).
pub const HEADER: &str = "x-csrf-token";

/// The token for this request's browser, put in the request's extensions for the
/// forms to carry.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// The token of `req`, for a hidden field; empty outside the middleware.
pub fn token(req: &Request) -> &str {
    req.extensions()
        .get::<CsrfToken>()
        .map_or("", |t| t.0.as_str())
}

fn cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-gatehouse_csrf"
    } else {
        "gatehouse_csrf"
    }
}

fn nonce_from_cookie(req: &Request, config: &Config) -> Option<String> {
    cookies::cookie(req, cookie_name(config))
        .filter(|v| v.len() == NONCE_HEX && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

fn is_unsafe(req: &Request) -> bool {
    !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Authenticated by an API token: a cross-site page cannot attach one, so such a
/// request needs no CSRF token (the auth middleware ignored its cookie).
fn by_api_token(req: &Request) -> bool {
    identity::current(req).is_some_and(|who| matches!(who.via, Credential::Token(_)))
}

/// Why an unsafe request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Sent from another site (`Origin`, `Sec-Fetch-Site`): the reason says which.
    CrossSite(String),
    /// No token, or not one for this browser: the form may simply be old.
    Forged,
    TooLarge,
}

/// Renders the answer to a refused request: the site shows the same form again,
/// with the fields the browser sent (`fields`, decoded) and the fresh token that is
/// already in the request's extensions.
pub type OnRefused = fn(&Request, &AppState, &Refusal, &[(String, String)]) -> Response;

/// Checks unsafe requests and hands every request its token. Runs inside the auth
/// middleware, so that it knows whether an API token authenticated the request.
pub fn middleware<E: Endpoint + 'static>(
    ep: E,
    state: AppState,
    on_refused: OnRefused,
) -> impl Endpoint<Output = Response> {
    ep.around(move |ep, mut req| {
        let state = state.clone();
        async move {
            // The JSON API checks its own requests (`api::guard`). (`/auth` never
            // gets here: `app` sends it straight to its handler.)
            if req.uri().path().starts_with("/api/") {
                return ep.call(req).await.map(IntoResponse::into_response);
            }
            let config = &state.config;
            let existing = nonce_from_cookie(&req, config);
            let verdict = if is_unsafe(&req) && !by_api_token(&req) {
                check(&mut req, &state, existing.as_deref()).await
            } else {
                Ok(())
            };
            let nonce = existing.clone().unwrap_or_else(new_nonce);
            req.extensions_mut()
                .insert(CsrfToken(state.csrf_key().sign(&nonce)));
            let mut resp = match verdict {
                Ok(()) => match ep.call(req).await {
                    Ok(resp) => resp.into_response(),
                    Err(err) => err.into_response(),
                },
                Err((refusal, fields)) => {
                    tracing::warn!(
                        event = "csrf_refused",
                        path = req.uri().path(),
                        reason = ?refusal,
                        address = proxy::client_address(&req, config).as_deref().unwrap_or("-"),
                    );
                    on_refused(&req, &state, &refusal, &fields)
                }
            };
            if existing.is_none() {
                let mut cookie = format!(
                    "{}={nonce}; Path=/; HttpOnly; SameSite=Lax",
                    cookie_name(config)
                );
                if config.secure_cookies() {
                    cookie.push_str("; Secure");
                }
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            Ok(resp)
        }
    })
}

/// Why `req`, an unsafe request, must be refused as coming from another site, if it
/// must: `Sec-Fetch-Site` other than `same-origin` (or `none`, the user's own
/// navigation), or an `Origin` that is neither the public URL's origin nor the
/// origin the browser addressed (its `Host`, which a browser always sends truly).
/// Browsers send both on every unsafe request; clients that send neither are not
/// browsers a page can drive, and meet the token check instead.
pub fn cross_site(req: &Request, config: &Config) -> Option<String> {
    let text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site").filter(|s| !matches!(*s, "same-origin" | "none")) {
        return Some(format!(
            "Cross-site request refused (Sec-Fetch-Site: {site})."
        ));
    }
    let origin = text(header::ORIGIN.as_str())?;
    let ours = config.public_url.origin().ascii_serialization();
    if origin == ours {
        return None;
    }
    let addressed =
        text(header::HOST.as_str()).map(|host| format!("{}://{host}", config.public_url.scheme()));
    if addressed.is_some_and(|own| own.eq_ignore_ascii_case(origin)) {
        return None;
    }
    Some(format!(
        "Cross-site request refused: Origin {origin} is not {ours}."
    ))
}

/// Whether `req` carries a valid token in the `X-CSRF-Token` header for its
/// browser's nonce cookie (the JSON API's alternative to an `Origin` check).
pub fn header_token_valid(req: &Request, state: &AppState) -> bool {
    let Some(nonce) = nonce_from_cookie(req, &state.config) else {
        return false;
    };
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|token| state.csrf_key().verify(&nonce, token))
}

/// Checks an unsafe request: from this site, and with a token for this browser
/// in the header or the form body (which is put back for the handler). A refusal
/// comes with the form's fields, decoded, for the form to be shown again.
async fn check(
    req: &mut Request,
    state: &AppState,
    nonce: Option<&str>,
) -> Result<(), (Refusal, Vec<(String, String)>)> {
    let config = &state.config;
    if let Some(reason) = cross_site(req, config) {
        return Err((Refusal::CrossSite(reason), Vec::new()));
    }
    let mut tokens: Vec<String> = req
        .headers()
        .get_all(HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let mut fields = Vec::new();
    if is_form(req) {
        let body = req
            .take_body()
            .into_bytes_limit(MAX_FORM_BYTES)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => (Refusal::TooLarge, Vec::new()),
                _ => (Refusal::Forged, Vec::new()),
            })?;
        fields = url::form_urlencoded::parse(&body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        req.set_body(Body::from(body));
        let in_form: Vec<&String> = fields
            .iter()
            .filter(|(name, _)| name == FIELD)
            .map(|(_, value)| value)
            .collect();
        // At most one token in the form: the handler must not see a second one. A
        // header token (htmx) is the one that counts when there is one.
        match in_form[..] {
            [] => {}
            [token] if tokens.is_empty() => tokens.push(token.clone()),
            [_] => {}
            _ => return Err((Refusal::Forged, fields)),
        }
    }
    let key = &state.csrf_key();
    let for_this_browser = |token: &String| nonce.is_some_and(|n| key.verify(n, token));
    // Another tab's token: genuine, on a request the browser itself vouches for —
    // `Sec-Fetch-Site: same-origin`, or an `Origin` (which `cross_site` above found
    // to be ours).
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let vouched = header("sec-fetch-site") == Some("same-origin")
        || req.headers().contains_key(header::ORIGIN);
    let from_another_tab = |token: &String| vouched && key.genuine(token).is_some();
    if tokens.iter().any(for_this_browser) || tokens.iter().any(from_another_tab) {
        Ok(())
    } else {
        Err((Refusal::Forged, fields))
    }
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|e| {
                e.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}
