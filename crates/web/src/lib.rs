//! gatehouse's web layer: the poem app and the `gatehouse` binary's commands, in
//! layers whose arrows point one way (ARCHITECTURE.md draws them; a tidy test
//! checks them):
//!
//! - [`core`]: every use case once — sign up, log in, sessions, tokens, password
//!   changes, return URLs — with no poem, maud or HTTP status;
//! - [`http`]: poem plumbing for any adapter — identity, cookies, trusted proxies,
//!   CSRF, the form reader, htmx's headers, metrics — rendering nothing;
//! - adapters, which import `core` and `http` and never each other: [`site`] (maud
//!   pages and htmx fragments), [`api`] (poem-openapi, problem+json), [`gate`]
//!   (`/auth`), and the CLI ([`cli`]: its commands by subject; `main.rs` only
//!   starts the runtime and hands over);
//! - [`app`]: the composition root — the route table, the layer order, serving.
//!
//! [`config`] holds the settings every layer reads.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod gate;
pub mod http;
pub mod site;

pub use config::Config;
pub use http::AppState;
