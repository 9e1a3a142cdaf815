//! Mail that must not be lost, and the password-reset links it carries.
//!
//! - `outbox:⟨id⟩`: a message waiting to be sent. A sender claims a message for a
//!   minute before it tries it (so two nodes never send one twice), deletes it once
//!   the transport took it, and otherwise puts it back with a later time to try
//!   again. It survives restarts: it is in the store.
//! - `password_reset:⟨sha256(token)⟩`: a reset link's record (only the hash of the
//!   link's secret is kept), with its user and expiry. Making a new one, using one,
//!   or logging in deletes every reset of the user.

use domain::{PasswordHash, Username};
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::{random_hex, record_key};
use crate::record::{returned, user_id};
use crate::store::retry_conflicts;
use crate::users::AccessEnded;
use crate::{Refusal, StorageError, Store};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub mail: Mail,
    /// Tries so far.
    pub attempts: i64,
    /// `Some("reset")`: not a message yet but a request for a reset link for the
    /// address in `mail.to`, which the sender turns into one (or drops, when no
    /// account uses the address). Queued the same way for every address, so the
    /// request that queues it costs the same whoever it names. `Some("verify")`:
    /// the same for a verification link (dropped when the address is verified).
    pub kind: Option<String>,
}

#[derive(Debug, SurrealValue)]
struct OutboxRecord {
    id: RecordId,
    to: String,
    subject: String,
    text: String,
    html: String,
    attempts: i64,
    kind: Option<String>,
}

pub use crate::store::OUTBOX_LIMIT;

/// How long a claim holds a message against other senders.
const CLAIM_SECONDS: i64 = 60;

crate::record::secret_token!(
    /// The secret in a reset link: `pr_` and 64 hex characters.
    ResetToken,
    "pr_"
);

#[derive(Debug, SurrealValue)]
struct ResetRecord {
    user: RecordId,
    expires_at: i64,
}

#[derive(Debug, SurrealValue)]
struct Reset {
    user: String,
    sessions: i64,
    tokens: i64,
}

fn reset_id(id: &str) -> RecordId {
    RecordId::new("password_reset", id)
}

impl Store {
    /// Puts `mail` in the outbox, to be sent from now on.
    pub async fn enqueue_mail(&self, mail: &Mail) -> Result<(), StorageError> {
        self.enqueue(mail, None).await
    }

    /// Queues a request for a reset link for `email` (see [`Outgoing::kind`]).
    pub async fn enqueue_reset_request(&self, email: &str) -> Result<(), StorageError> {
        let request = Mail {
            to: email.to_owned(),
            subject: String::new(),
            text: String::new(),
            html: String::new(),
        };
        self.enqueue(&request, Some("reset")).await
    }

    /// Queues a request for a verification link for the account using `email`
    /// (see [`Outgoing::kind`]): the sender makes the link, so anything that can
    /// write to the store (the CLI included) can ask for one.
    pub async fn enqueue_verification_request(&self, email: &str) -> Result<(), StorageError> {
        let request = Mail {
            to: email.to_owned(),
            subject: String::new(),
            text: String::new(),
            html: String::new(),
        };
        self.enqueue(&request, Some("verify")).await
    }

    async fn enqueue(&self, mail: &Mail, kind: Option<&str>) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     IF ((SELECT count() FROM outbox GROUP ALL)[0].count ?? 0) >= $limit \
                         { THROW 'outbox_full' }; \
                     CREATE type::record('outbox', $id) SET to = $to, subject = $subject, \
                     text = $text, html = $html, attempts = 0, next_attempt_at = $now, \
                     created_at = $now, last_error = NONE, kind = $kind RETURN NONE; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", random_hex()))
                .bind(("to", mail.to.clone()))
                .bind(("subject", mail.subject.clone()))
                .bind(("text", mail.text.clone()))
                .bind(("html", mail.html.clone()))
                .bind(("now", crate::now()))
                .bind(("kind", kind.map(str::to_owned)))
                .bind(("limit", self.outbox_limit))
        )
        .map_err(|err| match err {
            StorageError::Database(e) if e.to_string().contains("outbox_full") => {
                StorageError::Refused(Refusal::OutboxFull)
            }
            other => other,
        })?;
        Ok(())
    }

    /// Claims up to `limit` messages due at `now` (each for a minute, so no other
    /// sender takes them meanwhile).
    pub async fn claim_mail(&self, now: i64, limit: i64) -> Result<Vec<Outgoing>, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "UPDATE (SELECT VALUE id FROM outbox WHERE next_attempt_at <= $now \
                     ORDER BY next_attempt_at LIMIT $limit) \
                     SET next_attempt_at = $until WHERE next_attempt_at <= $now RETURN AFTER",
                )
                .bind(("now", now))
                .bind(("until", now + CLAIM_SECONDS))
                .bind(("limit", limit))
        )?;
        let records: Vec<OutboxRecord> = response.take(0)?;
        records
            .into_iter()
            .map(|r| {
                Ok(Outgoing {
                    id: record_key(&r.id)?,
                    mail: Mail {
                        to: r.to,
                        subject: r.subject,
                        text: r.text,
                        html: r.html,
                    },
                    attempts: r.attempts,
                    kind: r.kind,
                })
            })
            .collect()
    }

    /// The transport took message `id`: it leaves the outbox.
    pub async fn mail_sent(&self, id: &str) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE type::record('outbox', $id)")
                .bind(("id", id.to_owned()))
        )?;
        Ok(())
    }

    /// Message `id` could not be sent: it is tried again at `retry_at`.
    pub async fn mail_failed(
        &self,
        id: &str,
        retry_at: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query(
                    "UPDATE type::record('outbox', $id) SET attempts += 1, \
                     next_attempt_at = $at, last_error = $error RETURN NONE",
                )
                .bind(("id", id.to_owned()))
                .bind(("at", retry_at))
                .bind(("error", error.chars().take(500).collect::<String>()))
        )?;
        Ok(())
    }

    /// Why each waiting message has not gone yet: its failed attempts and the last
    /// error (`None` for one not tried), oldest first.
    pub async fn outbox_failures(&self) -> Result<Vec<(i64, Option<String>)>, StorageError> {
        #[derive(Debug, SurrealValue)]
        struct Row {
            attempts: i64,
            last_error: Option<String>,
        }
        let mut response = self
            .db
            .query("SELECT attempts, last_error, created_at FROM outbox ORDER BY created_at")
            .await?
            .check()?;
        let rows: Vec<Row> = response.take(0)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.attempts, r.last_error))
            .collect())
    }

    /// Messages waiting in the outbox.
    pub async fn outbox_len(&self) -> Result<u64, StorageError> {
        let mut response = self
            .db
            .query("RETURN (SELECT count() FROM outbox GROUP ALL)[0].count ?? 0")
            .await?
            .check()?;
        let count: Option<i64> = response.take(0)?;
        Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    /// A reset link for `username`, valid `lifetime` seconds; every earlier one of
    /// theirs stops working.
    pub async fn create_reset(
        &self,
        username: &Username,
        lifetime: i64,
    ) -> Result<ResetToken, StorageError> {
        let token = ResetToken::generate();
        retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     DELETE password_reset WHERE user = $user; \
                     CREATE $id SET user = $user, expires_at = $expires_at RETURN NONE; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", reset_id(&token.id())))
                .bind(("user", user_id(username)))
                .bind(("expires_at", crate::now().saturating_add(lifetime)))
        )?;
        Ok(token)
    }

    /// The user a live reset link is for.
    pub async fn reset_user(&self, token: &ResetToken) -> Result<Option<Username>, StorageError> {
        let record: Option<ResetRecord> = self.db.select(reset_id(&token.id())).await?;
        let Some(record) = record.filter(|r| crate::now() < r.expires_at) else {
            return Ok(None);
        };
        Username::parse(&record_key(&record.user)?)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("reset user: {e}")))
    }

    /// Uses reset link `token`: in one transaction, checks it is live, sets the new
    /// password hash, deletes every reset of the user and ends every session, API
    /// token and pending login of theirs. `None` when the link is unknown, used or expired.
    pub async fn complete_reset(
        &self,
        token: &ResetToken,
        hash: &PasswordHash,
    ) -> Result<Option<(Username, AccessEnded)>, StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $reset = (SELECT * FROM ONLY $id); \
                     IF $reset = NONE OR $reset.expires_at <= $now { THROW 'reset_invalid' }; \
                     UPDATE $reset.user SET password_hash = $hash RETURN NONE; \
                     DELETE password_reset WHERE user = $reset.user; \
                     LET $sessions = (DELETE session WHERE user = $reset.user RETURN BEFORE); \
                     LET $tokens = (DELETE api_token WHERE user = $reset.user RETURN BEFORE); \
                     DELETE pending_login WHERE user = $reset.user; \
                     RETURN { user: record::id($reset.user), sessions: count($sessions), \
                         tokens: count($tokens) }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", reset_id(&token.id())))
                .bind(("hash", hash.as_str().to_owned()))
                .bind(("now", crate::now()))
        );
        let response = match result {
            Ok(response) => response,
            Err(StorageError::Database(err)) if err.to_string().contains("reset_invalid") => {
                return Ok(None);
            }
            Err(other) => return Err(other),
        };
        let reset = returned::<Reset>(response)
            .ok_or_else(|| StorageError::Corrupt("the reset reported nothing".into()))?;
        let username = Username::parse(&reset.user)
            .map_err(|e| StorageError::Corrupt(format!("reset user: {e}")))?;
        Ok(Some((
            username,
            AccessEnded {
                sessions: usize::try_from(reset.sessions).unwrap_or_default(),
                tokens: usize::try_from(reset.tokens).unwrap_or_default(),
            },
        )))
    }

    /// Every reset link of `username` stops working (they logged in).
    pub async fn delete_resets(&self, username: &Username) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE password_reset WHERE user = $user")
                .bind(("user", user_id(username)))
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use domain::{DisplayName, Email, HashParams, Password, PasswordHasher, User};

    use super::*;

    fn mail(to: &str) -> Mail {
        Mail {
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        }
    }

    #[tokio::test]
    async fn the_outbox_is_bounded() {
        let store = Store::memory().await.unwrap().with_outbox_limit(3);
        for i in 0..3 {
            store
                .enqueue_mail(&mail(&format!("{i}@example.com")))
                .await
                .unwrap();
        }
        assert!(matches!(
            store.enqueue_reset_request("x@example.com").await,
            Err(StorageError::Refused(Refusal::OutboxFull))
        ));
        assert_eq!(store.outbox_len().await.unwrap(), 3);
        // Sent messages make room.
        let due = store.claim_mail(crate::now(), 1).await.unwrap();
        store.mail_sent(&due[0].id).await.unwrap();
        store.enqueue_mail(&mail("y@example.com")).await.unwrap();
    }

    #[tokio::test]
    async fn a_claimed_message_is_not_claimed_twice_and_comes_back_when_it_failed() {
        let store = Store::memory().await.unwrap();
        store.enqueue_mail(&mail("a@example.com")).await.unwrap();
        let now = crate::now();
        let first = store.claim_mail(now, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            store.claim_mail(now, 10).await.unwrap().is_empty(),
            "claimed twice"
        );
        store
            .mail_failed(&first[0].id, now, "refused")
            .await
            .unwrap();
        let again = store.claim_mail(now, 10).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1));
        store.mail_sent(&again[0].id).await.unwrap();
        assert_eq!(store.outbox_len().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_reset_link_works_once_and_a_newer_one_voids_it() {
        let store = Store::memory().await.unwrap();
        let hasher = PasswordHasher::new(HashParams {
            log_n: 4,
            r: 8,
            p: 1,
        })
        .unwrap();
        let user = User {
            username: Username::parse("rita").unwrap(),
            email: Email::parse("rita@example.com").unwrap(),
            name: DisplayName::parse("").unwrap(),
            password_hash: hasher
                .hash(&Password::parse("old password").unwrap())
                .unwrap(),
            created_at: 1,
            groups: Vec::new(),
            disabled: false,
            email_verified: false,
        };
        store.create_user(&user).await.unwrap();
        let old = store.create_reset(&user.username, 60).await.unwrap();
        let new = store.create_reset(&user.username, 60).await.unwrap();
        assert_eq!(store.reset_user(&old).await.unwrap(), None);
        assert_eq!(
            store.reset_user(&new).await.unwrap(),
            Some(user.username.clone())
        );
        let hash = hasher
            .hash(&Password::parse("new password").unwrap())
            .unwrap();
        let (who, _) = store.complete_reset(&new, &hash).await.unwrap().unwrap();
        assert_eq!(who, user.username);
        assert_eq!(
            store
                .user_by_username(&user.username)
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            hash
        );
        assert!(store.complete_reset(&new, &hash).await.unwrap().is_none());
        let expired = store.create_reset(&user.username, 0).await.unwrap();
        assert!(
            store
                .complete_reset(&expired, &hash)
                .await
                .unwrap()
                .is_none()
        );
    }
}
