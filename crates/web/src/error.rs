//! The one place that turns a failure into an HTTP answer: a redirect to the login
//! page, or an error page with a status a client can act on — or, for the JSON
//! API, the same failure as a problem document (`ApiError`).

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use storage::StorageError;

use crate::api::problem::ApiError;
use crate::form::FormError;
use crate::hashing::HashingError;
use crate::{auth, pages};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not logged in on a page that needs it; `next` is where to come back to.
    #[error("login required")]
    LoginRequired { next: String, htmx: bool },
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Form(#[from] FormError),
    /// The password hashing queue is full.
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
}

impl From<HashingError> for WebError {
    fn from(err: HashingError) -> Self {
        match err {
            HashingError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<WebError> for poem::Error {
    fn from(err: WebError) -> Self {
        let mut resp = err.into_response();
        // poem gives an error's response the error's extensions, not its own: move
        // the marker over so `pages::htmx_errors` still sees it.
        let message = resp.extensions_mut().remove::<pages::ErrorMessage>();
        let mut error = poem::Error::from_response(resp);
        if let Some(message) = message {
            error.set_data(message);
        }
        error
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            Self::LoginRequired { next, htmx } => {
                let login = auth::login_url(Some(&next));
                if htmx {
                    // A redirect would be followed by the browser and its login page
                    // swapped into a fragment: tell htmx to navigate instead.
                    Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header("HX-Redirect", login)
                        .finish()
                } else {
                    Response::builder()
                        .status(StatusCode::SEE_OTHER)
                        .header(header::LOCATION, login)
                        .finish()
                }
            }
            Self::NotFound => pages::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing at this address.",
            ),
            Self::Form(err) => pages::error_page(err.status(), "Bad request", &err.to_string()),
            Self::Busy => {
                let resp = pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Busy",
                    "Too many logins at once. Try again in a few seconds.",
                );
                pages::with_retry_after(resp, 2)
            }
            Self::Storage(err) => {
                tracing::error!(error = %err, "storage failure");
                pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The user database is not answering. Try again shortly.",
                )
            }
            Self::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong on our side.",
                )
            }
        }
    }
}

// The JSON API answers the same failures with problem documents.

impl From<WebError> for ApiError {
    fn from(err: WebError) -> Self {
        match err {
            WebError::LoginRequired { .. } => Self::unauthorized(),
            WebError::NotFound => Self::new(StatusCode::NOT_FOUND, "Not found."),
            WebError::Form(err) => Self::new(err.status(), err.to_string()),
            WebError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins at once. Try again in a few seconds.",
            )
            .with_retry_after(2),
            WebError::Storage(err) => err.into(),
            WebError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                )
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        tracing::error!(error = %err, "storage failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The user database is not answering. Try again shortly.",
        )
        .with_retry_after(5)
    }
}
