//! Where a user may be sent after login: the `next` of the site's pages and the
//! return URL that `/auth` hands to a proxy. The one defence against open redirects.

use std::borrow::Cow;

use crate::config::Config;

/// Returns `raw` if it is a safe place to send a user after login: a local path or
/// a URL on an allowed origin ([`wire::next::safe_next`] under [`Config::origins`]).
pub fn safe_next(raw: &str, config: &Config) -> Option<String> {
    wire::next::safe_next(raw, &config.origins())
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
    use url::Url;

    use super::*;

    #[test]
    fn login_urls_carry_next_encoded() {
        let config = Config {
            public_url: Url::parse("https://auth.example.com/").unwrap(),
            allowed_domains: vec!["apps.example.net".into()],
            ..Config::default()
        };
        assert_eq!(login_url(Some("/")), "/login");
        assert_eq!(login_url(Some("/a?b=c")), "/login?next=%2Fa%3Fb%3Dc");
        let next = safe_next("https://apps.example.net/x", &config);
        assert_eq!(
            absolute_login_url(&config, next.as_deref()),
            "https://auth.example.com/login?next=https%3A%2F%2Fapps.example.net%2Fx"
        );
        assert_eq!(safe_next("https://evil.example/", &config), None);
    }
}
