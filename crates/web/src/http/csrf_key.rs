//! The key that signs CSRF tokens (see [`super::csrf`]): from the operator's secret
//! or one kept in the store, shared by every node. Its own module so that the
//! state can hold it without importing the CSRF middleware.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of a nonce, and of a salt (128 bits each).
pub(super) const NONCE_HEX: usize = 32;
/// Hex digits of what the MAC covers: the nonce and the salt.
const SIGNED_HEX: usize = 2 * NONCE_HEX;

/// The signing key, from configuration or the store.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    /// Derives the key from a secret of any length.
    pub fn from_secret(secret: &str) -> Self {
        use sha2::Digest;
        let mut key = [0u8; 32];
        key.copy_from_slice(&Sha256::digest(
            format!("gatehouse csrf v1:{secret}").as_bytes(),
        ));
        Self(key)
    }

    /// The MAC of a nonce and salt (`signed` = both, hex, as they stand in the token).
    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(signed.as_bytes());
        mac
    }

    /// A token for `nonce`: the nonce, a fresh salt, then the MAC of both (all hex).
    pub(super) fn sign(&self, nonce: &str) -> String {
        let mut token = String::with_capacity(SIGNED_HEX + 64);
        token.push_str(nonce);
        token.push_str(&new_nonce());
        token.push_str(&hex::encode(self.mac(&token).finalize().into_bytes()));
        token
    }

    /// The nonce `token` was signed for, when the signature is ours (constant-time).
    pub(super) fn genuine<'t>(&self, token: &'t str) -> Option<&'t str> {
        let token = token.trim();
        let (signed, mac) = token.split_at_checked(SIGNED_HEX)?;
        let mac = hex::decode(mac).ok()?;
        self.mac(signed)
            .verify_slice(&mac)
            .is_ok()
            .then(|| &signed[..NONCE_HEX])
    }

    /// Whether `token` is ours and for `nonce`.
    pub(super) fn verify(&self, nonce: &str, token: &str) -> bool {
        self.genuine(token).is_some_and(|signed| signed == nonce)
    }
}

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

pub(super) fn new_nonce() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_nonce_and_the_key() {
        let key = CsrfKey::from_secret("one");
        let nonce = new_nonce();
        let token = key.sign(&nonce);
        assert!(key.verify(&nonce, &token));
        assert!(!key.verify(&new_nonce(), &token));
        assert!(!CsrfKey::from_secret("two").verify(&nonce, &token));
        assert!(!key.verify(&nonce, "zz"));
        assert!(!key.verify(&nonce, ""));
        assert_eq!(key.genuine(&token), Some(nonce.as_str()));
        let other = new_nonce();
        let forged = format!("{other}{}", &token[NONCE_HEX..]);
        assert_eq!(key.genuine(&forged), None, "a MAC moved to another nonce");
        assert_eq!(key.genuine(&token[..SIGNED_HEX]), None);
        // Every token for the same browser differs (a fresh salt), and each is valid.
        let again = key.sign(&nonce);
        assert_ne!(token, again);
        assert!(key.verify(&nonce, &again));
        assert_ne!(token[NONCE_HEX..], again[NONCE_HEX..]);
        assert!(!format!("{key:?}").contains("one"));
    }
}
