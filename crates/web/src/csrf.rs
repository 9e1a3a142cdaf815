//! Cross-site request forgery defence for every state-changing request made with
//! the session cookie — the login form included, so nobody can log a victim in as
//! the attacker.
//!
//! Signed double submit: the browser holds a random nonce in an HttpOnly cookie
//! (`__Host-` prefixed when cookies are Secure, so a sibling subdomain cannot plant
//! one); forms carry `HMAC-SHA256(key, nonce)` in a hidden `csrf` field, htmx sends
//! it as `X-CSRF-Token`. A request without a matching token is refused with 403
//! before any handler runs. The key is shared by every node (from configuration, or
//! generated once and kept in the store).
//!
//! Exempt: safe methods, `/auth` (it changes nothing), the JSON API (it checks
//! `Origin` or this token itself, see `api::guard`), and requests with an
//! `Authorization` header — a cross-site form cannot send one, and a script would
//! need a CORS preflight that gatehouse never grants.

use hmac::{Hmac, Mac};
use poem::http::header::{self, HeaderValue};
use poem::http::{Method, StatusCode};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response};
use sha2::Sha256;

use crate::config::Config;
use crate::form::MAX_FORM_BYTES;
use crate::state::AppState;

/// The hidden form field carrying the token.
pub const FIELD: &str = "csrf";
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

/// The signing key, from configuration or the store.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    /// Derives the key from a secret of any length.
    pub fn from_secret(secret: &str) -> Self {
        use sha2::Digest;
        let mut key = [0u8; 32];
        key.copy_from_slice(&Sha256::digest(
            format!("gatehouse csrf v1:{secret}").as_bytes(),
        ));
        Self(key)
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(nonce.as_bytes());
        mac
    }

    fn sign(&self, nonce: &str) -> String {
        hex::encode(self.mac(nonce).finalize().into_bytes())
    }

    /// Constant-time check of `token` against `nonce`.
    fn verify(&self, nonce: &str, token: &str) -> bool {
        hex::decode(token.trim()).is_ok_and(|bytes| self.mac(nonce).verify_slice(&bytes).is_ok())
    }
}

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

fn cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-gatehouse_csrf"
    } else {
        "gatehouse_csrf"
    }
}

fn nonce_from_cookie(req: &Request, config: &Config) -> Option<String> {
    crate::auth::cookie(req, cookie_name(config))
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

fn new_nonce() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn needs_check(req: &Request) -> bool {
    !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) && !req.headers().contains_key(header::AUTHORIZATION)
}

/// Checks unsafe requests and hands every request its token.
pub fn middleware<E: Endpoint + 'static>(
    ep: E,
    state: AppState,
) -> impl Endpoint<Output = Response> {
    ep.around(move |ep, mut req| {
        let state = state.clone();
        async move {
            // The JSON API checks its own requests (`api::guard`). (`/auth` never
            // gets here: `startup` sends it straight to its handler.)
            if req.uri().path().starts_with("/api/") {
                return ep.call(req).await.map(IntoResponse::into_response);
            }
            let config = &state.config;
            let existing = nonce_from_cookie(&req, config);
            if needs_check(&req) {
                let verdict = match &existing {
                    Some(nonce) => check(&mut req, &state.csrf_key, nonce).await,
                    None => Err(Refusal::Forged),
                };
                if let Err(refusal) = verdict {
                    return Ok(refusal.into_response());
                }
            }
            let nonce = existing.clone().unwrap_or_else(new_nonce);
            req.extensions_mut()
                .insert(CsrfToken(state.csrf_key.sign(&nonce)));
            let mut resp = match ep.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
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

enum Refusal {
    Forged,
    TooLarge,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Forged => crate::pages::error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the \
                 page and try again.",
            ),
            Self::TooLarge => crate::pages::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is larger than 16 KiB.",
            ),
        }
    }
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
        .is_some_and(|token| state.csrf_key.verify(&nonce, token))
}

/// The token from the header, or else from the form body (which is put back for
/// the handler).
async fn check(req: &mut Request, key: &CsrfKey, nonce: &str) -> Result<(), Refusal> {
    if let Some(token) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return key
            .verify(nonce, token)
            .then_some(())
            .ok_or(Refusal::Forged);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|e| {
                e.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(Refusal::Forged);
    }
    let body = req
        .take_body()
        .into_bytes_limit(MAX_FORM_BYTES)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => Refusal::TooLarge,
            _ => Refusal::Forged,
        })?;
    let valid = url::form_urlencoded::parse(&body)
        .filter(|(name, _)| name == FIELD)
        .map(|(_, value)| key.verify(nonce, &value))
        .collect::<Vec<_>>();
    req.set_body(Body::from(body));
    // Exactly one token, and it matches.
    (valid == [true]).then_some(()).ok_or(Refusal::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_nonce_and_the_key() {
        let key = CsrfKey::from_secret("one");
        let nonce = new_nonce();
        let token = key.sign(&nonce);
        assert!(key.verify(&nonce, &token));
        assert!(!key.verify(&new_nonce(), &token));
        assert!(!CsrfKey::from_secret("two").verify(&nonce, &token));
        assert!(!key.verify(&nonce, "zz"));
        assert!(!key.verify(&nonce, ""));
        assert!(!format!("{key:?}").contains("one"));
    }
}
