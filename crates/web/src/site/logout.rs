use maud::html;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::View;
use crate::http::AppState;
use crate::http::identity::SessionEnded;
use crate::site::error::WebError;

/// Ends the session server-side and clears the cookie. Not logged in: nothing to do.
#[handler]
pub async fn post(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    if let Some(current) = crate::http::identity::current(req) {
        // A bearer token is not a session: revoking it is a deliberate act elsewhere.
        if let Some(session) = current.session() {
            crate::core::sessions::end_session(state, &session.id).await?;
        }
        tracing::info!(
            event = "logout",
            user = %current.user.username,
            address = crate::http::proxy::client_address(req, &state.config).as_deref().unwrap_or("-"),
        );
    }
    // A request made with an API token leaves the browser's cookie alone: the token,
    // not the cookie, was read.
    let by_token = crate::http::identity::current(req).is_some_and(|c| c.session().is_none());
    if by_token {
        return Ok(super::see_other("/"));
    }
    let mut resp = super::with_cookie(
        super::see_other("/"),
        &crate::http::cookies::clear_cookie(&state.config),
    );
    resp.extensions_mut().insert(SessionEnded);
    Ok(resp)
}

/// After a refused CSRF check: the logout button again, with a fresh token.
pub fn refused(req: &Request) -> Response {
    let view = View::of(req);
    if super::is_htmx(req) {
        return super::error_page(StatusCode::FORBIDDEN, "Form expired", super::FORM_EXPIRED);
    }
    let content = html! {
        section.card {
            h1 { "Log out" }
            p.error role="alert" { (super::FORM_EXPIRED) }
            form method="post" action="/logout" {
                (super::CsrfField(view.csrf))
                (super::SubmitButton("Log out"))
            }
        }
    };
    super::page(&view, StatusCode::FORBIDDEN, "Log out", content)
}
