//! The JSON shapes of the API. Times are Unix seconds (UTC). Fields that are
//! absent are left out of responses, never sent as `null`.

use std::borrow::Cow;

use crate::core::records::{ApiToken, Session, TokenInfo};
use domain::User;
use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{Enum, Object};
use serde_json::Value;

/// A JSON string, and only a string. poem-openapi's `String` also takes `false` or
/// `12345678` and makes text of them, which the schema (`type: string`) does not
/// allow: a client that sends them gets a 400 like any other wrong type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// `POST /users`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SignupRequest {
    /// 3–32 characters of `a-z 0-9 _ -`; stored lowercase.
    pub username: Text,
    pub email: Text,
    /// Display name, optional.
    pub name: Option<Text>,
    /// 8–1024 characters.
    pub password: Text,
    /// The secret of an invitation link (`inv_` and 64 hex digits), needed when
    /// sign-up is by invitation; the account then joins the invitation's groups.
    pub invitation: Option<Text>,
}

/// `POST /sessions`: log in with email and password.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Text,
    pub password: Text,
    /// A longer-lived session cookie (ignored when `token` is given).
    #[oai(default)]
    pub remember: bool,
    /// Ask for a new API token instead of a session cookie.
    pub token: Option<TokenRequest>,
    /// For an account with a second factor: a 6-digit code from the
    /// authenticator app, or one of the recovery codes.
    pub otp: Option<Text>,
}

/// `PUT /me/password`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordRequest {
    /// Your password now.
    pub current: Text,
    /// The new one, 8–1024 characters.
    pub password: Text,
}

/// What a password change ended.
#[derive(Debug, Object)]
pub struct PasswordChanged {
    /// Your other sessions, ended.
    pub sessions_ended: usize,
    /// Your API tokens, all revoked.
    pub tokens_revoked: usize,
}

/// A new API token's label and lifetime.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1–64 characters, to recognise the token by in lists.
    pub name: Text,
    /// Seconds until the token stops working, 60 to 315360000 (ten years);
    /// absent: it works until revoked.
    pub expires_in: Option<i64>,
}

/// Your own account.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Account {
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: i64,
}

impl From<&User> for Account {
    fn from(user: &User) -> Self {
        Self {
            username: user.username.to_string(),
            email: user.email.to_string(),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            created_at: user.created_at,
        }
    }
}

/// How the request proved who it is.
#[derive(Debug, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CredentialKind {
    Session,
    Token,
}

/// `GET /me`: who you are and how you proved it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    pub username: String,
    pub email: String,
    /// Whether you proved you read mail at `email` (a link by mail); until then
    /// `/auth` passes no address to apps.
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: i64,
    pub authenticated_by: CredentialKind,
    /// The groups you belong to (what `/auth?groups=` checks), sorted.
    pub groups: Vec<String>,
    /// How this session's login (or the login that made this token) was proved:
    /// `pwd`, then `otp` or `recovery` for a second factor (what `/auth?mfa=1`
    /// checks).
    pub factors: Vec<String>,
}

/// Another user, as any logged-in user sees them (no email).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Profile {
    pub username: String,
    pub name: Option<String>,
    /// The name to show: the display name, or else the username.
    pub display_name: String,
    pub created_at: i64,
}

impl From<&User> for Profile {
    fn from(user: &User) -> Self {
        Self {
            username: user.username.to_string(),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            display_name: user.display_name().to_owned(),
            created_at: user.created_at,
        }
    }
}

/// One of your sessions (a logged-in browser or cookie client).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionView {
    /// Pass to `DELETE /me/sessions/{id}`.
    pub id: String,
    /// The session this request came with.
    pub current: bool,
    /// "Firefox on Linux", from the user agent.
    pub browser: String,
    pub user_agent: Option<String>,
    /// The client address it logged in from.
    pub address: Option<String>,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    /// Started with "remember me".
    pub remember: bool,
}

/// A record with an id a list can mark as the caller's own.
pub trait Listed {
    fn id(&self) -> &str;
}

impl Listed for Session {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for TokenInfo {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The views of `items`, the one whose id is `current` (this request's session
/// or token) marked as such.
pub fn marked<T: Listed, V>(
    items: &[T],
    current: Option<&str>,
    view: impl Fn(&T, bool) -> V,
) -> Vec<V> {
    items
        .iter()
        .map(|item| view(item, Some(item.id()) == current))
        .collect()
}

impl SessionView {
    pub fn new(session: &Session, current: bool) -> Self {
        Self {
            id: session.id.clone(),
            current,
            browser: crate::core::sessions::describe_browser(session.user_agent.as_deref()),
            user_agent: session.user_agent.clone(),
            address: session.address.clone(),
            created_at: session.created_at,
            last_seen: session.last_seen,
            expires_at: session.expires_at,
            remember: session.remember,
        }
    }
}

/// One of your API tokens; the secret itself is never shown again.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenView {
    /// Pass to `DELETE /me/tokens/{id}`.
    pub id: String,
    pub name: String,
    /// The token this request came with.
    pub current: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Updated at most once a minute.
    pub last_used: Option<i64>,
}

impl TokenView {
    pub fn new(info: &TokenInfo, current: bool) -> Self {
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            current,
            created_at: info.created_at,
            expires_at: info.expires_at,
            last_used: info.last_used,
        }
    }
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewToken {
    /// The secret, `gh_` and 64 hex digits: send it as `Authorization: Bearer …`.
    /// Store it now; gatehouse keeps only its hash.
    pub token: String,
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// `POST /sessions` succeeded: the user, and either the session (its cookie is in
/// `Set-Cookie`) or the new API token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginResult {
    pub user: Account,
    pub session: Option<SessionView>,
    pub token: Option<NewToken>,
}

impl NewToken {
    /// A token with its secret, as answered once.
    pub fn new(token: &ApiToken, info: TokenInfo) -> Self {
        Self {
            token: token.expose().to_owned(),
            id: info.id,
            name: info.name,
            created_at: info.created_at,
            expires_at: info.expires_at,
        }
    }
}

/// A user as an admin sees them.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdminUser {
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: i64,
    /// Sorted.
    pub groups: Vec<String>,
    /// A disabled user cannot log in; their sessions and tokens ended when they
    /// were disabled.
    pub disabled: bool,
    /// Whether the user proved they read mail at `email`.
    pub email_verified: bool,
    /// A member of the admins' group.
    pub admin: bool,
}

impl AdminUser {
    pub fn new(user: &User, admin: bool) -> Self {
        Self {
            username: user.username.to_string(),
            email: user.email.to_string(),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            created_at: user.created_at,
            groups: user.groups.iter().map(ToString::to_string).collect(),
            disabled: user.disabled,
            email_verified: user.email_verified,
            admin,
        }
    }
}

/// `GET /admin/users`: a page of users in username order.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserList {
    pub users: Vec<AdminUser>,
    /// Every user in the store (not only those matching the search).
    pub total: u64,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<String>,
    /// Pass as `before` for the previous page; absent on the first one.
    pub previous: Option<String>,
}

/// `GET /admin/users/{username}`: a user with their sessions and API tokens.
#[derive(Debug, Object)]
pub struct AdminUserDetail {
    pub user: AdminUser,
    pub sessions: Vec<SessionView>,
    pub tokens: Vec<TokenView>,
}

/// `PUT /admin/users/{username}/groups`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct GroupsRequest {
    /// The user's groups from now on (at most 64), each 2–32 characters of
    /// `a-z 0-9 _ -`, stored lowercase.
    pub groups: Vec<Text>,
}

/// What ending a user's access ended.
#[derive(Debug, Object)]
pub struct AccessEndedView {
    pub sessions_ended: usize,
    pub tokens_revoked: usize,
}

impl From<crate::core::records::AccessEnded> for AccessEndedView {
    fn from(ended: crate::core::records::AccessEnded) -> Self {
        Self {
            sessions_ended: ended.sessions,
            tokens_revoked: ended.tokens,
        }
    }
}

/// `POST /admin/invitations`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct InvitationRequest {
    /// When given, the account must use this address.
    pub email: Option<Text>,
    /// Groups the new user joins.
    pub groups: Option<Vec<Text>>,
    /// Seconds the link stays valid, 60 to 31536000 (a year); a week when absent.
    pub expires_in: Option<i64>,
}

/// An invitation not used yet; never its secret.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InvitationView {
    /// Pass to `DELETE /admin/invitations/{id}`.
    pub id: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The admin who made it, or `cli`.
    pub created_by: Option<String>,
    pub expired: bool,
}

impl InvitationView {
    pub fn new(invitation: &crate::core::records::Invitation, now: i64) -> Self {
        Self {
            id: invitation.id.clone(),
            email: invitation.email.as_ref().map(ToString::to_string),
            groups: invitation.groups.iter().map(ToString::to_string).collect(),
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            created_by: invitation.created_by.clone(),
            expired: !invitation.is_live(now),
        }
    }
}

/// An invitation just made: the only time its link is shown.
#[derive(Debug, Object)]
pub struct NewInvitationView {
    /// The sign-up link to send to the invitee.
    pub link: String,
    pub invitation: InvitationView,
}
