//! `safe_next` on any string: it never panics, and whatever it lets through is a
//! local path or an http(s) URL without userinfo on an allowed host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use web::auth::safe_next;
use web::config::Config;

static CONFIG: std::sync::LazyLock<Config> = std::sync::LazyLock::new(|| Config {
    public_url: url::Url::parse("https://auth.example.com/").unwrap(),
    allowed_domains: vec!["apps.example.net".into()],
    ..Config::default()
});

fuzz_target!(|raw: &str| {
    let config = &*CONFIG;
    let Some(next) = safe_next(raw, config) else {
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
        assert!(
            matches!(url.scheme(), "http" | "https"),
            "{raw:?} -> {next:?}"
        );
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{raw:?}"
        );
        assert!(
            config.is_allowed_host(url.host_str().unwrap()),
            "{raw:?} -> {next:?}"
        );
    }
});
