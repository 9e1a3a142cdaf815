//! Login sessions. The cookie carries a random 256-bit token; the store keys the
//! session by the token's SHA-256 (`session:⟨hex⟩`), so a leaked database does not
//! hand out live sessions and every lookup is a select by record id.

use domain::Username;
use sha2::{Digest, Sha256};
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::{record_key, session_record_id, user_id};
use crate::store::retry_conflicts;
use crate::{StorageError, Store};

crate::record::secret_token!(
    /// The secret a browser holds: 32 random bytes as 64 lowercase hex characters.
    SessionToken,
    ""
);

impl SessionToken {
    /// The session's id in the store: SHA-256 of the token, hex.
    pub fn session_id(&self) -> String {
        self.id()
    }

    /// The SHA-256 of the token as bytes: the session id before its hex encoding,
    /// for lookups that need no string (the session cache, on every request).
    pub fn session_digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Seconds from now until the session ends, however active it is.
    pub lifetime: i64,
    pub remember: bool,
    pub user_agent: Option<String>,
    pub address: Option<String>,
    /// How the user proved who they are: `pwd`, then `otp` or `recovery`.
    pub factors: Vec<String>,
    /// When they proved it, for a session that carries on an earlier login (one
    /// restarted after a new second factor was set up); `None`: now.
    pub authenticated_at: Option<i64>,
}

/// A stored session. `id` is the hash of its token: safe to show and to use for
/// revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub username: Username,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    pub remember: bool,
    pub user_agent: Option<String>,
    pub address: Option<String>,
    /// How the login that started it was proved (`pwd`, `otp`, `recovery`).
    pub factors: Vec<String>,
    /// When that login proved who the user is (`/auth?max_age=`): its start, or
    /// the earlier login a restarted session carries on.
    pub authenticated_at: i64,
}

impl Session {
    /// Live at `now` with an idle timeout of `idle_timeout` seconds.
    pub fn is_live(&self, now: i64, idle_timeout: i64) -> bool {
        now < self.expires_at && now < self.last_seen.saturating_add(idle_timeout)
    }
}

#[derive(Debug, SurrealValue)]
struct SessionRecord {
    id: RecordId,
    user: RecordId,
    created_at: i64,
    last_seen: i64,
    expires_at: i64,
    remember: bool,
    user_agent: Option<String>,
    address: Option<String>,
    /// Absent on sessions made before second factors existed.
    factors: Option<Vec<String>>,
    /// Absent on sessions made before it was recorded: their start.
    authenticated_at: Option<i64>,
}

impl SessionRecord {
    fn into_session(self) -> Result<Session, StorageError> {
        let username = Username::parse(&record_key(&self.user)?)
            .map_err(|e| StorageError::Corrupt(format!("session user: {e}")))?;
        Ok(Session {
            id: record_key(&self.id)?,
            username,
            created_at: self.created_at,
            last_seen: self.last_seen,
            expires_at: self.expires_at,
            remember: self.remember,
            user_agent: self.user_agent,
            address: self.address,
            factors: self.factors.unwrap_or_default(),
            authenticated_at: self.authenticated_at.unwrap_or(self.created_at),
        })
    }
}

impl Store {
    /// Starts a session for `username` and returns its token: the only time the
    /// token exists outside the user's browser.
    pub async fn create_session(
        &self,
        username: &Username,
        new: NewSession,
    ) -> Result<(SessionToken, Session), StorageError> {
        let token = SessionToken::generate();
        let now = crate::now();
        let session = Session {
            id: token.session_id(),
            username: username.clone(),
            created_at: now,
            last_seen: now,
            expires_at: now.saturating_add(new.lifetime),
            remember: new.remember,
            user_agent: new.user_agent,
            address: new.address,
            factors: new.factors,
            authenticated_at: new.authenticated_at.unwrap_or(now).min(now),
        };
        retry_conflicts!(
            self.db
                .query(
                    "CREATE $id SET user = $user, created_at = $created_at, last_seen = $created_at, \
                     expires_at = $expires_at, remember = $remember, user_agent = $user_agent, \
                     address = $address, factors = $factors, \
                     authenticated_at = $authenticated_at RETURN NONE",
                )
                .bind(("id", session_record_id(&session.id)))
                .bind(("user", user_id(username)))
                .bind(("created_at", session.created_at))
                .bind(("expires_at", session.expires_at))
                .bind(("remember", session.remember))
                .bind(("user_agent", session.user_agent.clone()))
                .bind(("address", session.address.clone()))
                .bind(("factors", session.factors.clone()))
                .bind(("authenticated_at", session.authenticated_at))
        )?;
        Ok((token, session))
    }

    /// The session a token belongs to, live or not; the caller decides with
    /// [`Session::is_live`].
    pub async fn session(&self, token: &SessionToken) -> Result<Option<Session>, StorageError> {
        self.session_by_id(&token.session_id()).await
    }

    pub async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StorageError> {
        let record: Option<SessionRecord> = self.db.select(session_record_id(id)).await?;
        record.map(SessionRecord::into_session).transpose()
    }

    /// Records activity, for the idle timeout and the sessions page.
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("UPDATE $id SET last_seen = $now RETURN NONE")
                .bind(("id", session_record_id(id)))
                .bind(("now", now))
        )?;
        Ok(())
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE $id")
                .bind(("id", session_record_id(id)))
        )?;
        Ok(())
    }

    /// All of a user's sessions, newest first.
    pub async fn sessions_of(&self, username: &Username) -> Result<Vec<Session>, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("SELECT * FROM session WHERE user = $user ORDER BY created_at DESC")
                .bind(("user", user_id(username)))
        )?;
        let records: Vec<SessionRecord> = response.take(0)?;
        records
            .into_iter()
            .map(SessionRecord::into_session)
            .collect()
    }

    /// Ends every session of `username` except `keep`.
    pub async fn delete_other_sessions(
        &self,
        username: &Username,
        keep: Option<&str>,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE session WHERE user = $user AND id != $keep")
                .bind(("user", user_id(username)))
                .bind(("keep", keep.map(session_record_id)))
        )?;
        Ok(())
    }

    /// Removes links and pending logins past their expiry (password resets, email
    /// verifications, logins waiting for a second factor, passkey ceremonies): using one checks its
    /// expiry anyway; this keeps the unused ones from piling up.
    pub async fn delete_expired_links(&self, now: i64) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query(
                    "DELETE password_reset WHERE expires_at <= $now; \
                     DELETE email_verification WHERE expires_at <= $now; \
                     DELETE pending_login WHERE expires_at <= $now; \
                     DELETE passkey_challenge WHERE expires_at <= $now;",
                )
                .bind(("now", now))
        )?;
        Ok(())
    }

    /// Removes sessions past their absolute lifetime or idle for `idle_timeout`.
    pub async fn delete_expired_sessions(
        &self,
        now: i64,
        idle_timeout: i64,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE session WHERE expires_at <= $now OR last_seen + $idle <= $now")
                .bind(("now", now))
                .bind(("idle", idle_timeout))
        )?;
        Ok(())
    }
}

/// A password login's session of an hour, for the store's tests.
#[cfg(test)]
pub(crate) fn new_session() -> NewSession {
    NewSession {
        lifetime: 3600,
        remember: false,
        user_agent: Some("test".into()),
        address: Some("127.0.0.1".into()),
        factors: Vec::new(),
        authenticated_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_only_their_hash_is_the_id() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(SessionToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.session_id().len(), 64);
        assert_ne!(a.session_id(), a.expose());
        assert_eq!(SessionToken::parse("zz"), None);
        assert_eq!(SessionToken::parse(&"A".repeat(64)), None);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[tokio::test]
    async fn sessions_are_created_found_and_revoked() {
        let store = Store::memory().await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let (token, created) = store.create_session(&alice, new_session()).await.unwrap();
        let (other, _) = store.create_session(&alice, new_session()).await.unwrap();
        let found = store.session(&token).await.unwrap().unwrap();
        assert_eq!(found, created);
        assert!(found.is_live(found.created_at, 60));
        assert!(!found.is_live(found.expires_at, i64::MAX));
        assert!(!found.is_live(found.last_seen + 60, 60));
        assert_eq!(store.sessions_of(&alice).await.unwrap().len(), 2);

        store
            .touch_session(&found.id, found.last_seen + 5)
            .await
            .unwrap();
        let touched = store.session(&token).await.unwrap().unwrap();
        assert_eq!(touched.last_seen, found.last_seen + 5);

        store
            .delete_other_sessions(&alice, Some(&found.id))
            .await
            .unwrap();
        assert!(store.session(&other).await.unwrap().is_none());
        assert!(store.session(&token).await.unwrap().is_some());
        store.delete_session(&found.id).await.unwrap();
        assert!(store.session(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_sweeper_removes_ended_sessions_and_dead_links_only() {
        let store = Store::memory().await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let (live, _) = store.create_session(&alice, new_session()).await.unwrap();
        let (idle, idle_session) = store.create_session(&alice, new_session()).await.unwrap();
        let (old, _) = store
            .create_session(
                &alice,
                NewSession {
                    lifetime: -1,
                    ..new_session()
                },
            )
            .await
            .unwrap();
        store
            .touch_session(&idle_session.id, idle_session.last_seen - 600)
            .await
            .unwrap();
        store
            .delete_expired_sessions(crate::now(), 300)
            .await
            .unwrap();
        assert!(store.session(&live).await.unwrap().is_some());
        assert!(store.session(&idle).await.unwrap().is_none(), "idle");
        assert!(
            store.session(&old).await.unwrap().is_none(),
            "past its lifetime"
        );

        let dead = store.create_reset(&alice, -1).await.unwrap();
        let fresh = store
            .create_verification(&alice, "a@example.com", 60)
            .await
            .unwrap();
        let stale = store
            .create_verification(&Username::parse("bob").unwrap(), "b@example.com", -1)
            .await
            .unwrap();
        store.delete_expired_links(crate::now()).await.unwrap();
        let mut response = store
            .db
            .query("SELECT count() FROM password_reset GROUP ALL; SELECT count() FROM email_verification GROUP ALL;")
            .await
            .unwrap();
        let resets: Option<i64> = response.take((0, "count")).unwrap();
        let links: Option<i64> = response.take((1, "count")).unwrap();
        assert_eq!((resets.unwrap_or(0), links.unwrap_or(0)), (0, 1));
        let _ = (dead, fresh, stale);
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;

    /// Many logins from one browser at once: each ends the same old session and
    /// starts its own. None may fail with a transaction conflict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_from_one_browser_do_not_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}", dir.path().join("db").display());
        let store = Store::open(&url, None).await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let new = new_session;
        let (_, old) = store.create_session(&alice, new()).await.unwrap();
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let store = store.clone();
                let alice = alice.clone();
                let old = old.id.clone();
                tokio::spawn(async move {
                    store.delete_session(&old).await?;
                    store.create_session(&alice, new()).await.map(|_| ())
                })
            })
            .collect();
        let mut failures = Vec::new();
        for task in tasks {
            if let Err(err) = task.await.unwrap() {
                failures.push(err.to_string());
            }
        }
        assert!(
            failures.is_empty(),
            "{} failed: {:?}",
            failures.len(),
            failures.first()
        );
    }
}
