//! "Forgot your password?": a reset link by mail, and the new password it leads
//! to.
//!
//! Asking gives the same answer, in the same time, whether or not an account uses
//! the address: the request only queues "a link for this address" in the outbox;
//! the mail sender, off the request, makes the link if an account uses it. Asking is throttled per address given and per client
//! address, like logins. A link is 256 random bits (only its hash stored), lasts
//! 30 minutes, works once, and stops working when a newer one is made or the user
//! logs in. Using it sets the password, ends every session and API token of the
//! user in the same transaction, and sends a notice.

use domain::{Email, Password, User, Username};
use storage::{AccessEnded, ResetToken};

use super::accounts::{FieldErrors, PASSWORDS_DIFFER};
use super::client::ClientInfo;
use super::error::CoreError;
use super::message::compose;
use super::services::Services;

/// How long a reset link works.
pub const RESET_LIFETIME: i64 = 1800;

/// The one answer to a reset request, whoever it names.
pub const RESET_SENT: &str = "If an account uses that address, a link to choose a new password \
     is on its way. It works for 30 minutes; check your spam folder if it does not come.";
/// Without a mail transport.
pub const RESET_UNAVAILABLE: &str =
    "This gatehouse sends no mail, so it cannot reset a password by mail: ask an administrator.";
/// A link that is unknown, used, replaced or expired.
pub const RESET_EXPIRED: &str = "This link has expired or was used already. Ask for a new one.";

#[derive(Debug)]
pub enum ResetRequest {
    /// The answer is [`RESET_SENT`], whoever the address belongs to.
    Sent,
    Invalid(FieldErrors),
    Throttled {
        wait: i64,
    },
    /// No mail transport is configured.
    Unavailable,
}

/// Asks for a reset link for `email_input`.
pub async fn request_reset(
    services: &Services,
    client: &ClientInfo,
    email_input: &str,
) -> Result<ResetRequest, CoreError> {
    if !services.config.mail.enabled() {
        return Ok(ResetRequest::Unavailable);
    }
    let mut errors = FieldErrors::default();
    let Some(email) = errors.check(Email::parse(email_input)) else {
        return Ok(ResetRequest::Invalid(errors));
    };
    let now = storage::now();
    let throttle = services.config.throttle;
    let by_email = format!("reset:{email}");
    let by_address = format!("reset-address:{}", client.address());
    let wait = services
        .store
        .throttle_wait(&by_email, now)
        .await?
        .max(services.store.throttle_wait(&by_address, now).await?);
    if wait > 0 {
        tracing::warn!(event = "reset_throttled", email = %email, address = client.address(), wait);
        return Ok(ResetRequest::Throttled { wait });
    }
    // Every request counts, answered or not: a handful an hour is plenty.
    services
        .store
        .record_failure(&by_email, now, &throttle.account)
        .await?;
    services
        .store
        .record_failure(&by_address, now, &throttle.address)
        .await?;
    // The same work for every address: one queued request, which the mail sender
    // turns into a link for an account (or drops). Nothing here reads the users.
    services.store.enqueue_reset_request(email.as_str()).await?;
    tracing::info!(event = "reset_requested", email = %email, address = client.address());
    Ok(ResetRequest::Sent)
}

/// The message a queued reset request becomes: a new link for the account that
/// uses `email`, or `None` when no enabled account does.
pub async fn link_mail(
    services: &Services,
    email: &str,
) -> Result<Option<storage::Mail>, storage::StorageError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let Some(user) = services
        .store
        .user_by_email(&email)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    link_for(services, &user).await.map(Some)
}

async fn link_for(
    services: &Services,
    user: &User,
) -> Result<storage::Mail, storage::StorageError> {
    let token = services
        .store
        .create_reset(&user.username, RESET_LIFETIME)
        .await?;
    let mut link = services
        .config
        .public_url
        .join("reset")
        .unwrap_or_else(|_| services.config.public_url.clone());
    link.query_pairs_mut().append_pair("token", token.expose());
    let mail = compose(
        user.email.as_str(),
        "Choose a new password",
        &[
            &format!(
                "Someone (we hope you) asked to reset the password of {}.",
                user.username
            ),
            "The link below lets you choose a new one. It works once, for 30 minutes. \
             If you did not ask, ignore this message: your password stays as it is.",
        ],
        Some(("Choose a new password", link.as_str())),
    );
    Ok(mail)
}

/// Whether `raw` is a live reset link's secret, and for whom.
pub async fn link_user(services: &Services, raw: &str) -> Result<Option<Username>, CoreError> {
    let Some(token) = ResetToken::parse(raw.trim()) else {
        return Ok(None);
    };
    Ok(services.store.reset_user(&token).await?)
}

#[derive(Debug)]
pub enum ResetOutcome {
    Done(Username, AccessEnded),
    Invalid(FieldErrors),
    /// [`RESET_EXPIRED`].
    Expired,
}

/// Sets a new password through reset link `raw`.
pub async fn complete_reset(
    services: &Services,
    client: &ClientInfo,
    raw: &str,
    password: &str,
    confirm: &str,
) -> Result<ResetOutcome, CoreError> {
    let Some(token) = ResetToken::parse(raw.trim()) else {
        return Ok(ResetOutcome::Expired);
    };
    if services.store.reset_user(&token).await?.is_none() {
        return Ok(ResetOutcome::Expired);
    }
    let mut errors = FieldErrors::default();
    let password = errors.check(Password::parse(password));
    if password.is_some() && confirm != password.as_ref().map_or("", |p| p.expose()) {
        errors.add("confirm", PASSWORDS_DIFFER);
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        return Ok(ResetOutcome::Invalid(errors));
    };
    let hash = services.hashing.hash(password).await?;
    let Some((username, ended)) = services.store.complete_reset(&token, &hash).await? else {
        return Ok(ResetOutcome::Expired);
    };
    services.sessions.evict_user(&username);
    tracing::info!(
        event = "password_reset",
        user = %username,
        address = client.address(),
        sessions_ended = ended.sessions,
        tokens_revoked = ended.tokens,
    );
    if let Some(user) = services.store.user_by_username(&username).await? {
        let mut login = services.config.public_url.clone();
        login.set_path("/login");
        let notice = compose(
            user.email.as_str(),
            "Your password was changed",
            &[
                &format!(
                    "The password of {} was just changed through a reset link, from {}. Every \
                     session and API token of the account has ended.",
                    user.username,
                    client.address()
                ),
                "If this was not you, reset it again at once and tell an administrator.",
            ],
            Some(("Log in", login.as_str())),
        );
        services.store.enqueue_mail(&notice).await?;
    }
    Ok(ResetOutcome::Done(username, ended))
}
