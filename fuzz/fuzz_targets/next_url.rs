//! `safe_next` on any string: it never panics, and whatever it lets through is a
//! local path or an https URL without userinfo on an allowed origin (the public
//! URL is https: never a downgrade, and only the default port).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::next::{Origins, safe_next};

static PUBLIC_URL: std::sync::LazyLock<url::Url> =
    std::sync::LazyLock::new(|| url::Url::parse("https://auth.example.com/").unwrap());
static ALLOWED: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| vec!["apps.example.net".into()]);

fuzz_target!(|raw: &str| {
    let origins = Origins {
        public_url: &PUBLIC_URL,
        cookie_domain: None,
        allowed_domains: &ALLOWED,
    };
    let Some(next) = safe_next(raw, &origins) else {
        return;
    };
    assert!(
        !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    );
    if next.starts_with('/') {
        assert!(!next.starts_with("//"), "{raw:?} -> {next:?}");
        // A browser resolving it against our origin stays on our origin.
        let base = url::Url::parse("https://auth.example.com/here").unwrap();
        let resolved = base.join(&next).unwrap();
        assert_eq!(
            resolved.host_str(),
            Some("auth.example.com"),
            "{raw:?} -> {next:?}"
        );
    } else {
        let url = url::Url::parse(&next).unwrap();
        assert_eq!(url.scheme(), "https", "{raw:?} -> {next:?}");
        assert_eq!(
            url.port_or_known_default(),
            Some(443),
            "{raw:?} -> {next:?}"
        );
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{raw:?}"
        );
        // A trailing dot names the same host to DNS.
        let host = url
            .host_str()
            .unwrap()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        assert!(
            host == "auth.example.com"
                || host == "apps.example.net"
                || host.ends_with(".apps.example.net"),
            "{raw:?} -> {next:?}"
        );
    }
});
