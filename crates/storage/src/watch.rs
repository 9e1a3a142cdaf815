//! Change feeds: a LIVE SELECT on a table, reduced to "this record changed" events.
//! `web` uses them to drop cached sessions the moment any node revokes one.

use futures::{Stream, StreamExt};
use surrealdb::types::{Action, Value};

use crate::{StorageError, Store};

/// What happened to a record, by its key (`session:⟨key⟩`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Updated(String),
    Deleted(String),
    /// The database ended the feed: everything must be considered changed.
    Lost,
}

impl Store {
    /// Every change to `table` from now on, as long as the stream is polled.
    pub async fn watch(
        &self,
        table: &str,
    ) -> Result<impl Stream<Item = Change> + Send + Unpin + use<>, StorageError> {
        let stream: surrealdb::method::Stream<Vec<Value>> =
            self.db.select(table.to_owned()).live().await?;
        Ok(stream.map(|item| {
            let Ok(notification) = item else {
                return Change::Lost;
            };
            let key = match notification.data.get("id") {
                Value::RecordId(id) => crate::record::record_key(id).ok(),
                _ => None,
            };
            match (notification.action, key) {
                (Action::Create, Some(key)) => Change::Created(key),
                (Action::Update, Some(key)) => Change::Updated(key),
                (Action::Delete, Some(key)) => Change::Deleted(key),
                _ => Change::Lost,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::Username;

    use super::*;

    #[tokio::test]
    async fn session_changes_are_seen_by_a_watcher() {
        let store = Store::memory().await.unwrap();
        let mut changes = store.watch("session").await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let new = crate::sessions::new_session();
        let (_, session) = store.create_session(&alice, new).await.unwrap();
        store.touch_session(&session.id, 5).await.unwrap();
        store.delete_session(&session.id).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
                .await
                .unwrap()
                .unwrap();
            seen.push(change);
        }
        assert_eq!(
            seen,
            [
                Change::Created(session.id.clone()),
                Change::Updated(session.id.clone()),
                Change::Deleted(session.id)
            ]
        );
    }
}
