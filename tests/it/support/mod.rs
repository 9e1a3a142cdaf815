//! What the feature test modules share, written once: accounts and logins
//! ([`accounts`]), second factors ([`factors`]), mail ([`mail`]), outside programs
//! and ports ([`programs`]) and the real binary ([`process`]). A feature module
//! imports `app` and `support`, never another feature module (a tidy test checks).

pub mod accounts;
pub mod factors;
pub mod mail;
pub mod process;
pub mod programs;
