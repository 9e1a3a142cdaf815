//! Passkeys (WebAuthn credentials) and the ceremonies that make and use them.
//!
//! - `passkey:⟨sha256(credential id)⟩`: one credential of a user — its name, the
//!   user handle the authenticator stores with it (a random UUID per user, never
//!   the username), and the credential itself as the WebAuthn library serialises
//!   it (public key, algorithm, sign counter). The store never parses it.
//! - `passkey_challenge:⟨sha256(id)⟩`: a ceremony in progress (a registration, a
//!   second step, a passwordless login): the library's state with its challenge,
//!   what it is bound to (the user registering, the pending login), five minutes,
//!   single use.

use domain::Username;
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::{is_random_hex, random_hex, record_key, sha256_hex};
use crate::record::{returned, user_id};
use crate::store::retry_conflicts;
use crate::{Refusal, StorageError, Store};

/// Passkeys one user may have.
pub const MAX_PASSKEYS: usize = 20;

/// A user's passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// SHA-256 (hex) of the credential id: the record's key, and what the pages
    /// name it by.
    pub id: String,
    pub username: Username,
    /// The user handle (a UUID) the authenticator keeps with the credential.
    pub handle: String,
    pub name: String,
    /// The credential as the WebAuthn library serialises it (JSON).
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, SurrealValue)]
struct PasskeyRecord {
    id: RecordId,
    user: RecordId,
    handle: String,
    name: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRecord {
    fn into_passkey(self) -> Result<StoredPasskey, StorageError> {
        let username = Username::parse(&record_key(&self.user)?)
            .map_err(|e| StorageError::Corrupt(format!("passkey user: {e}")))?;
        Ok(StoredPasskey {
            id: record_key(&self.id)?,
            username,
            handle: self.handle,
            name: self.name,
            credential: self.credential,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// The key of a credential id's record.
pub fn passkey_key(credential_id: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(credential_id))
}

fn passkey_id(key: &str) -> RecordId {
    RecordId::new("passkey", key)
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// A logged-in user adds a passkey.
    Register,
    /// The second step of a login, after the password.
    SecondFactor,
    /// A login with a passkey alone.
    Passwordless,
}

impl Ceremony {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SecondFactor => "second",
            Self::Passwordless => "passwordless",
        }
    }
}

/// A ceremony in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub ceremony: Ceremony,
    /// The user registering, or the user of the pending login.
    pub username: Option<Username>,
    /// The pending login a second step belongs to.
    pub pending: Option<String>,
    /// The WebAuthn library's state (JSON).
    pub state: String,
    /// Anything else the ceremony keeps (the user handle of a registration).
    pub extra: Option<String>,
}

#[derive(Debug, SurrealValue)]
struct ChallengeRecord {
    kind: String,
    user: Option<RecordId>,
    pending: Option<String>,
    state: String,
    extra: Option<String>,
    expires_at: i64,
}

/// The secret naming a ceremony in progress: `wc_` and 64 hex characters.
pub fn parse_challenge_id(value: &str) -> Option<&str> {
    value
        .strip_prefix("wc_")
        .filter(|hex| is_random_hex(hex))
        .map(|_| value)
}

fn challenge_id(id: &str) -> RecordId {
    RecordId::new("passkey_challenge", sha256_hex(id))
}

impl Store {
    /// `username`'s passkeys, oldest first.
    pub async fn passkeys(&self, username: &Username) -> Result<Vec<StoredPasskey>, StorageError> {
        let mut response = self
            .db
            .query("SELECT * FROM passkey WHERE user = $user ORDER BY created_at")
            .bind(("user", user_id(username)))
            .await?;
        let records: Vec<PasskeyRecord> = response.take(0)?;
        records
            .into_iter()
            .map(PasskeyRecord::into_passkey)
            .collect()
    }

    /// The passkey whose credential id hashes to `key`.
    pub async fn passkey(&self, key: &str) -> Result<Option<StoredPasskey>, StorageError> {
        let record: Option<PasskeyRecord> = self.db.select(passkey_id(key)).await?;
        record.map(PasskeyRecord::into_passkey).transpose()
    }

    /// Adds a passkey: `false` when that credential is registered already or the
    /// user has [`MAX_PASSKEYS`] (decided in one transaction).
    pub async fn add_passkey(&self, passkey: &StoredPasskey) -> Result<bool, StorageError> {
        let response = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $count = count(SELECT id FROM passkey WHERE user = $user); \
                     LET $exists = (SELECT id FROM ONLY $id) != NONE; \
                     RETURN IF $count >= $max OR $exists { false } ELSE { \
                         (CREATE $id SET user = $user, handle = $handle, name = $name, \
                          credential = $credential, created_at = $now, \
                          last_used_at = NONE RETURN NONE); \
                         true }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", passkey_id(&passkey.id)))
                .bind(("user", user_id(&passkey.username)))
                .bind(("handle", passkey.handle.clone()))
                .bind(("name", passkey.name.clone()))
                .bind(("credential", passkey.credential.clone()))
                .bind(("now", passkey.created_at))
                .bind(("max", MAX_PASSKEYS as i64))
        )?;
        Ok(returned::<bool>(response).unwrap_or(false))
    }

    /// Records a use of passkey `key`, with its credential updated (the sign
    /// counter) when it changed.
    pub async fn passkey_used(
        &self,
        key: &str,
        credential: Option<String>,
        now: i64,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query(
                    "UPDATE $id SET last_used_at = $now, \
                     credential = IF $credential = NONE { credential } ELSE { $credential } \
                     RETURN NONE",
                )
                .bind(("id", passkey_id(key)))
                .bind(("credential", credential.clone()))
                .bind(("now", now))
        )?;
        Ok(())
    }

    /// Removes `username`'s passkey `key`: `false` when they have no such passkey.
    pub async fn remove_passkey(
        &self,
        username: &Username,
        key: &str,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id WHERE user = $user RETURN BEFORE")
                .bind(("id", passkey_id(key)))
                .bind(("user", user_id(username)))
        )?;
        let removed: Vec<PasskeyRecord> = response.take(0)?;
        Ok(!removed.is_empty())
    }

    /// Removes every passkey of `username`; how many there were.
    pub async fn remove_passkeys(&self, username: &Username) -> Result<usize, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "DELETE passkey_challenge WHERE user = $user; \
                     DELETE passkey WHERE user = $user RETURN BEFORE",
                )
                .bind(("user", user_id(username)))
        )?;
        let removed: Vec<PasskeyRecord> = response.take(1)?;
        Ok(removed.len())
    }

    /// Keeps a ceremony's state for `lifetime` seconds; the id to hand the browser.
    /// Anyone may start a passwordless login, so at most `limit` ceremonies live at
    /// once ([`Refusal::CeremoniesFull`] past that, decided in the creating
    /// transaction): a flood cannot grow the store without bound.
    pub async fn put_challenge(
        &self,
        challenge: &Challenge,
        lifetime: i64,
        limit: usize,
    ) -> Result<String, StorageError> {
        let id = format!("wc_{}", random_hex());
        let now = crate::now();
        let result = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     IF count((SELECT id FROM passkey_challenge WHERE expires_at > $now \
                         LIMIT $limit)) >= $limit { THROW 'ceremonies_full' }; \
                     CREATE $id SET kind = $kind, user = $user, pending = $pending, \
                     state = $state, extra = $extra, expires_at = $expires_at RETURN NONE; \
                     COMMIT TRANSACTION;",
                )
                .bind(("now", now))
                .bind(("limit", limit as i64))
                .bind(("id", challenge_id(&id)))
                .bind(("kind", challenge.ceremony.as_str()))
                .bind(("user", challenge.username.as_ref().map(user_id)))
                .bind(("pending", challenge.pending.clone()))
                .bind(("state", challenge.state.clone()))
                .bind(("extra", challenge.extra.clone()))
                .bind(("expires_at", now.saturating_add(lifetime)))
        );
        match result {
            Ok(_) => Ok(id),
            Err(StorageError::Database(e)) if e.to_string().contains("ceremonies_full") => {
                Err(StorageError::Refused(Refusal::CeremoniesFull))
            }
            Err(other) => Err(other),
        }
    }

    /// Takes the ceremony `id` names, once: gone afterwards whatever its outcome.
    /// `None` when it is unknown, used, expired or of another `ceremony`.
    pub async fn take_challenge(
        &self,
        id: &str,
        ceremony: Ceremony,
    ) -> Result<Option<Challenge>, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id RETURN BEFORE")
                .bind(("id", challenge_id(id)))
        )?;
        let taken: Vec<ChallengeRecord> = response.take(0)?;
        let Some(record) = taken.into_iter().next() else {
            return Ok(None);
        };
        if record.kind != ceremony.as_str() || record.expires_at <= crate::now() {
            return Ok(None);
        }
        let username = match &record.user {
            Some(user) => Some(
                Username::parse(&record_key(user)?)
                    .map_err(|e| StorageError::Corrupt(format!("challenge user: {e}")))?,
            ),
            None => None,
        };
        Ok(Some(Challenge {
            ceremony,
            username,
            pending: record.pending,
            state: record.state,
            extra: record.extra,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn key(name: &str, n: u8) -> StoredPasskey {
        StoredPasskey {
            id: passkey_key(&[n; 16]),
            username: alice(),
            handle: "h".into(),
            name: name.into(),
            credential: "{}".into(),
            created_at: i64::from(n),
            last_used_at: None,
        }
    }

    #[tokio::test]
    async fn passkeys_are_added_once_listed_and_removed_by_their_owner() {
        let store = Store::memory().await.unwrap();
        let laptop = key("laptop", 1);
        assert!(store.add_passkey(&laptop).await.unwrap());
        assert!(
            !store.add_passkey(&laptop).await.unwrap(),
            "same credential twice"
        );
        assert!(store.add_passkey(&key("phone", 2)).await.unwrap());
        let names: Vec<String> = store
            .passkeys(&alice())
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["laptop", "phone"]);
        store
            .passkey_used(&laptop.id, Some("{\"n\":1}".into()), 99)
            .await
            .unwrap();
        let used = store.passkey(&laptop.id).await.unwrap().unwrap();
        assert_eq!(
            (used.last_used_at, used.credential.as_str()),
            (Some(99), "{\"n\":1}")
        );
        let bob = Username::parse("bob").unwrap();
        assert!(!store.remove_passkey(&bob, &laptop.id).await.unwrap());
        assert!(store.remove_passkey(&alice(), &laptop.id).await.unwrap());
        assert_eq!(store.remove_passkeys(&alice()).await.unwrap(), 1);
        assert!(store.passkeys(&alice()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_user_has_at_most_twenty_passkeys() {
        let store = Store::memory().await.unwrap();
        for n in 0..20 {
            assert!(store.add_passkey(&key("k", n)).await.unwrap());
        }
        assert!(!store.add_passkey(&key("k", 20)).await.unwrap());
    }

    #[tokio::test]
    async fn a_challenge_is_taken_once_and_only_for_its_ceremony() {
        let store = Store::memory().await.unwrap();
        let challenge = Challenge {
            ceremony: Ceremony::Register,
            username: Some(alice()),
            pending: None,
            state: "{}".into(),
            extra: Some("handle".into()),
        };
        let id = store.put_challenge(&challenge, 300, 10).await.unwrap();
        assert!(parse_challenge_id(&id).is_some());
        assert_eq!(
            store
                .take_challenge(&id, Ceremony::SecondFactor)
                .await
                .unwrap(),
            None,
            "another ceremony's, and used up by the try"
        );
        let id = store.put_challenge(&challenge, 300, 10).await.unwrap();
        assert_eq!(
            store.take_challenge(&id, Ceremony::Register).await.unwrap(),
            Some(challenge.clone())
        );
        assert_eq!(
            store.take_challenge(&id, Ceremony::Register).await.unwrap(),
            None
        );
        let expired = store.put_challenge(&challenge, 0, 10).await.unwrap();
        assert_eq!(
            store
                .take_challenge(&expired, Ceremony::Register)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn live_ceremonies_are_bounded_and_expired_ones_do_not_count() {
        let store = Store::memory().await.unwrap();
        let challenge = Challenge {
            ceremony: Ceremony::Passwordless,
            username: None,
            pending: None,
            state: "{}".into(),
            extra: None,
        };
        store.put_challenge(&challenge, 0, 2).await.unwrap();
        let first = store.put_challenge(&challenge, 300, 2).await.unwrap();
        store.put_challenge(&challenge, 300, 2).await.unwrap();
        assert!(matches!(
            store.put_challenge(&challenge, 300, 2).await,
            Err(StorageError::Refused(Refusal::CeremoniesFull))
        ));
        // One taken: room for one more.
        store
            .take_challenge(&first, Ceremony::Passwordless)
            .await
            .unwrap();
        store.put_challenge(&challenge, 300, 2).await.unwrap();
    }
}
