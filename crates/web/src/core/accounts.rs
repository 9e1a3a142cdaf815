//! What signing up, logging in and changing a password mean, once for the site's
//! forms and the JSON API alike: the same validation messages, the same throttling, the same timing
//! for unknown emails and wrong passwords. Callers turn the outcome into a form or
//! a problem document and start the session themselves.

use domain::{DisplayName, Email, Password, User, Username, ValidationError, Verdict};
use storage::{Invitation, InvitationToken, Refusal, StorageError};

use super::client::ClientInfo;
use super::error::CoreError;
use super::principal::Authenticated;
use super::services::Services;
use super::sessions;
use crate::config::SignupPolicy;

/// The one message for an unknown email and a wrong password alike.
pub const INVALID_CREDENTIALS: &str = "Invalid email or password.";
/// Refused before hashing: nobody gets to make us hash megabytes.
pub const PASSWORD_TOO_LONG: &str = "A password is at most 1024 characters long.";
pub const USERNAME_TAKEN: &str = "This username is already taken.";
pub const EMAIL_TAKEN: &str = "An account with this email already exists.";
pub const PASSWORDS_DIFFER: &str = "The passwords do not match.";
pub const WRONG_CURRENT_PASSWORD: &str = "That is not your current password.";
pub const SIGNUP_CLOSED: &str = "Sign-up is closed: ask an administrator for an account.";
pub const INVITATION_REQUIRED: &str = "Sign-up is by invitation only: open the link you were sent.";
pub const INVITATION_INVALID: &str =
    "This invitation link is not valid (used, revoked or expired): ask for a new one.";
/// Said only after the right password: a wrong one gets [`INVALID_CREDENTIALS`].
pub const ACCOUNT_DISABLED: &str = "This account is disabled: ask an administrator.";

/// The messages of a failed form or request body, by field.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<ValidationError>);

impl FieldErrors {
    pub fn push(&mut self, err: ValidationError) {
        self.0.push(err);
    }

    pub fn add(&mut self, field: &'static str, message: &str) {
        self.0.push(ValidationError::new(field, message));
    }

    /// Keeps the value of `result`, recording its error.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &ValidationError> {
        self.0.iter()
    }
}

/// A sign-up as typed: `confirm` is the form's second password field (the API has
/// none).
#[derive(Debug, Default)]
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
    pub confirm: Option<&'a str>,
    /// The secret of an invitation link, when the user came with one.
    pub invitation: Option<&'a str>,
}

#[derive(Debug)]
pub enum SignupOutcome {
    Created(User),
    /// A field is malformed (422).
    Invalid(FieldErrors),
    /// The username or email belongs to someone already (409).
    Taken(FieldErrors),
    /// Sign-up is closed, or by invitation and none valid came (403): the message
    /// says which.
    Refused(&'static str),
}

/// What a visitor may do on the sign-up page: whether the form is open to them
/// and, with a valid invitation, the email it is for.
#[derive(Debug)]
pub enum SignupAccess {
    Open,
    /// A live invitation, with the secret that opened it (the signup uses it up).
    Invited(InvitationToken, Invitation),
    Refused(&'static str),
}

/// The user `username` names, if any (a profile page, the API's user lookup).
pub async fn user(services: &Services, username: &Username) -> Result<Option<User>, CoreError> {
    Ok(services.store.user_by_username(username).await?)
}

/// Whether a sign-up may go ahead under the configured policy, with the
/// invitation secret the visitor brought (if any). An invitation is honoured under
/// every policy but `closed`.
pub async fn signup_access(
    services: &Services,
    invitation: Option<&str>,
) -> Result<SignupAccess, CoreError> {
    let policy = services.config.signup;
    if policy == SignupPolicy::Closed {
        return Ok(SignupAccess::Refused(SIGNUP_CLOSED));
    }
    let Some(raw) = invitation.filter(|raw| !raw.is_empty()) else {
        return Ok(match policy {
            SignupPolicy::Open => SignupAccess::Open,
            _ => SignupAccess::Refused(INVITATION_REQUIRED),
        });
    };
    let Some(token) = InvitationToken::parse(raw.trim()) else {
        return Ok(SignupAccess::Refused(INVITATION_INVALID));
    };
    Ok(match services.store.invitation(&token).await? {
        Some(invitation) => SignupAccess::Invited(token, invitation),
        None => SignupAccess::Refused(INVITATION_INVALID),
    })
}

/// Validates `input` and creates the user. Nothing is written unless every field
/// is valid; a race for the same name or email is settled by the store's unique
/// indexes.
pub async fn sign_up(
    services: &Services,
    client: &ClientInfo,
    input: &NewAccount<'_>,
) -> Result<SignupOutcome, CoreError> {
    let mut errors = FieldErrors::default();
    let username = errors.check(Username::parse(input.username));
    let email = errors.check(Email::parse(input.email));
    if let Some(email) = &email
        && !services.config.signup_domain_allowed(email)
    {
        errors.add(
            "email",
            &format!(
                "Sign-up is open only to addresses at {}.",
                services.config.signup_domains.join(", ")
            ),
        );
    }
    let name = errors.check(DisplayName::parse(input.name));
    let password = errors.check(Password::parse(input.password));
    if password.is_some() && input.confirm.is_some_and(|c| c != input.password) {
        errors.add("confirm", PASSWORDS_DIFFER);
    }
    let access = signup_access(services, input.invitation).await?;
    let invitation = match access {
        SignupAccess::Refused(message) => return Ok(SignupOutcome::Refused(message)),
        SignupAccess::Open => None,
        SignupAccess::Invited(token, invitation) => Some((token, invitation)),
    };
    if let (Some(invited), Some(typed)) = (
        invitation.as_ref().and_then(|(_, i)| i.email.as_ref()),
        email.as_ref(),
    ) && invited != typed
    {
        errors.add("email", &format!("This invitation is for {invited}."));
    }
    let (Some(username), Some(email), Some(name), Some(password), true) =
        (username, email, name, password, errors.is_empty())
    else {
        return Ok(SignupOutcome::Invalid(errors));
    };
    let user = User {
        password_hash: services.hashing.hash(password).await?,
        username,
        email,
        name,
        created_at: storage::now(),
        groups: invitation
            .as_ref()
            .map(|(_, i)| i.groups.clone())
            .unwrap_or_default(),
        disabled: false,
        email_verified: false,
    };
    let created = match &invitation {
        Some((token, _)) => {
            services
                .store
                .create_user_with_invitation(&user, token)
                .await
        }
        None => services.store.create_user(&user).await,
    };
    match created {
        Ok(()) => {}
        Err(StorageError::Refused(Refusal::InvitationInvalid)) => {
            return Ok(SignupOutcome::Refused(INVITATION_INVALID));
        }
        Err(StorageError::Refused(Refusal::UsernameTaken)) => {
            errors.add("username", USERNAME_TAKEN);
            return Ok(SignupOutcome::Taken(errors));
        }
        Err(StorageError::Refused(Refusal::EmailTaken)) => {
            errors.add("email", EMAIL_TAKEN);
            return Ok(SignupOutcome::Taken(errors));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(
        event = "signup",
        user = %user.username,
        address = client.address(),
        invitation = invitation.as_ref().map(|(_, i)| i.id.as_str()),
    );
    super::verify::queue_link(services, &user).await;
    Ok(SignupOutcome::Created(user))
}

#[derive(Debug)]
pub enum LoginOutcome {
    /// The email is malformed or the password too long to try (422).
    Invalid(FieldErrors),
    /// Too many failures for this account or address: try again in `wait` seconds.
    Throttled {
        wait: i64,
    },
    /// Unknown email or wrong password: [`INVALID_CREDENTIALS`] (401).
    Refused,
    /// The right password for a disabled account: [`ACCOUNT_DISABLED`] (403).
    Disabled,
    Valid(User),
}

/// The throttle counter of failed passwords for the account `email` names (known
/// or not); the password page counts against it too.
pub fn account_throttle_key(email: &Email) -> String {
    format!("account:{email}")
}

/// Checks a password the way every login does: throttled before any hashing, the
/// same work for known and unknown emails, failures counted per account and per
/// client address, an outdated hash upgraded. Starts no session.
pub async fn check_login(
    services: &Services,
    client: &ClientInfo,
    email_input: &str,
    password_input: &str,
) -> Result<LoginOutcome, CoreError> {
    let address = client.address();
    let mut errors = FieldErrors::default();
    let email = errors.check(Email::parse(email_input));
    if password_input.chars().count() > Password::MAX {
        errors.add("password", PASSWORD_TOO_LONG);
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Ok(LoginOutcome::Invalid(errors));
    };

    let now = storage::now();
    let account_key = account_throttle_key(&email);
    let address_key = format!("address:{address}");
    let account_status = services.store.throttle_status(&account_key, now).await?;
    let wait = account_status
        .unwrap_or(0)
        .max(services.store.throttle_wait(&address_key, now).await?);
    if wait > 0 {
        tracing::warn!(event = "login_throttled", email = %email, address, wait);
        return Ok(LoginOutcome::Throttled { wait });
    }

    let user = services.store.user_by_email(&email).await?;
    // A password too short to be anyone's still costs a full verification, so the
    // answer's timing says nothing about the account.
    let candidate = Password::parse(password_input).ok();
    let verdict = match (&user, &candidate) {
        (Some(user), Some(password)) => {
            services
                .hashing
                .verify(password.clone(), user.password_hash.clone())
                .await?
        }
        _ => services.hashing.verify_unknown_user().await?,
    };
    let (Some(user), Verdict::Valid { needs_rehash }, Some(password)) = (user, verdict, candidate)
    else {
        tracing::info!(event = "login_failed", email = %email, address);
        let throttle = services.config.throttle;
        services
            .store
            .record_failure(&account_key, now, &throttle.account)
            .await?;
        services
            .store
            .record_failure(&address_key, now, &throttle.address)
            .await?;
        return Ok(LoginOutcome::Refused);
    };

    if user.disabled {
        tracing::info!(event = "login_disabled", user = %user.username, address);
        return Ok(LoginOutcome::Disabled);
    }
    if needs_rehash {
        // The configured parameters changed since this hash was made: upgrade it now
        // that we hold the password.
        let hash = services.hashing.hash(password).await?;
        services
            .store
            .set_password_hash(&user.username, &hash)
            .await?;
        tracing::info!(event = "password_rehashed", user = %user.username);
    }
    // The account's count starts again; the address's does not, or one account of
    // the attacker's own would reset it between guesses at others.
    if account_status.is_some() {
        services.store.clear_failures(&account_key).await?;
    }
    // A right password voids any reset link still out (only mail makes them).
    if services.config.mail.enabled() {
        services.store.delete_resets(&user.username).await?;
    }
    tracing::info!(event = "login", user = %user.username, address);
    Ok(LoginOutcome::Valid(user))
}

/// "Try again in 3 seconds."
pub fn retry_in(wait: i64) -> String {
    format!(
        "Try again in {wait} second{}.",
        if wait == 1 { "" } else { "s" }
    )
}

/// A password change as typed: `confirm` is the form's repeat of the new password
/// (the API has none).
#[derive(Debug, Default)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub confirm: Option<&'a str>,
}

#[derive(Debug)]
pub enum PasswordOutcome {
    /// Changed; the other sessions ended and the API tokens were revoked.
    Changed(storage::AccessEnded),
    /// A field is malformed (422).
    Invalid(FieldErrors),
    /// The current password is wrong (the form shows it beside the field; the
    /// API answers 403: well-formed, but not allowed).
    WrongCurrent(FieldErrors),
    /// Too many wrong current passwords: wait this many seconds (429).
    Throttled { wait: i64 },
}

/// Checks the current password (throttled like a login), sets the new one, ends
/// every other session of `me` and revokes their API tokens.
pub async fn change_password(
    services: &Services,
    client: &ClientInfo,
    me: &Authenticated,
    input: &PasswordChange<'_>,
) -> Result<PasswordOutcome, CoreError> {
    let mut errors = FieldErrors::default();
    let new = errors.check(Password::parse(input.new));
    if new.is_some() && input.confirm.is_some_and(|c| c != input.new) {
        errors.add("confirm", PASSWORDS_DIFFER);
    }
    if input.current.chars().count() > Password::MAX {
        errors.add("current", PASSWORD_TOO_LONG);
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return Ok(PasswordOutcome::Invalid(errors));
    };

    let now = storage::now();
    let account_key = account_throttle_key(&me.user.email);
    let wait = services.store.throttle_wait(&account_key, now).await?;
    if wait > 0 {
        return Ok(PasswordOutcome::Throttled { wait });
    }
    let verdict = match Password::parse(input.current) {
        Ok(current) => {
            services
                .hashing
                .verify(current, me.user.password_hash.clone())
                .await?
        }
        Err(_) => services.hashing.verify_unknown_user().await?,
    };
    if !matches!(verdict, Verdict::Valid { .. }) {
        services
            .store
            .record_failure(&account_key, now, &services.config.throttle.account)
            .await?;
        errors.add("current", WRONG_CURRENT_PASSWORD);
        return Ok(PasswordOutcome::WrongCurrent(errors));
    }

    let hash = services.hashing.hash(new).await?;
    let keep = me.session().map(|s| s.id.as_str());
    let ended = sessions::change_password(services, &me.user.username, &hash, keep).await?;
    tracing::info!(
        event = "password_changed",
        user = %me.user.username,
        address = client.address(),
        sessions_revoked = ended.sessions,
        tokens_revoked = ended.tokens,
    );
    Ok(PasswordOutcome::Changed(ended))
}

#[derive(Debug)]
pub enum EmailChange {
    /// Changed; a link is on its way to the new address, a notice to the old one.
    Changed,
    Invalid(super::accounts::FieldErrors),
    /// The password was wrong (counted like a failed login).
    WrongPassword,
    Throttled {
        wait: i64,
    },
}

/// `user` moves to address `new_input`, proving it is them with `password`
/// (checked like a login: throttled). The new address starts unverified and gets
/// a link; the old one is told.
pub async fn change_email(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    new_input: &str,
    password: &str,
) -> Result<EmailChange, CoreError> {
    let mut errors = FieldErrors::default();
    let Some(email) = errors.check(domain::Email::parse(new_input)) else {
        return Ok(EmailChange::Invalid(errors));
    };
    if email == user.email {
        errors.add("email", "That is already your address.");
        return Ok(EmailChange::Invalid(errors));
    }
    match check_login(services, client, user.email.as_str(), password).await? {
        LoginOutcome::Valid(checked) if checked.username == user.username => {}
        LoginOutcome::Throttled { wait } => return Ok(EmailChange::Throttled { wait }),
        _ => return Ok(EmailChange::WrongPassword),
    }
    match services.store.set_email(&user.username, &email).await {
        Ok(()) => {}
        Err(StorageError::Refused(Refusal::EmailTaken)) => {
            errors.add("email", EMAIL_TAKEN);
            return Ok(EmailChange::Invalid(errors));
        }
        Err(other) => return Err(other.into()),
    }
    services.sessions.evict_user(&user.username);
    tracing::info!(
        event = "email_changed",
        user = %user.username,
        from = %user.email,
        to = %email,
        address = client.address()
    );
    super::message::notify(
        &services.store,
        services.config.mail.enabled(),
        user,
        "Your email address was changed",
        &format!(
            "The address of your account was changed from {} to {}, from {}",
            user.email,
            email,
            client.address()
        ),
    )
    .await;
    let moved = User {
        email,
        email_verified: false,
        ..user.clone()
    };
    super::verify::queue_link(services, &moved).await;
    Ok(EmailChange::Changed)
}
