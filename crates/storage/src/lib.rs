//! gatehouse's store: users and sessions in SurrealDB.
//!
//! - [`Store`]: one handle over `surrealdb::engine::any`, chosen by URL
//!   (`surrealkv://PATH`, `mem://`, `ws://HOST:PORT` with credentials). Opening it
//!   applies the schema ([`schema`]) idempotently.
//! - [`users`]: create (exactly one of two racing signups wins), look up by username
//!   (record id) or email (UNIQUE index), update.
//! - [`sessions`]: [`SessionToken`]s are random 256-bit values; the store keys each
//!   session by the SHA-256 of its token and never sees the token itself.
//!
//! - [`tokens`]: API tokens, stored the same way as sessions.
//! - [`invitations`]: single-use signup links, used up in the signup's transaction.
//! - [`mail`]: the outbox and reset links; [`verification`]: email verification links.
//! - [`passkeys`]: WebAuthn credentials and the ceremonies in progress.
//! - [`throttle`]: failed-login counters; `settings`: shared secrets (the CSRF key).
//!
//! Records are this crate's own types (`SurrealValue`); callers get `domain` types.

mod backup;
mod error;
pub mod factors;
pub mod invitations;
pub mod mail;
pub mod passkeys;
mod record;
mod schema;
pub mod sessions;
mod settings;
mod store;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod verification;
pub mod watch;

pub use error::{Refusal, StorageError};
pub use factors::{PendingLogin, PendingToken, Totp};
pub use invitations::{Invitation, InvitationToken, NewInvitation};
pub use mail::{Mail, Outgoing, ResetToken};
pub use passkeys::{Ceremony, Challenge, StoredPasskey};
pub use sessions::{NewSession, Session, SessionToken};
pub use store::{DbCredentials, Store};
pub use throttle::ThrottlePolicy;
pub use tokens::{ApiToken, TokenInfo, TokenLogin};
pub use users::{AccessEnded, Cursor, Upserted, UserPage, UserQuery};
pub use verification::VerifyToken;

/// The default embedded store, relative to the working directory.
pub const DEFAULT_DB_URL: &str = "surrealkv://./data/gatehouse";

/// Seconds since the Unix epoch: what every timestamp in the store is.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
