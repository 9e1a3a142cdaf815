//! Passkeys (WebAuthn, through `webauthn-rs`): registered by a logged-in user, used
//! as the second step of a login, or alone — "sign in with a passkey", the
//! authenticator finding its own credential (discoverable credentials).
//!
//! Every ceremony asks the authenticator to verify its user (a PIN, a fingerprint):
//! a passkey proves something held and something known or been, so a session it
//! opened counts as one with a second factor (`passkey` among its factors). The
//! relying party is the public URL: its host is the RP id, its origin the only one
//! accepted — so passkeys need the public URL to name a host, not an IP address.
//!
//! A ceremony's state (its challenge) waits in the store, single use, for five
//! minutes, bound to what started it: the user adding a passkey, or the pending
//! login of the browser in its second step. Failed uses are throttled like wrong
//! passwords.

use domain::{User, Username};
use storage::passkeys::{Ceremony, Challenge, passkey_key};
use storage::{PendingLogin, Refusal, StoredPasskey};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, Webauthn,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::client::ClientInfo;
use super::error::CoreError;
use super::factors::{self, CodeOutcome};
use super::services::Services;

/// The factor a passkey proves.
pub const PASSKEY: &str = "passkey";
/// How long a ceremony may take.
pub const CEREMONY_LIFETIME: i64 = 300;
/// The longest name a passkey may have.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a passkey was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// Passkeys are off (the public URL is an address).
    Unavailable(String),
    /// The ceremony is unknown, used, expired or not this browser's.
    Expired,
    /// The name is empty, too long or has control characters.
    BadName(String),
    /// The authenticator's answer did not verify, or names no passkey of ours.
    NotAccepted,
    /// The credential is registered already, or the user has the most allowed.
    NotAdded,
    /// Too many ceremonies are under way: try again in a minute.
    Busy,
}

impl PasskeyRefusal {
    /// A sentence for the user.
    pub fn message(&self) -> String {
        match self {
            Self::Unavailable(why) => format!("Passkeys are not available here: {why}."),
            Self::Expired => "That took too long, or was started elsewhere. Try again.".to_owned(),
            Self::BadName(why) => why.clone(),
            Self::NotAccepted => "That passkey was not accepted.".to_owned(),
            Self::Busy => {
                "Too many passkey logins are under way. Try again in a minute.".to_owned()
            }
            Self::NotAdded => format!(
                "That passkey is registered already, or you have {} passkeys (the most allowed).",
                storage::passkeys::MAX_PASSKEYS
            ),
        }
    }
}

fn webauthn(services: &Services) -> Result<&Webauthn, PasskeyRefusal> {
    services
        .passkeys
        .as_ref()
        .map_err(|why| PasskeyRefusal::Unavailable(why.clone()))
}

/// Ceremonies under way at once, across every user and visitor.
pub const MAX_LIVE_CEREMONIES: usize = 10_000;

/// Keeps a ceremony for [`CEREMONY_LIFETIME`]; the id the browser gets, or
/// [`PasskeyRefusal::Busy`] while too many are under way.
async fn keep(
    services: &Services,
    challenge: &Challenge,
) -> Result<Result<String, PasskeyRefusal>, CoreError> {
    match services
        .store
        .put_challenge(challenge, CEREMONY_LIFETIME, MAX_LIVE_CEREMONIES)
        .await
    {
        Ok(id) => Ok(Ok(id)),
        Err(storage::StorageError::Refused(Refusal::CeremoniesFull)) => {
            tracing::warn!(
                event = "passkey_ceremonies_full",
                limit = MAX_LIVE_CEREMONIES
            );
            Ok(Err(PasskeyRefusal::Busy))
        }
        Err(other) => Err(other.into()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CoreError> {
    serde_json::to_string(value).map_err(|e| CoreError::Internal(format!("passkey state: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, CoreError> {
    serde_json::from_str(json).map_err(|e| CoreError::Internal(format!("stored passkey: {e}")))
}

/// A passkey's name, trimmed: 1 to 64 characters, no control characters.
pub fn check_name(name: &str) -> Result<String, PasskeyRefusal> {
    let name = name.trim();
    if name.is_empty() {
        return Err(PasskeyRefusal::BadName(
            "Give the passkey a name, such as the device it is on.".to_owned(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyRefusal::BadName(format!(
            "A passkey's name has at most {MAX_NAME_CHARS} characters, none of them control characters."
        )));
    }
    Ok(name.to_owned())
}

/// The options a browser needs to make a passkey for `user`, and the ceremony's id.
pub async fn begin_registration(
    services: &Services,
    user: &User,
) -> Result<Result<(CreationChallengeResponse, String), PasskeyRefusal>, CoreError> {
    let webauthn = match webauthn(services) {
        Ok(w) => w,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let existing = services.store.passkeys(&user.username).await?;
    // One handle per user, kept with each of their passkeys.
    let handle = existing
        .first()
        .and_then(|p| Uuid::parse_str(&p.handle).ok())
        .unwrap_or_else(Uuid::new_v4);
    let exclude = existing
        .iter()
        .filter_map(|p| from_json::<Passkey>(&p.credential).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (mut options, state) = webauthn
        .start_passkey_registration(
            handle,
            user.username.as_str(),
            user.display_name(),
            Some(exclude),
        )
        .map_err(|e| CoreError::Internal(format!("passkey registration: {e}")))?;
    // A credential the authenticator keeps (discoverable), so that it can also
    // sign in without a password.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    let challenge = Challenge {
        ceremony: Ceremony::Register,
        username: Some(user.username.clone()),
        pending: None,
        state: to_json::<PasskeyRegistration>(&state)?,
        extra: Some(handle.to_string()),
    };
    Ok(keep(services, &challenge).await?.map(|id| (options, id)))
}

/// Verifies the browser's new credential and keeps it under `name`.
pub async fn finish_registration(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    ceremony: &str,
    name: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<Result<StoredPasskey, PasskeyRefusal>, CoreError> {
    let webauthn = match webauthn(services) {
        Ok(w) => w,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let name = match check_name(name) {
        Ok(name) => name,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(challenge) = services
        .store
        .take_challenge(ceremony, Ceremony::Register)
        .await?
        .filter(|c| c.username.as_ref() == Some(&user.username))
    else {
        return Ok(Err(PasskeyRefusal::Expired));
    };
    let state: PasskeyRegistration = from_json(&challenge.state)?;
    let passkey = match webauthn.finish_passkey_registration(credential, &state) {
        Ok(passkey) => passkey,
        Err(err) => {
            tracing::info!(event = "passkey_refused", user = %user.username, error = %err, address = client.address());
            return Ok(Err(PasskeyRefusal::NotAccepted));
        }
    };
    let stored = StoredPasskey {
        id: passkey_key(passkey.cred_id().as_ref()),
        username: user.username.clone(),
        handle: challenge.extra.unwrap_or_default(),
        name,
        credential: to_json(&passkey)?,
        created_at: storage::now(),
        last_used_at: None,
    };
    if !services.store.add_passkey(&stored).await? {
        return Ok(Err(PasskeyRefusal::NotAdded));
    }
    tracing::info!(event = "passkey_added", user = %user.username, passkey = %stored.id, address = client.address());
    super::message::notify(
        &services.store,
        services.config.mail.enabled(),
        user,
        "A passkey was added to your account",
        &format!(
            "The passkey \"{}\" was added from {}",
            stored.name,
            client.address()
        ),
    )
    .await;
    Ok(Ok(stored))
}

/// Removes `user`'s passkey `key` (their own choice, on the security page).
pub async fn remove(
    services: &Services,
    client: &ClientInfo,
    username: &Username,
    key: &str,
) -> Result<bool, CoreError> {
    let removed = services.store.remove_passkey(username, key).await?;
    if removed {
        tracing::info!(event = "passkey_removed", user = %username, passkey = key, address = client.address());
    }
    Ok(removed)
}

/// The options for the second step of `pending`'s login: its user's passkeys.
pub async fn begin_second_factor(
    services: &Services,
    pending: &PendingLogin,
) -> Result<Result<(RequestChallengeResponse, String), PasskeyRefusal>, CoreError> {
    let webauthn = match webauthn(services) {
        Ok(w) => w,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let passkeys: Vec<Passkey> = services
        .store
        .passkeys(&pending.username)
        .await?
        .iter()
        .filter_map(|p| from_json(&p.credential).ok())
        .collect();
    if passkeys.is_empty() {
        return Ok(Err(PasskeyRefusal::NotAccepted));
    }
    let (options, state) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| CoreError::Internal(format!("passkey authentication: {e}")))?;
    let challenge = Challenge {
        ceremony: Ceremony::SecondFactor,
        username: Some(pending.username.clone()),
        pending: Some(pending.id.clone()),
        state: to_json::<PasskeyAuthentication>(&state)?,
        extra: None,
    };
    Ok(keep(services, &challenge).await?.map(|id| (options, id)))
}

/// Checks the second step of `pending`'s login with a passkey of `user`'s.
pub async fn finish_second_factor(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    pending: &PendingLogin,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<CodeOutcome, CoreError> {
    let Ok(webauthn) = webauthn(services) else {
        return Ok(CodeOutcome::Refused);
    };
    if let Some(wait) = factors::throttled(services, client, user).await? {
        return Ok(CodeOutcome::Throttled { wait });
    }
    let Some(challenge) = services
        .store
        .take_challenge(ceremony, Ceremony::SecondFactor)
        .await?
        .filter(|c| c.pending.as_deref() == Some(pending.id.as_str()))
    else {
        return Ok(CodeOutcome::Refused);
    };
    let state: PasskeyAuthentication = from_json(&challenge.state)?;
    let accepted = match webauthn.finish_passkey_authentication(credential, &state) {
        Ok(result) => {
            let key = passkey_key(result.cred_id().as_ref());
            match services.store.passkey(&key).await? {
                Some(stored) if stored.username == user.username => {
                    record_use(services, stored, &result).await?;
                    true
                }
                _ => false,
            }
        }
        Err(err) => {
            tracing::info!(event = "passkey_refused", user = %user.username, error = %err, address = client.address());
            false
        }
    };
    if !accepted {
        factors::failed(
            services,
            client,
            user,
            "passkey_failed",
            factors::Attempt::Login,
        )
        .await?;
        return Ok(CodeOutcome::Refused);
    }
    factors::succeeded(services, user).await?;
    tracing::info!(event = "passkey_used", user = %user.username, address = client.address());
    Ok(CodeOutcome::Accepted {
        factor: PASSKEY,
        recovery_codes: Vec::new(),
    })
}

/// The options for a login with a passkey alone: no user named, no credential
/// listed — the authenticator offers what it holds for this site.
pub async fn begin_passwordless(
    services: &Services,
) -> Result<Result<(RequestChallengeResponse, String), PasskeyRefusal>, CoreError> {
    let webauthn = match webauthn(services) {
        Ok(w) => w,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (mut options, state) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| CoreError::Internal(format!("passkey authentication: {e}")))?;
    // A button press, not the autofill ("conditional") mediation.
    options.mediation = None;
    let challenge = Challenge {
        ceremony: Ceremony::Passwordless,
        username: None,
        pending: None,
        state: to_json::<DiscoverableAuthentication>(&state)?,
        extra: None,
    };
    Ok(keep(services, &challenge).await?.map(|id| (options, id)))
}

/// The outcome of a login with a passkey alone.
#[derive(Debug)]
pub enum PasswordlessOutcome {
    LoggedIn(User),
    Refused,
    Throttled { wait: i64 },
}

/// Checks a login with a passkey alone: the credential names its user (the handle
/// it was registered with must match ours), whose account must be enabled.
pub async fn finish_passwordless(
    services: &Services,
    client: &ClientInfo,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<PasswordlessOutcome, CoreError> {
    let Ok(webauthn) = webauthn(services) else {
        return Ok(PasswordlessOutcome::Refused);
    };
    let address_key = format!("address:{}", client.address());
    let wait = services
        .store
        .throttle_wait(&address_key, storage::now())
        .await?;
    if wait > 0 {
        return Ok(PasswordlessOutcome::Throttled { wait });
    }
    let Some(challenge) = services
        .store
        .take_challenge(ceremony, Ceremony::Passwordless)
        .await?
    else {
        return Ok(PasswordlessOutcome::Refused);
    };
    let state: DiscoverableAuthentication = from_json(&challenge.state)?;
    let user = match verify_passwordless(services, webauthn, credential, state).await? {
        Some(user) => user,
        None => {
            tracing::info!(event = "passkey_failed", address = client.address());
            let throttle = services.config.throttle;
            services
                .store
                .record_failure(&address_key, storage::now(), &throttle.address)
                .await?;
            return Ok(PasswordlessOutcome::Refused);
        }
    };
    if let Some(wait) = factors::throttled(services, client, &user).await? {
        return Ok(PasswordlessOutcome::Throttled { wait });
    }
    tracing::info!(event = "passkey_login", user = %user.username, address = client.address());
    Ok(PasswordlessOutcome::LoggedIn(user))
}

/// The enabled user whose passkey signed `credential`, once verified.
async fn verify_passwordless(
    services: &Services,
    webauthn: &Webauthn,
    credential: &PublicKeyCredential,
    state: DiscoverableAuthentication,
) -> Result<Option<User>, CoreError> {
    let Ok((handle, credential_id)) = webauthn.identify_discoverable_authentication(credential)
    else {
        return Ok(None);
    };
    let Some(stored) = services.store.passkey(&passkey_key(credential_id)).await? else {
        return Ok(None);
    };
    if Uuid::parse_str(&stored.handle).ok() != Some(handle) {
        return Ok(None);
    }
    let passkey: Passkey = from_json(&stored.credential)?;
    let Ok(result) = webauthn.finish_discoverable_authentication_v2(credential, state, &passkey)
    else {
        return Ok(None);
    };
    let Some(user) = services
        .store
        .user_by_username(&stored.username)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    record_use(services, stored, &result).await?;
    Ok(Some(user))
}

/// Keeps the passkey's new sign counter (and backup state) and when it was used.
async fn record_use(
    services: &Services,
    stored: StoredPasskey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), CoreError> {
    let mut passkey: Passkey = from_json(&stored.credential)?;
    let changed = passkey.update_credential(result) == Some(true);
    let credential = if changed {
        Some(to_json(&passkey)?)
    } else {
        None
    };
    services
        .store
        .passkey_used(&stored.id, credential, storage::now())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Laptop ").unwrap(), "Laptop");
        assert!(check_name(" ").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\u{0}b").is_err());
        assert_eq!(check_name(&"é".repeat(64)).unwrap().chars().count(), 64);
    }
}
