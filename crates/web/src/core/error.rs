use storage::StorageError;

use super::hashing::HashingError;

/// Why a use case could not finish. Each adapter answers it its own way: the site
/// with a page or an alert, the API with a problem document, the gate with a bare
/// status.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The password hashing queue is full: try again in a moment.
    #[error("busy")]
    Busy,
    /// The store did not answer.
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
}

impl From<HashingError> for CoreError {
    fn from(err: HashingError) -> Self {
        match err {
            HashingError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}
