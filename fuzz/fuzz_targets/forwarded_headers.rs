//! The forwarded-header reader on any header values: it never panics, and an
//! original URL it builds is an absolute http(s) URL with a host.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use web::http::proxy::{forwards_client_query, parse_forwarded};

const NAMES: [&str; 6] = [
    "x-original-url",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-forwarded-for",
    "x-forwarded-method",
];

fuzz_target!(|data: &[u8]| {
    // Lines of "<digit><value>": the digit picks the header, the rest is its value.
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        let name = NAMES[usize::from(which) % NAMES.len()];
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    if let Ok(forwarded) = parse_forwarded(&headers)
        && let Some(url) = forwarded.original_url
    {
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
    }
    let _ = forwards_client_query(&headers, Some("a=b"));
});
