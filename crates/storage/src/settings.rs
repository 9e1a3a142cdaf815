//! Values every node must share: secrets generated once (the key that signs CSRF
//! tokens), and settings the nodes record (which key seals second factors).

use surrealdb::types::{RecordId, SurrealValue};

use crate::record::random_hex;
use crate::store::retry_conflicts;
use crate::{StorageError, Store};

#[derive(Debug, SurrealValue)]
struct SettingRecord {
    value: String,
}

impl Store {
    /// The secret named `name`: created (256 random bits, hex) by the first node that
    /// asks, then the same for every node and every restart.
    pub async fn shared_secret(&self, name: &str) -> Result<String, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("UPSERT $id SET value = value ?? $candidate RETURN AFTER")
                .bind(("id", RecordId::new("setting", name)))
                .bind(("candidate", random_hex()))
        )?;
        let records: Vec<SettingRecord> = response.take(0)?;
        records
            .into_iter()
            .next()
            .map(|r| r.value)
            .ok_or_else(|| StorageError::Corrupt(format!("setting {name} was not stored")))
    }
}

impl Store {
    /// The value of setting `name`, if one was stored.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let record: Option<SettingRecord> = self.db.select(RecordId::new("setting", name)).await?;
        Ok(record.map(|r| r.value))
    }

    /// Stores `value` as setting `name`.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("UPSERT $id SET value = $value RETURN NONE")
                .bind(("id", RecordId::new("setting", name)))
                .bind(("value", value.to_owned()))
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_is_made_once_and_kept() {
        let store = Store::memory().await.unwrap();
        let first = store.shared_secret("csrf").await.unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(store.shared_secret("csrf").await.unwrap(), first);
        assert_ne!(store.shared_secret("other").await.unwrap(), first);
    }
}
