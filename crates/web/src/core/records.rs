//! The store's records as the adapters receive them from the use cases: what a
//! page, a problem document or a CLI line renders (a session, a token's
//! details, a page of users), never a way to the store. Adapters import these
//! from here, and no adapter imports `storage` (a tidy test checks).

pub use storage::{
    AccessEnded, ApiToken, Cursor, DbCredentials, Invitation, InvitationToken, PendingLogin,
    Session, StoredPasskey, TokenInfo, Totp, UserPage, UserQuery,
};

/// Where the store is unless told: the embedded surrealkv folder `./data/gatehouse`.
pub const DEFAULT_DB_URL: &str = storage::DEFAULT_DB_URL;

/// The store's clock: Unix seconds, as every record's times are written.
pub fn now() -> i64 {
    storage::now()
}
