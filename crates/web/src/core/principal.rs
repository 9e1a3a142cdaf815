//! Who a request comes from, once the identity middleware has read its session
//! cookie or bearer token (Flask-Login's `current_user`).

use domain::User;
use storage::{Session, TokenInfo};

/// The request's logged-in user and how they proved it, put in the request's
/// extensions by the identity middleware (Flask-Login's `current_user`).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub via: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// The session cookie.
    Session(Session),
    /// An `Authorization: Bearer` API token.
    Token(TokenInfo),
}

impl Authenticated {
    /// The browser session, when the request came with the cookie.
    pub fn session(&self) -> Option<&Session> {
        match &self.via {
            Credential::Session(session) => Some(session),
            Credential::Token(_) => None,
        }
    }

    /// When the user last proved who they are: the login that started the session,
    /// or the creation of the token.
    pub fn authenticated_at(&self) -> i64 {
        match &self.via {
            Credential::Session(session) => session.created_at,
            Credential::Token(token) => token.created_at,
        }
    }
}
