//! What every record module shares: random secrets and their SHA-256 keys, the
//! record ids of users and sessions, and reading a transaction's `RETURN`. Its
//! own module, below the feature files, so that none of them imports another for
//! a helper.

use domain::Username;
use rand::RngCore;
use sha2::{Digest, Sha256};
use surrealdb::types::{RecordId, RecordIdKey, SurrealValue};

use crate::StorageError;

/// Whether `value` has the shape [`random_hex`] makes: 64 lowercase hex characters.
pub(crate) fn is_random_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 32 random bytes as 64 lowercase hex characters.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of `secret`, hex: the id under which a secret's record is stored.
pub(crate) fn sha256_hex(secret: &str) -> String {
    // On every authenticated request: into a buffer, not char by char.
    let mut buf = [0u8; 64];
    let digest = Sha256::digest(secret.as_bytes());
    match hex::encode_to_slice(digest, &mut buf) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => hex::encode(digest),
    }
}

/// The string key of a record id such as `session:⟨hex⟩`.
pub(crate) fn record_key(id: &RecordId) -> Result<String, StorageError> {
    match &id.key {
        RecordIdKey::String(key) => Ok(key.clone()),
        other => Err(StorageError::Corrupt(format!(
            "unexpected record key {other:?}"
        ))),
    }
}

pub(crate) fn session_record_id(id: &str) -> RecordId {
    RecordId::new("session", id)
}

pub(crate) fn user_id(username: &Username) -> RecordId {
    RecordId::new("user", username.as_str())
}

/// The `RETURN` of a transaction, scanned from the end (the COMMIT may count as a
/// statement).
pub(crate) fn returned<T: SurrealValue>(mut response: surrealdb::IndexedResults) -> Option<T> {
    (0..response.num_statements())
        .rev()
        .find_map(|index| response.take::<Option<T>>(index).ok().flatten())
}

/// A secret a client holds — a session cookie, an API token, a pending login, a
/// link sent by mail —: a prefix and 64 random hex characters, of which the store
/// keeps only the SHA-256 (`id`). `parse` accepts only what `generate` makes, so
/// nothing else reaches the store; `Debug` hides it.
macro_rules! secret_token {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, $crate::record::random_hex()))
            }

            pub fn parse(value: &str) -> Option<Self> {
                let hex = value.strip_prefix($prefix)?;
                $crate::record::is_random_hex(hex).then(|| Self(value.to_owned()))
            }

            pub fn expose(&self) -> &str {
                &self.0
            }

            /// Its id in the store: SHA-256 of the secret, hex.
            pub fn id(&self) -> String {
                $crate::record::sha256_hex(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}
pub(crate) use secret_token;
