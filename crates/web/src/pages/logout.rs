use poem::web::Data;
use poem::{Request, Response, handler};

use crate::auth::{self, SessionEnded};
use crate::error::WebError;
use crate::state::AppState;

/// Ends the session server-side and clears the cookie. Not logged in: nothing to do.
#[handler]
pub async fn post(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    if let Some(current) = auth::current(req) {
        // A bearer token is not a session: revoking it is a deliberate act elsewhere.
        if let Some(session) = current.session() {
            auth::end_session(state, &session.id).await?;
        }
        tracing::info!(
            event = "logout",
            user = %current.user.username,
            address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
        );
    }
    let mut resp = super::with_cookie(super::see_other("/"), &auth::clear_cookie(&state.config));
    resp.extensions_mut().insert(SessionEnded);
    Ok(resp)
}
