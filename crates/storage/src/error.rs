/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store's answer, not an outage.
    #[error("{0}")]
    Refused(Refusal),
    /// The surrealkv folder is locked by another process.
    #[error(
        "the database folder {path} is in use by another process (its LOCK file is held). \
         Stop the other gatehouse (or whatever holds it) first, or point --db at another \
         folder; to share one store between processes, run a SurrealDB server and use ws://"
    )]
    Locked { path: String },
    #[error("cannot open the database at {url}: {message}")]
    Open { url: String, message: String },
    /// The store did not answer in time (a server down, stalled or unreachable).
    #[error("the database did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] surrealdb::Error),
}

/// An answer from the store that refuses a change: said to whoever asked, never an
/// outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("the email address is already registered")]
    EmailTaken,
    /// The invitation does not exist, was used already, or expired.
    #[error("the invitation is not valid (used, revoked or expired)")]
    InvitationInvalid,
    /// The change would leave the admins' group without an enabled member.
    #[error("the last admin cannot be disabled, deleted or removed from the admins")]
    LastAdmin,
    /// The outbox holds [`crate::store::OUTBOX_LIMIT`] messages already.
    #[error("the outbox is full: too much mail is waiting to be sent")]
    OutboxFull,
    /// As many passkey ceremonies are under way as the store keeps.
    #[error("too many passkey ceremonies are under way")]
    CeremoniesFull,
}
