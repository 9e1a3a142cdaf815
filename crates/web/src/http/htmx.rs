//! htmx's request and response headers, named once.

use poem::Request;

pub const HX_REQUEST: &str = "hx-request";
pub const HX_HISTORY_RESTORE_REQUEST: &str = "hx-history-restore-request";
pub const HX_REDIRECT: &str = "hx-redirect";
pub const HX_RETARGET: &str = "hx-retarget";
pub const HX_RESWAP: &str = "hx-reswap";

/// Whether the request came from htmx and wants a fragment. History restores ask
/// with `HX-Request` too, but need the whole page.
pub fn is_htmx(req: &Request) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    header(HX_REQUEST) == Some("true") && header(HX_HISTORY_RESTORE_REQUEST) != Some("true")
}
