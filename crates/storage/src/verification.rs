//! Email verification links: `email_verification:⟨sha256(token)⟩` holds the user,
//! the address the link was sent to, and when it was made and expires. Only the
//! newest link of a user works; using it marks the user's address verified — if
//! the address is still the one the link was sent to.

use domain::{Email, Username};
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::{returned, user_id};
use crate::store::retry_conflicts;
use crate::users::taken_from_message;
use crate::{StorageError, Store};

crate::record::secret_token!(
    /// The secret in a verification link: `ev_` and 64 hex characters.
    VerifyToken,
    "ev_"
);

fn verification_id(id: &str) -> RecordId {
    RecordId::new("email_verification", id)
}

#[derive(Debug, SurrealValue)]
struct Verified {
    user: String,
}

#[derive(Debug, SurrealValue)]
struct Made {
    created_at: i64,
}

impl Store {
    /// A verification link for `username`'s address `email`, valid `lifetime`
    /// seconds; every earlier one of theirs stops working.
    pub async fn create_verification(
        &self,
        username: &Username,
        email: &str,
        lifetime: i64,
    ) -> Result<VerifyToken, StorageError> {
        let token = VerifyToken::generate();
        let now = crate::now();
        retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     DELETE email_verification WHERE user = $user; \
                     CREATE $id SET user = $user, email = $email, created_at = $now, \
                         expires_at = $expires_at RETURN NONE; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", verification_id(&token.id())))
                .bind(("user", user_id(username)))
                .bind(("email", email.to_owned()))
                .bind(("now", now))
                .bind(("expires_at", now.saturating_add(lifetime)))
        )?;
        Ok(token)
    }

    /// When `username`'s live verification link was made, if they have one.
    pub async fn verification_made_at(
        &self,
        username: &Username,
    ) -> Result<Option<i64>, StorageError> {
        let mut response = self
            .db
            .query(
                "SELECT created_at FROM email_verification \
                 WHERE user = $user AND expires_at > $now ORDER BY created_at DESC LIMIT 1",
            )
            .bind(("user", user_id(username)))
            .bind(("now", crate::now()))
            .await?
            .check()?;
        let made: Vec<Made> = response.take(0)?;
        Ok(made.first().map(|m| m.created_at))
    }

    /// Uses verification link `token`: in one transaction, checks it is live and
    /// that the user's address is still the one it was sent to, marks the address
    /// verified and deletes the user's links. `None` when the link is unknown,
    /// used, replaced, expired, or for an address the user no longer has.
    pub async fn complete_verification(
        &self,
        token: &VerifyToken,
    ) -> Result<Option<Username>, StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $link = (SELECT * FROM ONLY $id); \
                     IF $link = NONE OR $link.expires_at <= $now \
                         OR $link.user.email != $link.email { THROW 'verification_invalid' }; \
                     UPDATE $link.user SET email_verified = true RETURN NONE; \
                     DELETE email_verification WHERE user = $link.user; \
                     RETURN { user: record::id($link.user) }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", verification_id(&token.id())))
                .bind(("now", crate::now()))
        );
        let response = match result {
            Ok(response) => response,
            Err(StorageError::Database(err))
                if err.to_string().contains("verification_invalid") =>
            {
                return Ok(None);
            }
            Err(other) => return Err(other),
        };
        let verified = returned::<Verified>(response)
            .ok_or_else(|| StorageError::Corrupt("the verification reported nothing".into()))?;
        Username::parse(&verified.user)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("verified user: {e}")))
    }

    /// Gives `username` a new address, not verified; their verification links stop
    /// working. [`crate::Refusal::EmailTaken`] when another account uses it.
    pub async fn set_email(&self, username: &Username, email: &Email) -> Result<(), StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     UPDATE $user SET email = $email, email_verified = false RETURN NONE; \
                     DELETE email_verification WHERE user = $user; \
                     COMMIT TRANSACTION;",
                )
                .bind(("user", user_id(username)))
                .bind(("email", email.as_str().to_owned()))
        );
        match result {
            Ok(_) => Ok(()),
            Err(StorageError::Database(err)) => {
                Err(taken_from_message(&err.to_string()).unwrap_or(StorageError::Database(err)))
            }
            Err(other) => Err(other),
        }
    }

    /// Marks every address not verified yet as verified (and drops every pending
    /// link); how many accounts changed.
    pub async fn verify_all_emails(&self) -> Result<u64, StorageError> {
        let response = retry_conflicts!(self.db.query(
            "BEGIN TRANSACTION; \
                 LET $changed = (UPDATE user SET email_verified = true \
                     WHERE email_verified != true RETURN BEFORE); \
                 DELETE email_verification; \
                 RETURN count($changed); \
                 COMMIT TRANSACTION;",
        ))?;
        let changed = returned::<i64>(response).unwrap_or(0);
        Ok(u64::try_from(changed).unwrap_or(0))
    }

    /// Whether `username`'s address counts as verified (an operator's word, or
    /// taking it back); their links go either way. `false` when there is no such
    /// user.
    pub async fn set_email_verified(
        &self,
        username: &Username,
        verified: bool,
    ) -> Result<bool, StorageError> {
        let response = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $changed = (UPDATE $user SET email_verified = $verified RETURN AFTER); \
                     DELETE email_verification WHERE user = $user; \
                     RETURN count($changed); \
                     COMMIT TRANSACTION;",
                )
                .bind(("user", user_id(username)))
                .bind(("verified", verified))
        )?;
        let changed = returned::<i64>(response).unwrap_or(0);
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use domain::{HashParams, Password, PasswordHasher, User};

    use super::*;
    use crate::Refusal;

    async fn verified(store: &Store, name: &Username) -> bool {
        store
            .user_by_username(name)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    }

    async fn store_with(name: &str) -> (Store, Username) {
        let store = Store::memory().await.unwrap();
        let username = Username::parse(name).unwrap();
        let hash = PasswordHasher::new(HashParams {
            log_n: 4,
            r: 8,
            p: 1,
        })
        .unwrap()
        .hash(&Password::parse("correct horse").unwrap())
        .unwrap();
        store
            .create_user(&User {
                username: username.clone(),
                email: Email::parse(&format!("{name}@example.com")).unwrap(),
                name: None,
                password_hash: hash,
                created_at: 0,
                groups: Vec::new(),
                disabled: false,
                email_verified: false,
            })
            .await
            .unwrap();
        (store, username)
    }

    #[tokio::test]
    async fn a_link_verifies_once_and_only_the_newest_works() {
        let (store, ann) = store_with("ann").await;
        let old = store
            .create_verification(&ann, "ann@example.com", 60)
            .await
            .unwrap();
        let new = store
            .create_verification(&ann, "ann@example.com", 60)
            .await
            .unwrap();
        assert!(store.verification_made_at(&ann).await.unwrap().is_some());
        assert_eq!(store.complete_verification(&old).await.unwrap(), None);
        assert_eq!(
            store.complete_verification(&new).await.unwrap(),
            Some(ann.clone())
        );
        assert!(verified(&store, &ann).await);
        assert_eq!(store.complete_verification(&new).await.unwrap(), None);
        assert_eq!(store.verification_made_at(&ann).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_link_for_another_address_or_expired_verifies_nothing() {
        let (store, ann) = store_with("ann").await;
        let elsewhere = store
            .create_verification(&ann, "old@example.com", 60)
            .await
            .unwrap();
        assert_eq!(store.complete_verification(&elsewhere).await.unwrap(), None);
        let expired = store
            .create_verification(&ann, "ann@example.com", -1)
            .await
            .unwrap();
        assert_eq!(store.complete_verification(&expired).await.unwrap(), None);
        assert!(!verified(&store, &ann).await);
        assert!(store.set_email_verified(&ann, true).await.unwrap());
        assert!(verified(&store, &ann).await);
        // A new address starts unverified, and an old link no longer counts.
        let link = store
            .create_verification(&ann, "ann@example.com", 60)
            .await
            .unwrap();
        let new = Email::parse("ann@new.example").unwrap();
        store.set_email(&ann, &new).await.unwrap();
        let user = store.user_by_username(&ann).await.unwrap().unwrap();
        assert_eq!((user.email, user.email_verified), (new, false));
        assert_eq!(store.complete_verification(&link).await.unwrap(), None);
        let bob = User {
            username: Username::parse("bob").unwrap(),
            email: Email::parse("bob@example.com").unwrap(),
            ..user
        };
        store.create_user(&bob).await.unwrap();
        assert!(matches!(
            store.set_email(&ann, &bob.email).await,
            Err(StorageError::Refused(Refusal::EmailTaken))
        ));
        // Everyone at once: ann (unverified after her change) and bob.
        assert_eq!(store.verify_all_emails().await.unwrap(), 2);
        assert!(verified(&store, &ann).await);
        assert_eq!(store.verify_all_emails().await.unwrap(), 0);
        let ghost = Username::parse("ghost").unwrap();
        assert!(!store.set_email_verified(&ghost, true).await.unwrap());
    }
}
