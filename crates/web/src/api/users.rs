//! `POST /users`, `GET /me`, `GET /users/{username}`.

use domain::Username;
use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{Account, CredentialKind, Me, Profile, SignupRequest};
use super::problem::{ApiError, LookupStatuses, Problems, ReadStatuses, SignupStatuses};
use super::{ApiTags, Caller};
use crate::accounts::{NewAccount, SignupOutcome, sign_up};
use crate::auth::Credential;
use crate::state::AppState;

pub struct Users;

#[derive(ApiResponse)]
pub enum Created {
    /// The account exists; log in with `POST /sessions`.
    #[oai(status = 201)]
    Created(Json<Account>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Found<T: poem_openapi::types::ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
}

#[OpenApi(tag = "ApiTags::Users")]
impl Users {
    /// Sign up
    ///
    /// Creates an account. Validation messages are the sign-up form's. It does not
    /// log in: `POST /sessions` does.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<SignupRequest>,
    ) -> Result<Created, Problems<SignupStatuses>> {
        let body = body.0;
        let account = NewAccount {
            username: &body.username,
            email: &body.email,
            name: body.name.as_deref().unwrap_or_default(),
            password: &body.password,
            confirm: None,
        };
        match sign_up(&state, req, &account).await? {
            SignupOutcome::Created(user) => Ok(Created::Created(
                Json(Account::from(&user)),
                format!("{}/users/{}", super::PREFIX, user.username),
            )),
            SignupOutcome::Invalid(errors) => {
                Err(ApiError::fields(StatusCode::UNPROCESSABLE_ENTITY, &errors).into())
            }
            SignupOutcome::Taken(errors) => {
                Err(ApiError::fields(StatusCode::CONFLICT, &errors).into())
            }
        }
    }

    /// Who am I
    ///
    /// The logged-in user, and whether this request proved it with the session
    /// cookie or an API token.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, caller: Caller) -> Result<Found<Me>, Problems<ReadStatuses>> {
        let auth = &caller.0;
        let account = Account::from(&auth.user);
        Ok(Found::Ok(Json(Me {
            username: account.username,
            email: account.email,
            name: account.name,
            created_at: account.created_at,
            authenticated_by: match auth.via {
                Credential::Session(_) => CredentialKind::Session,
                Credential::Token(_) => CredentialKind::Token,
            },
        })))
    }

    /// A user's profile
    ///
    /// Login required. Names are case-insensitive; an unknown or impossible name
    /// is a 404.
    #[oai(path = "/users/:username", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        _caller: Caller,
        state: Data<&AppState>,
        username: Path<String>,
    ) -> Result<Found<Profile>, Problems<LookupStatuses>> {
        let not_found = || ApiError::not_found("user");
        let username = Username::parse(&username.0).map_err(|_| not_found())?;
        let user = state
            .store
            .user_by_username(&username)
            .await?
            .ok_or_else(not_found)?;
        Ok(Found::Ok(Json(Profile::from(&user))))
    }
}
