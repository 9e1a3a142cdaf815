//! API tokens: long-lived credentials for scripts and for `/auth` (Flask-Login's
//! `request_loader`). Like sessions, a token is 256 random bits shown once; the store
//! keys it by its SHA-256 (`api_token:⟨hex⟩`), so a lookup is a select by record id
//! and a leaked database holds no usable token.

use domain::Username;
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::record_key;
use crate::record::user_id;
use crate::store::retry_conflicts;
use crate::{StorageError, Store};

crate::record::secret_token!(
    /// The secret a client holds: `gh_` (which makes a token recognisable, in logs
    /// that must not hold it and to secret scanners) and 64 lowercase hex characters.
    ApiToken,
    "gh_"
);

/// A stored token. `id` is the hash of the secret: safe to show and to revoke by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub username: Username,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
    /// The factors of the session it was made from (`pwd`, `otp`, …); empty for
    /// a token made at the command line.
    pub factors: Vec<String>,
    /// When the login it was made from proved who the user is (that session's
    /// start), so a token never counts as a fresher login than the one behind it
    /// (`/auth?max_age=`). Its creation time for a token made at the command line.
    pub authenticated_at: i64,
}

/// The login a new token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLogin {
    /// Its factors (`pwd`, `otp`, …).
    pub factors: Vec<String>,
    /// When it proved who the user is.
    pub authenticated_at: i64,
}

impl TokenInfo {
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

#[derive(Debug, SurrealValue)]
struct TokenRecord {
    id: RecordId,
    user: RecordId,
    name: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used: Option<i64>,
    factors: Option<Vec<String>>,
    /// Absent on tokens made before it was recorded: their creation time.
    authenticated_at: Option<i64>,
}

impl TokenRecord {
    fn into_info(self) -> Result<TokenInfo, StorageError> {
        let username = Username::parse(&record_key(&self.user)?)
            .map_err(|e| StorageError::Corrupt(format!("token user: {e}")))?;
        Ok(TokenInfo {
            id: record_key(&self.id)?,
            username,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used: self.last_used,
            factors: self.factors.unwrap_or_default(),
            authenticated_at: self.authenticated_at.unwrap_or(self.created_at),
        })
    }
}

fn token_record_id(id: &str) -> RecordId {
    RecordId::new("api_token", id)
}

impl Store {
    /// Creates a token for `username` and returns its secret: the only time the
    /// secret exists outside the client. The caller checks that the user exists.
    pub async fn create_api_token(
        &self,
        username: &Username,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<(ApiToken, TokenInfo), StorageError> {
        let login = TokenLogin {
            factors: Vec::new(),
            authenticated_at: crate::now(),
        };
        self.create_api_token_for_login(username, name, expires_at, login)
            .await
    }

    /// [`create_api_token`](Self::create_api_token), recording the login that
    /// made it: its factors (so `/auth?mfa=1` can tell) and when it happened (so
    /// `/auth?max_age=` can).
    pub async fn create_api_token_for_login(
        &self,
        username: &Username,
        name: &str,
        expires_at: Option<i64>,
        login: TokenLogin,
    ) -> Result<(ApiToken, TokenInfo), StorageError> {
        let token = ApiToken::generate();
        let info = TokenInfo {
            id: token.id(),
            username: username.clone(),
            name: name.to_owned(),
            created_at: crate::now(),
            expires_at,
            last_used: None,
            factors: login.factors,
            authenticated_at: login.authenticated_at,
        };
        retry_conflicts!(
            self.db
                .query(
                    "CREATE $id SET user = $user, name = $name, created_at = $created_at, \
                     expires_at = $expires_at, last_used = NONE, factors = $factors, \
                     authenticated_at = $authenticated_at RETURN NONE",
                )
                .bind(("id", token_record_id(&info.id)))
                .bind(("user", user_id(username)))
                .bind(("name", info.name.clone()))
                .bind(("created_at", info.created_at))
                .bind(("expires_at", expires_at))
                .bind(("factors", info.factors.clone()))
                .bind(("authenticated_at", info.authenticated_at))
        )?;
        Ok((token, info))
    }

    /// The token's record, expired or not; the caller decides with
    /// [`TokenInfo::is_live`].
    pub async fn api_token(&self, token: &ApiToken) -> Result<Option<TokenInfo>, StorageError> {
        let record: Option<TokenRecord> = self.db.select(token_record_id(&token.id())).await?;
        record.map(TokenRecord::into_info).transpose()
    }

    /// Records use, for the tokens list (the caller rate-limits the writes).
    pub async fn touch_api_token(&self, id: &str, now: i64) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("UPDATE $id SET last_used = $now RETURN NONE")
                .bind(("id", token_record_id(id)))
                .bind(("now", now))
        )?;
        Ok(())
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens_of(&self, username: &Username) -> Result<Vec<TokenInfo>, StorageError> {
        let mut response = self
            .db
            .query("SELECT * FROM api_token WHERE user = $user ORDER BY created_at DESC")
            .bind(("user", user_id(username)))
            .await?
            .check()?;
        let records: Vec<TokenRecord> = response.take(0)?;
        records.into_iter().map(TokenRecord::into_info).collect()
    }

    /// Revokes the token `id` if it belongs to `username`; true when one was removed.
    pub async fn delete_api_token(
        &self,
        username: &Username,
        id: &str,
    ) -> Result<bool, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query("DELETE $id WHERE user = $user RETURN BEFORE")
                .bind(("id", token_record_id(id)))
                .bind(("user", user_id(username)))
        )?;
        let removed: Vec<TokenRecord> = response.take(0)?;
        Ok(!removed.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_hex_and_only_their_hash_is_the_id() {
        let a = ApiToken::generate();
        assert!(a.expose().starts_with("gh_") && a.expose().len() == 67);
        assert_ne!(a, ApiToken::generate());
        assert_eq!(ApiToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(ApiToken::parse(&a.expose()[3..]), None);
        assert_eq!(ApiToken::parse("gh_zz"), None);
        assert_ne!(a.id(), a.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[tokio::test]
    async fn tokens_are_created_found_listed_and_revoked_by_their_owner_only() {
        let store = Store::memory().await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let (token, info) = store.create_api_token(&alice, "ci", None).await.unwrap();
        let (_, expiring) = store
            .create_api_token(&alice, "tmp", Some(100))
            .await
            .unwrap();
        assert_eq!(store.api_token(&token).await.unwrap(), Some(info.clone()));
        assert!(info.is_live(i64::MAX - 1));
        assert!(expiring.is_live(99) && !expiring.is_live(100));
        assert_eq!(store.api_tokens_of(&alice).await.unwrap().len(), 2);

        store.touch_api_token(&info.id, 42).await.unwrap();
        let touched = store.api_token(&token).await.unwrap().unwrap();
        assert_eq!(touched.last_used, Some(42));

        assert!(!store.delete_api_token(&bob, &info.id).await.unwrap());
        assert!(store.api_token(&token).await.unwrap().is_some());
        assert!(store.delete_api_token(&alice, &info.id).await.unwrap());
        assert!(store.api_token(&token).await.unwrap().is_none());
        assert!(!store.delete_api_token(&alice, &info.id).await.unwrap());
    }
}
