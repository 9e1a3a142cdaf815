//! Users, keyed by username (`user:⟨alice⟩`), so the hot lookup is a select by
//! record id; login by email goes through the UNIQUE `user_email` index.

use domain::{DisplayName, Email, PasswordHash, User, Username};
use surrealdb::types::{RecordId, SurrealValue};

use crate::store::retry_conflicts;
use crate::{StorageError, Store};

#[derive(Debug, SurrealValue)]
struct UserRecord {
    username: String,
    email: String,
    name: Option<String>,
    password_hash: String,
    created_at: i64,
}

impl UserRecord {
    fn from_user(user: &User) -> Self {
        Self {
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: user.created_at,
        }
    }

    /// Stored data went through the same parsers on the way in; a record that no
    /// longer parses was written by something else and is reported, not trusted.
    fn into_user(self) -> Result<User, StorageError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            StorageError::Corrupt(format!("user {}: {e}", self.username))
        };
        Ok(User {
            username: Username::parse(&self.username).map_err(|e| corrupt(&e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt(&e))?,
            name: DisplayName::parse(self.name.as_deref().unwrap_or_default())
                .map_err(|e| corrupt(&e))?,
            password_hash: PasswordHash::parse(&self.password_hash).map_err(|e| corrupt(&e))?,
            created_at: self.created_at,
        })
    }
}

pub(crate) fn user_id(username: &Username) -> RecordId {
    RecordId::new("user", username.as_str())
}

#[derive(Debug, SurrealValue)]
struct Ended {
    sessions: i64,
    tokens: i64,
}

/// What [`Store::change_password`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessEnded {
    pub sessions: usize,
    pub tokens: usize,
}

/// Whether [`Store::upsert_user`] made a new user or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

impl Store {
    /// Creates `user`. When two signups race for the same username or email, exactly
    /// one succeeds; the other gets [`StorageError::UsernameTaken`] or
    /// [`StorageError::EmailTaken`].
    pub async fn create_user(&self, user: &User) -> Result<(), StorageError> {
        // A transaction conflict with a racing signup that then failed leaves nothing
        // taken: try again, a bounded number of times.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .db
                .query("CREATE $id CONTENT $content RETURN NONE")
                .bind(("id", user_id(&user.username)))
                .bind(("content", UserRecord::from_user(user)))
                .await
                .and_then(|r| r.check());
            let Err(err) = result else {
                return Ok(());
            };
            if let Some(taken) = taken_from_message(err.message()) {
                return Err(taken);
            }
            // Not recognisable from the message (a conflict): ask the store which
            // value is taken now.
            if self.user_by_username(&user.username).await?.is_some() {
                return Err(StorageError::UsernameTaken);
            }
            if self.user_by_email(&user.email).await?.is_some() {
                return Err(StorageError::EmailTaken);
            }
            if attempts >= 3 {
                return Err(err.into());
            }
        }
    }

    /// Creates `user`, or updates the user of that username (email, name, password;
    /// `created_at` is kept). Used by seeding, which must be idempotent.
    pub async fn upsert_user(&self, user: &User) -> Result<Upserted, StorageError> {
        let existed = self.user_by_username(&user.username).await?.is_some();
        let record = UserRecord::from_user(user);
        self.db
            .query(
                "UPSERT $id SET username = $username, email = $email, name = $name, \
                 password_hash = $password_hash, created_at = created_at ?? $created_at \
                 RETURN NONE",
            )
            .bind(("id", user_id(&user.username)))
            .bind(record)
            .await
            .and_then(|r| r.check())
            .map_err(|e| taken_from_message(e.message()).unwrap_or(e.into()))?;
        Ok(if existed {
            Upserted::Updated
        } else {
            Upserted::Created
        })
    }

    pub async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<User>, StorageError> {
        let record: Option<UserRecord> = self.db.select(user_id(username)).await?;
        record.map(UserRecord::into_user).transpose()
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StorageError> {
        let mut response = self
            .db
            .query("SELECT * FROM user WHERE email = $email LIMIT 1")
            .bind(("email", email.as_str().to_owned()))
            .await?
            .check()?;
        let records: Vec<UserRecord> = response.take(0)?;
        records
            .into_iter()
            .next()
            .map(UserRecord::into_user)
            .transpose()
    }

    pub async fn set_password_hash(
        &self,
        username: &Username,
        hash: &PasswordHash,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("UPDATE $id SET password_hash = $hash RETURN NONE")
                .bind(("id", user_id(username)))
                .bind(("hash", hash.as_str().to_owned()))
        )?;
        Ok(())
    }

    /// Sets `username`'s password hash and, in the same transaction, ends every
    /// session of theirs but `keep` and revokes every API token of theirs: whoever
    /// held a copied cookie, or a token minted with one, loses it with the old
    /// password. Returns how many sessions and tokens ended.
    pub async fn change_password(
        &self,
        username: &Username,
        hash: &PasswordHash,
        keep: Option<&str>,
    ) -> Result<AccessEnded, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     UPDATE $user SET password_hash = $hash RETURN NONE; \
                     LET $sessions = (DELETE session WHERE user = $user AND id != $keep \
                         RETURN BEFORE); \
                     LET $tokens = (DELETE api_token WHERE user = $user RETURN BEFORE); \
                     RETURN { sessions: count($sessions), tokens: count($tokens) }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("user", user_id(username)))
                .bind(("hash", hash.as_str().to_owned()))
                .bind(("keep", keep.map(crate::sessions::session_record_id)))
        )?;
        // The RETURN's result: the last statement's, or the one before it when the
        // COMMIT counts as a statement.
        for index in (0..response.num_statements()).rev() {
            if let Ok(Some(ended)) = response.take::<Option<Ended>>(index) {
                return Ok(AccessEnded {
                    sessions: usize::try_from(ended.sessions).unwrap_or_default(),
                    tokens: usize::try_from(ended.tokens).unwrap_or_default(),
                });
            }
        }
        Err(StorageError::Corrupt(format!(
            "the password change of {username} did not report what it ended"
        )))
    }

    pub async fn count_users(&self) -> Result<u64, StorageError> {
        let mut response = self
            .db
            .query("RETURN count(SELECT VALUE id FROM user)")
            .await?
            .check()?;
        let count: Option<i64> = response.take(0)?;
        Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }
}

/// Reads which unique value a failed write collided with from SurrealDB's message.
fn taken_from_message(message: &str) -> Option<StorageError> {
    if message.contains("user_email") {
        Some(StorageError::EmailTaken)
    } else if message.contains("user_username")
        || (message.contains("already exists") && message.contains("user:"))
    {
        Some(StorageError::UsernameTaken)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use domain::{HashParams, Password, PasswordHasher};

    use super::*;

    fn user(name: &str, email: &str) -> User {
        let hasher = PasswordHasher::new(HashParams {
            log_n: 4,
            r: 8,
            p: 1,
        })
        .unwrap();
        User {
            username: Username::parse(name).unwrap(),
            email: Email::parse(email).unwrap(),
            name: DisplayName::parse("Test User").unwrap(),
            password_hash: hasher.hash(&Password::parse("password1").unwrap()).unwrap(),
            created_at: 1_700_000_000,
        }
    }

    #[tokio::test]
    async fn users_round_trip_and_are_unique() {
        let store = Store::memory().await.unwrap();
        let alice = user("alice", "alice@example.com");
        store.create_user(&alice).await.unwrap();
        assert_eq!(
            store.user_by_username(&alice.username).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.user_by_email(&alice.email).await.unwrap(),
            Some(alice.clone())
        );
        let same_name = user("alice", "other@example.com");
        assert!(matches!(
            store.create_user(&same_name).await,
            Err(StorageError::UsernameTaken)
        ));
        let same_email = user("alice2", "alice@example.com");
        assert!(matches!(
            store.create_user(&same_email).await,
            Err(StorageError::EmailTaken)
        ));
        assert_eq!(store.count_users().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn upsert_updates_in_place() {
        let store = Store::memory().await.unwrap();
        let alice = user("alice", "alice@example.com");
        assert_eq!(store.upsert_user(&alice).await.unwrap(), Upserted::Created);
        let mut changed = user("alice", "new@example.com");
        changed.created_at = 1;
        assert_eq!(
            store.upsert_user(&changed).await.unwrap(),
            Upserted::Updated
        );
        let stored = store
            .user_by_username(&alice.username)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.email.as_str(), "new@example.com");
        assert_eq!(stored.created_at, alice.created_at, "created_at is kept");
        assert_eq!(store.count_users().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn racing_signups_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}", dir.path().join("db").display());
        let store = Store::open(&url, None).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            // Half race for the username, half for the email.
            let candidate = if i % 2 == 0 {
                user("racer", &format!("racer{i}@example.com"))
            } else {
                user(&format!("racer{i}"), "racer@example.com")
            };
            tasks.push(tokio::spawn(
                async move { store.create_user(&candidate).await },
            ));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => wins += 1,
                Err(StorageError::UsernameTaken | StorageError::EmailTaken) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        let users = store.count_users().await.unwrap();
        // One winner for the username, one for the email.
        assert_eq!(wins, 2);
        assert_eq!(users, 2);
    }
}
