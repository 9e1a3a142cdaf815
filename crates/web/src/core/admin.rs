//! What admins do, once for the admin page, the API and the CLI: list and find
//! users, disable and enable them, delete them, change their groups, end their
//! sessions and tokens, and make or revoke invitations.
//!
//! An [`Admin`] is only made for a member of the admins' group (or for the CLI,
//! which is run by whoever holds the server's files), so holding one is the
//! permission. Every change writes an audit event: who, what, to whom, from which
//! address and through which door (`page`, `api`, `cli`). The store refuses,
//! inside each change's own transaction, to leave the admins without an enabled
//! member (`Refusal::LastAdmin`).

use domain::{DisplayName, Email, GroupName, Password, User, Username, ValidationError};
use storage::{
    AccessEnded, Invitation, InvitationToken, NewInvitation, Refusal, Session, Store, TokenInfo,
    UserPage, UserQuery,
};

use super::accounts::FieldErrors;
use super::client::ClientInfo;
use super::error::CoreError;
use super::{Authenticated, Services};

/// Invitations last from a minute to a year; a week unless told.
pub const MIN_INVITATION_LIFETIME: i64 = 60;
pub const MAX_INVITATION_LIFETIME: i64 = 365 * 86_400;
pub const DEFAULT_INVITATION_LIFETIME: i64 = 7 * 86_400;

/// Users per page of the admin list, unless asked otherwise.
pub const PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 200;

/// Through which door an admin acts, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Page,
    Api,
    Cli,
}

impl Door {
    fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Api => "api",
            Self::Cli => "cli",
        }
    }
}

/// An admin at work: the permission, and who to name in the audit log.
pub struct Admin<'a> {
    /// The store, this node's session cache (evicted at once on a change; other
    /// nodes hear of it through the change feed), the admins' group and whether
    /// notices are mailed (or, from the CLI, queued for the server).
    services: &'a Services,
    store: &'a Store,
    admins: &'a GroupName,
    by: String,
    door: Door,
    address: String,
}

/// A user with their live sessions and API tokens.
#[derive(Debug, Clone)]
pub struct UserAccess {
    pub user: User,
    pub sessions: Vec<Session>,
    pub tokens: Vec<TokenInfo>,
    /// A confirmed authenticator app.
    pub totp: bool,
    pub passkeys: Vec<storage::StoredPasskey>,
}

/// A group change: add one, remove one, or set the whole list.
#[derive(Debug, Clone)]
pub enum GroupEdit {
    Add(GroupName),
    Remove(GroupName),
    Set(Vec<GroupName>),
}

/// A user an operator adds (`gatehouse user add`, `gatehouse seed`).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub name: Option<DisplayName>,
    pub groups: Vec<GroupName>,
    pub password: Password,
}

impl NewUser {
    fn into_user(self, password_hash: domain::PasswordHash) -> User {
        User {
            username: self.username,
            email: self.email,
            name: self.name,
            password_hash,
            created_at: storage::now(),
            groups: self.groups,
            disabled: false,
            email_verified: true,
        }
    }
}

/// What of a new user another already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

impl<'a> Admin<'a> {
    /// The admin `who` is, or `None` when they are not a member of the admins'
    /// group (or disabled).
    pub fn of(
        services: &'a Services,
        who: &Authenticated,
        door: Door,
        client: &ClientInfo,
    ) -> Option<Self> {
        let admins = &services.config.admin_group;
        (!who.user.disabled && who.user.groups.contains(admins)).then(|| Self {
            services,
            store: &services.store,
            admins,
            by: who.user.username.as_str().to_owned(),
            door,
            address: client.address().to_owned(),
        })
    }

    /// The operator at the command line, with the CLI's services (see
    /// [`Services::for_cli`]).
    pub fn cli(services: &'a Services) -> Self {
        Self {
            services,
            store: &services.store,
            admins: &services.config.admin_group,
            by: "cli".to_owned(),
            door: Door::Cli,
            address: "-".to_owned(),
        }
    }

    /// Whether `user` is one of the admins.
    pub fn is_admin(&self, user: &User) -> bool {
        user.groups.contains(self.admins)
    }

    pub fn admin_group(&self) -> &GroupName {
        self.admins
    }

    pub async fn users(&self, query: &UserQuery) -> Result<UserPage, CoreError> {
        Ok(self.store.list_users(query).await?)
    }

    pub async fn count_users(&self) -> Result<u64, CoreError> {
        Ok(self.store.count_users().await?)
    }

    pub async fn user(&self, username: &Username) -> Result<Option<User>, CoreError> {
        Ok(self.store.user_by_username(username).await?)
    }

    /// A user with their sessions and tokens (expired sessions left out).
    pub async fn access_of(&self, username: &Username) -> Result<Option<UserAccess>, CoreError> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        let now = storage::now();
        let mut sessions = self.store.sessions_of(username).await?;
        sessions.retain(|s| s.expires_at > now);
        let tokens = self.store.api_tokens_of(username).await?;
        let totp = self
            .store
            .totp(username)
            .await?
            .is_some_and(|t| t.confirmed);
        let passkeys = self.store.passkeys(username).await?;
        Ok(Some(UserAccess {
            user,
            sessions,
            tokens,
            totp,
            passkeys,
        }))
    }

    /// Disables `username` (every session and token ends in the same transaction)
    /// or enables them again. `None`: no such user.
    pub async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<AccessEnded>, CoreError> {
        let ended = self
            .store
            .set_disabled(username, disabled, self.admins)
            .await?;
        if let Some(ended) = ended {
            self.evict(username);
            if disabled && let Some(user) = self.store.user_by_username(username).await? {
                super::message::notify(
                    self.store,
                    self.services.config.mail.enabled(),
                    &user,
                    "Your account was disabled",
                    "An administrator disabled your account: every session and API token of \
                     it has ended, and it can no longer log in",
                )
                .await;
            }
            let event = if disabled {
                "user_disabled"
            } else {
                "user_enabled"
            };
            self.audit(event, username.as_str(), &ended_detail(ended));
        }
        Ok(ended)
    }

    /// Deletes `username` with their sessions and tokens. `None`: no such user.
    pub async fn delete(&self, username: &Username) -> Result<Option<AccessEnded>, CoreError> {
        let ended = self.store.delete_user(username, self.admins).await?;
        if let Some(ended) = ended {
            self.evict(username);
            self.audit("user_deleted", username.as_str(), &ended_detail(ended));
        }
        Ok(ended)
    }

    /// Ends every session and revokes every API token of `username`.
    pub async fn end_access(&self, username: &Username) -> Result<Option<AccessEnded>, CoreError> {
        let ended = self.store.end_access(username).await?;
        if let Some(ended) = ended {
            self.evict(username);
            self.audit("access_revoked", username.as_str(), &ended_detail(ended));
        }
        Ok(ended)
    }

    /// Removes `username`'s second factors (a lost phone) and ends every session
    /// and token of theirs: they log in with the password alone and may set one
    /// up again. `None`: no such user.
    pub async fn reset_factors(
        &self,
        username: &Username,
    ) -> Result<Option<AccessEnded>, CoreError> {
        if self.store.user_by_username(username).await?.is_none() {
            return Ok(None);
        }
        let removed = self.store.remove_totp(username).await?;
        let passkeys = self.store.remove_passkeys(username).await?;
        let ended = self.store.end_access(username).await?;
        if let Some(ended) = ended {
            self.evict(username);
            self.audit(
                "factors_reset",
                username.as_str(),
                &format!(
                    "had_factor={removed} passkeys={passkeys} {}",
                    ended_detail(ended)
                ),
            );
        }
        Ok(ended)
    }

    /// Mails `username` a password-reset link (queued like one they asked for).
    /// `None`: no such user; `Some(false)`: this gatehouse sends no mail.
    pub async fn start_reset(&self, username: &Username) -> Result<Option<bool>, CoreError> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        if !self.services.config.mail.enabled() {
            return Ok(Some(false));
        }
        self.store
            .enqueue_reset_request(user.email.as_str())
            .await?;
        self.audit("reset_started", username.as_str(), "");
        Ok(Some(true))
    }

    /// Mails `username` a new verification link. `None`: no such user;
    /// `Some(false)`: this gatehouse sends no mail, or the address is verified.
    pub async fn send_verification(&self, username: &Username) -> Result<Option<bool>, CoreError> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        if !self.services.config.mail.enabled() || user.email_verified {
            return Ok(Some(false));
        }
        self.store
            .enqueue_verification_request(user.email.as_str())
            .await?;
        self.audit("verification_started", username.as_str(), "");
        Ok(Some(true))
    }

    /// Vouches for `username`'s address (or takes that back); `None`: no such user.
    pub async fn set_email_verified(
        &self,
        username: &Username,
        verified: bool,
    ) -> Result<Option<()>, CoreError> {
        if !self.store.set_email_verified(username, verified).await? {
            return Ok(None);
        }
        self.evict(username);
        let event = if verified {
            "email_marked_verified"
        } else {
            "email_marked_unverified"
        };
        self.audit(event, username.as_str(), "");
        Ok(Some(()))
    }

    /// Vouches for every address not verified yet; how many.
    pub async fn verify_all_emails(&self) -> Result<u64, CoreError> {
        let count = self.store.verify_all_emails().await?;
        self.audit("email_marked_verified", "*", &format!("{count} accounts"));
        Ok(count)
    }

    /// Whether this gatehouse mails (notices, reset links).
    pub fn sends_mail(&self) -> bool {
        self.services.config.mail.enabled()
    }

    /// Changes `username`'s groups; the user as they are now, or `None` when
    /// there is no such user.
    pub async fn edit_groups(
        &self,
        username: &Username,
        edit: GroupEdit,
    ) -> Result<Option<User>, GroupsError> {
        let Some(mut user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        match edit {
            GroupEdit::Add(group) => user.groups.push(group),
            GroupEdit::Remove(group) => user.groups.retain(|g| *g != group),
            GroupEdit::Set(groups) => user.groups = groups,
        }
        user.groups.sort();
        user.groups.dedup();
        user.groups = at_most_max(user.groups).map_err(GroupsError::Invalid)?;
        if self
            .store
            .set_groups(username, &user.groups, self.admins)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        self.evict(username);
        self.audit(
            "groups_changed",
            username.as_str(),
            &format!("groups={}", group_list(&user.groups)),
        );
        Ok(Some(user))
    }

    /// Creates a user with `new`'s password hashed at the configured cost, the
    /// address taken as verified (the operator vouches for it). A name or address
    /// already taken is an answer, not an error.
    pub async fn add_user(&self, new: NewUser) -> Result<Result<User, Taken>, CoreError> {
        let hash = self.services.hashing.hash(new.password.clone()).await?;
        let user = new.into_user(hash);
        match self.store.create_user(&user).await {
            Ok(()) => {}
            Err(storage::StorageError::Refused(Refusal::UsernameTaken)) => {
                return Ok(Err(Taken::Username));
            }
            Err(storage::StorageError::Refused(Refusal::EmailTaken)) => {
                return Ok(Err(Taken::Email));
            }
            Err(other) => return Err(other.into()),
        }
        self.audit(
            "user_added",
            user.username.as_str(),
            &format!("groups=[{}]", group_list(&user.groups)),
        );
        Ok(Ok(user))
    }

    /// Creates `new`'s user, or updates the one of that name to match it
    /// (`gatehouse seed`: seeding twice gives what seeding once does). An unchanged
    /// password keeps its hash. `true` when the user was created.
    pub async fn put_user(&self, new: NewUser) -> Result<bool, CoreError> {
        let existing = self.store.user_by_username(&new.username).await?;
        let kept = match existing {
            Some(user) => match self
                .services
                .hashing
                .verify(new.password.clone(), user.password_hash.clone())
                .await?
            {
                domain::Verdict::Valid {
                    needs_rehash: false,
                } => Some(user.password_hash),
                _ => None,
            },
            None => None,
        };
        let hash = match kept {
            Some(hash) => hash,
            None => self.services.hashing.hash(new.password.clone()).await?,
        };
        let user = new.into_user(hash);
        let created = matches!(
            self.store.upsert_user(&user).await?,
            storage::users::Upserted::Created
        );
        self.evict(&user.username);
        let event = if created {
            "user_added"
        } else {
            "user_updated"
        };
        self.audit(
            event,
            user.username.as_str(),
            &format!("groups=[{}]", group_list(&user.groups)),
        );
        Ok(created)
    }

    /// Sets `username`'s password as the account page does: every session and
    /// API token of theirs ends, their pending logins and reset links with them,
    /// and they get a notice. `None`: no such user.
    pub async fn set_password(
        &self,
        username: &Username,
        password: Password,
    ) -> Result<Option<AccessEnded>, CoreError> {
        if self.store.user_by_username(username).await?.is_none() {
            return Ok(None);
        }
        let hash = self.services.hashing.hash(password).await?;
        let ended = super::sessions::change_password(self.services, username, &hash, None).await?;
        self.audit("password_changed", username.as_str(), &ended_detail(ended));
        Ok(Some(ended))
    }

    /// `username`'s API tokens. `None`: no such user.
    pub async fn tokens_of(
        &self,
        username: &Username,
    ) -> Result<Option<Vec<TokenInfo>>, CoreError> {
        if self.store.user_by_username(username).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            super::tokens::tokens_of(self.services, username).await?,
        ))
    }

    /// Revokes `username`'s token `id`; `false` when they have none of that id.
    pub async fn revoke_token(&self, username: &Username, id: &str) -> Result<bool, CoreError> {
        let client = self.client();
        super::tokens::revoke_token(self.services, &client, username, id).await
    }

    /// A new API token for `username` (`gatehouse token create`): no login made
    /// it, so it carries no factors and counts as a login now. `None`: no such
    /// user.
    pub async fn issue_token(
        &self,
        username: &Username,
        fields: &super::tokens::TokenFields,
    ) -> Result<Option<(storage::ApiToken, TokenInfo)>, CoreError> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        let login = super::tokens::TokenLogin {
            factors: Vec::new(),
            authenticated_at: storage::now(),
        };
        let client = self.client();
        Ok(Some(
            super::tokens::issue_token(self.services, &client, &user, fields, login).await?,
        ))
    }

    /// The client the audit lines name: the admin's address, or `cli`.
    fn client(&self) -> ClientInfo {
        ClientInfo {
            address: Some(if self.door == Door::Cli {
                "cli".to_owned()
            } else {
                self.address.clone()
            }),
            user_agent: None,
        }
    }

    /// Makes an invitation; its secret is returned this once.
    pub async fn invite(
        &self,
        fields: InvitationFields,
    ) -> Result<(InvitationToken, Invitation), CoreError> {
        let created = self
            .store
            .create_invitation(NewInvitation {
                email: fields.email,
                groups: fields.groups,
                lifetime: fields.lifetime,
                created_by: Some(self.by.clone()),
            })
            .await?;
        let invitation = &created.1;
        self.audit(
            "invitation_created",
            invitation.email.as_ref().map_or("-", Email::as_str),
            &format!(
                "invitation={} groups={} expires_at={}",
                short(&invitation.id),
                group_list(&invitation.groups),
                invitation.expires_at
            ),
        );
        Ok(created)
    }

    pub async fn invitations(&self) -> Result<Vec<Invitation>, CoreError> {
        Ok(self.store.invitations().await?)
    }

    /// Revokes invitation `id`; false when there is none.
    pub async fn revoke_invitation(&self, id: &str) -> Result<bool, CoreError> {
        let revoked = self.store.delete_invitation(id).await?;
        if revoked {
            self.audit(
                "invitation_revoked",
                "-",
                &format!("invitation={}", short(id)),
            );
        }
        Ok(revoked)
    }

    fn evict(&self, username: &Username) {
        self.services.sessions.evict_user(username);
    }

    /// One audit line: who (`by`), what (`event`), to whom (`user`), from where.
    /// The whole store as SurrealQL, read in one transaction: a consistent copy
    /// even while the server serves. It holds the password hashes, the sealed
    /// second factors and the shared secret: kept like the store itself.
    pub async fn backup(&self) -> Result<Vec<u8>, CoreError> {
        let dump = self.store.export().await?;
        self.audit("backup_taken", "-", &format!("bytes={}", dump.len()));
        Ok(dump)
    }

    /// Loads the backup in `file` into this store, which must hold nothing yet;
    /// false (and nothing done) when it holds records.
    pub async fn restore(&self, file: &std::path::Path) -> Result<bool, CoreError> {
        let restored = self.store.restore(file).await?;
        if restored {
            self.audit("backup_restored", "-", &file.display().to_string());
        }
        Ok(restored)
    }

    fn audit(&self, event: &'static str, target: &str, detail: &str) {
        tracing::info!(
            event,
            by = %self.by,
            user = %target,
            address = %self.address,
            via = self.door.as_str(),
            detail,
        );
    }
}

/// Why a group change was not made.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    /// Too many groups.
    #[error("{}", .0.message)]
    Invalid(ValidationError),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<storage::StorageError> for GroupsError {
    fn from(err: storage::StorageError) -> Self {
        Self::Core(err.into())
    }
}

/// A checked invitation request.
#[derive(Debug, Clone)]
pub struct InvitationFields {
    pub email: Option<Email>,
    pub groups: Vec<GroupName>,
    /// Seconds it stays valid.
    pub lifetime: i64,
}

impl InvitationFields {
    /// Checks an optional email (absent: any address; the page sends an empty
    /// field for that), the groups (parsed by the adapter: one name per
    /// entry in the API, a comma-separated list in the page) and a lifetime in
    /// seconds (a week when absent); errors name the fields `email`, `groups` and
    /// `expires_in`.
    pub fn check(
        email: Option<&str>,
        groups: Result<Vec<GroupName>, ValidationError>,
        expires_in: Option<i64>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let email = match email {
            Some(email) => errors.check(Email::parse(email)),
            None => None,
        };
        let groups = errors.check(groups);
        let lifetime = expires_in.unwrap_or(DEFAULT_INVITATION_LIFETIME);
        if !(MIN_INVITATION_LIFETIME..=MAX_INVITATION_LIFETIME).contains(&lifetime) {
            errors.add(
                "expires_in",
                "An invitation lasts from 60 seconds to a year (31536000 seconds).",
            );
        }
        match groups {
            Some(groups) if errors.is_empty() => Ok(Self {
                email,
                groups,
                lifetime,
            }),
            _ => Err(errors),
        }
    }
}

/// A user belongs to at most this many groups (each one travels in every
/// `/auth` answer's group header).
pub const MAX_GROUPS: usize = 64;

/// Group names given one per entry (the API), sorted, without duplicates; more
/// than [`MAX_GROUPS`] entries are refused even when some repeat.
pub fn groups_from_names<S: AsRef<str>>(names: &[S]) -> Result<Vec<GroupName>, ValidationError> {
    at_most_max_entries(names.len())?;
    let mut groups = names
        .iter()
        .map(|name| GroupName::parse(name.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort();
    groups.dedup();
    at_most_max(groups)
}

/// Group names as a comma-separated list (a form, the CLI).
pub fn groups_from_list(list: &str) -> Result<Vec<GroupName>, ValidationError> {
    at_most_max(GroupName::parse_list(list)?)
}

fn at_most_max(groups: Vec<GroupName>) -> Result<Vec<GroupName>, ValidationError> {
    at_most_max_entries(groups.len())?;
    Ok(groups)
}

fn at_most_max_entries(count: usize) -> Result<(), ValidationError> {
    if count > MAX_GROUPS {
        return Err(ValidationError::new(
            "groups",
            "A user belongs to at most 64 groups.",
        ));
    }
    Ok(())
}

pub fn group_list(groups: &[GroupName]) -> String {
    groups
        .iter()
        .map(GroupName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn ended_detail(ended: AccessEnded) -> String {
    format!(
        "sessions_ended={} tokens_revoked={}",
        ended.sessions, ended.tokens
    )
}

/// The first 16 characters of an id: enough to find it, in a log line.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// The sign-up link that carries invitation `token`.
pub fn invitation_link(public_url: &url::Url, token: &InvitationToken) -> String {
    let mut link = public_url
        .join("signup")
        .unwrap_or_else(|_| public_url.clone());
    link.query_pairs_mut().append_pair("invite", token.expose());
    link.into()
}
