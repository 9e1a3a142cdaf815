//! API tokens: the rules for a new token's name and lifetime, and issuing one.
//! The same rules for the API (`POST /me/tokens`, `POST /sessions` with `token`)
//! and the CLI (`gatehouse token create`).

use domain::{User, Username};
pub use storage::TokenLogin;
use storage::{ApiToken, TokenInfo};

use super::accounts::FieldErrors;
use super::client::ClientInfo;
use super::error::CoreError;
use super::services::Services;

/// Token lifetimes: a minute to ten years.
pub const MIN_EXPIRES_IN: i64 = 60;
pub const MAX_EXPIRES_IN: i64 = 10 * 365 * 86_400;
pub const MAX_NAME_CHARS: usize = 64;

/// A checked token request.
#[derive(Debug, Clone)]
pub struct TokenFields {
    pub name: String,
    pub expires_in: Option<i64>,
}

impl TokenFields {
    /// Checks a name and a lifetime, naming fields `name_field` and
    /// `expires_field` in the errors.
    pub fn check(
        name: &str,
        expires_in: Option<i64>,
        name_field: &'static str,
        expires_field: &'static str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            errors.add(name_field, "A token name is 1 to 64 characters long.");
        } else if name.chars().any(char::is_control) {
            errors.add(
                name_field,
                "A token name cannot contain control characters.",
            );
        }
        if expires_in.is_some_and(|s| !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&s)) {
            errors.add(
                expires_field,
                "A token lasts from 60 seconds to 10 years (315360000 seconds).",
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.to_owned(),
            expires_in,
        })
    }
}

/// A new API token for `user`, recording the login it was made from (`login`),
/// with one audit line and a notice to the owner (mailed, or queued from the
/// command line) — whichever door asked.
pub async fn issue_token(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    fields: &TokenFields,
    login: TokenLogin,
) -> Result<(ApiToken, TokenInfo), CoreError> {
    let expires_at = fields.expires_in.map(|s| storage::now().saturating_add(s));
    let (token, info) = services
        .store
        .create_api_token_for_login(&user.username, &fields.name, expires_at, login)
        .await?;
    tracing::info!(
        event = "token_created",
        user = %user.username,
        address = client.address(),
        token = %info.id.get(..16).unwrap_or_default(),
    );
    super::message::notify(
        &services.store,
        services.config.mail.enabled(),
        user,
        "A new API token was made for your account",
        &format!(
            "The API token \"{}\" was made from {}",
            info.name,
            client.address()
        ),
    )
    .await;
    Ok((token, info))
}

/// Revokes `username`'s token `id`: it stops working at once. `false` when they
/// have none of that id (someone else's included).
pub async fn revoke_token(
    services: &Services,
    client: &ClientInfo,
    username: &Username,
    id: &str,
) -> Result<bool, CoreError> {
    if !services.store.delete_api_token(username, id).await? {
        return Ok(false);
    }
    tracing::info!(
        event = "token_revoked",
        user = %username,
        address = client.address(),
        token = %id.get(..16).unwrap_or_default(),
    );
    Ok(true)
}

/// `username`'s API tokens, newest first (expired ones until revoked).
pub async fn tokens_of(
    services: &Services,
    username: &Username,
) -> Result<Vec<TokenInfo>, CoreError> {
    Ok(services.store.api_tokens_of(username).await?)
}
