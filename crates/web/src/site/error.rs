//! How the site answers a failure: an error page, an alert for htmx, or a trip to
//! the login page. The API and the gate answer the same failures their own way.

use maud::html;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

use super::layout;
use crate::core::error::StoreRefusal;
use crate::core::{Authenticated, CoreError};
use crate::http::form::FormError;
use crate::http::htmx::{HX_REDIRECT, HX_RESWAP, HX_RETARGET, is_htmx};
use crate::http::response::{Failure, with_retry_after};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not logged in on a page that needs it; `next` is where to come back to.
    #[error("login required")]
    LoginRequired { next: String, htmx: bool },
    #[error("not found")]
    NotFound,
    /// Logged in, but not one of the admins.
    #[error("admins only")]
    AdminsOnly,
    /// A request understood and refused, with the message to show.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    #[error(transparent)]
    Form(#[from] FormError),
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// The logged-in user, or the error that sends the visitor to the login page
/// (Flask-Login's `login_required`).
pub fn require_login(req: &Request) -> Result<&Authenticated, WebError> {
    crate::http::identity::current(req).ok_or_else(|| WebError::LoginRequired {
        next: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        htmx: is_htmx(req),
    })
}

impl From<WebError> for poem::Error {
    fn from(err: WebError) -> Self {
        let mut resp = err.into_response();
        // poem gives an error's response the error's extensions, not its own: move
        // the marker over so `failures` still sees it.
        let message = resp.extensions_mut().remove::<ErrorMessage>();
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
                let login = crate::core::next::login_url(Some(&next));
                if htmx {
                    // A redirect would be followed by the browser and its login page
                    // swapped into a fragment: tell htmx to navigate instead.
                    Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header(HX_REDIRECT, login)
                        .finish()
                } else {
                    Response::builder()
                        .status(StatusCode::SEE_OTHER)
                        .header(header::LOCATION, login)
                        .finish()
                }
            }
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing at this address.",
            ),
            Self::AdminsOnly => error_page(
                StatusCode::FORBIDDEN,
                "Admins only",
                "This page is for the members of the admins' group.",
            ),
            Self::Refused {
                status,
                title,
                message,
            } => error_page(status, title, &message),
            Self::Form(err) => error_page(err.status(), "Bad request", &err.to_string()),
            Self::Core(CoreError::Refused(refusal)) => refused_page(refusal),
            Self::Core(CoreError::Busy) => {
                let resp = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Busy",
                    "Too many logins at once. Try again in a few seconds.",
                );
                with_retry_after(resp, 2)
            }
            Self::Core(CoreError::Unavailable(message)) => {
                tracing::error!(error = %message, "storage failure");
                with_retry_after(
                    error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Unavailable",
                        "The user database is not answering. Try again shortly.",
                    ),
                    5,
                )
            }
            Self::Core(CoreError::Corrupt(message)) => {
                tracing::error!(error = %message, "stored data does not read back");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong on our side.",
                )
            }
            Self::Core(CoreError::Internal(message)) => {
                tracing::error!(error = %message, "internal error");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong on our side.",
                )
            }
        }
    }
}

/// The store's answer to a change no use case turned into an outcome of its own.
fn refused_page(refusal: StoreRefusal) -> Response {
    match refusal {
        StoreRefusal::UsernameTaken | StoreRefusal::EmailTaken => {
            error_page(StatusCode::CONFLICT, "Refused", &refusal.to_string())
        }
        StoreRefusal::InvitationInvalid => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invitation not valid",
            "This invitation was used, revoked or has expired.",
        ),
        StoreRefusal::LastAdmin => error_page(
            StatusCode::CONFLICT,
            "Refused",
            "The last enabled admin cannot be disabled, deleted or taken out of the \
             admins' group.",
        ),
        StoreRefusal::OutboxFull => with_retry_after(
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Mail is backed up",
                "Too much mail is waiting to be sent. Try again later.",
            ),
            300,
        ),
        StoreRefusal::CeremoniesFull => with_retry_after(
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many passkey ceremonies are under way. Try again in a minute.",
            ),
            60,
        ),
    }
}

/// Put in the extensions of an error page, so that [`failures`] can turn it into
/// a fragment for an htmx request.
#[derive(Debug, Clone)]
pub struct ErrorMessage {
    pub title: String,
    pub message: String,
}

/// An error page with `status`.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = layout(
        title,
        None,
        "",
        html! {
            section.card {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the start page" } }
            }
        },
    );
    let mut resp = (status, body).into_response();
    resp.extensions_mut().insert(ErrorMessage {
        title: title.to_owned(),
        message: message.to_owned(),
    });
    resp
}

/// The site's failure renderer, around everything it serves: a middleware's
/// neutral [`Failure`] becomes an error page; and for htmx requests every error
/// page (404, 403, 400, 503 …) becomes an alert swapped into the page's alert
/// area — never a whole page inside a fragment slot. Status and headers
/// (`Retry-After`) are kept.
pub fn failures<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req| async move {
        let wants_fragment = is_htmx(&req);
        let mut resp = match ep.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        if let Some(failure) = resp.extensions().get::<Failure>().cloned() {
            let (mut parts, _) = resp.into_parts();
            let page = error_page(failure.status, failure.title, failure.message);
            let (page_parts, body) = page.into_parts();
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            parts.extensions = page_parts.extensions;
            resp = Response::from_parts(parts, body);
        }
        let Some(error) = resp.extensions().get::<ErrorMessage>().cloned() else {
            return Ok(resp);
        };
        if !wants_fragment {
            return Ok(resp);
        }
        let (mut parts, _) = resp.into_parts();
        let body = html! {
            p.error.alert role="alert" { strong { (error.title) ": " } (error.message) }
        };
        parts
            .headers
            .insert(HX_RETARGET, HeaderValue::from_static("#alerts"));
        parts
            .headers
            .insert(HX_RESWAP, HeaderValue::from_static("innerHTML"));
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Ok(Response::from_parts(parts, body.into_string().into()))
    })
}
