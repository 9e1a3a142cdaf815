//! Second factors and the state between the two steps of a login.
//!
//! - `factor:⟨username⟩`: the user's TOTP secret (still being enrolled until a code
//!   confirms it), the last time step a code was accepted for — so a code is
//!   accepted once, however many requests race with it — and the SHA-256 of each
//!   unused recovery code.
//! - `pending_login:⟨sha256(token)⟩`: a right password waiting for its second
//!   factor. It is not a session: nothing reads it but the second step, it expires
//!   within minutes, and its token lives in a cookie of its own.

use std::fmt;

use domain::Username;
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::record_key;
use crate::record::{returned, user_id};
use crate::store::retry_conflicts;
use crate::{StorageError, Store};

/// A user's TOTP enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    /// The shared secret as stored: sealed by the caller (the app's base32
    /// secret, as authenticator apps take it, encrypted under the operator's key).
    pub secret: String,
    /// A code has confirmed it: it is asked for at every login.
    pub confirmed: bool,
    /// The last time step a code was accepted for.
    pub last_step: i64,
    /// Unused recovery codes left.
    pub recovery_left: usize,
    pub created_at: i64,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .field("recovery_left", &self.recovery_left)
            .finish()
    }
}

#[derive(Debug, SurrealValue)]
struct FactorRecord {
    totp_secret: String,
    confirmed: bool,
    last_step: i64,
    recovery: Vec<String>,
    created_at: i64,
}

fn factor_id(username: &Username) -> RecordId {
    RecordId::new("factor", username.as_str())
}

crate::record::secret_token!(
    /// The secret of a pending login's cookie: `pl_` and 64 hex characters.
    PendingToken,
    "pl_"
);

/// A right password waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub id: String,
    pub username: Username,
    pub remember: bool,
    /// Where to go once logged in (already checked to be safe).
    pub next: Option<String>,
    pub expires_at: i64,
}

#[derive(Debug, SurrealValue)]
struct PendingRecord {
    id: RecordId,
    user: RecordId,
    remember: bool,
    next: Option<String>,
    expires_at: i64,
}

fn pending_id(id: &str) -> RecordId {
    RecordId::new("pending_login", id)
}

impl Store {
    /// The user's TOTP enrolment, confirmed or not.
    pub async fn totp(&self, username: &Username) -> Result<Option<Totp>, StorageError> {
        let record: Option<FactorRecord> = self.db.select(factor_id(username)).await?;
        Ok(record.map(|r| Totp {
            secret: r.totp_secret,
            confirmed: r.confirmed,
            last_step: r.last_step,
            recovery_left: r.recovery.len(),
            created_at: r.created_at,
        }))
    }

    /// Starts (or starts again) an enrolment with `secret`; refused with `false`
    /// when a confirmed one exists (it must be removed first).
    pub async fn begin_totp(
        &self,
        username: &Username,
        secret: &str,
    ) -> Result<bool, StorageError> {
        let response = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $before = (SELECT * FROM ONLY $id); \
                     RETURN IF $before.confirmed = true { false } ELSE { \
                         (UPSERT $id CONTENT { totp_secret: $secret, confirmed: false, \
                          last_step: 0, recovery: [], created_at: $now } RETURN NONE); \
                         true }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", factor_id(username)))
                .bind(("secret", secret.to_owned()))
                .bind(("now", crate::now()))
        )?;
        Ok(returned::<bool>(response).unwrap_or(false))
    }

    /// Confirms the enrolment after a right code for `step`, and stores the hashes
    /// of its recovery codes. `false` when there was no enrolment in progress.
    pub async fn confirm_totp(
        &self,
        username: &Username,
        step: i64,
        recovery_hashes: Vec<String>,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "UPDATE $id SET confirmed = true, last_step = $step, recovery = $recovery \
                     WHERE confirmed = false RETURN VALUE id",
                )
                .bind(("id", factor_id(username)))
                .bind(("step", step))
                .bind(("recovery", recovery_hashes.clone()))
        )?;
        let updated: Vec<RecordId> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    /// Accepts a code for time step `step` once: `true` if no code was accepted
    /// for this step or a later one (decided inside one statement, so two racing
    /// uses of one code cannot both pass).
    pub async fn use_totp_step(
        &self,
        username: &Username,
        step: i64,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "UPDATE $id SET last_step = $step \
                     WHERE confirmed = true AND last_step < $step RETURN VALUE id",
                )
                .bind(("id", factor_id(username)))
                .bind(("step", step))
        )?;
        let updated: Vec<RecordId> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    /// Uses up the recovery code whose SHA-256 is `hash`: `true` if it was unused.
    pub async fn use_recovery_code(
        &self,
        username: &Username,
        hash: &str,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "UPDATE $id SET recovery -= $hash \
                     WHERE confirmed = true AND $hash IN recovery RETURN VALUE id",
                )
                .bind(("id", factor_id(username)))
                .bind(("hash", hash.to_owned()))
        )?;
        let updated: Vec<RecordId> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    /// Every user's TOTP secret as stored, for sealing them again under a new key.
    pub async fn totp_secrets(&self) -> Result<Vec<(Username, String)>, StorageError> {
        #[derive(Debug, SurrealValue)]
        struct Row {
            id: RecordId,
            totp_secret: String,
        }
        let mut response = self
            .db
            .query("SELECT id, totp_secret FROM factor")
            .await?
            .check()?;
        let rows: Vec<Row> = response.take(0)?;
        rows.into_iter()
            .map(|row| {
                let username = Username::parse(&record_key(&row.id)?)
                    .map_err(|e| StorageError::Corrupt(format!("factor user: {e}")))?;
                Ok((username, row.totp_secret))
            })
            .collect()
    }

    /// Whether any user has a TOTP secret (set up or being set up).
    pub async fn any_totp(&self) -> Result<bool, StorageError> {
        let mut response = self
            .db
            .query("SELECT VALUE id FROM factor LIMIT 1")
            .await?
            .check()?;
        let found: Vec<RecordId> = response.take(0)?;
        Ok(!found.is_empty())
    }

    /// Replaces `username`'s stored TOTP secret `old` with `new`: `false` when it
    /// is no longer `old` (changed or removed meanwhile), so nothing is lost to a
    /// race with an enrolment.
    pub async fn replace_totp_secret(
        &self,
        username: &Username,
        old: &str,
        new: &str,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("UPDATE $id SET totp_secret = $new WHERE totp_secret = $old RETURN VALUE id")
                .bind(("id", factor_id(username)))
                .bind(("old", old.to_owned()))
                .bind(("new", new.to_owned()))
        )?;
        let updated: Vec<RecordId> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    /// Removes the user's second factors; `true` if there were any.
    pub async fn remove_totp(&self, username: &Username) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id RETURN BEFORE")
                .bind(("id", factor_id(username)))
        )?;
        let removed: Vec<FactorRecord> = response.take(0)?;
        Ok(!removed.is_empty())
    }

    /// A pending login for `username`, valid for `lifetime` seconds.
    pub async fn create_pending_login(
        &self,
        username: &Username,
        remember: bool,
        next: Option<String>,
        lifetime: i64,
    ) -> Result<(PendingToken, PendingLogin), StorageError> {
        let token = PendingToken::generate();
        let pending = PendingLogin {
            id: token.id(),
            username: username.clone(),
            remember,
            next,
            expires_at: crate::now().saturating_add(lifetime),
        };
        retry_conflicts!(
            self.db
                .query(
                    "CREATE $id SET user = $user, remember = $remember, next = $next, \
                     expires_at = $expires_at RETURN NONE",
                )
                .bind(("id", pending_id(&pending.id)))
                .bind(("user", user_id(username)))
                .bind(("remember", remember))
                .bind(("next", pending.next.clone()))
                .bind(("expires_at", pending.expires_at))
        )?;
        Ok((token, pending))
    }

    /// The live pending login `token` opens, if any.
    pub async fn pending_login(
        &self,
        token: &PendingToken,
    ) -> Result<Option<PendingLogin>, StorageError> {
        let record: Option<PendingRecord> = self.db.select(pending_id(&token.id())).await?;
        let Some(record) = record else {
            return Ok(None);
        };
        let username = Username::parse(&record_key(&record.user)?)
            .map_err(|e| StorageError::Corrupt(format!("pending login user: {e}")))?;
        let pending = PendingLogin {
            id: record_key(&record.id)?,
            username,
            remember: record.remember,
            next: record.next,
            expires_at: record.expires_at,
        };
        Ok((crate::now() < pending.expires_at).then_some(pending))
    }

    /// How many pending logins `username` has (expired ones included, until the
    /// sweeper takes them).
    pub async fn count_pending_logins(&self, username: &Username) -> Result<u64, StorageError> {
        let mut response = self
            .db
            .query("RETURN count(SELECT VALUE id FROM pending_login WHERE user = $user)")
            .bind(("user", user_id(username)))
            .await?
            .check()?;
        let count: Option<i64> = response.take(0)?;
        Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    /// Ends a pending login: `true` if it was still there (of two racing second
    /// steps, one gets `true`).
    pub async fn delete_pending_login(&self, id: &str) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id RETURN BEFORE")
                .bind(("id", pending_id(id)))
        )?;
        let removed: Vec<PendingRecord> = response.take(0)?;
        Ok(!removed.is_empty())
    }
}
