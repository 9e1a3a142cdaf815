//! The proxy contract and everything that decides who a request comes from.
//!
//! - this file: the middleware (Flask-Login's `user_loader` and `request_loader`),
//!   `login_user`, session cookies;
//! - [`endpoint`]: `/auth`, the forward-auth answer to nginx, Caddy and Traefik;
//! - [`proxy`]: forwarded headers and the client address, believed from trusted
//!   proxies only;
//! - [`next`]: return URLs, the defence against open redirects.
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - Inbound `X-Auth-*` and `Remote-*` headers (any case, `_` for `-`) are removed
//!   before any handler runs; identity comes only from the session cookie or an
//!   `Authorization: Bearer` API token.
//! - Every response to a request with a live session carries `X-Auth-User`.
//! - A `next` URL is followed only if [`safe_next`] accepts it.
//! - The cookie holds the session token; the store only its hash.

pub mod cache;
pub mod endpoint;
mod next;
pub mod proxy;

use std::sync::Arc;

use domain::{User, Username};
use poem::http::header::{self, HeaderName, HeaderValue};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use storage::{ApiToken, NewSession, Session, SessionToken, StorageError, TokenInfo};

pub use next::{absolute_login_url, login_url, safe_next};
pub use proxy::client_address;

use crate::config::Config;
use crate::error::WebError;
use crate::state::AppState;

/// Header naming the logged-in user on responses (and, for `/auth`, to the proxy).
pub const X_AUTH_USER: &str = "x-auth-user";

/// How often at most a session's `last_seen` is written: a write per request would
/// cost more than the whole lookup.
const TOUCH_INTERVAL: i64 = 60;

/// The request's logged-in user and how they proved it, put in the request's
/// extensions by [`middleware`] (Flask-Login's `current_user`).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub via: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// The session cookie.
    Session(Session),
    /// An `Authorization: Bearer` API token.
    Token(TokenInfo),
}

impl Authenticated {
    /// The browser session, when the request came with the cookie.
    pub fn session(&self) -> Option<&Session> {
        match &self.via {
            Credential::Session(session) => Some(session),
            Credential::Token(_) => None,
        }
    }

    /// When the user last proved who they are: the login that started the session,
    /// or the creation of the token.
    pub fn authenticated_at(&self) -> i64 {
        match &self.via {
            Credential::Session(session) => session.created_at,
            Credential::Token(token) => token.created_at,
        }
    }
}

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

/// The logged-in user, or the error that sends the visitor to the login page
/// (Flask-Login's `login_required`).
pub fn require_login(req: &Request) -> Result<&Authenticated, WebError> {
    current(req).ok_or_else(|| WebError::LoginRequired {
        next: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        htmx: crate::pages::is_htmx(req),
    })
}

/// Wraps the whole app: strips spoofable identity headers, loads the session
/// (Flask-Login's `user_loader`) and tags authenticated responses.
pub fn middleware<E: Endpoint + 'static>(
    ep: E,
    state: AppState,
) -> impl Endpoint<Output = Response> {
    ep.around(move |ep, mut req| {
        let state = state.clone();
        async move {
            strip_identity_headers(&mut req);
            // A bearer token, when the request has one, is the whole identity: its
            // cookie is not read (and not cleared). Other schemes are not ours.
            let (auth, had_cookie) = match bearer(&req) {
                Some(token) => (load_token(&state, token).await, false),
                None => {
                    let cookie = cookie(&req, state.config.session_cookie_name());
                    let token = cookie.and_then(parse_session_token);
                    (load_session(&state, token).await, cookie.is_some())
                }
            };
            let auth = match auth {
                Ok(auth) => auth,
                Err(err) => return Ok(WebError::from(err).into_response()),
            };
            let username = auth
                .as_ref()
                .and_then(|a| HeaderValue::from_str(a.user.username.as_str()).ok());
            if let Some(auth) = auth {
                req.extensions_mut().insert(auth);
            }
            let mut resp = match ep.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            if !resp.headers().contains_key(header::CACHE_CONTROL) {
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            let ended = resp.extensions().get::<SessionEnded>().is_some();
            match username {
                Some(name) if !ended => {
                    resp.headers_mut().insert(X_AUTH_USER, name);
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
    })
}

/// Whether `resp` sets the cookie `name`.
fn sets_cookie(resp: &Response, name: &str) -> bool {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| {
            c.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
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

/// Headers that name a user: never believed from a client. Underscores count as
/// dashes, because many app servers (CGI, WSGI, Rack) read `X_Auth_User` as
/// `X-Auth-User`. (Runs on every request: compares without allocating.)
pub fn is_identity_header(name: &str) -> bool {
    let starts_with = |prefix: &str| {
        name.len() >= prefix.len()
            && name
                .bytes()
                .zip(prefix.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    };
    starts_with("x-auth-") || starts_with("remote-")
}

async fn load_session(
    state: &AppState,
    token: Option<SessionToken>,
) -> Result<Option<Arc<Authenticated>>, StorageError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let id = token.session_id();
    let cache = &state.sessions;
    let found = match cache.get(&id) {
        Some(hit) => hit,
        None => {
            let generation = cache.generation();
            let Some(session) = state.store.session_by_id(&id).await? else {
                return Ok(None);
            };
            let Some(user) = state.store.user_by_username(&session.username).await? else {
                return Ok(None);
            };
            let found = Arc::new(Authenticated {
                user,
                via: Credential::Session(session),
            });
            cache.insert(generation, Arc::clone(&found));
            found
        }
    };
    let Some(session) = found.session() else {
        return Ok(None);
    };
    let now = storage::now();
    if !session.is_live(now, state.config.sessions.idle_timeout) {
        cache.evict(&id);
        state.store.delete_session(&id).await?;
        return Ok(None);
    }
    if now - session.last_seen >= TOUCH_INTERVAL {
        // The cached copy's last_seen is stale now: the next request reloads it.
        cache.evict(&id);
        state.store.touch_session(&id, now).await?;
    }
    Ok(Some(found))
}

async fn load_token(
    state: &AppState,
    token: Option<ApiToken>,
) -> Result<Option<Arc<Authenticated>>, StorageError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let Some(info) = state.store.api_token(&token).await? else {
        return Ok(None);
    };
    let now = storage::now();
    if !info.is_live(now) {
        return Ok(None);
    }
    let Some(user) = state.store.user_by_username(&info.username).await? else {
        return Ok(None);
    };
    if info.last_used.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
        state.store.touch_api_token(&info.id, now).await?;
    }
    Ok(Some(Arc::new(Authenticated {
        user,
        via: Credential::Token(info),
    })))
}

/// Ends one session: in the store, and at once in this node's cache (other nodes
/// hear of it through the change feed).
pub async fn end_session(state: &AppState, id: &str) -> Result<(), StorageError> {
    state.store.delete_session(id).await?;
    state.sessions.evict(id);
    Ok(())
}

/// Ends every session of `username` but `keep`.
pub async fn end_other_sessions(
    state: &AppState,
    username: &Username,
    keep: Option<&str>,
) -> Result<(), StorageError> {
    state.store.delete_other_sessions(username, keep).await?;
    state.sessions.evict_user(username);
    Ok(())
}

/// Sets a new password, ends every session of `username` but `keep` and revokes
/// their API tokens, in one transaction; this node's cache forgets the sessions at
/// once (other nodes hear of it through the change feed).
pub async fn change_password(
    state: &AppState,
    username: &Username,
    hash: &domain::PasswordHash,
    keep: Option<&str>,
) -> Result<storage::AccessEnded, StorageError> {
    let ended = state.store.change_password(username, hash, keep).await?;
    state.sessions.evict_user(username);
    Ok(ended)
}

/// The `Authorization: Bearer` header of `req`: `None` without one, `Some(None)`
/// when its token is not even well-formed.
fn bearer(req: &Request) -> Option<Option<ApiToken>> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| ApiToken::parse(token.trim()))
}

/// Starts a fresh session for `username` (Flask-Login's `login_user`) and returns
/// its `Set-Cookie` and the session. A session the request already had is ended: the token a browser
/// held before login is worthless after it (no session fixation).
pub async fn login_user(
    state: &AppState,
    req: &Request,
    username: &Username,
    remember: bool,
) -> Result<(String, Session), StorageError> {
    // The middleware loaded the cookie's session if it is live; a dead one has
    // nothing left to end (and costs no write).
    if let Some(old) = current(req).and_then(Authenticated::session) {
        end_session(state, &old.id).await?;
    }
    let policy = state.config.sessions;
    let lifetime = if remember {
        policy.remember_lifetime
    } else {
        policy.lifetime
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    let new = NewSession {
        lifetime,
        remember,
        user_agent,
        address: client_address(req, &state.config),
    };
    let (token, session) = state.store.create_session(username, new).await?;
    let cookie = session_cookie(&state.config, &token, remember.then_some(lifetime));
    Ok((cookie, session))
}

/// The session token in a cookie value, if it is a well-formed one.
fn parse_session_token(value: &str) -> Option<SessionToken> {
    SessionToken::parse(value.trim_matches('"'))
}

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session. Without "remember me" it is a browser-session
/// cookie; with it, it lasts as long as the session may.
pub fn session_cookie(config: &Config, token: &SessionToken, max_age: Option<i64>) -> String {
    let mut cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax",
        config.session_cookie_name(),
        token.expose()
    );
    append_cookie_attributes(&mut cookie, config);
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    cookie
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(config: &Config) -> String {
    let mut cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        config.session_cookie_name()
    );
    append_cookie_attributes(&mut cookie, config);
    cookie
}

fn append_cookie_attributes(cookie: &mut String, config: &Config) {
    if config.secure_cookies() {
        cookie.push_str("; Secure");
    }
    if let Some(domain) = &config.cookie_domain {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            public_url: url::Url::parse("https://auth.example.com/").unwrap(),
            ..Config::default()
        }
    }

    #[test]
    fn cookies_follow_the_policy() {
        let token = SessionToken::generate();
        let secure = config();
        let cookie = session_cookie(&secure, &token, None);
        assert!(cookie.starts_with("__Host-gatehouse_session="));
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains("Max-Age"));
        let insecure = Config {
            insecure_cookies: true,
            ..config()
        };
        let cookie = session_cookie(&insecure, &token, Some(60));
        assert!(cookie.starts_with("gatehouse_session=") && !cookie.contains("Secure"));
        assert!(cookie.ends_with("Max-Age=60"));
        let sso = Config {
            cookie_domain: Some("example.com".into()),
            ..config()
        };
        let cookie = session_cookie(&sso, &token, None);
        assert!(cookie.starts_with("gatehouse_session=") && cookie.contains("Domain=example.com"));
    }

    #[test]
    fn identity_headers_are_recognised_in_any_case() {
        for name in [
            "X-Auth-User",
            "x-auth-email",
            "Remote-User",
            "REMOTE-EMAIL",
            "X_Auth_User",
            "remote_user",
        ] {
            assert!(is_identity_header(name));
        }
        assert!(!is_identity_header("authorization"));
    }
}
