//! Cookies and identity headers as clients send them.

use http::HeaderMap;
use http::header::COOKIE;

/// The pairs of every `Cookie` header as bytes, trimmed, empty ones left out. A pair
/// with a byte outside visible ASCII is skipped, as no browser sends one. (Runs on
/// every request: no UTF-8 decoding, no allocation.)
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(|pair| pair.trim_ascii())
        .filter(|pair| !pair.is_empty() && pair.iter().all(|b| (0x20..0x7f).contains(b)))
}

/// A pair's name and value (the value empty when there is no `=`).
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|b| *b == b'=') {
        Some(i) => (pair[..i].trim_ascii_end(), pair[i + 1..].trim_ascii_start()),
        None => (pair, &[]),
    }
}

/// Whether an `Authorization` value carries a gatehouse API token (`Bearer gh_…`,
/// the scheme in any case): the credential an app behind the gate must never
/// receive, valid or not. Other schemes and other bearer tokens are the app's.
pub fn is_gatehouse_bearer(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    value.len() > 7
        && value[..6].eq_ignore_ascii_case(b"bearer")
        && value[6].is_ascii_whitespace()
        && value[7..].trim_ascii_start().starts_with(b"gh_")
}

/// The value of the first cookie called `name` (exactly: names are case-sensitive).
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    pairs(headers)
        .filter(|pair| pair.contains(&b'='))
        .map(split_pair)
        .find(|(n, _)| *n == name.as_bytes())
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

/// The request's cookies without those called one of `names`, joined as one
/// `Cookie` value (`a=1; b=2`); `None` when nothing else is left.
pub fn without(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    let mut kept = String::new();
    for pair in pairs(headers) {
        let (name, _) = split_pair(pair);
        if names.iter().any(|n| n.as_bytes() == name) {
            continue;
        }
        // Visible ASCII (checked by `pairs`): always UTF-8.
        let Ok(pair) = std::str::from_utf8(pair) else {
            continue;
        };
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

    #[test]
    fn gatehouse_bearer_tokens_are_told_from_other_credentials() {
        for ours in [
            "Bearer gh_0123",
            "bearer gh_x",
            "BEARER   gh_",
            " Bearer\tgh_abc ",
        ] {
            assert!(is_gatehouse_bearer(ours.as_bytes()), "{ours:?}");
        }
        for theirs in [
            "Basic YWxpY2U6c2VjcmV0",
            "Bearer eyJhbGciOi",
            "Bearer",
            "Bearergh_x",
            "Token gh_x",
            "",
        ] {
            assert!(!is_gatehouse_bearer(theirs.as_bytes()), "{theirs:?}");
        }
    }
}
