//! Who a request comes from, once the identity middleware has read its session
//! cookie or bearer token (Flask-Login's `current_user`).

use std::any::Any;
use std::sync::{Arc, OnceLock};

use domain::User;
use storage::{Session, TokenInfo};

/// The request's logged-in user and how they proved it, put in the request's
/// extensions by the identity middleware (Flask-Login's `current_user`).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub via: Credential,
    /// What an adapter derived from this identity once and may reuse for as long
    /// as the session stays cached (the `/auth` header values): core neither knows
    /// nor reads it.
    pub memo: Memo,
}

/// A value computed once per cached identity; see [`Authenticated::memo`].
#[derive(Clone, Default)]
pub struct Memo(OnceLock<Arc<dyn Any + Send + Sync>>);

impl Memo {
    /// The memoized value, made by `make` on first use. `None` if another kind of
    /// value was memoized first.
    pub fn get_or_init<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<Arc<T>> {
        let value = self.0.get_or_init(|| Arc::new(make()));
        Arc::clone(value).downcast::<T>().ok()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// The session cookie.
    Session(Session),
    /// An `Authorization: Bearer` API token.
    Token(TokenInfo),
}

impl Authenticated {
    pub fn new(user: User, via: Credential) -> Self {
        Self {
            user,
            via,
            memo: Memo::default(),
        }
    }

    /// The browser session, when the request came with the cookie.
    pub fn session(&self) -> Option<&Session> {
        match &self.via {
            Credential::Session(session) => Some(session),
            Credential::Token(_) => None,
        }
    }

    /// How the user proved who they are: the session's login factors, or those of
    /// the session the token was made from.
    pub fn factors(&self) -> &[String] {
        match &self.via {
            Credential::Session(session) => &session.factors,
            Credential::Token(token) => &token.factors,
        }
    }

    /// When the user last proved who they are: the login that started the session,
    /// or the login of the session the token was made from.
    pub fn authenticated_at(&self) -> i64 {
        match &self.via {
            Credential::Session(session) => session.authenticated_at,
            Credential::Token(token) => token.authenticated_at,
        }
    }
}
