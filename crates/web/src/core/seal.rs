//! Second-factor secrets sealed at rest. A TOTP secret is all an attacker needs
//! to make a user's codes, so the store — and its WAL, and every backup — holds it
//! encrypted: ChaCha20-Poly1305 (ring) under a key derived with HKDF-SHA256 from
//! the operator's secret key, a random nonce each time, the username as associated
//! data (a sealed secret moved to another user's record does not open).
//!
//! Stored form: `sealed:v1:<key id>:<hex of nonce and ciphertext>`. The key id (32
//! bits from the same HKDF, not the key) tells which key sealed a value, so a
//! changed secret key is noticed at start — `gatehouse factors reseal` moves the
//! secrets to the new key — instead of as wrong codes at every login.
//!
//! Without an operator key a key generated once and kept in the store seals them:
//! that protects nothing against a copy of the store, so it is allowed only while
//! the public URL is loopback (development). A public deployment needs
//! `GATEHOUSE_SECRET_KEY` or `--secret-key-file` once any TOTP exists (`prepare`
//! refuses to start otherwise) and offers no TOTP set-up without one.

use domain::Username;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;
use storage::{StorageError, Store};

use super::error::CoreError;
use crate::config::{Config, is_loopback_url};

const PREFIX: &str = "sealed:v1:";
/// The setting that records which key sealed the store's secrets.
const KEY_SETTING: &str = "factor_seal_key";
/// The store-kept secret used without an operator key (loopback only).
const STORE_SECRET: &str = "factor_seal";

/// A key that seals and opens second-factor secrets.
pub struct FactorSeal {
    key: LessSafeKey,
    id: String,
    /// Made from the operator's secret key, not the store-kept one.
    pub from_operator: bool,
}

impl std::fmt::Debug for FactorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorSeal")
            .field("id", &self.id)
            .field("from_operator", &self.from_operator)
            .finish_non_exhaustive()
    }
}

/// Why a stored secret did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "sealed under another secret key ({0}): start with that key, or move the secrets to \
         this one with `gatehouse factors reseal --old-secret-key-file FILE`"
    )]
    OtherKey(String),
    #[error("not sealed")]
    Plain,
    #[error("the sealed value is damaged or belongs to another user")]
    Broken,
}

impl From<SealError> for CoreError {
    fn from(err: SealError) -> Self {
        CoreError::Internal(format!("second-factor secret: {err}"))
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(secret: &[u8], info: &[u8], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"gatehouse factor seal").extract(secret);
    // `expand` and `fill` fail only for lengths over 255 hashes; ours are 4 and 32
    // (and a key left unfilled must never be used).
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .unwrap_or_else(|_| unreachable!("HKDF-SHA256 gives 4 or 32 bytes"));
}

impl FactorSeal {
    /// The key derived from `secret` (the operator's key, or the store-kept one).
    pub fn from_secret(secret: &[u8], from_operator: bool) -> Self {
        let mut key = [0u8; 32];
        derive(secret, b"totp secret v1", &mut key);
        let mut id = [0u8; 4];
        derive(secret, b"key id v1", &mut id);
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a 32-byte ChaCha20-Poly1305 key"));
        Self {
            key,
            id: hex::encode(id),
            from_operator,
        }
    }

    /// Which key this is, as stored beside what it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `plain` (a user's TOTP secret) sealed for `username`.
    pub fn seal(&self, username: &Username, plain: &str) -> Result<String, CoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CoreError::Internal("no randomness for a nonce".into()))?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(username.as_str().as_bytes()),
                &mut sealed,
            )
            .map_err(|_| CoreError::Internal("sealing a second-factor secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}:{}", self.id, hex::encode(out)))
    }

    /// The secret `stored` seals for `username`.
    pub fn open(&self, username: &Username, stored: &str) -> Result<String, SealError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(SealError::Plain)?;
        let (id, body) = rest.split_once(':').ok_or(SealError::Broken)?;
        if id != self.id {
            return Err(SealError::OtherKey(id.to_owned()));
        }
        let bytes = hex::decode(body).map_err(|_| SealError::Broken)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Broken);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Broken)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(username.as_str().as_bytes()), &mut sealed)
            .map_err(|_| SealError::Broken)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Broken)
    }
}

/// Whether `stored` is sealed (by any key).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Why TOTP cannot be set up here: a public URL without an operator key.
pub const NO_OPERATOR_KEY: &str = "Authenticator apps are off: this gatehouse has no secret key \
     of its own to seal their secrets with (its operator sets GATEHOUSE_SECRET_KEY or \
     --secret-key-file).";

/// The seal for `config`: the operator's key, or else (loopback public URLs only)
/// one kept in the store. `Err` says why TOTP is off.
pub async fn load(
    store: &Store,
    config: &Config,
) -> Result<Result<FactorSeal, String>, StorageError> {
    if let Some(secret) = &config.secret_key {
        return Ok(Ok(FactorSeal::from_secret(
            secret.expose_secret().as_bytes(),
            true,
        )));
    }
    if !is_loopback_url(&config.public_url) {
        return Ok(Err(NO_OPERATOR_KEY.to_owned()));
    }
    Ok(Ok(development_seal(store).await?))
}

/// The seal a development gatehouse (no operator key, a loopback public URL) uses:
/// a key kept in the store.
pub async fn development_seal(store: &Store) -> Result<FactorSeal, StorageError> {
    let secret = store.shared_secret(STORE_SECRET).await?;
    Ok(FactorSeal::from_secret(secret.as_bytes(), false))
}

/// What [`prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prepared {
    /// Secrets found in clear (stored by an older version) and sealed now.
    pub sealed_now: usize,
}

/// Checks at start that the store's TOTP secrets open with this gatehouse's key,
/// and seals any stored in clear by an older version. Refuses (the message for the
/// operator) when TOTP secrets exist but no operator key does on a public URL, or
/// when they were sealed under another key.
pub async fn prepare(
    store: &Store,
    seal: &Result<FactorSeal, String>,
) -> Result<Result<Prepared, String>, StorageError> {
    let recorded = store.setting(KEY_SETTING).await?;
    let seal = match seal {
        Ok(seal) => seal,
        Err(_) if !store.any_totp().await? => return Ok(Ok(Prepared::default())),
        Err(_) => {
            return Ok(Err(
                "users have authenticator apps (TOTP), whose secrets must be sealed under a key \
                 of the operator's on a public deployment: set GATEHOUSE_SECRET_KEY or \
                 --secret-key-file (at least 32 characters; every node the same)"
                    .to_owned(),
            ));
        }
    };
    let mut prepared = Prepared::default();
    match recorded {
        Some(recorded) if recorded != seal.id() => {
            return Ok(Err(format!(
                "the second-factor secrets are sealed under another secret key (key id \
                 {recorded}, this one is {}): start with the key they were sealed under, or \
                 move them to this one with `gatehouse factors reseal --old-secret-key-file FILE`",
                seal.id()
            )));
        }
        Some(_) => {}
        // First start with sealing: seal what an older version stored in clear.
        None => {
            for (username, stored) in store.totp_secrets().await? {
                if is_sealed(&stored) {
                    continue;
                }
                let sealed = seal
                    .seal(&username, &stored)
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                if store
                    .replace_totp_secret(&username, &stored, &sealed)
                    .await?
                {
                    prepared.sealed_now += 1;
                }
            }
            store.set_setting(KEY_SETTING, seal.id()).await?;
        }
    }
    Ok(Ok(prepared))
}

/// What [`reseal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resealed {
    /// Moved from the old key (or from clear) to the new one.
    pub moved: usize,
    /// Sealed under the new key already.
    pub current: usize,
}

/// Moves every TOTP secret to `new`, opening those sealed under `old` (the key
/// before a change of secret key); records `new` as the store's key. A secret
/// that opens with neither is reported, and nothing is recorded, so the start
/// check keeps refusing until it is dealt with.
pub async fn reseal(
    store: &Store,
    old: Option<&FactorSeal>,
    new: &FactorSeal,
) -> Result<Result<Resealed, String>, CoreError> {
    let mut done = Resealed::default();
    let mut stuck = Vec::new();
    for (username, stored) in store.totp_secrets().await? {
        let plain = match new.open(&username, &stored) {
            Ok(_) => {
                done.current += 1;
                continue;
            }
            Err(SealError::Plain) => stored.clone(),
            Err(_) => match old.map(|old| old.open(&username, &stored)) {
                Some(Ok(plain)) => plain,
                _ => {
                    stuck.push(username.to_string());
                    continue;
                }
            },
        };
        let sealed = new.seal(&username, &plain)?;
        if store
            .replace_totp_secret(&username, &stored, &sealed)
            .await?
        {
            done.moved += 1;
        }
    }
    if !stuck.is_empty() {
        return Ok(Err(format!(
            "{} secret(s) open with neither key (users: {}); give the key they were sealed \
             under, or reset those users' second factors (`gatehouse user reset-factors`)",
            stuck.len(),
            stuck.join(", ")
        )));
    }
    store.set_setting(KEY_SETTING, new.id()).await?;
    Ok(Ok(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_user() {
        let key = FactorSeal::from_secret(b"a secret of more than thirty-two characters", true);
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let sealed = key.seal(&alice, "JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, key.seal(&alice, "JBSWY3DPEHPK3PXP").unwrap());
        assert_eq!(key.open(&alice, &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert_eq!(key.open(&bob, &sealed), Err(SealError::Broken));
        let other = FactorSeal::from_secret(b"another secret of thirty-two characters", true);
        assert_ne!(other.id(), key.id());
        assert!(matches!(
            other.open(&alice, &sealed),
            Err(SealError::OtherKey(_))
        ));
        assert_eq!(key.open(&alice, "JBSWY3DPEHPK3PXP"), Err(SealError::Plain));
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(key.open(&alice, &tampered), Err(SealError::Broken));
    }

    #[tokio::test]
    async fn start_seals_clear_secrets_and_refuses_another_key_until_resealed() {
        let store = Store::memory().await.unwrap();
        let alice = Username::parse("alice").unwrap();
        assert!(store.begin_totp(&alice, "JBSWY3DPEHPK3PXP").await.unwrap());
        let first = FactorSeal::from_secret(b"the first key, thirty-two characters", true);
        let prepared = prepare(&store, &Ok(first)).await.unwrap().unwrap();
        assert_eq!(prepared.sealed_now, 1);
        let first = FactorSeal::from_secret(b"the first key, thirty-two characters", true);
        let stored = store.totp(&alice).await.unwrap().unwrap().secret;
        assert_eq!(first.open(&alice, &stored).unwrap(), "JBSWY3DPEHPK3PXP");
        // Again: nothing to do.
        let again = prepare(
            &store,
            &Ok(FactorSeal::from_secret(
                b"the first key, thirty-two characters",
                true,
            )),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(again.sealed_now, 0);

        let second = FactorSeal::from_secret(b"the second key, thirty-two characters", true);
        let refused = prepare(&store, &Ok(second)).await.unwrap().unwrap_err();
        assert!(refused.contains("factors reseal"), "{refused}");
        let second = FactorSeal::from_secret(b"the second key, thirty-two characters", true);
        assert!(reseal(&store, None, &second).await.unwrap().is_err());
        let moved = reseal(&store, Some(&first), &second)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            moved,
            Resealed {
                moved: 1,
                current: 0
            }
        );
        let stored = store.totp(&alice).await.unwrap().unwrap().secret;
        assert_eq!(second.open(&alice, &stored).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(prepare(&store, &Ok(second)).await.unwrap().is_ok());

        // No operator key on a public URL: refused while a TOTP exists.
        let refused = prepare(&store, &Err(NO_OPERATOR_KEY.to_owned()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(refused.contains("GATEHOUSE_SECRET_KEY"), "{refused}");
        store.remove_totp(&alice).await.unwrap();
        assert!(
            prepare(&store, &Err(NO_OPERATOR_KEY.to_owned()))
                .await
                .unwrap()
                .is_ok()
        );
    }
}
