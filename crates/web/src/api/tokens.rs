//! `POST /me/tokens`, `GET /me/tokens`, `DELETE /me/tokens/{id}`: API tokens,
//! shown once, stored hashed, optionally expiring, revocable.

use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{NewToken, TokenRequest, TokenView, marked};
use super::problem::{ApiError, Problems, ReadStatuses, RevokeStatuses, TokenStatuses};
use super::responses::{Done, Found};
use super::{ApiTags, Caller};
use crate::core::Credential;
use crate::core::tokens::{TokenFields, TokenLogin, issue_token, revoke_token, tokens_of};
use crate::http::AppState;
use crate::http::identity::client_info;

pub struct Tokens;

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
        let fields = TokenFields::check(&body.name, body.expires_in, "name", "expires_in")
            .map_err(ApiError::from)?;
        let client = client_info(req, &state);
        // The session's login, not this moment: a token minted from an old session
        // is as old a login as that session (`/auth?max_age=`).
        let login = TokenLogin {
            factors: caller.0.factors().to_vec(),
            authenticated_at: caller.0.authenticated_at(),
        };
        let (token, info) = issue_token(&state, &client, &caller.0.user, &fields, login).await?;
        Ok(TokenCreated::Created(Json(NewToken::new(&token, info))))
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
        let tokens = tokens_of(&state, &caller.0.user.username).await?;
        Ok(Found::Ok(Json(marked(&tokens, current, TokenView::new))))
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
        let client = client_info(req, &state);
        if !revoke_token(&state, &client, &caller.0.user.username, &id.0).await? {
            return Err(ApiError::not_found("token").into());
        }
        Ok(Done::default())
    }
}
