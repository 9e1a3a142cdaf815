//! The forwarded-header reader on any header values: it never panics, and an
//! original URL it builds is an absolute http(s) URL with a host.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wire::forwarded::{client_behind, forwards_client_query, parse_forwarded};

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
        && let Ok(Some(url)) = forwarded.original_url()
    {
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
    }
    let _ = forwards_client_query(&headers, Some("a=b"));
    // The client behind a loopback proxy: the peer itself, or an address some
    // X-Forwarded-For hop names, never one made up.
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let client = client_behind(peer, &headers, |ip| ip.is_loopback());
    let named = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| {
            let hop = hop.trim();
            hop.parse::<std::net::IpAddr>()
                .ok()
                .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        })
        .any(|hop| hop == client);
    assert!(client == peer || named, "{client} from {headers:?}");
});
