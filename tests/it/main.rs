//! gatehouse's integration tests: the real app on port 0 over the real store
//! (`mem://` or a temp surrealkv folder), driven over HTTP like a browser with
//! JavaScript off. One binary; `app` holds `spawn_app()` and typed helpers.

mod access;
mod admin;
mod api;
mod app;
pub(crate) mod binary;
mod browser;
mod cluster;
mod defences;
mod deploy;
mod factors;
mod forward_auth;
mod holes;
mod hypermedia;
mod input;
mod mail;
mod operations;
mod passkeys;
mod persistence;
pub mod proxies;
mod security;
mod site;
mod support;
mod tidy;
mod timing;
mod verify;
