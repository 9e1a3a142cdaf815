//! Invitations: single-use links that let someone sign up when signup is by
//! invitation. Like sessions and tokens, the link's secret is 256 random bits shown
//! once; the store keys the invitation by its SHA-256 (`invitation:⟨hex⟩`).
//! Signing up with one creates the user and deletes the invitation in one
//! transaction, so of two racing uses exactly one succeeds.

use std::fmt;

use domain::{Email, GroupName, User};
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::record_key;
use crate::record::user_id;
use crate::store::retry_conflicts;
use crate::users::{UserRecord, group_strings};
use crate::{Refusal, StorageError, Store};

crate::record::secret_token!(
    /// The secret of an invitation link: `inv_` and 64 hex characters.
    InvitationToken,
    "inv_"
);

/// A stored invitation. `id` is the hash of the secret: safe to show and revoke by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    /// When set, the account must use this address.
    pub email: Option<Email>,
    /// Groups the new user joins.
    pub groups: Vec<GroupName>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Who made it (an admin's username, or `cli`).
    pub created_by: Option<String>,
}

impl Invitation {
    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

/// What an invitation is for.
#[derive(Debug, Clone, Default)]
pub struct NewInvitation {
    pub email: Option<Email>,
    pub groups: Vec<GroupName>,
    /// Seconds it stays valid.
    pub lifetime: i64,
    pub created_by: Option<String>,
}

#[derive(Debug, SurrealValue)]
struct InvitationRecord {
    id: RecordId,
    email: Option<String>,
    groups: Vec<String>,
    created_at: i64,
    expires_at: i64,
    created_by: Option<String>,
}

impl InvitationRecord {
    fn into_invitation(self) -> Result<Invitation, StorageError> {
        let corrupt = |e: &dyn fmt::Display| StorageError::Corrupt(format!("invitation: {e}"));
        Ok(Invitation {
            id: record_key(&self.id)?,
            email: self
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            groups: self
                .groups
                .iter()
                .map(|g| GroupName::parse(g))
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt(&e))?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            created_by: self.created_by,
        })
    }
}

fn invitation_record_id(id: &str) -> RecordId {
    RecordId::new("invitation", id)
}

impl Store {
    /// Creates an invitation and returns its secret: the only time it exists
    /// outside the link.
    pub async fn create_invitation(
        &self,
        new: NewInvitation,
    ) -> Result<(InvitationToken, Invitation), StorageError> {
        let token = InvitationToken::generate();
        let now = crate::now();
        let invitation = Invitation {
            id: token.id(),
            email: new.email,
            groups: new.groups,
            created_at: now,
            expires_at: now.saturating_add(new.lifetime),
            created_by: new.created_by,
        };
        retry_conflicts!(
            self.db
                .query(
                    "CREATE $id SET email = $email, groups = $groups, created_at = $created_at, \
                     expires_at = $expires_at, created_by = $created_by RETURN NONE",
                )
                .bind(("id", invitation_record_id(&invitation.id)))
                .bind((
                    "email",
                    invitation.email.as_ref().map(|e| e.as_str().to_owned()),
                ))
                .bind(("groups", group_strings(&invitation.groups)))
                .bind(("created_at", invitation.created_at))
                .bind(("expires_at", invitation.expires_at))
                .bind(("created_by", invitation.created_by.clone()))
        )?;
        Ok((token, invitation))
    }

    /// The live invitation `token` opens, if any (unknown, used, revoked and
    /// expired ones alike are `None`).
    pub async fn invitation(
        &self,
        token: &InvitationToken,
    ) -> Result<Option<Invitation>, StorageError> {
        let record: Option<InvitationRecord> =
            self.db.select(invitation_record_id(&token.id())).await?;
        let invitation = record.map(InvitationRecord::into_invitation).transpose()?;
        Ok(invitation.filter(|i| i.is_live(crate::now())))
    }

    /// Every invitation not used yet, expired ones included, newest first.
    pub async fn invitations(&self) -> Result<Vec<Invitation>, StorageError> {
        let mut response = self
            .db
            .query("SELECT * FROM invitation ORDER BY created_at DESC")
            .await?
            .check()?;
        let records: Vec<InvitationRecord> = response.take(0)?;
        records
            .into_iter()
            .map(InvitationRecord::into_invitation)
            .collect()
    }

    /// Revokes invitation `id`; true when one was removed.
    pub async fn delete_invitation(&self, id: &str) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id RETURN BEFORE")
                .bind(("id", invitation_record_id(id)))
        )?;
        let removed: Vec<InvitationRecord> = response.take(0)?;
        Ok(!removed.is_empty())
    }

    /// Creates `user` and uses up the invitation `token` in one transaction: when
    /// the invitation is gone or expired, or a racing signup used it first, nothing
    /// is written and the answer is [`Refusal::InvitationInvalid`]. A taken
    /// username or email is reported as by [`Store::create_user`].
    pub async fn create_user_with_invitation(
        &self,
        user: &User,
        token: &InvitationToken,
    ) -> Result<(), StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     LET $invitation = (SELECT * FROM ONLY $id); \
                     IF $invitation = NONE OR $invitation.expires_at <= $now \
                         { THROW 'invitation_invalid' }; \
                     DELETE $id; \
                     CREATE $user CONTENT $content RETURN NONE; \
                     COMMIT TRANSACTION;",
                )
                .bind(("id", invitation_record_id(&token.id())))
                .bind(("now", crate::now()))
                .bind(("user", user_id(&user.username)))
                .bind(("content", UserRecord::from_user(user)))
        );
        match result {
            Ok(_) => Ok(()),
            Err(StorageError::Database(err)) => {
                let message = err.to_string();
                if message.contains("invitation_invalid") {
                    Err(StorageError::Refused(Refusal::InvitationInvalid))
                } else if let Some(taken) = crate::users::taken_from_message(&message) {
                    Err(taken)
                } else {
                    Err(StorageError::Database(err))
                }
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{HashParams, Password, PasswordHasher, Username};

    use super::*;

    fn user(name: &str) -> User {
        let hasher = PasswordHasher::new(HashParams {
            log_n: 4,
            r: 8,
            p: 1,
        })
        .unwrap();
        let hash = hasher.hash(&Password::parse("password1").unwrap()).unwrap();
        User {
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            name: None,
            password_hash: hash,
            created_at: 0,
            groups: GroupName::parse_list("ops").unwrap(),
            disabled: false,
            email_verified: false,
        }
    }

    async fn invite(store: &Store, lifetime: i64) -> (InvitationToken, Invitation) {
        store
            .create_invitation(NewInvitation {
                lifetime,
                ..NewInvitation::default()
            })
            .await
            .unwrap()
    }

    #[test]
    fn invitation_tokens_are_prefixed_random_hex_and_only_their_hash_is_the_id() {
        let a = InvitationToken::generate();
        assert!(a.expose().starts_with("inv_") && a.expose().len() == 68);
        assert_eq!(InvitationToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(InvitationToken::parse(&a.expose()[4..]), None);
        assert_ne!(a.id(), a.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[tokio::test]
    async fn an_invitation_signs_up_one_user_once() {
        let store = Store::memory().await.unwrap();
        let (token, invitation) = invite(&store, 60).await;
        assert_eq!(store.invitation(&token).await.unwrap(), Some(invitation));
        store
            .create_user_with_invitation(&user("alice"), &token)
            .await
            .unwrap();
        assert!(store.invitation(&token).await.unwrap().is_none());
        let again = store
            .create_user_with_invitation(&user("bob"), &token)
            .await;
        assert!(
            matches!(
                again,
                Err(StorageError::Refused(Refusal::InvitationInvalid))
            ),
            "{again:?}"
        );
        assert!(
            store
                .user_by_username(&Username::parse("bob").unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_taken_name_leaves_the_invitation_unused_and_an_expired_one_opens_nothing() {
        let store = Store::memory().await.unwrap();
        store.create_user(&user("alice")).await.unwrap();
        let (token, _) = invite(&store, 60).await;
        let taken = store
            .create_user_with_invitation(&user("alice"), &token)
            .await;
        assert!(
            matches!(taken, Err(StorageError::Refused(Refusal::UsernameTaken))),
            "{taken:?}"
        );
        assert!(store.invitation(&token).await.unwrap().is_some());
        let (expired, _) = invite(&store, -1).await;
        assert!(store.invitation(&expired).await.unwrap().is_none());
        let late = store
            .create_user_with_invitation(&user("carol"), &expired)
            .await;
        assert!(
            matches!(late, Err(StorageError::Refused(Refusal::InvitationInvalid))),
            "{late:?}"
        );
    }

    #[tokio::test]
    async fn two_racing_uses_of_one_invitation_make_one_user() {
        let store = Store::memory().await.unwrap();
        let (token, _) = invite(&store, 60).await;
        let (a, b) = (user("racer-a"), user("racer-b"));
        let (ra, rb) = tokio::join!(
            store.create_user_with_invitation(&a, &token),
            store.create_user_with_invitation(&b, &token)
        );
        assert!(ra.is_ok() != rb.is_ok(), "{ra:?} {rb:?}");
        assert_eq!(store.count_users().await.unwrap(), 1);
    }
}
