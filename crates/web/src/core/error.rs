use storage::StorageError;

use super::hashing::HashingError;

/// Why a use case could not finish. Each adapter answers it its own way: the site
/// with a page or an alert, the API with a problem document, the gate with a bare
/// status — matching every variant, so that no answer falls through to "the
/// database is not answering".
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The password hashing queue is full: try again in a moment.
    #[error("busy")]
    Busy,
    /// The store's answer, not an outage: said to the person who asked.
    #[error("{0}")]
    Refused(StoreRefusal),
    /// The store did not answer (down, stalled, unreachable): try again shortly.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// What the store holds does not read back (a 500 with its own log line).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Internal(String),
}

/// An answer from the store that a use case did not turn into an outcome of its
/// own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreRefusal {
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the invitation is not valid (used, revoked or expired)")]
    InvitationInvalid,
    /// The change would leave the admins' group without an enabled member.
    #[error("the last admin cannot be disabled, deleted or removed from the admins")]
    LastAdmin,
    /// Too much mail is waiting to be sent.
    #[error("the outbox is full")]
    OutboxFull,
    /// As many passkey ceremonies are under way as the store keeps.
    #[error("too many passkey ceremonies are under way")]
    CeremoniesFull,
}

impl From<StorageError> for CoreError {
    fn from(err: StorageError) -> Self {
        let refused = |refusal| Self::Refused(refusal);
        match err {
            StorageError::UsernameTaken => refused(StoreRefusal::UsernameTaken),
            StorageError::EmailTaken => refused(StoreRefusal::EmailTaken),
            StorageError::InvitationInvalid => refused(StoreRefusal::InvitationInvalid),
            StorageError::LastAdmin => refused(StoreRefusal::LastAdmin),
            StorageError::OutboxFull => refused(StoreRefusal::OutboxFull),
            StorageError::CeremoniesFull => refused(StoreRefusal::CeremoniesFull),
            StorageError::Corrupt(what) => Self::Corrupt(what),
            other @ (StorageError::Locked { .. }
            | StorageError::Open { .. }
            | StorageError::Timeout { .. }
            | StorageError::Database(_)) => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<HashingError> for CoreError {
    fn from(err: HashingError) -> Self {
        match err {
            HashingError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}
