//! `POST /users`, `GET /me`, `PUT /me/password`, `GET /users/{username}`.

use domain::Username;
use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::models::{
    Account, CredentialKind, Me, PasswordChanged, PasswordRequest, Profile, SignupRequest,
};
use super::problem::{
    ApiError, LookupStatuses, PasswordStatuses, Problems, ReadStatuses, SignupStatuses,
};
use super::responses::{Created, Found};
use super::{AnyCaller, ApiTags, Caller};
use crate::core::Credential;
use crate::core::accounts::{
    NewAccount, PasswordChange, PasswordOutcome, SignupOutcome, change_password, retry_in, sign_up,
};
use crate::http::AppState;
use crate::http::identity::client_info;

pub struct Users;

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
            invitation: body.invitation.as_deref(),
        };
        match sign_up(&state, &client_info(req, &state), &account).await? {
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
            SignupOutcome::Refused(message) => {
                Err(ApiError::new(StatusCode::FORBIDDEN, message).into())
            }
        }
    }

    /// Who am I
    ///
    /// The logged-in user, and whether this request proved it with the session
    /// cookie or an API token.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, caller: AnyCaller) -> Result<Found<Me>, Problems<ReadStatuses>> {
        let auth = &caller.0;
        let account = Account::from(&auth.user);
        Ok(Found::Ok(Json(Me {
            username: account.username,
            email: account.email,
            email_verified: auth.user.email_verified,
            name: account.name,
            created_at: account.created_at,
            authenticated_by: match auth.via {
                Credential::Session(_) => CredentialKind::Session,
                Credential::Token(_) => CredentialKind::Token,
            },
            groups: auth.user.groups.iter().map(ToString::to_string).collect(),
            factors: auth.factors().to_vec(),
        })))
    }

    /// Change your password
    ///
    /// Checks the current password (wrong ones are throttled like logins), sets
    /// the new one, ends every other session of yours and revokes every API token
    /// of yours. Needs the session: an API token cannot change the password.
    #[oai(path = "/me/password", method = "put", operation_id = "changePassword")]
    async fn change_password(
        &self,
        req: &Request,
        caller: Caller,
        state: Data<&AppState>,
        body: Json<PasswordRequest>,
    ) -> Result<Found<PasswordChanged>, Problems<PasswordStatuses>> {
        if caller.0.session().is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "An API token cannot change the password: log in with POST /sessions first.",
            )
            .into());
        }
        let input = PasswordChange {
            current: &body.current,
            new: &body.password,
            confirm: None,
        };
        match change_password(&state, &client_info(req, &state), &caller.0, &input).await? {
            PasswordOutcome::Changed(ended) => Ok(Found::Ok(Json(PasswordChanged {
                sessions_ended: ended.sessions,
                tokens_revoked: ended.tokens,
            }))),
            PasswordOutcome::Invalid(errors) => {
                Err(ApiError::fields(StatusCode::UNPROCESSABLE_ENTITY, &errors).into())
            }
            PasswordOutcome::WrongCurrent(errors) => {
                Err(ApiError::fields(StatusCode::FORBIDDEN, &errors).into())
            }
            PasswordOutcome::Throttled { wait } => {
                let detail = format!("Too many wrong passwords. {}", retry_in(wait));
                let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, detail);
                Err(err.with_retry_after(wait).into())
            }
        }
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
        let user = crate::core::accounts::user(&state, &username)
            .await?
            .ok_or_else(not_found)?;
        Ok(Found::Ok(Json(Profile::from(&user))))
    }
}
