use std::fmt;
use std::sync::Arc;

use surrealdb::Surreal;
use surrealdb::engine::any::{self, Any};
use surrealdb::opt::auth::Root;

use crate::StorageError;
use crate::schema::SCHEMA;

/// Messages the outbox holds at most: past that, queueing fails with
/// [`crate::Refusal::OutboxFull`] instead of letting a flood of requests (or a mail
/// server gone for days) grow the store without end.
pub const OUTBOX_LIMIT: i64 = 10_000;

/// Runs a query and checks its statements, running it again (up to 10 times) when
/// the store reports a transaction conflict — two writes to one record at once,
/// which SurrealDB asks the caller to retry.
macro_rules! retry_conflicts {
    ($query:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result = match $query.await {
                Ok(response) => $crate::store::checked(response),
                Err(err) => Err($crate::StorageError::from(err)),
            };
            match result {
                Err(err) if $crate::store::is_conflict(&err) && attempt < 10 => attempt += 1,
                other => break other,
            }
        }
    }};
}
pub(crate) use retry_conflicts;

/// The response, or the error that made it fail. In a transaction every statement
/// reports an error once one fails — "not executed" for the others — so the one
/// that says why (a `THROW`, a unique index, a conflict) is picked out.
pub(crate) fn checked(
    mut response: surrealdb::IndexedResults,
) -> Result<surrealdb::IndexedResults, StorageError> {
    let mut errors: Vec<(usize, surrealdb::Error)> = response.take_errors().into_iter().collect();
    if errors.is_empty() {
        return Ok(response);
    }
    errors.sort_by_key(|(index, _)| *index);
    let telling = errors
        .iter()
        .position(|(_, err)| !err.to_string().contains("not executed"))
        .unwrap_or(0);
    Err(StorageError::from(errors.swap_remove(telling).1))
}

/// Whether `err` is a transaction conflict, which the operation may simply retry.
pub(crate) fn is_conflict(err: &StorageError) -> bool {
    matches!(err, StorageError::Database(err) if err.to_string().contains("Transaction conflict"))
}

const NAMESPACE: &str = "gatehouse";
const DATABASE: &str = "gatehouse";

/// Root credentials for a remote SurrealDB (`ws://`, `wss://`). `Debug` hides the
/// password.
#[derive(Clone)]
pub struct DbCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The one handle to the database. Cheap to clone: clones share the connection
/// and the session.
#[derive(Clone)]
pub struct Store {
    /// Behind an `Arc` because cloning a `Surreal` (surrealdb 3.x) starts a new
    /// database session, and dropping it ends one: papaya maps, epoch collectors,
    /// `membarrier` calls. The app state is cloned by middleware on every request,
    /// and those sessions took 38 % of the CPU of an `/auth` load that never
    /// touches the store.
    pub(crate) db: Arc<Surreal<Any>>,
    /// Messages the outbox holds at most (see [`Store::enqueue_mail`]).
    pub(crate) outbox_limit: i64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Connects to `url`, signs in when credentials are given, and applies the schema.
    pub async fn open(
        url: &str,
        credentials: Option<&DbCredentials>,
    ) -> Result<Self, StorageError> {
        let db = any::connect(url)
            .await
            .map_err(|e| open_error(url, &e.to_string()))?;
        if let Some(creds) = credentials {
            db.signin(Root {
                username: creds.username.clone(),
                password: creds.password.clone(),
            })
            .await
            .map_err(|e| open_error(url, &format!("signing in failed: {e}")))?;
        }
        db.use_ns(NAMESPACE)
            .use_db(DATABASE)
            .await
            .map_err(|e| open_error(url, &e.to_string()))?;
        db.query(SCHEMA)
            .await
            .and_then(|r| r.check())
            .map_err(|e| open_error(url, &format!("applying the schema failed: {e}")))?;
        Ok(Self {
            db: Arc::new(db),
            outbox_limit: OUTBOX_LIMIT,
        })
    }

    /// The same store with an outbox of at most `limit` messages.
    pub fn with_outbox_limit(mut self, limit: i64) -> Self {
        self.outbox_limit = limit;
        self
    }

    /// A fresh in-memory store, for tests and demos.
    pub async fn memory() -> Result<Self, StorageError> {
        Self::open("mem://", None).await
    }

    /// Whether the database answers: for `/readyz`.
    /// Whether the store answers a trivial query within `within`: a remote
    /// server that is down or stalled makes the client wait, not fail.
    pub async fn ping(&self, within: std::time::Duration) -> Result<(), StorageError> {
        let query = async {
            self.db.query("RETURN 1").await?.check()?;
            Ok(())
        };
        tokio::time::timeout(within, query)
            .await
            .unwrap_or(Err(StorageError::Timeout {
                seconds: within.as_secs(),
            }))
    }
}

/// Turns a connection failure into a message an operator can act on; a held
/// surrealkv lock is the common one.
fn open_error(url: &str, message: &str) -> StorageError {
    let lower = message.to_ascii_lowercase();
    let locked = lower.contains("lock")
        && (lower.contains("held")
            || lower.contains("in use")
            || lower.contains("would block")
            || lower.contains("temporarily unavailable")
            || lower.contains("already"));
    if locked {
        let path = url
            .split_once("://")
            .map_or(url, |(_, path)| path.split('?').next().unwrap_or(path));
        return StorageError::Locked {
            path: path.to_owned(),
        };
    }
    StorageError::Open {
        url: url.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_messages_name_the_folder() {
        let err = open_error(
            "surrealkv://./data/gatehouse?sync=every",
            "IO error: LOCK file is already held by another process",
        );
        assert!(
            matches!(&err, StorageError::Locked { path } if path == "./data/gatehouse"),
            "{err:?}"
        );
        assert!(err.to_string().contains("LOCK"));
    }

    #[test]
    fn credentials_are_redacted() {
        let creds = DbCredentials {
            username: "root".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{creds:?}").contains("s3cret"));
    }
}
