//! Cookies and identity headers as clients send them.

use http::HeaderMap;
use http::header::COOKIE;

/// The pairs of every `Cookie` header, trimmed, empty ones left out. A value that
/// is not visible ASCII makes its whole header unreadable, as it is to poem.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
}

/// The value of the first cookie called `name` (exactly: names are case-sensitive).
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    pairs(headers)
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim_end() == name)
        .map(|(_, value)| value.trim_start())
}

/// The request's cookies without those called one of `names`, joined as one
/// `Cookie` value (`a=1; b=2`); `None` when nothing else is left.
pub fn without(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    let mut kept = String::new();
    for pair in pairs(headers) {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name).trim();
        if names.contains(&name) {
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    (!kept.is_empty()).then_some(kept)
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

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn cookies(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(COOKIE, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn one_cookie_is_found_by_its_exact_name() {
        let headers = cookies(&["a=1; session=abc ;b=2", "c=3"]);
        assert_eq!(cookie_value(&headers, "session"), Some("abc"));
        assert_eq!(cookie_value(&headers, "c"), Some("3"));
        assert_eq!(cookie_value(&headers, "Session"), None);
        assert_eq!(cookie_value(&headers, "sess"), None);
        // The first of two wins, as in browsers' order (most specific path first).
        assert_eq!(
            cookie_value(&cookies(&["s=1; s=2"]), "s"),
            Some("1"),
            "first"
        );
    }

    #[test]
    fn our_cookies_are_left_out_and_the_rest_kept_in_order() {
        let headers = cookies(&["app=1; __Host-gh=secret", "gh=x; theme=dark; ;"]);
        assert_eq!(
            without(&headers, &["__Host-gh", "gh"]).as_deref(),
            Some("app=1; theme=dark")
        );
        assert_eq!(without(&cookies(&["gh=x"]), &["gh"]), None);
        assert_eq!(without(&HeaderMap::new(), &["gh"]), None);
    }

    #[test]
    fn identity_headers_are_recognised_in_any_case_and_spelling() {
        for name in [
            "X-Auth-User",
            "x-auth-email",
            "X_Auth_User",
            "x-AUTH_groups",
            "Remote-User",
            "remote_email",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in ["x-authz", "x-forwarded-for", "remoteuser", "authorization"] {
            assert!(!is_identity_header(name), "{name}");
        }
    }
}
