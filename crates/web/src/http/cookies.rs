//! gatehouse's cookies on the wire: reading one from a request, and the
//! `Set-Cookie` values of the session cookie. Their attributes follow the policy in
//! [`Config`]: `HttpOnly`, `SameSite=Lax`, `Secure` and the `__Host-` prefix unless
//! `--insecure-cookies`, a `Domain` with `--cookie-domain`.

use poem::http::header;
use poem::{Request, Response};
use storage::SessionToken;

use crate::config::Config;

/// The session token in a cookie value, if it is a well-formed one.
pub fn parse_session_token(value: &str) -> Option<SessionToken> {
    SessionToken::parse(value.trim_matches('"'))
}

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    wire::cookies::cookie_value(req.headers(), name)
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

/// `Set-Cookie` for a login waiting for its second factor (host-only, as long as
/// the wait may last), or its removal when `token` is `None`.
pub fn pending_cookie(config: &Config, token: Option<&storage::PendingToken>) -> String {
    let (value, max_age) = match token {
        Some(token) => (token.expose(), crate::core::factors::PENDING_LIFETIME),
        None => ("", 0),
    };
    let mut cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        config.pending_cookie_name()
    );
    if config.secure_cookies() {
        cookie.push_str("; Secure");
    }
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

/// Whether `resp` sets the cookie `name`.
pub fn sets_cookie(resp: &Response, name: &str) -> bool {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| {
            c.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
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
}
