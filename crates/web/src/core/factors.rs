//! Second factors: TOTP (RFC 6238 through `totp-rs`: SHA-1, 6 digits, 30-second
//! steps, ±1 step) with ten single-use recovery codes, and the login in two steps.
//!
//! After a right password, a user with a confirmed TOTP gets a *pending login*
//! (its own cookie, five minutes, bound to that browser), not a session: nothing
//! but the second step reads it. A code is accepted once — the store takes its time
//! step only if it is later than the last one used — and wrong codes count against
//! the same throttle as wrong passwords. A session records the factors it used
//! (`pwd`, then `otp` or `recovery`; or `passkey`, see [`super::passkeys`]);
//! `/auth?mfa=1` asks for a second one.

use domain::{User, Username};
use rand::RngCore;
use sha2::{Digest, Sha256};
use storage::{PendingLogin, PendingToken};
use totp_rs::{Algorithm, Secret, TOTP};

use super::client::ClientInfo;
use super::error::CoreError;
use super::seal;
use super::services::Services;

pub const PASSWORD: &str = "pwd";
pub const OTP: &str = "otp";
pub const RECOVERY: &str = "recovery";

/// The answer to a wrong, used or expired code.
pub const OTP_WRONG: &str = "That code is not right, or was used already.";
/// How long the second step may wait after the password.
pub const PENDING_LIFETIME: i64 = 300;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
const STEP: u64 = 30;
const DIGITS: usize = 6;

/// Whether `factors` include a second factor.
pub fn has_second_factor(factors: &[String]) -> bool {
    factors.iter().any(|f| f != PASSWORD)
}

fn totp(secret_base32: &str) -> Result<TOTP, CoreError> {
    let bytes = Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .map_err(|e| CoreError::Internal(format!("stored TOTP secret: {e:?}")))?;
    TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP, bytes)
        .map_err(|e| CoreError::Internal(format!("TOTP: {e}")))
}

/// The time step of a 6-digit `code` within ±1 step of `now`, if it is right.
pub fn matching_step(secret_base32: &str, code: &str, now: i64) -> Result<Option<i64>, CoreError> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret_base32)?;
    let now = u64::try_from(now).unwrap_or(0);
    let step = now / STEP;
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = totp.generate(candidate * STEP);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(i64::try_from(candidate).ok());
        }
    }
    Ok(None)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an enrolment shows: the secret in text, the `otpauth://` URI and its QR
/// code as SVG (rendered here: no script, no request to anyone).
#[derive(Debug, Clone)]
pub struct TotpSetup {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

/// The setup screen for `user`'s enrolment in progress, from its stored secret.
pub fn setup_of(services: &Services, user: &User, secret: &str) -> TotpSetup {
    let issuer = services
        .config
        .public_url
        .host_str()
        .unwrap_or("gatehouse")
        .to_owned();
    let label = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let uri = format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        label(&issuer),
        label(user.username.as_str()),
        label(&issuer),
    );
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    // Inline in the page: the XML prologue has no place there.
    let qr_svg = match qr_svg.find("<svg") {
        Some(start) => qr_svg[start..].to_owned(),
        None => String::new(),
    };
    TotpSetup {
        secret: secret.to_owned(),
        uri,
        qr_svg,
    }
}

/// A user's TOTP enrolment with its secret opened.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The base32 secret the app holds.
    pub secret: String,
    pub confirmed: bool,
}

/// `username`'s TOTP enrolment, confirmed or not, its secret unsealed.
pub async fn enrolment(
    services: &Services,
    username: &Username,
) -> Result<Option<Enrolment>, CoreError> {
    let Some(stored) = services.store.totp(username).await? else {
        return Ok(None);
    };
    let seal = services
        .seal
        .as_ref()
        .map_err(|why| CoreError::Internal(why.clone()))?;
    Ok(Some(Enrolment {
        secret: seal.open(username, &stored.secret)?,
        confirmed: stored.confirmed,
    }))
}

/// Why TOTP cannot be set up here, if it cannot (see [`super::seal`]).
pub fn totp_unavailable(services: &Services) -> Option<&str> {
    services.seal.as_ref().err().map(String::as_str)
}

/// Starts an enrolment (a fresh secret each time, sealed in the store), or `None`
/// when the user has a confirmed one already or TOTP is off
/// ([`totp_unavailable`]).
pub async fn begin_totp(services: &Services, user: &User) -> Result<Option<TotpSetup>, CoreError> {
    let Ok(seal) = &services.seal else {
        return Ok(None);
    };
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let secret = Secret::Raw(bytes.to_vec()).to_encoded().to_string();
    let sealed = seal.seal(&user.username, &secret)?;
    if !services.store.begin_totp(&user.username, &sealed).await? {
        return Ok(None);
    }
    Ok(Some(setup_of(services, user, &secret)))
}

/// The outcome of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right: the factor it proved (`otp` or `recovery`), and for a confirmed
    /// enrolment the recovery codes to show once.
    Accepted {
        factor: &'static str,
        recovery_codes: Vec<String>,
    },
    /// Wrong, used already, or nothing to check it against.
    Refused,
    Throttled {
        wait: i64,
    },
}

/// Confirms `user`'s enrolment with a code from the app: the factor counts from
/// now on, and ten recovery codes are made (only their hashes kept).
pub async fn confirm_totp(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    code: &str,
) -> Result<CodeOutcome, CoreError> {
    let Some(enrolment) = enrolment(services, &user.username).await? else {
        return Ok(CodeOutcome::Refused);
    };
    if enrolment.confirmed {
        return Ok(CodeOutcome::Refused);
    }
    if let Some(wait) = throttled(services, client, user).await? {
        return Ok(CodeOutcome::Throttled { wait });
    }
    let Some(step) = matching_step(&enrolment.secret, code, storage::now())? else {
        failed(
            services,
            client,
            user,
            "totp_confirm_failed",
            Attempt::Enrolment,
        )
        .await?;
        return Ok(CodeOutcome::Refused);
    };
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    if !services
        .store
        .confirm_totp(&user.username, step, hashes)
        .await?
    {
        return Ok(CodeOutcome::Refused);
    }
    tracing::info!(event = "totp_enrolled", user = %user.username, address = client.address());
    super::message::notify(
        &services.store,
        services.config.mail.enabled(),
        user,
        "A second factor was added to your account",
        &format!(
            "An authenticator app was set up as a second factor from {}",
            client.address()
        ),
    )
    .await;
    Ok(CodeOutcome::Accepted {
        factor: OTP,
        recovery_codes: codes,
    })
}

/// Checks a second factor at login: a TOTP code (once per time step) or a
/// recovery code (once). Wrong ones are throttled per user, whatever the
/// password step did ([`factor_throttle_key`]).
pub async fn check_code(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    code: &str,
) -> Result<CodeOutcome, CoreError> {
    let Some(enrolment) = enrolment(services, &user.username)
        .await?
        .filter(|t| t.confirmed)
    else {
        return Ok(CodeOutcome::Refused);
    };
    if let Some(wait) = throttled(services, client, user).await? {
        return Ok(CodeOutcome::Throttled { wait });
    }
    let accepted = if let Some(step) = matching_step(&enrolment.secret, code, storage::now())? {
        let fresh = services.store.use_totp_step(&user.username, step).await?;
        if !fresh {
            tracing::warn!(event = "otp_replayed", user = %user.username, address = client.address());
        }
        fresh.then_some(OTP)
    } else {
        let used = services
            .store
            .use_recovery_code(&user.username, &recovery_hash(code))
            .await?;
        if used {
            tracing::info!(event = "recovery_code_used", user = %user.username, address = client.address());
        }
        used.then_some(RECOVERY)
    };
    match accepted {
        Some(factor) => {
            succeeded(services, user).await?;
            Ok(CodeOutcome::Accepted {
                factor,
                recovery_codes: Vec::new(),
            })
        }
        None => {
            failed(services, client, user, "otp_failed", Attempt::Login).await?;
            Ok(CodeOutcome::Refused)
        }
    }
}

/// The second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondFactors {
    /// A confirmed authenticator app (and its recovery codes).
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: usize,
}

impl SecondFactors {
    /// Whether a login needs a second step.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// What a session that used the password alone is told when it tries to change
/// the second factors of a user who has one.
pub const SECOND_FACTOR_NEEDED: &str = "This session was opened with the password alone: log in \
     again with your second factor to change your second factors.";

/// Whether a login that used `used` may add or remove second factors of a user
/// who has `has`: a user with none may (that is how the first one is set up), a
/// user with one only from a login that used one — else a session opened before
/// the set-up, with the password alone, could add its own factor (and be counted
/// as having used it) or remove the user's.
pub fn may_change_factors(has: &SecondFactors, used: &[String]) -> bool {
    !has.any() || has_second_factor(used)
}

/// The second factors `username` has.
pub async fn second_factors(
    services: &Services,
    username: &Username,
) -> Result<SecondFactors, CoreError> {
    let listed = list(services, username).await?;
    Ok(SecondFactors {
        totp: listed.totp.is_some_and(|t| t.confirmed),
        passkeys: listed.passkeys.len(),
    })
}

/// A user's second factors as their security page lists them.
#[derive(Debug, Clone)]
pub struct FactorList {
    /// The authenticator app, confirmed or still being set up.
    pub totp: Option<storage::Totp>,
    pub passkeys: Vec<storage::StoredPasskey>,
}

/// `username`'s authenticator app and passkeys.
pub async fn list(services: &Services, username: &Username) -> Result<FactorList, CoreError> {
    Ok(FactorList {
        totp: services.store.totp(username).await?,
        passkeys: services.store.passkeys(username).await?,
    })
}

/// The pending login `token` names, if it is still live.
pub async fn pending_login(
    services: &Services,
    token: &str,
) -> Result<Option<PendingLogin>, CoreError> {
    let Some(token) = PendingToken::parse(token) else {
        return Ok(None);
    };
    Ok(services.store.pending_login(&token).await?)
}

/// The enabled user of `pending`; a pending login of a user disabled or deleted
/// since is ended.
pub async fn pending_user(
    services: &Services,
    pending: &PendingLogin,
) -> Result<Option<User>, CoreError> {
    let user = services
        .store
        .user_by_username(&pending.username)
        .await?
        .filter(|u| !u.disabled);
    if user.is_none() {
        services.store.delete_pending_login(&pending.id).await?;
    }
    Ok(user)
}

/// Ends `pending` for the second step that used it: `false` when a racing second
/// step ended it first (of two, one wins).
pub async fn end_pending(services: &Services, pending: &PendingLogin) -> Result<bool, CoreError> {
    Ok(services.store.delete_pending_login(&pending.id).await?)
}

/// Removes `username`'s second factors and ends every session and token of
/// theirs (a reset by an admin or the CLI, or the user's own removal, which keeps
/// `keep`). `false` when there were none.
pub async fn remove_totp(
    services: &Services,
    username: &Username,
    by: &str,
    address: &str,
) -> Result<bool, CoreError> {
    let removed = services.store.remove_totp(username).await?;
    if removed {
        tracing::info!(event = "factors_removed", user = %username, by, address);
    }
    Ok(removed)
}

/// Starts the second step for `user` after a right password.
pub async fn begin_pending(
    services: &Services,
    user: &User,
    remember: bool,
    next: Option<String>,
) -> Result<(PendingToken, PendingLogin), CoreError> {
    Ok(services
        .store
        .create_pending_login(&user.username, remember, next, PENDING_LIFETIME)
        .await?)
}

/// The counter of `username`'s wrong second factors. Keyed by the user, not the
/// email the password step used, and never cleared by a right password: whoever
/// is guessing the code already knows the password, and could otherwise log in
/// again between guesses (from a new address each time) to start afresh.
pub fn factor_throttle_key(username: &Username) -> String {
    format!("factor:{username}")
}

/// Seconds `user`'s second step must wait, if any: their wrong second factors,
/// or this client address's failures.
pub(crate) async fn throttled(
    services: &Services,
    client: &ClientInfo,
    user: &User,
) -> Result<Option<i64>, CoreError> {
    let now = storage::now();
    let store = &services.store;
    let wait = store
        .throttle_wait(&factor_throttle_key(&user.username), now)
        .await?
        .max(
            store
                .throttle_wait(&format!("address:{}", client.address()), now)
                .await?,
        );
    Ok((wait > 0).then_some(wait))
}

/// Where a wrong second factor was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// At a login, after the right password: repeated failures mean someone
    /// knows it, and the user is told by mail.
    Login,
    /// Confirming an enrolment, by the logged-in user themselves.
    Enrolment,
}

/// Counts a wrong second factor against `user` and the client's address; at a
/// login, the failure that starts the waits also mails the user a notice.
pub(crate) async fn failed(
    services: &Services,
    client: &ClientInfo,
    user: &User,
    event: &'static str,
    attempt: Attempt,
) -> Result<(), CoreError> {
    tracing::info!(event, user = %user.username, address = client.address());
    let throttle = services.config.throttle;
    let now = storage::now();
    let failures = services
        .store
        .record_failure(&factor_throttle_key(&user.username), now, &throttle.factor)
        .await?;
    services
        .store
        .record_failure(
            &format!("address:{}", client.address()),
            now,
            &throttle.address,
        )
        .await?;
    if attempt == Attempt::Login && failures == throttle.factor.free_failures {
        tracing::warn!(event = "second_factor_guessed", user = %user.username, address = client.address(), failures);
        super::message::notify(
            &services.store,
            services.config.mail.enabled(),
            user,
            "Someone who knows your password is trying to log in",
            &format!(
                "Your password was given right, then the second factor wrong {failures} times, \
                 most recently from {}: whoever did it knows your password",
                client.address()
            ),
        )
        .await;
    }
    Ok(())
}

/// A right second factor: `user`'s count of wrong ones starts again.
pub(crate) async fn succeeded(services: &Services, user: &User) -> Result<(), CoreError> {
    let key = factor_throttle_key(&user.username);
    if services
        .store
        .throttle_status(&key, storage::now())
        .await?
        .is_some()
    {
        services.store.clear_failures(&key).await?;
    }
    Ok(())
}

/// `abcde-fghij`: 50 random bits from an alphabet without look-alikes.
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The stored form of a recovery code: SHA-256 of its letters and digits, so
/// case, spaces and the dash do not matter.
fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// `gatehouse factors reseal`: every TOTP secret moved to `new` from `old` — or,
/// without one, from the key a development gatehouse kept in its store — with an
/// audit line.
pub async fn reseal(
    services: &Services,
    old: Option<seal::FactorSeal>,
    new: &seal::FactorSeal,
) -> Result<Result<seal::Resealed, String>, CoreError> {
    let old = match old {
        Some(old) => old,
        None => seal::development_seal(&services.store).await?,
    };
    let done = seal::reseal(&services.store, Some(&old), new).await?;
    if let Ok(done) = &done {
        tracing::info!(
            event = "factors_resealed",
            moved = done.moved,
            current = done.current,
            key = new.id()
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_and_only_then() {
        // RFC 6238's SHA-1 test secret, "12345678901234567890".
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        // RFC 6238 appendix B: at T = 59 the 8-digit code is 94287082; 6 digits: 287082.
        assert_eq!(matching_step(&secret, "287082", 59).unwrap(), Some(1));
        assert_eq!(matching_step(&secret, "287 082", 80).unwrap(), Some(1));
        assert_eq!(matching_step(&secret, "287082", 200).unwrap(), None);
        for bad in ["", "28708", "2870822", "abcdef", "287083"] {
            assert_eq!(matching_step(&secret, bad, 59).unwrap(), None, "{bad}");
        }
    }

    #[test]
    fn recovery_codes_are_random_and_forgiving_in_form() {
        let a = recovery_code();
        assert_eq!(a.len(), 11);
        assert_ne!(a, recovery_code());
        assert_eq!(
            recovery_hash(&a),
            recovery_hash(&a.to_uppercase().replace('-', " "))
        );
    }
}
