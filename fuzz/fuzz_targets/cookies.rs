//! The cookie scan on any `Cookie` headers: it never panics; the value it finds
//! holds no `;`; the header it passes on to apps never carries one of ours and
//! keeps every other cookie; identity headers are spotted in any spelling.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wire::cookies::{cookie_value, is_identity_header, without};

const OURS: [&str; 2] = ["__Host-gatehouse_session", "gatehouse_session"];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    for name in OURS {
        if let Some(value) = cookie_value(&headers, name) {
            assert!(!value.contains(';'), "{value:?}");
        }
    }
    if let Some(kept) = without(&headers, &OURS) {
        let mut passed = HeaderMap::new();
        passed.insert(COOKIE, HeaderValue::from_str(&kept).unwrap());
        for name in OURS {
            assert_eq!(cookie_value(&passed, name), None, "{kept:?} keeps {name}");
        }
        let other = kept.split(';').filter(|p| !p.trim().is_empty()).count();
        assert!(other > 0);
    }
    if let Ok(name) = std::str::from_utf8(data) {
        let spelled = name.replace('_', "-").to_ascii_lowercase();
        let expected = spelled.starts_with("x-auth-") || spelled.starts_with("remote-");
        assert_eq!(is_identity_header(name), expected, "{name:?}");
    }
});
