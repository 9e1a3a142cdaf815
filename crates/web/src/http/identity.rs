//! Who a request comes from: the identity middleware (Flask-Login's `user_loader`
//! and `request_loader`) and the helpers adapters use to read and start sessions.
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - Inbound `X-Auth-*` and `Remote-*` headers (any case, `_` for `-`) are removed
//!   before any handler runs; identity comes only from the session cookie or an
//!   `Authorization: Bearer` API token — and a request with a bearer token is that
//!   token's alone.
//! - Every response to a request with a live session carries `X-Auth-User`.
//! - The cookie holds the session token; the store only its hash.

use std::sync::Arc;

use domain::Username;
use poem::http::header::{self, HeaderName, HeaderValue};
use poem::{Endpoint, IntoResponse, Request, Response};
use storage::{ApiToken, Session, StorageError};

use super::cookies::{clear_cookie, cookie, parse_session_token, session_cookie, sets_cookie};
use super::deadline::bounded;
use super::state::AppState;
use crate::core::CoreError;
use crate::core::client::ClientInfo;
use crate::core::principal::Authenticated;
use crate::core::sessions;

/// Header naming the logged-in user on responses (and, for `/auth`, to the proxy).
pub const X_AUTH_USER: &str = "x-auth-user";

/// Put by a handler into its response's extensions when it ended the session, so
/// the response does not announce a user who just logged out.
#[derive(Debug, Clone, Copy)]
pub struct SessionEnded;

/// The logged-in user of `req`, if any.
pub fn current(req: &Request) -> Option<&Authenticated> {
    req.extensions()
        .get::<Arc<Authenticated>>()
        .map(AsRef::as_ref)
}

/// Wraps the whole app: strips spoofable identity headers, loads the session
/// (Flask-Login's `user_loader`) and tags authenticated responses.
pub fn middleware<E: Endpoint + 'static>(ep: E, state: AppState) -> Identified<E> {
    Identified { inner: ep, state }
}

/// A logged-in user's identity as header values, made once per cached session
/// (kept in [`Authenticated::memo`]) instead of on every `/auth`.
#[derive(Debug)]
pub struct IdentityValues {
    pub user: Option<HeaderValue>,
    /// Empty until the address is verified: an app never gets an address nobody
    /// proved (and never a client's own value through a proxy that kept it).
    pub email: Option<HeaderValue>,
    /// `true` or `false`.
    pub email_verified: Option<HeaderValue>,
    /// Comma-separated, empty for a user in no group.
    pub groups: Option<HeaderValue>,
    /// How the session or token was proved: `pwd`, `pwd,otp`.
    pub factors: Option<HeaderValue>,
}

impl IdentityValues {
    fn of(who: &Authenticated) -> Self {
        Self {
            user: HeaderValue::from_str(who.user.username.as_str()).ok(),
            email: if who.user.email_verified {
                HeaderValue::from_bytes(who.user.email.as_str().as_bytes()).ok()
            } else {
                Some(HeaderValue::from_static(""))
            },
            email_verified: Some(HeaderValue::from_static(if who.user.email_verified {
                "true"
            } else {
                "false"
            })),
            groups: HeaderValue::from_str(
                &who.user
                    .groups
                    .iter()
                    .map(domain::GroupName::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .ok(),
            factors: HeaderValue::from_str(&who.factors().join(",")).ok(),
        }
    }
}

/// The header values of `who`, made on first use.
pub fn identity_values(who: &Authenticated) -> Arc<IdentityValues> {
    who.memo
        .get_or_init(|| IdentityValues::of(who))
        .unwrap_or_else(|| Arc::new(IdentityValues::of(who)))
}

/// The identity middleware as an endpoint of its own: it runs before every request
/// (`/auth` included), so it is a plain `Endpoint` rather than an `around` closure,
/// whose future poem would box per request.
pub struct Identified<E> {
    inner: E,
    state: AppState,
}

impl<E: Endpoint> Endpoint for Identified<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let state = &self.state;
        strip_identity_headers(&mut req);
        // A bearer token, when the request has one, is the whole identity: its
        // cookie is not read (and not cleared). Other schemes are not ours.
        // A store that stopped answering must not hold the request: bounded
        // (a cache hit completes at once and never arms the timer).
        // A store known to be down answers at once.
        let wait = super::deadline::STORE_WAIT;
        let timed_out = || StorageError::Timeout {
            seconds: wait.as_secs(),
        };
        let health = &state.health;
        let (auth, had_cookie) = match bearer(&req) {
            Some(token) => (
                bounded(health, wait, sessions::load_token(state, token))
                    .await
                    .unwrap_or_else(|| Err(timed_out())),
                false,
            ),
            None => {
                let cookie = cookie(&req, state.config.session_cookie_name());
                let loaded = match cookie.and_then(parse_session_token) {
                    Some(token) => {
                        bounded(health, wait, sessions::load_session(state, Some(token)))
                            .await
                            .unwrap_or_else(|| Err(timed_out()))
                    }
                    // Nothing to load: the store is not asked.
                    None => sessions::load_session(state, None).await,
                };
                (loaded, cookie.is_some())
            }
        };
        let auth = match auth {
            Ok(auth) => auth,
            Err(err) => return Ok(unavailable(&err)),
        };
        // The user's header values are made once per cached session.
        let username = auth.as_ref().map(|a| identity_values(a).user.clone());
        if let Some(auth) = auth {
            req.extensions_mut().insert(auth);
        }
        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        let headers = resp.headers_mut();
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        let ended = resp.extensions().get::<SessionEnded>().is_some();
        match username {
            Some(Some(name)) if !ended => {
                resp.headers_mut()
                    .insert(HeaderName::from_static(X_AUTH_USER), name);
            }
            // A cookie that names no live session is cleared, unless the
            // handler set a new one.
            None if had_cookie && !sets_cookie(&resp, state.config.session_cookie_name()) => {
                if let Ok(value) = HeaderValue::from_str(&clear_cookie(&state.config)) {
                    resp.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            _ => {}
        }
        Ok(resp)
    }
}

fn strip_identity_headers(req: &mut Request) {
    let spoofable: Vec<HeaderName> = req
        .headers()
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in spoofable {
        req.headers_mut().remove(name);
    }
}

pub use wire::cookies::is_identity_header;

/// The `Authorization: Bearer` header of `req`: `None` without one, `Some(None)`
/// when its token is not even well-formed.
fn bearer(req: &Request) -> Option<Option<ApiToken>> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| ApiToken::parse(token.trim()))
}

/// The client of `req`, as the use cases record it: the address behind trusted
/// proxies and the user agent (cut to 256 characters).
pub fn client_info(req: &Request, state: &AppState) -> ClientInfo {
    ClientInfo {
        address: super::proxy::client_address(req, &state.config),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
    }
}

/// Logs `username` in on this request's browser: a fresh session (the one the
/// browser came with ends) and the `Set-Cookie` that carries it.
pub async fn log_in(
    state: &AppState,
    req: &Request,
    username: &Username,
    remember: bool,
    factors: Vec<String>,
) -> Result<(String, Session), CoreError> {
    start(state, req, username, remember, factors, None).await
}

/// Starts this browser's session again with `factors` (a second factor was just
/// set up) — a new token, as at any login — but as old a login as the one it
/// carries on: setting up a factor proves that factor, not who the user is, so
/// it must not renew `/auth?max_age=` for a stale or stolen session.
/// `me` is the browser's own login, whose remember-me it keeps.
pub async fn restart_session(
    state: &AppState,
    req: &Request,
    me: &Authenticated,
    factors: Vec<String>,
) -> Result<(String, Session), CoreError> {
    let remember = me.session().is_some_and(|s| s.remember);
    let carried = Some(me.authenticated_at());
    start(state, req, &me.user.username, remember, factors, carried).await
}

async fn start(
    state: &AppState,
    req: &Request,
    username: &Username,
    remember: bool,
    factors: Vec<String>,
    authenticated_at: Option<i64>,
) -> Result<(String, Session), CoreError> {
    // The middleware loaded the cookie's session if it is live; a dead one has
    // nothing left to end (and costs no write).
    let previous = current(req).and_then(Authenticated::session);
    let client = client_info(req, state);
    let login = sessions::Login {
        remember,
        factors,
        authenticated_at,
    };
    let (token, session, max_age) =
        sessions::start_session(state, &client, username, login, previous).await?;
    Ok((session_cookie(&state.config, &token, max_age), session))
}

/// The store did not answer while the middleware loaded the identity: a neutral
/// 503 that each adapter's failure renderer turns into its own answer.
fn unavailable(err: &StorageError) -> Response {
    tracing::error!(error = %err, "storage failure");
    super::deadline::unavailable()
}
