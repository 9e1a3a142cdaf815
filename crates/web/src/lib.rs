//! gatehouse's web layer: the poem app and the `gatehouse` binary's commands.
//!
//! - [`startup`]: `app(state)` builds the endpoint; `run(listener, state, shutdown)`
//!   serves it (tests bind port 0 and call the same function as `main`).
//! - [`auth`]: the proxy contract — session cookies, the middleware that loads the
//!   user and strips spoofable identity headers, `next` validation.
//! - [`accounts`]: sign-up and login checks shared by the forms and the API.
//! - [`api`]: the JSON API (`/api/v1`, poem-openapi) and its spec.
//! - [`pages`]: the hypermedia site, one module per page (views + handlers).
//! - [`form`]: the strict form reader; [`error`]: the one mapping from failures to
//!   HTTP answers.
//! - [`hashing`]: scrypt off the async runtime, in bounded slots.
//! - [`config`] and [`cli`]: settings and where they come from; [`seed`]: loading
//!   users from TOML.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod check_proxy;
pub mod cli;
pub mod config;
pub mod csrf;
pub mod error;
pub mod form;
pub mod hashing;
pub mod metrics;
pub mod pages;
pub mod seed;
pub mod startup;
pub mod state;

pub use config::Config;
pub use state::AppState;
