//! `POST /me/tokens`, `GET /me/tokens`, `DELETE /me/tokens/{id}`: API tokens,
//! shown once, stored hashed, optionally expiring, revocable.

use domain::Username;
use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{NewToken, TokenRequest, TokenView};
use super::problem::{ApiError, Problems, ReadStatuses, RevokeStatuses, TokenStatuses};
use super::sessions::Done;
use super::users::Found;
use super::{ApiTags, Caller};
use crate::accounts::FieldErrors;
use crate::auth::{self, Credential};
use crate::state::AppState;

pub struct Tokens;

/// Token lifetimes: a minute to ten years.
pub const MIN_EXPIRES_IN: i64 = 60;
pub const MAX_EXPIRES_IN: i64 = 10 * 365 * 86_400;
pub const MAX_NAME_CHARS: usize = 64;

/// A checked token request.
pub struct TokenFields {
    name: String,
    expires_in: Option<i64>,
}

impl TokenFields {
    /// Checks `request`, naming fields `name_field` and `expires_field` in errors.
    pub fn check(
        request: &TokenRequest,
        name_field: &'static str,
        expires_field: &'static str,
    ) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            errors.add(name_field, "A token name is 1 to 64 characters long.");
        } else if name.chars().any(char::is_control) {
            errors.add(
                name_field,
                "A token name cannot contain control characters.",
            );
        }
        if request
            .expires_in
            .is_some_and(|s| !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&s))
        {
            errors.add(
                expires_field,
                "A token lasts from 60 seconds to 10 years (315360000 seconds).",
            );
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(StatusCode::UNPROCESSABLE_ENTITY, &errors));
        }
        Ok(Self {
            name: name.to_owned(),
            expires_in: request.expires_in,
        })
    }
}

/// Creates the token and returns it with its secret (the only time it is shown).
pub async fn issue_token(
    state: &AppState,
    req: &Request,
    username: &Username,
    fields: &TokenFields,
) -> Result<NewToken, ApiError> {
    let expires_at = fields.expires_in.map(|s| storage::now().saturating_add(s));
    let (token, info) = state
        .store
        .create_api_token(username, &fields.name, expires_at)
        .await?;
    tracing::info!(
        event = "token_created",
        user = %username,
        address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
        token = %info.id.get(..16).unwrap_or_default(),
    );
    Ok(NewToken {
        token: token.expose().to_owned(),
        id: info.id,
        name: info.name,
        created_at: info.created_at,
        expires_at: info.expires_at,
    })
}

#[derive(ApiResponse)]
pub enum TokenCreated {
    /// The token; `token` is its secret, shown this once.
    #[oai(status = 201)]
    Created(Json<NewToken>),
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl Tokens {
    /// Create an API token
    ///
    /// For scripts, and for `/auth` behind a proxy (`Authorization: Bearer …`).
    /// Needs a session: a token cannot mint more tokens, so a leaked one cannot
    /// outlive its own revocation.
    #[oai(path = "/me/tokens", method = "post", operation_id = "createToken")]
    async fn create(
        &self,
        req: &Request,
        caller: Caller,
        state: Data<&AppState>,
        body: Json<TokenRequest>,
    ) -> Result<TokenCreated, Problems<TokenStatuses>> {
        if caller.0.session().is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "An API token cannot create tokens: log in with POST /sessions first.",
            )
            .into());
        }
        let fields = TokenFields::check(&body.0, "name", "expires_in")?;
        let token = issue_token(&state, req, &caller.0.user.username, &fields).await?;
        Ok(TokenCreated::Created(Json(token)))
    }

    /// Your API tokens
    ///
    /// Names, dates and ids, newest first; never the secrets. Expired tokens are
    /// listed until revoked.
    #[oai(path = "/me/tokens", method = "get", operation_id = "listTokens")]
    async fn list(
        &self,
        caller: Caller,
        state: Data<&AppState>,
    ) -> Result<Found<Vec<TokenView>>, Problems<ReadStatuses>> {
        let current = match &caller.0.via {
            Credential::Token(info) => Some(info.id.as_str()),
            Credential::Session(_) => None,
        };
        let tokens = state.store.api_tokens_of(&caller.0.user.username).await?;
        let views = tokens
            .iter()
            .map(|t| TokenView::new(t, Some(t.id.as_str()) == current))
            .collect();
        Ok(Found::Ok(Json(views)))
    }

    /// Revoke an API token
    ///
    /// It stops working at once. Someone else's id is a 404.
    #[oai(
        path = "/me/tokens/:id",
        method = "delete",
        operation_id = "revokeToken"
    )]
    async fn revoke(
        &self,
        req: &Request,
        caller: Caller,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Done, Problems<RevokeStatuses>> {
        let username = &caller.0.user.username;
        if !state.store.delete_api_token(username, &id.0).await? {
            return Err(ApiError::not_found("token").into());
        }
        tracing::info!(
            event = "token_revoked",
            user = %username,
            address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
            token = %id.0.get(..16).unwrap_or_default(),
        );
        Ok(Done::default())
    }
}
