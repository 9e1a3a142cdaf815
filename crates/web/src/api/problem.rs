//! Errors as RFC 9457 `application/problem+json`, and the spec's record of which
//! ones each operation can answer.
//!
//! A handler fails with an [`ApiError`]; its signature names the statuses it can
//! answer through [`Problems<S>`], where `S` lists them, so the committed spec
//! documents per operation exactly what a client can meet. Errors raised outside
//! the handlers (poem-openapi's own 400/415, 404 for unknown paths, a storage
//! failure in the auth middleware) are rewritten into the same shape by
//! [`problem_responses`].

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::http::header::{self, HeaderValue};
use poem::{Endpoint, EndpointExt, IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

use crate::core::CoreError;
use crate::core::accounts::FieldErrors;
use crate::core::error::StoreRefusal;
use crate::http::response::Failure;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document. `type` is always `about:blank`: the status and
/// `title` (its reason phrase) say what kind of problem it is, `detail` says what
/// happened in words meant for people.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// Always `about:blank`.
    #[oai(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase, e.g. `Unprocessable Entity`.
    pub title: String,
    /// The HTTP status code, repeated.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// For `422` and `409`: the message for each field at fault — the same
    /// messages the site's forms show.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldProblem>>,
}

/// One field's problem.
#[derive(Debug, Clone, Object)]
pub struct FieldProblem {
    /// The field's name in the request body.
    pub field: String,
    pub message: String,
}

/// A failed API request: the problem and, for `429` and `503`, when to retry.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Problem,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem: Problem {
                kind: "about:blank".to_owned(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                errors: None,
            },
            retry_after: None,
        }
    }

    /// `status` with the message of every field at fault.
    pub fn fields(status: StatusCode, errors: &FieldErrors) -> Self {
        let detail = match status {
            StatusCode::CONFLICT => "Already taken.",
            StatusCode::FORBIDDEN => "Refused: see the field at fault.",
            _ => "Some fields are not valid.",
        };
        let mut err = Self::new(status, detail);
        err.problem.errors = Some(
            errors
                .iter()
                .map(|e| FieldProblem {
                    field: e.field.to_owned(),
                    message: e.message.clone(),
                })
                .collect(),
        );
        err
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Log in first: send the session cookie or an `Authorization: Bearer` API token.",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("No such {what}."))
    }

    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem.to_json()).unwrap_or_default();
        let mut resp = Response::builder()
            .status(self.status())
            .content_type(CONTENT_TYPE)
            .body(body);
        if let Some(seconds) = self.retry_after {
            resp = crate::http::response::with_retry_after(resp, seconds);
        }
        resp
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// The statuses an operation can fail with, for its spec.
pub trait Statuses: Send + Sync + 'static {
    const LIST: &'static [u16];
}

/// Marker types listing statuses, one per kind of operation.
macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = [$($code:literal),*];)*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl Statuses for $name {
            const LIST: &'static [u16] = &[$($code),*];
        }
    )*};
}

statuses! {
    /// `POST /users`.
    SignupStatuses = [400, 403, 409, 413, 415, 422, 503];
    /// `POST /sessions`.
    LoginStatuses = [400, 401, 403, 413, 415, 422, 429, 503];
    /// Reading your own things.
    ReadStatuses = [401, 403, 503];
    /// Reading one thing by name.
    LookupStatuses = [401, 403, 404, 503];
    /// Ending or revoking one thing.
    RevokeStatuses = [401, 403, 404, 503];
    /// `POST /me/tokens`.
    TokenStatuses = [400, 401, 403, 413, 415, 422, 503];
    /// `PUT /me/password`.
    PasswordStatuses = [400, 401, 403, 413, 415, 422, 429, 503];
    /// An admin reading lists.
    AdminReadStatuses = [400, 401, 403, 503];
    /// An admin reading one thing, or ending something.
    AdminLookupStatuses = [401, 403, 404, 503];
    /// An admin's change the last-admin rule may refuse.
    AdminChangeStatuses = [401, 403, 404, 409, 503];
    /// `PUT /admin/users/{username}/groups`.
    AdminGroupsStatuses = [400, 401, 403, 404, 409, 413, 415, 422, 503];
    /// `POST /admin/invitations`.
    InvitationStatuses = [400, 401, 403, 413, 415, 422, 503];
}

/// An [`ApiError`] in a handler's signature, documenting the statuses `S` lists.
pub struct Problems<S>(ApiError, PhantomData<S>);

impl<S, E: Into<ApiError>> From<E> for Problems<S> {
    fn from(err: E) -> Self {
        Self(err.into(), PhantomData)
    }
}

impl<S: Statuses> IntoResponse for Problems<S> {
    fn into_response(self) -> Response {
        let status = self.0.problem.status;
        if !S::LIST.contains(&status) && status != 500 {
            // A bug of ours (schemathesis catches it in CI); the client still gets
            // the problem.
            tracing::error!(status, "answering with a status the spec does not document");
        }
        self.0.into_response()
    }
}

impl<S: Statuses> From<Problems<S>> for poem::Error {
    fn from(err: Problems<S>) -> Self {
        err.0.into()
    }
}

/// What each status means, in the spec.
fn describe(status: u16) -> &'static str {
    match status {
        400 => {
            "The body is not JSON of the documented shape (a field missing, of the wrong type, or unknown)."
        }
        401 => {
            "Not logged in, or the session or token has ended; for `POST /sessions`, an unknown email or a wrong password."
        }
        403 => {
            "Refused: a cross-site request, a cookie-authenticated change without `Origin` or `X-CSRF-Token`, an API token trying to mint tokens, sign-up closed, or an admin operation by someone who is not an admin."
        }
        404 => "There is no such thing, or it is not yours.",
        409 => {
            "The username or email belongs to an account already; for an admin operation, the change would leave no enabled admin."
        }
        413 => "The body is larger than 16 KiB.",
        415 => "The body is not `application/json`.",
        422 => "A field is not valid; `errors` says which and why.",
        429 => {
            "Too many failed logins for this account or address; `Retry-After` says when to try again."
        }
        503 => {
            "Busy hashing other passwords, or the user database is not answering; `Retry-After` says when to try again."
        }
        _ => "Error.",
    }
}

impl<S: Statuses> ApiResponse for Problems<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::LIST
                .iter()
                .map(|&status| MetaResponse {
                    description: describe(status),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: CONTENT_TYPE,
                        schema: Problem::schema_ref(),
                    }],
                    headers: if matches!(status, 429 | 503) {
                        vec![MetaHeader {
                            name: "Retry-After".to_owned(),
                            description: Some("Seconds to wait before trying again.".to_owned()),
                            required: status == 429,
                            deprecated: false,
                            schema: i64::schema_ref(),
                        }]
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// For everything under `/api/`: an error answered in another shape (poem-openapi's
/// plain-text 400 and 415, the router's 404 and 405, a middleware's neutral
/// [`Failure`] such as the store down while loading the identity) becomes a problem
/// document with the same status and headers.
pub fn problem_responses<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req| async move {
        let is_api = req.uri().path().starts_with("/api/");
        let path = is_api.then(|| req.uri().path().to_owned());
        let mut resp = match ep.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        // A method the operation does not take: say which it does (RFC 9110).
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = path
                .as_deref()
                .and_then(super::allowed_methods)
                .and_then(|a| HeaderValue::from_str(&a).ok())
        {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
        if !is_api || resp.status().as_u16() < 400 || is_problem(&resp) {
            return Ok(resp);
        }
        let status = resp.status();
        let page_message = resp
            .extensions()
            .get::<Failure>()
            .map(|f| f.message.to_owned());
        let is_text = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/plain"));
        let (mut parts, body) = resp.into_parts();
        // Answered here: the site's renderer outside must not make a page of it.
        parts.extensions.remove::<Failure>();
        let detail = match page_message {
            Some(message) => message,
            None if is_text => {
                let text = body.into_string().await.unwrap_or_default();
                let text = text.trim();
                let text: String = text.chars().take(500).collect();
                if text.is_empty() {
                    reason(status)
                } else {
                    text
                }
            }
            None => reason(status),
        };
        let problem = ApiError::new(status, detail).into_response();
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(Response::from_parts(parts, problem.into_body()))
    })
}

fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

fn is_problem(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == CONTENT_TYPE.as_bytes())
}

// The use cases' failures, answered as problems.

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins at once. Try again in a few seconds.",
            )
            .with_retry_after(2),
            CoreError::Refused(refusal) => refusal.into(),
            CoreError::Unavailable(message) => {
                tracing::error!(error = %message, "storage failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The user database is not answering. Try again shortly.",
                )
                .with_retry_after(5)
            }
            CoreError::Corrupt(message) => {
                tracing::error!(error = %message, "stored data does not read back");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                )
            }
            CoreError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                )
            }
        }
    }
}

impl From<StoreRefusal> for ApiError {
    fn from(refusal: StoreRefusal) -> Self {
        match refusal {
            StoreRefusal::UsernameTaken | StoreRefusal::EmailTaken => {
                Self::new(StatusCode::CONFLICT, refusal.to_string())
            }
            StoreRefusal::InvitationInvalid => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This invitation is not valid: it was used, revoked or has expired.",
            ),
            StoreRefusal::LastAdmin => Self::new(
                StatusCode::CONFLICT,
                "The last enabled admin cannot be disabled, deleted or taken out of the admins' group.",
            ),
            StoreRefusal::OutboxFull => {
                tracing::warn!("mail refused: the outbox is full");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too much mail is waiting to be sent. Try again later.",
                )
                .with_retry_after(300)
            }
            StoreRefusal::CeremoniesFull => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many passkey ceremonies are under way. Try again in a minute.",
            )
            .with_retry_after(60),
        }
    }
}

impl From<FieldErrors> for ApiError {
    /// Malformed fields: `422` with each field's message.
    fn from(errors: FieldErrors) -> Self {
        Self::fields(StatusCode::UNPROCESSABLE_ENTITY, &errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's answer (a name taken, the last admin, a full outbox) is said as
    /// itself, never as the outage it would fall through to.
    #[test]
    fn store_refusals_are_answers_not_outages() {
        let outage = ApiError::from(CoreError::Unavailable("down".into()));
        assert_eq!(outage.problem.status, 503);
        for (refusal, status) in [
            (StoreRefusal::UsernameTaken, 409),
            (StoreRefusal::EmailTaken, 409),
            (StoreRefusal::InvitationInvalid, 422),
            (StoreRefusal::LastAdmin, 409),
            (StoreRefusal::OutboxFull, 503),
            (StoreRefusal::CeremoniesFull, 503),
        ] {
            let answer = ApiError::from(CoreError::Refused(refusal));
            assert_eq!(answer.problem.status, status, "{refusal:?}");
            assert_ne!(answer.problem.detail, outage.problem.detail, "{refusal:?}");
        }
        let corrupt = ApiError::from(CoreError::Corrupt("a bad record".into()));
        assert_eq!(corrupt.problem.status, 500);
        assert!(!corrupt.problem.detail.contains("bad record"));
    }
}
