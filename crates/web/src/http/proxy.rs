//! What a reverse proxy tells gatehouse about the request it is asking about, and
//! who the client is. Forwarded headers are believed only from trusted proxies
//! ([`Config::is_trusted_proxy`]); from anyone else they are ignored. The parsing
//! itself is in [`wire::forwarded`].

use std::net::IpAddr;

use poem::Request;
pub use wire::forwarded::{Asker, Forwarded, ForwardedError, forwards_client_query};

use crate::config::Config;

/// Reads the proxy headers of `req`, if its peer is a trusted proxy.
pub fn forwarded<'r>(req: &'r Request, config: &Config) -> Result<Forwarded<'r>, ForwardedError> {
    let trusted = peer(req).is_some_and(|ip| config.is_trusted_proxy(ip));
    if !trusted {
        return Ok(Forwarded::DIRECT);
    }
    wire::forwarded::parse_forwarded(req.headers())
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.remote_addr().as_socket_addr().map(|addr| addr.ip())
}

/// The client's address: the socket peer, or — when the peer is a trusted proxy —
/// the first untrusted hop of `X-Forwarded-For` from the right
/// ([`wire::forwarded::client_behind`]).
pub fn client_address(req: &Request, config: &Config) -> Option<String> {
    let peer = peer(req)?;
    let client =
        wire::forwarded::client_behind(peer, req.headers(), |ip| config.is_trusted_proxy(ip));
    Some(client.to_string())
}
