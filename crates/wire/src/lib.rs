//! What arrives on the wire, read without trusting it: pure functions over bytes,
//! strings and header maps, with no IO, no async and no configuration file, so
//! that `cargo xtask fuzz` can build them in seconds and hammer them in CI.
//!
//! - [`next`]: where a user may be sent after login (the one open-redirect defence)
//!   and which origins count as ours.
//! - [`form`]: the strict `application/x-www-form-urlencoded` reader.
//! - [`forwarded`]: what a reverse proxy says about the request it asks about, and
//!   who the client is behind trusted proxies.
//! - [`cookies`]: one cookie out of `Cookie` headers, the `Cookie` header without
//!   ours, and which header names claim an identity.
//!
//! The `web` crate wraps these with its configuration and poem's request types.

pub mod cookies;
pub mod form;
pub mod forwarded;
pub mod next;
