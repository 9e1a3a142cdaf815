//! `/auth`: the question a reverse proxy asks before every request to an app it
//! gates — "is this request logged in, and may it pass?" (SPEC §6).
//!
//! - Allowed: `200` with the user in `X-Auth-User`, `Remote-User`, the email in
//!   `X-Auth-Email`, `Remote-Email` once it is verified (empty before) and
//!   `X-Auth-Email-Verified` (names from [`Config::identity_headers`]), and
//!   the client's cookies minus gatehouse's own in `Cookie` and its `Authorization`
//!   unless that is a gatehouse API token, for the proxy to pass on to the app
//!   instead of the session token or the API token.
//! - Not logged in: what each proxy can act on (`deny`).
//! - Logged in but not allowed by the rules in `/auth`'s own query (`users=a,b`,
//!   `groups=a,b`, `max_age=SECONDS`, `mfa=1`): `403`. Rules come only from the query the proxy was
//!   configured with; the client's URL (in `X-Original-URL`/`X-Forwarded-Uri`) never
//!   adds to them or relaxes them, and a proxy that passes the client's query on as
//!   `/auth`'s own is refused.

use maud::html;
use poem::http::header::{self, HeaderValue};
use poem::http::{HeaderMap, StatusCode};
use poem::{IntoResponse, Request, Response};

use crate::config::Config;
use crate::core::Authenticated;
use crate::core::access::{self, Door, GateRules, Principal};
use crate::core::next::{absolute_login_url, safe_next};
use crate::http::AppState;
use crate::http::identity::{current, identity_values};
use crate::http::proxy::{self, Asker, Forwarded};

/// One `/auth` location's query: what it asks of the identity (decided by
/// [`access::admit`]) and how to answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub access: GateRules,
    /// `proxy=nginx`: answer as to nginx even without `X-Original-URL`.
    pub nginx: bool,
}

impl Rules {
    /// Parses `/auth`'s query. Unknown keys are refused: a typo such as `user=alice`
    /// must not silently let everyone in.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut rules = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "users" => {
                    let users: Vec<String> = value
                        .split(',')
                        .map(|u| u.trim().to_ascii_lowercase())
                        .filter(|u| !u.is_empty())
                        .collect();
                    rules
                        .access
                        .users
                        .get_or_insert_with(Vec::new)
                        .extend(users);
                }
                "groups" => {
                    let groups: Vec<String> = value
                        .split(',')
                        .map(|g| g.trim().to_ascii_lowercase())
                        .filter(|g| !g.is_empty())
                        .collect();
                    rules
                        .access
                        .groups
                        .get_or_insert_with(Vec::new)
                        .extend(groups);
                }
                "max_age" => {
                    let seconds = value
                        .parse::<i64>()
                        .ok()
                        .filter(|s| *s >= 0)
                        .ok_or_else(|| format!("max_age={value} is not a number of seconds"))?;
                    rules.access.max_age = Some(seconds);
                }
                "mfa" if value == "1" || value == "true" => rules.access.mfa = true,
                "mfa" if value == "0" || value == "false" => rules.access.mfa = false,
                "mfa" => return Err(format!("mfa={value}: use mfa=1")),
                "proxy" if value == "nginx" => rules.nginx = true,
                "proxy" => return Err(format!("proxy={value}: only proxy=nginx is known")),
                other => {
                    return Err(format!(
                        "unknown /auth rule {other:?}: the rules are users, groups, max_age, mfa and proxy"
                    ));
                }
            }
        }
        Ok(rules)
    }
}

/// `/auth`, any method, as an endpoint holding the state itself (no `Data`
/// lookup on the hot path).
pub fn endpoint(state: AppState) -> impl poem::Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |req| answer(&req, &state))
}

/// The answer to one `/auth` request, after the auth middleware ran.
fn answer(req: &Request, state: &AppState) -> Response {
    let config = &state.config;
    let rules = match Rules::parse(req.uri().query()) {
        Ok(rules) => rules,
        Err(message) => {
            tracing::warn!(%message, "bad /auth rules in the proxy configuration");
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let forwarded = match proxy::forwarded(req, config) {
        Ok(forwarded) => forwarded,
        Err(err) => return bad_forwarded(req, config, &err),
    };
    if forwarded.asker == Asker::ForwardAuth
        && proxy::forwards_client_query(req.headers(), req.uri().query())
    {
        let message = "the proxy passes the client's query string on to /auth, where it would \
                       choose the rules; give /auth an explicit query (Caddy: `uri /auth?` or \
                       `uri /auth?users=...`)";
        tracing::warn!(message);
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    // Only a refusal needs the return URL: the allowed path neither parses the
    // client's URL nor builds it.
    let next = || {
        forwarded
            .original_url()
            .map(|url| url.and_then(|url| safe_next(url.as_str(), config)))
    };
    let Some(who) = current(req) else {
        return match next() {
            Ok(next) => deny(req, config, &forwarded, rules.nginx, next.as_deref()),
            Err(err) => bad_forwarded(req, config, &err),
        };
    };
    let principal = Principal::of(who);
    let refusal = access::admit(
        config,
        &principal,
        Door::Gate(&rules.access),
        crate::core::records::now(),
    )
    .err()
    .map(|refusal| refusal.message(&principal));
    if let Some(reason) = refusal {
        let next = match next() {
            Ok(next) => next,
            Err(err) => return bad_forwarded(req, config, &err),
        };
        let login = absolute_login_url(config, next.as_deref());
        let body = html! {
            p { (reason) }
            p { a href=(login) { "Log in as someone else" } }
        };
        return (StatusCode::FORBIDDEN, body).into_response();
    }
    let mut resp = Response::builder().status(StatusCode::OK).finish();
    // Room for the identity and security headers at once, instead of growing.
    resp.headers_mut().reserve(16);
    identity_headers(resp.headers_mut(), config, who);
    if let Some(cookies) = app_cookies(req) {
        resp.headers_mut().insert(header::COOKIE, cookies);
    }
    if let Some(credentials) = app_authorization(req) {
        resp.headers_mut()
            .insert(header::AUTHORIZATION, credentials);
    }
    resp
}

/// The request's `Authorization` for the proxy to pass to the app in place of the
/// client's (nginx `auth_request_set`, Traefik `authResponseHeaders`), like
/// [`app_cookies`]: the app's own credentials (`Basic …`, its own bearer tokens),
/// but never a gatehouse API token, which would let the app act as the user.
fn app_authorization(req: &Request) -> Option<HeaderValue> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let first = values.next()?;
    let ours = |v: &HeaderValue| wire::cookies::is_gatehouse_bearer(v.as_bytes());
    (!ours(first) && !values.any(ours)).then(|| first.clone())
}

fn bad_forwarded(req: &Request, config: &Config, err: &proxy::ForwardedError) -> Response {
    tracing::warn!(
        error = %err,
        address = proxy::client_address(req, config).as_deref().unwrap_or("-"),
        "refused forwarded headers"
    );
    (StatusCode::BAD_REQUEST, err.to_string()).into_response()
}

/// gatehouse's own cookies, in every spelling a configuration can give them.
const OWN_COOKIES: [&str; 6] = [
    "__Host-gatehouse_session",
    "gatehouse_session",
    "__Host-gatehouse_csrf",
    "gatehouse_csrf",
    "__Host-gatehouse_pending",
    "gatehouse_pending",
];

/// The request's cookies without gatehouse's own, for the proxy to pass to the app
/// in place of the client's `Cookie` header (nginx `auth_request_set`, Traefik
/// `authResponseHeaders: [Cookie]`): an app behind the gate never receives the
/// session token it could replay. `None` when nothing else is left.
fn app_cookies(req: &Request) -> Option<HeaderValue> {
    let kept = wire::cookies::without(req.headers(), &OWN_COOKIES)?;
    HeaderValue::from_str(&kept).ok()
}

fn identity_headers(headers: &mut HeaderMap, config: &Config, who: &Authenticated) {
    let values = identity_values(who);
    for (names, value) in [
        (&config.identity_headers.user, &values.user),
        (&config.identity_headers.email, &values.email),
        (&config.identity_headers.groups, &values.groups),
        (&config.identity_headers.factors, &values.factors),
        (
            &config.identity_headers.email_verified,
            &values.email_verified,
        ),
    ] {
        let Some(value) = value else { continue };
        for name in names {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// Not logged in. nginx cannot follow a redirect from `auth_request`: it gets `401`
/// with the login URL in `Location`, for its `error_page` to redirect to. Caddy and
/// Traefik pass the answer to the client: a browser gets `302` to the login page, an
/// htmx request `401` with `HX-Redirect` (a redirect would be swapped into a
/// fragment), anything else a plain `401`.
fn deny(
    req: &Request,
    config: &Config,
    forwarded: &Forwarded<'_>,
    nginx: bool,
    next: Option<&str>,
) -> Response {
    let login = absolute_login_url(config, next);
    let unauthorized = |name, value: &str| {
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(name, value)
            .body("login required")
    };
    if nginx || forwarded.asker == Asker::Nginx {
        return unauthorized(header::LOCATION, &login);
    }
    if forwarded.asker == Asker::Direct {
        return (StatusCode::UNAUTHORIZED, "login required").into_response();
    }
    if crate::http::htmx::is_htmx(req) {
        return unauthorized(
            header::HeaderName::from_static(crate::http::htmx::HX_REDIRECT),
            &login,
        );
    }
    if accepts_html(req) {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, login)
            .finish();
    }
    (StatusCode::UNAUTHORIZED, "login required").into_response()
}

fn accepts_html(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_refuse_typos() {
        assert_eq!(Rules::parse(None), Ok(Rules::default()));
        let rules = Rules::parse(Some("users=Alice,%20bob&max_age=600&proxy=nginx")).unwrap();
        assert_eq!(
            rules.access.users.as_deref(),
            Some(&["alice".to_owned(), "bob".to_owned()][..])
        );
        assert_eq!(rules.access.max_age, Some(600));
        assert!(rules.nginx);
        let groups = Rules::parse(Some("groups=Ops,%20qa&groups=dev")).unwrap();
        assert_eq!(
            groups.access.groups.as_deref(),
            Some(&["ops".to_owned(), "qa".to_owned(), "dev".to_owned()][..])
        );
        for bad in [
            "user=alice",
            "max_age=-1",
            "max_age=ten",
            "proxy=apache",
            "users=a&group=b",
        ] {
            assert!(Rules::parse(Some(bad)).is_err(), "{bad} accepted");
        }
    }
}
