//! Where a user may be sent after login: the `next` of the site's pages and the
//! return URL that `/auth` hands to a proxy. The one defence against open redirects.

use std::borrow::Cow;

use url::Url;

use crate::config::Config;

/// Returns `raw` if it is a safe place to send a user after login: a path on this
/// site (one leading `/`, not `//` or `/\`), or an http(s) URL without userinfo on an
/// allowed origin ([`Config::is_allowed_origin`]: the site's own host, the cookie
/// domain, the allowed domains and their subdomains, on the public URL's scheme or
/// https, on a port that belongs there). Anything else — other hosts or ports, a
/// downgrade to http, backslashes, control characters, `javascript:` — is refused,
/// and the caller falls back to a default.
pub fn safe_next(raw: &str, config: &Config) -> Option<String> {
    if raw.is_empty()
        || raw.len() > 2048
        || raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    if raw.starts_with('/') {
        return (!raw.starts_with("//")).then(|| raw.to_owned());
    }
    let url = Url::parse(raw).ok()?;
    let allowed =
        url.username().is_empty() && url.password().is_none() && config.is_allowed_origin(&url);
    allowed.then(|| url.to_string())
}

/// The login page as a path, carrying `next` when there is one worth carrying.
pub fn login_url(next: Option<&str>) -> String {
    format!("/login{}", next_query(next))
}

/// The login page as an absolute URL on the public host, for proxies that send the
/// browser there from another host. `next` must already be [`safe_next`].
pub fn absolute_login_url(config: &Config, next: Option<&str>) -> String {
    let login = config
        .public_url
        .join("login")
        .map_or_else(|_| "/login".to_owned(), String::from);
    format!("{login}{}", next_query(next))
}

fn next_query(next: Option<&str>) -> String {
    match next {
        Some(next) if next != "/" => {
            let encoded: Cow<'_, str> =
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            format!("?next={encoded}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            public_url: Url::parse("https://auth.example.com/").unwrap(),
            allowed_domains: vec!["apps.example.net".into()],
            ..Config::default()
        }
    }

    #[test]
    fn next_accepts_local_paths_and_own_host() {
        let config = config();
        for ok in [
            "/",
            "/user/alice",
            "/a?b=c#d",
            "/%2F%2Fevil.example",
            "https://AUTH.example.com/x",
        ] {
            assert!(safe_next(ok, &config).is_some(), "{ok} refused");
        }
    }

    #[test]
    fn next_refuses_open_redirects() {
        let config = config();
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https:evil.example",
            "https://evil.example/",
            "https://auth.example.com.evil.example/",
            "https://auth.example.com@evil.example/",
            "https://a@auth.example.com/",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "/\tevil",
            "/ /evil.example",
            "ftp://auth.example.com/",
            "evil.example",
        ] {
            assert_eq!(safe_next(bad, &config), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn next_may_point_at_allowed_domains_and_their_subdomains_only() {
        let config = config();
        for ok in [
            "https://apps.example.net/",
            "https://wiki.apps.example.net/page?x=1",
            "https://WIKI.Apps.Example.NET:443/",
        ] {
            assert!(safe_next(ok, &config).is_some(), "{ok} refused");
        }
        for bad in [
            "https://example.net/",
            "https://evilapps.example.net/",
            "https://apps.example.net.evil.example/",
            "https://user@wiki.apps.example.net/",
            "https://wiki.apps.example.net%2Eevil.example/",
            "http://WIKI.Apps.Example.NET/",
        ] {
            assert_eq!(safe_next(bad, &config), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn next_must_match_an_allowed_origin_with_its_scheme_and_port() {
        let config = config();
        for bad in [
            "http://auth.example.com/x",
            "http://auth.example.com:9/x",
            "https://auth.example.com:9/x",
            "https://auth.example.com:80/x",
            "http://apps.example.net/",
            "https://apps.example.net:8443/",
        ] {
            assert_eq!(safe_next(bad, &config), None, "{bad:?} accepted");
        }
        let with_port = Config {
            allowed_domains: vec!["apps.example.net:8443".into()],
            ..config
        };
        assert!(safe_next("https://wiki.apps.example.net:8443/", &with_port).is_some());
        assert_eq!(
            safe_next("https://wiki.apps.example.net/", &with_port),
            None
        );
        // Plain-HTTP development: http on the public port, or an upgrade to https.
        let dev = Config {
            public_url: Url::parse("http://127.0.0.1:8080/").unwrap(),
            ..Config::default()
        };
        for ok in ["http://127.0.0.1:8080/x", "https://127.0.0.1/x"] {
            assert!(safe_next(ok, &dev).is_some(), "{ok} refused");
        }
        assert_eq!(safe_next("http://127.0.0.1:9/x", &dev), None);
    }

    #[test]
    fn login_urls_carry_next_encoded() {
        assert_eq!(login_url(Some("/")), "/login");
        assert_eq!(login_url(Some("/a?b=c")), "/login?next=%2Fa%3Fb%3Dc");
        assert_eq!(
            absolute_login_url(&config(), Some("https://apps.example.net/x")),
            "https://auth.example.com/login?next=https%3A%2F%2Fapps.example.net%2Fx"
        );
    }
}
