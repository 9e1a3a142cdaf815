//! Where a user may be sent after login: the `next` of the site's pages and the
//! return URL that `/auth` hands to a proxy. The one defence against open redirects.

use url::Url;

/// The origins a return URL may point at, borrowed from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Origins<'a> {
    /// The URL users reach gatehouse at.
    pub public_url: &'a Url,
    /// The cookie's `Domain`, when sessions are shared across subdomains.
    pub cookie_domain: Option<&'a str>,
    /// Domains (and their subdomains) of the apps behind the gate, each optionally
    /// with a port (`apps.example.com:8443`).
    pub allowed_domains: &'a [String],
}

impl Origins<'_> {
    /// Whether a return URL may point at `url`'s origin — scheme, host and port:
    /// - the public URL's own origin exactly (same scheme, host and port);
    /// - or the host is the cookie domain or an allowed domain, or a subdomain of
    ///   either (case-insensitive), on the public URL's scheme or https (never a
    ///   downgrade to http), on the public URL's port (apps behind the same proxy
    ///   listener), the scheme's default, or one an allowed domain names
    ///   (`example.com:8443`).
    pub fn allow(&self, url: &Url) -> bool {
        let public = self.public_url;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https")
            || (url.scheme() != public.scheme() && url.scheme() != "https")
        {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let default_port = if url.scheme() == "https" { 443 } else { 80 };
        let usual_port = port == default_port
            || (url.scheme() == public.scheme() && Some(port) == public.port_or_known_default());
        let under = |domain: &str| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.'))
        };
        // gatehouse's own host: its exact origin only. Another port or scheme on
        // the same host is another server (a plain-HTTP one on :80 with a public
        // URL on :8080, say), not this one.
        if public
            .host_str()
            .is_some_and(|own| own.trim_end_matches('.').eq_ignore_ascii_case(&host))
        {
            return url.scheme() == public.scheme() && Some(port) == public.port_or_known_default();
        }
        self.cookie_domain.is_some_and(|d| usual_port && under(d))
            || self
                .allowed_domains
                .iter()
                .any(|entry| match entry.rsplit_once(':') {
                    Some((domain, named)) => under(domain) && named.parse() == Ok(port),
                    None => usual_port && under(entry),
                })
    }
}

/// Returns `raw` if it is a safe place to send a user after login: a path on this
/// site (one leading `/`, not `//` or `/\`), or an http(s) URL without userinfo on an
/// allowed origin ([`Origins::allow`]). Anything else — other hosts or ports, a
/// downgrade to http, backslashes, control characters, `javascript:` — is refused,
/// and the caller falls back to a default.
pub fn safe_next(raw: &str, origins: &Origins<'_>) -> Option<String> {
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
    let allowed = url.username().is_empty() && url.password().is_none() && origins.allow(&url);
    allowed.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(public: &str, allowed: &[&str], f: impl FnOnce(&Origins<'_>)) {
        let public_url = Url::parse(public).unwrap();
        let allowed_domains: Vec<String> = allowed.iter().map(|d| (*d).to_owned()).collect();
        f(&Origins {
            public_url: &public_url,
            cookie_domain: None,
            allowed_domains: &allowed_domains,
        });
    }

    fn production(f: impl FnOnce(&Origins<'_>)) {
        check("https://auth.example.com/", &["apps.example.net"], f);
    }

    #[test]
    fn next_accepts_local_paths_and_own_host() {
        production(|origins| {
            for ok in [
                "/",
                "/user/alice",
                "/a?b=c#d",
                "/%2F%2Fevil.example",
                "https://AUTH.example.com/x",
            ] {
                assert!(safe_next(ok, origins).is_some(), "{ok} refused");
            }
        });
    }

    #[test]
    fn next_refuses_open_redirects() {
        production(|origins| {
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
                assert_eq!(safe_next(bad, origins), None, "{bad:?} accepted");
            }
        });
    }

    #[test]
    fn next_may_point_at_allowed_domains_and_their_subdomains_only() {
        production(|origins| {
            for ok in [
                "https://apps.example.net/",
                "https://wiki.apps.example.net/page?x=1",
                "https://WIKI.Apps.Example.NET:443/",
            ] {
                assert!(safe_next(ok, origins).is_some(), "{ok} refused");
            }
            for bad in [
                "https://example.net/",
                "https://evilapps.example.net/",
                "https://apps.example.net.evil.example/",
                "https://user@wiki.apps.example.net/",
                "https://wiki.apps.example.net%2Eevil.example/",
                "http://WIKI.Apps.Example.NET/",
            ] {
                assert_eq!(safe_next(bad, origins), None, "{bad:?} accepted");
            }
        });
    }

    #[test]
    fn next_must_match_an_allowed_origin_with_its_scheme_and_port() {
        production(|origins| {
            for bad in [
                "http://auth.example.com/x",
                "http://auth.example.com:9/x",
                "https://auth.example.com:9/x",
                "https://auth.example.com:80/x",
                "http://apps.example.net/",
                "https://apps.example.net:8443/",
            ] {
                assert_eq!(safe_next(bad, origins), None, "{bad:?} accepted");
            }
        });
        check(
            "https://auth.example.com/",
            &["apps.example.net:8443"],
            |origins| {
                assert!(safe_next("https://wiki.apps.example.net:8443/", origins).is_some());
                assert_eq!(safe_next("https://wiki.apps.example.net/", origins), None);
            },
        );
        // Plain-HTTP development: the public origin exactly; the same host on its
        // default ports is another server.
        check("http://127.0.0.1:8080/", &[], |origins| {
            assert!(safe_next("http://127.0.0.1:8080/x", origins).is_some());
            for bad in [
                "http://127.0.0.1:9/x",
                "http://127.0.0.1/x",
                "http://127.0.0.1:80/x",
                "https://127.0.0.1/x",
                "https://127.0.0.1:8080/x",
            ] {
                assert_eq!(safe_next(bad, origins), None, "{bad:?} accepted");
            }
        });
    }

    #[test]
    fn the_cookie_domain_is_an_allowed_origin() {
        let public_url = Url::parse("https://auth.example.com/").unwrap();
        let origins = Origins {
            public_url: &public_url,
            cookie_domain: Some("example.com"),
            allowed_domains: &[],
        };
        assert!(safe_next("https://wiki.example.com/", &origins).is_some());
        assert_eq!(safe_next("https://wiki.example.com:8443/", &origins), None);
        assert_eq!(safe_next("https://example.org/", &origins), None);
    }
}
