//! What a reverse proxy tells gatehouse about the request it is asking about, and
//! who the client is. The caller decides whether the peer is a trusted proxy: from
//! anyone else, forwarded headers must not be read at all.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use url::Url;

/// Which kind of proxy asks, known by the headers it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// nginx `auth_request`: `X-Original-URL`. It cannot follow a redirect from the
    /// subrequest, so a denial is `401` with the login URL in `Location`.
    Nginx,
    /// Caddy `forward_auth`, Traefik `ForwardAuth`: `X-Forwarded-Proto/Host/Uri`. The
    /// answer goes to the browser as is, so a denial may be a redirect.
    ForwardAuth,
    /// No (believable) proxy headers: a direct call.
    Direct,
}

/// The request a proxy asks about. The headers are checked when read (one of each,
/// one family, ASCII, the right shape); the URL itself is parsed only when asked
/// for ([`Forwarded::original_url`]) — only a refusal needs it, and `/auth` admits
/// far more often than it refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded<'h> {
    pub asker: Asker,
    original: Option<Original<'h>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Original<'h> {
    /// nginx's `X-Original-URL`, known to start with `http://` or `https://`.
    Url(&'h str),
    /// Caddy's and Traefik's parts, each checked.
    Parts {
        https: bool,
        host: &'h str,
        uri: &'h str,
    },
}

impl Forwarded<'_> {
    /// No (believable) proxy headers.
    pub const DIRECT: Forwarded<'static> = Forwarded {
        asker: Asker::Direct,
        original: None,
    };

    /// The URL the client asked the proxy for, when the proxy said.
    pub fn original_url(&self) -> Result<Option<Url>, ForwardedError> {
        match &self.original {
            None => Ok(None),
            Some(Original::Url(raw)) => parse_original(raw).map(Some),
            Some(Original::Parts { https, host, uri }) => {
                let scheme = if *https { "https" } else { "http" };
                Url::parse(&format!("{scheme}://{host}{uri}"))
                    .map(Some)
                    .map_err(|_| ForwardedError::Invalid("the forwarded URL does not parse"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// Both families at once: one of them came from the client through the proxy.
    #[error(
        "the request carries both X-Original-URL and X-Forwarded-Host/Uri; a proxy sends one \
         family, so the other came from the client"
    )]
    Mixed,
    #[error("{0}")]
    Invalid(&'static str),
}

// Header names made once: looking one up by `&str` parses the name every time.
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxy headers of a request from a trusted proxy.
pub fn parse_forwarded(headers: &HeaderMap) -> Result<Forwarded<'_>, ForwardedError> {
    let original = single(headers, &X_ORIGINAL_URL)?;
    let host = single(headers, &X_FORWARDED_HOST)?;
    let uri = single(headers, &X_FORWARDED_URI)?;
    match (original, host.is_some() || uri.is_some()) {
        (Some(_), true) => Err(ForwardedError::Mixed),
        (Some(original), false) => {
            let starts = |prefix: &str| {
                original
                    .get(..prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
            };
            if !starts("http://") && !starts("https://") {
                return Err(ForwardedError::Invalid(
                    "X-Original-URL is not an http(s) URL",
                ));
            }
            Ok(Forwarded {
                asker: Asker::Nginx,
                original: Some(Original::Url(original)),
            })
        }
        (None, true) => {
            let proto = single(headers, &X_FORWARDED_PROTO)?.unwrap_or("https");
            let original = match host {
                Some(host) => Some(checked_parts(proto, host, uri.unwrap_or("/"))?),
                None => None,
            };
            Ok(Forwarded {
                asker: Asker::ForwardAuth,
                original,
            })
        }
        (None, false) => Ok(Forwarded::DIRECT),
    }
}

/// The one value of header `name`: a repeated header or a comma list means a chain
/// of proxies or a client adding its own, and neither can be believed.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, ForwardedError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ForwardedError::Invalid("a forwarded header is repeated"));
    }
    let value = value
        .to_str()
        .map_err(|_| ForwardedError::Invalid("a forwarded header is not ASCII"))?
        .trim();
    if value.is_empty() {
        return Ok(None);
    }
    Ok(Some(value))
}

/// Whether the query of `/auth` is the client's own, passed on by the proxy (Caddy's
/// `forward_auth` with a bare `uri /auth` does this): rules read from it would be the
/// client's to choose. Only meaningful for [`Asker::ForwardAuth`].
pub fn forwards_client_query(headers: &HeaderMap, auth_query: Option<&str>) -> bool {
    let client_query = headers
        .get(&X_FORWARDED_URI)
        .and_then(|v| v.to_str().ok())
        .and_then(|uri| uri.split_once('?'))
        .map(|(_, query)| query);
    matches!((client_query, auth_query), (Some(client), Some(auth)) if !auth.is_empty() && client == auth)
}

fn parse_original(raw: &str) -> Result<Url, ForwardedError> {
    let url = Url::parse(raw)
        .map_err(|_| ForwardedError::Invalid("X-Original-URL is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ForwardedError::Invalid(
            "X-Original-URL is not an http(s) URL",
        ));
    }
    Ok(url)
}

fn checked_parts<'h>(
    proto: &str,
    host: &'h str,
    uri: &'h str,
) -> Result<Original<'h>, ForwardedError> {
    let https = if proto.eq_ignore_ascii_case("https") {
        true
    } else if proto.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(ForwardedError::Invalid(
            "X-Forwarded-Proto is not http or https",
        ));
    };
    // A host with a path, userinfo or query would turn into another URL.
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(ForwardedError::Invalid("X-Forwarded-Host is not a host"));
    }
    if !uri.starts_with('/') || uri.starts_with("//") {
        return Err(ForwardedError::Invalid("X-Forwarded-Uri is not a path"));
    }
    Ok(Original::Parts { https, host, uri })
}

/// The client's address behind `peer`: `peer` itself unless it is trusted; then
/// the address `X-Forwarded-For` names, read from the right: each trusted proxy
/// appended the address it got the request from, so the first hop that is not a
/// trusted proxy is the client. Everything left of it is the client's to write.
/// A hop that does not parse was written by no trusted proxy either: the client is
/// then the last address a trusted proxy vouched for (its own peer).
pub fn client_behind(
    peer: IpAddr,
    headers: &HeaderMap,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let mut client = peer;
    // Several headers count as one list, in order.
    let hops: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .collect();
    for hop in hops.iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`,
/// `[::1]:80`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn nginx_and_forward_auth_proxies_are_told_apart() {
        let nginx_headers = headers(&[("x-original-url", "https://app.example.com/a?b=c")]);
        let nginx = parse_forwarded(&nginx_headers).unwrap();
        assert_eq!(nginx.asker, Asker::Nginx);
        assert_eq!(
            nginx.original_url().unwrap().unwrap().as_str(),
            "https://app.example.com/a?b=c"
        );
        let caddy_headers = headers(&[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "App.Example.com:8443"),
            ("x-forwarded-uri", "/wiki?page=1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let caddy = parse_forwarded(&caddy_headers).unwrap();
        assert_eq!(caddy.asker, Asker::ForwardAuth);
        assert_eq!(
            caddy.original_url().unwrap().unwrap().as_str(),
            "http://app.example.com:8443/wiki?page=1"
        );
        let direct_headers = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let direct = parse_forwarded(&direct_headers).unwrap();
        assert_eq!(direct.asker, Asker::Direct);
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        // Loopback is the trusted proxy, as in gatehouse's default configuration.
        let client = |peer: &str, xff: &[&'static str]| {
            let pairs: Vec<_> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
            client_behind(peer.parse().unwrap(), &headers(&pairs), |ip| {
                ip.is_loopback()
            })
            .to_string()
        };
        // A proxy that appends: the client's own entries stay on the left.
        assert_eq!(
            client("127.0.0.1", &["198.51.100.77, 203.0.113.5"]),
            "203.0.113.5"
        );
        assert_eq!(
            client("127.0.0.1", &["198.51.100.77, x, 203.0.113.5"]),
            "203.0.113.5"
        );
        assert_eq!(
            client("127.0.0.1", &["198.51.100.77", "203.0.113.5"]),
            "203.0.113.5"
        );
        // Trusted hops are skipped; all trusted: the leftmost.
        assert_eq!(
            client("127.0.0.1", &["203.0.113.5, 127.0.0.2"]),
            "203.0.113.5"
        );
        assert_eq!(client("127.0.0.1", &["127.0.0.3, 127.0.0.2"]), "127.0.0.3");
        assert_eq!(client("127.0.0.1", &["[2001:db8::1]:4711"]), "2001:db8::1");
        // An entry no trusted proxy wrote: the last address one vouched for.
        assert_eq!(client("127.0.0.1", &["198.51.100.77, x"]), "127.0.0.1");
        assert_eq!(
            client("127.0.0.1", &["198.51.100.77, 127.0.0.2, x"]),
            "127.0.0.1"
        );
        assert_eq!(
            client("127.0.0.1", &["198.51.100.77, x, 127.0.0.2"]),
            "127.0.0.2"
        );
        assert_eq!(client("127.0.0.1", &[""]), "127.0.0.1");
        // An untrusted peer's header is never read.
        assert_eq!(client("203.0.113.9", &["198.51.100.77"]), "203.0.113.9");
    }

    #[test]
    fn mixed_repeated_and_malformed_headers_are_refused() {
        assert_eq!(
            parse_forwarded(&headers(&[
                ("x-original-url", "https://app.example.com/"),
                ("x-forwarded-host", "evil.example"),
            ])),
            Err(ForwardedError::Mixed)
        );
        for bad in [
            &[("x-original-url", "/relative")][..],
            &[("x-original-url", "javascript:alert(1)")],
            &[("x-forwarded-host", "evil.example/@app.example.com")],
            &[("x-forwarded-host", "a@evil.example")],
            &[
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-uri", "//evil.example"),
            ],
            &[
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-proto", "javascript"),
            ],
            &[
                ("x-forwarded-host", "a.example"),
                ("x-forwarded-host", "b.example"),
            ],
        ] {
            assert!(
                matches!(
                    parse_forwarded(&headers(bad)),
                    Err(ForwardedError::Invalid(_))
                ),
                "{bad:?} accepted"
            );
        }
        // The right shape but not a URL: read, and refused once the URL is needed.
        let odd_headers = headers(&[("x-original-url", "http://[::1/x")]);
        let odd = parse_forwarded(&odd_headers).unwrap();
        assert_eq!(odd.asker, Asker::Nginx);
        assert!(matches!(
            odd.original_url(),
            Err(ForwardedError::Invalid(_))
        ));
    }
}
