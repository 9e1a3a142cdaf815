//! `POST /sessions` (log in), `DELETE /sessions/current` (log out),
//! `GET /me/sessions`, `DELETE /me/sessions/{id}`.

use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{Account, LoginRequest, LoginResult, NewToken, SessionView, marked};
use super::problem::{ApiError, LoginStatuses, Problems, ReadStatuses, RevokeStatuses};
use super::responses::{Done, Found};
use super::{AnyCaller, ApiTags, Caller};
use crate::core::access::{self, Door, NextStep, Principal};
use crate::core::accounts::{
    ACCOUNT_DISABLED, INVALID_CREDENTIALS, LoginOutcome, check_login, retry_in,
};
use crate::core::factors::{self, CodeOutcome, OTP_WRONG};
use crate::core::sessions::revoke_own_session;
use crate::core::tokens::{TokenFields, TokenLogin, issue_token};
use crate::http::AppState;
use crate::http::identity::client_info;

/// The answer to a right password without the code an account needs.
const OTP_NEEDED: &str = "This account has a second factor: send `otp`, a code from the \
     authenticator app or a recovery code.";
/// The API's answer to a right password of an account whose only second factor is
/// a passkey, which only a browser can use.
const PASSKEY_ONLY: &str = "This account's second factor is a passkey, which works only in a \
     browser: log in on the site (an API token made there carries the passkey's factor).";

pub struct Sessions;

#[derive(ApiResponse)]
pub enum LoggedIn {
    /// Logged in: a session (its cookie in `Set-Cookie`) or a new API token.
    #[oai(status = 201)]
    Created(
        Json<LoginResult>,
        /// The session cookie, when no token was asked for.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[OpenApi(tag = "ApiTags::Sessions")]
impl Sessions {
    /// Log in
    ///
    /// Checks the password exactly as the login form does (same messages, same
    /// throttling, same time for unknown emails). Without `token`: starts a
    /// session and sets the same cookie as the site. With `token`: creates an API
    /// token instead and returns its secret, once. An account with a second factor
    /// needs `otp` too (a code from the authenticator app, or a recovery code):
    /// without it, a right password is answered `401` saying so.
    #[oai(path = "/sessions", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<LoginRequest>,
    ) -> Result<LoggedIn, Problems<LoginStatuses>> {
        let body = body.0;
        // A malformed token request is refused before it costs a login attempt.
        let token = body
            .token
            .map(|t| TokenFields::check(&t.name, t.expires_in, "token.name", "token.expires_in"))
            .transpose()
            .map_err(ApiError::from)?;
        let client = client_info(req, &state);
        let user = match check_login(&state, &client, &body.email, &body.password).await? {
            LoginOutcome::Valid(user) => user,
            LoginOutcome::Invalid(errors) => {
                return Err(ApiError::fields(StatusCode::UNPROCESSABLE_ENTITY, &errors).into());
            }
            LoginOutcome::Throttled { wait } => {
                let detail = format!("Too many failed logins. {}", retry_in(wait));
                let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, detail);
                return Err(err.with_retry_after(wait).into());
            }
            LoginOutcome::Refused => {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS).into());
            }
            LoginOutcome::Disabled => {
                return Err(ApiError::new(StatusCode::FORBIDDEN, ACCOUNT_DISABLED).into());
            }
        };
        // What follows the password is decided once (`core::access`); the API has
        // no second page, so the second step is the `otp` sent along.
        let mut factors = vec![factors::PASSWORD.to_owned()];
        if let NextStep::SecondStep(has) = access::after_password(&state, &user).await? {
            if !has.totp {
                return Err(ApiError::new(StatusCode::FORBIDDEN, PASSKEY_ONLY).into());
            }
            let Some(code) = body.otp.as_deref() else {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, OTP_NEEDED).into());
            };
            match factors::check_code(&state, &client, &user, code).await? {
                CodeOutcome::Accepted { factor, .. } => factors.push(factor.to_owned()),
                CodeOutcome::Refused => {
                    return Err(ApiError::new(StatusCode::UNAUTHORIZED, OTP_WRONG).into());
                }
                CodeOutcome::Throttled { wait } => {
                    let detail = format!("Too many wrong codes. {}", retry_in(wait));
                    let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, detail);
                    return Err(err.with_retry_after(wait).into());
                }
            }
        }
        // Said only after the right password (and code), like a disabled account.
        let principal = Principal {
            user: &user,
            factors: &factors,
            authenticated_at: crate::core::records::now(),
        };
        if let Err(refusal) = access::admit(
            &state.config,
            &principal,
            Door::Api,
            crate::core::records::now(),
        ) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, refusal.message(&principal)).into());
        }
        let account = Account::from(&user);
        if let Some(token) = token {
            let login = TokenLogin {
                factors,
                authenticated_at: crate::core::records::now(),
            };
            let (token, info) = issue_token(&state, &client, &user, &token, login).await?;
            let token = NewToken::new(&token, info);
            let result = LoginResult {
                user: account,
                session: None,
                token: Some(token),
            };
            return Ok(LoggedIn::Created(Json(result), None));
        }
        let (cookie, session) =
            crate::http::identity::log_in(&state, req, &user.username, body.remember, factors)
                .await?;
        let result = LoginResult {
            user: account,
            session: Some(SessionView::new(&session, true)),
            token: None,
        };
        Ok(LoggedIn::Created(Json(result), Some(cookie)))
    }

    /// Log out
    ///
    /// Ends the session this request came with and clears its cookie. A request
    /// made with an API token has no session: revoke tokens with
    /// `DELETE /me/tokens/{id}`.
    #[oai(path = "/sessions/current", method = "delete", operation_id = "logout")]
    async fn logout(
        &self,
        req: &Request,
        caller: AnyCaller,
        state: Data<&AppState>,
    ) -> Result<Done, Problems<RevokeStatuses>> {
        let Some(session) = caller.0.session() else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "This request came with an API token, not a session; revoke tokens with \
                 DELETE /me/tokens/{id}.",
            )
            .into());
        };
        crate::core::sessions::end_session(&state, &session.id).await?;
        tracing::info!(
            event = "logout",
            user = %caller.0.user.username,
            address = crate::http::proxy::client_address(req, &state.config).as_deref().unwrap_or("-"),
        );
        Ok(Done {
            clear_cookie: Some(crate::http::cookies::clear_cookie(&state.config)),
        })
    }

    /// Your sessions
    ///
    /// Every live session of yours, newest first; `current` marks this request's.
    #[oai(path = "/me/sessions", method = "get", operation_id = "listSessions")]
    async fn list(
        &self,
        caller: Caller,
        state: Data<&AppState>,
    ) -> Result<Found<Vec<SessionView>>, Problems<ReadStatuses>> {
        let current = caller.0.session().map(|s| s.id.as_str());
        let sessions = crate::core::sessions::live_sessions(&state, &caller.0).await?;
        Ok(Found::Ok(Json(marked(
            &sessions,
            current,
            SessionView::new,
        ))))
    }

    /// Revoke a session
    ///
    /// Ends one of your sessions at once, on every node. Someone else's id is a
    /// 404. Revoking this request's own session also clears its cookie.
    #[oai(
        path = "/me/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke(
        &self,
        req: &Request,
        caller: Caller,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Done, Problems<RevokeStatuses>> {
        let client = client_info(req, &state);
        let own = revoke_own_session(&state, &client, &caller.0, &id.0)
            .await?
            .ok_or_else(|| ApiError::not_found("session"))?;
        Ok(Done {
            clear_cookie: own.then(|| crate::http::cookies::clear_cookie(&state.config)),
        })
    }
}
