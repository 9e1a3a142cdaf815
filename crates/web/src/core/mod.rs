//! Every use case once, for the site, the API, the gate and the CLI: sign up, check
//! a login, start and end sessions, change a password, issue and revoke API tokens,
//! return URLs. It takes typed input and a [`ClientInfo`], returns outcomes and
//! [`CoreError`], and knows no poem, maud or HTTP status (a tidy test checks).

pub mod access;
pub mod accounts;
pub mod admin;
pub mod cache;
pub mod client;
pub mod error;
pub mod factors;
pub mod hashing;
pub mod health;
pub mod mail;
pub mod message;
pub mod next;
pub mod passkeys;
pub mod principal;
pub mod records;
pub mod reset;
pub mod seal;
pub mod services;
pub mod sessions;
pub mod tokens;
pub mod verify;

pub use client::ClientInfo;
pub use error::CoreError;
pub use principal::{Authenticated, Credential};
pub use services::Services;
