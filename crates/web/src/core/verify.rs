//! Email verification: a link by mail proves the user reads mail at their
//! address. Until then `/auth` sends the email headers empty (and
//! `X-Auth-Email-Verified: false`), and under `--require-verified-email` neither
//! `/auth` nor the API lets the user through.
//!
//! A link is 256 random bits (only its hash stored), lasts 24 hours, works once,
//! only for the address it was sent to, and only the newest one of a user works.
//! Links are asked for at signup, by the user (throttled), by an admin and by the
//! CLI; each request is queued in the outbox and made into a link by the mail
//! sender, which knows the public URL.

use domain::User;
use storage::{StorageError, VerifyToken};

use super::client::ClientInfo;
use super::error::CoreError;
use super::message::compose;
use super::services::Services;

/// How long a verification link works.
pub const VERIFY_LIFETIME: i64 = 24 * 3600;
/// The least time between two links a user asks for.
pub const RESEND_AFTER: i64 = 60;

pub const VERIFY_SENT: &str = "A link to verify your address is on its way. It works for 24 hours; check your spam \
     folder if it does not come.";
pub const VERIFY_EXPIRED: &str = "This link has expired, was replaced by a newer one, or was used already. Log in to ask \
     for a new one.";
pub const VERIFY_REQUIRED: &str = "Verify your email address to go on: open the link we mailed you, or ask for a new one \
     on your account's email page.";
pub const VERIFY_UNAVAILABLE: &str =
    "This gatehouse sends no mail, so it cannot verify addresses: ask an administrator.";

/// Queues a verification link for `user` when this gatehouse sends mail and the
/// address is not verified yet. A failure is logged: the account stands, and the
/// user can ask again.
pub async fn queue_link(services: &Services, user: &User) {
    if !services.config.mail.enabled() || user.email_verified {
        return;
    }
    if let Err(err) = services
        .store
        .enqueue_verification_request(user.email.as_str())
        .await
    {
        tracing::warn!(error = %err, user = %user.username, "cannot queue a verification link");
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resend {
    /// [`VERIFY_SENT`].
    Sent,
    AlreadyVerified,
    /// A link was made less than [`RESEND_AFTER`] seconds ago.
    Throttled {
        wait: i64,
    },
    /// [`VERIFY_UNAVAILABLE`].
    Unavailable,
}

/// The user asks for a new link (the email page's button).
pub async fn resend(
    services: &Services,
    client: &ClientInfo,
    user: &User,
) -> Result<Resend, CoreError> {
    if !services.config.mail.enabled() {
        return Ok(Resend::Unavailable);
    }
    if user.email_verified {
        return Ok(Resend::AlreadyVerified);
    }
    let now = storage::now();
    let key = format!("verify:{}", user.username);
    let wait = services.store.throttle_wait(&key, now).await?;
    let since_last = services
        .store
        .verification_made_at(&user.username)
        .await?
        .map_or(i64::MAX, |made| now - made);
    let wait = wait.max(RESEND_AFTER - since_last);
    if wait > 0 {
        return Ok(Resend::Throttled { wait });
    }
    // A handful a day is plenty: every ask counts.
    services
        .store
        .record_failure(&key, now, &services.config.throttle.account)
        .await?;
    services
        .store
        .enqueue_verification_request(user.email.as_str())
        .await?;
    tracing::info!(event = "verification_requested", user = %user.username, address = client.address());
    Ok(Resend::Sent)
}

/// The message a queued verification request becomes: a new link for the enabled,
/// unverified account that uses `email`, or `None`.
pub async fn link_mail(
    services: &Services,
    email: &str,
) -> Result<Option<storage::Mail>, StorageError> {
    let Ok(email) = domain::Email::parse(email) else {
        return Ok(None);
    };
    let Some(user) = services
        .store
        .user_by_email(&email)
        .await?
        .filter(|u| !u.disabled && !u.email_verified)
    else {
        return Ok(None);
    };
    let token = services
        .store
        .create_verification(&user.username, user.email.as_str(), VERIFY_LIFETIME)
        .await?;
    let mut link = services
        .config
        .public_url
        .join("verify")
        .unwrap_or_else(|_| services.config.public_url.clone());
    link.query_pairs_mut().append_pair("token", token.expose());
    Ok(Some(compose(
        user.email.as_str(),
        "Verify your email address",
        &[
            &format!(
                "Please confirm that {} is the address of the account {}.",
                user.email, user.username
            ),
            "The link below works once, for 24 hours. If you did not sign up, ignore this \
             message.",
        ],
        Some(("Verify my address", link.as_str())),
    )))
}

/// Whether `raw` looks like a verification link's secret (the page shows its form
/// only then; the store decides on use).
pub fn looks_valid(raw: &str) -> bool {
    VerifyToken::parse(raw.trim()).is_some()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Verified(domain::Username),
    /// [`VERIFY_EXPIRED`].
    Expired,
}

/// Uses verification link `raw`.
pub async fn complete(
    services: &Services,
    client: &ClientInfo,
    raw: &str,
) -> Result<Verification, CoreError> {
    let Some(token) = VerifyToken::parse(raw.trim()) else {
        return Ok(Verification::Expired);
    };
    let Some(username) = services.store.complete_verification(&token).await? else {
        return Ok(Verification::Expired);
    };
    // Cached identities carry the old flag: this node drops them now, the others
    // through the users' change feed.
    services.sessions.evict_user(&username);
    tracing::info!(event = "email_verified", user = %username, address = client.address());
    Ok(Verification::Verified(username))
}
