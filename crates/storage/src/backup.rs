//! Backups: the whole database as SurrealQL (SurrealDB's own export, read in one
//! transaction, so a copy taken while serving is consistent), and its restore
//! into a store that holds nothing yet.

use futures::StreamExt;

use crate::StorageError;
use crate::schema::TABLES;
use crate::store::Store;

impl Store {
    /// The database, definitions and records, as SurrealQL statements.
    pub async fn export(&self) -> Result<Vec<u8>, StorageError> {
        let mut stream = self.db.export(()).await?;
        let mut dump = Vec::new();
        while let Some(chunk) = stream.next().await {
            dump.extend(chunk?);
        }
        Ok(dump)
    }

    /// Whether any of gatehouse's tables holds a record.
    pub async fn is_empty(&self) -> Result<bool, StorageError> {
        for table in TABLES {
            let mut response = self
                .db
                .query(format!("SELECT VALUE id FROM {table} LIMIT 1"))
                .await?
                .check()?;
            let ids: Vec<surrealdb::types::RecordId> = response.take(0)?;
            if !ids.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Runs the statements of `dump` (a file [`Store::export`] wrote) into this
    /// store, which must hold no records: a restore adds to nothing, so it can
    /// neither mix two stores nor overwrite a live one. False, and nothing done,
    /// when the store holds records.
    pub async fn restore(&self, dump: &std::path::Path) -> Result<bool, StorageError> {
        if !self.is_empty().await? {
            return Ok(false);
        }
        self.db.import(dump).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use domain::Username;

    use super::*;
    use crate::sessions::new_session;

    #[tokio::test]
    async fn an_export_restores_into_an_empty_store_and_nowhere_else() {
        let source = Store::memory().await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let (token, session) = source.create_session(&alice, new_session()).await.unwrap();
        let key = source.shared_secret("csrf_key").await.unwrap();
        let dump = source.export().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup.surql");
        std::fs::write(&file, &dump).unwrap();

        let target = Store::memory().await.unwrap();
        assert!(target.is_empty().await.unwrap());
        assert!(target.restore(&file).await.unwrap());
        assert_eq!(target.session(&token).await.unwrap(), Some(session));
        assert_eq!(target.setting("csrf_key").await.unwrap(), Some(key));
        // Again on top: refused, nothing doubled.
        assert!(!target.restore(&file).await.unwrap());
        assert_eq!(target.sessions_of(&alice).await.unwrap().len(), 1);
    }
}
