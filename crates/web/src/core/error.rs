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
/// own (the store's own type: one list of refusals, one wording).
pub use storage::Refusal as StoreRefusal;

impl From<StorageError> for CoreError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Refused(refusal) => Self::Refused(refusal),
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
