use std::fmt;

use scrypt::Scrypt;
use scrypt::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use scrypt::phc::PasswordHash as Phc;

use crate::ValidationError;

/// A password as typed: 8–1024 characters. Longer input is refused before it is
/// hashed, so nobody can make us run scrypt's PBKDF2 over megabytes. `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 1024;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let len = input.chars().count();
        if len < Self::MIN {
            return Err(ValidationError::new(
                "password",
                "A password is at least 8 characters long.",
            ));
        }
        if len > Self::MAX {
            return Err(ValidationError::new(
                "password",
                "A password is at most 1024 characters long.",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid scrypt parameters: {0}")]
    Params(String),
    #[error("stored password hash is not a scrypt PHC string: {0}")]
    Malformed(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// scrypt cost parameters: N = 2^`log_n`, block size `r`, parallelism `p`.
/// Memory per hash is 128 · r · 2^log_n bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl HashParams {
    /// ln=15, r=8, p=3: OWASP's equivalent of ln=17,r=8,p=1 at 32 MiB instead of
    /// 128 MiB, so that a few concurrent logins fit on a 256 MiB edge box.
    pub const DEFAULT: Self = Self {
        log_n: 15,
        r: 8,
        p: 3,
    };

    /// Above this a single hash would need more memory than any box we target has.
    const MAX_MEMORY: u64 = 1 << 30;

    pub fn memory_bytes(&self) -> u64 {
        (128 * u64::from(self.r)) << self.log_n
    }

    fn to_scrypt(self) -> Result<scrypt::Params, PasswordError> {
        if self.log_n >= 32 || self.memory_bytes() > Self::MAX_MEMORY {
            return Err(PasswordError::Params(format!(
                "ln={} r={} needs more than 1 GiB per hash",
                self.log_n, self.r
            )));
        }
        scrypt::Params::new(self.log_n, self.r, self.p)
            .map_err(|e| PasswordError::Params(e.to_string()))
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for HashParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ln={},r={},p={}", self.log_n, self.r, self.p)
    }
}

/// A PHC string `$scrypt$ln=..,r=..,p=..$salt$hash`, checked when constructed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn parse(phc: &str) -> Result<Self, PasswordError> {
        let parsed = Phc::new(phc).map_err(|e| PasswordError::Malformed(e.to_string()))?;
        if parsed.algorithm.as_str() != "scrypt" || parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(PasswordError::Malformed(format!(
                "algorithm {} without salt or hash",
                parsed.algorithm
            )));
        }
        Self::params_of(&parsed)?;
        Ok(Self(phc.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parameters this hash was made with.
    pub fn params(&self) -> Result<HashParams, PasswordError> {
        let parsed = Phc::new(&self.0).map_err(|e| PasswordError::Malformed(e.to_string()))?;
        Self::params_of(&parsed)
    }

    fn params_of(parsed: &Phc) -> Result<HashParams, PasswordError> {
        let params = scrypt::Params::try_from(parsed)
            .map_err(|e| PasswordError::Malformed(e.to_string()))?;
        let params = HashParams {
            log_n: params.log_n(),
            r: params.r(),
            p: params.p(),
        };
        // Refuses hashes whose verification would need absurd memory.
        params.to_scrypt()?;
        Ok(params)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not the password, but it is what an offline attack starts from.
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right; `needs_rehash` when the hash was made with other
    /// parameters than the configured ones.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

/// Hashes and verifies passwords with the configured scrypt parameters. Pure CPU:
/// callers run it off the async runtime.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: HashParams,
    scrypt: Scrypt,
}

impl PasswordHasher {
    pub fn new(params: HashParams) -> Result<Self, PasswordError> {
        Ok(Self {
            params,
            scrypt: Scrypt::from(params.to_scrypt()?),
        })
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    pub fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordError> {
        let phc = self
            .scrypt
            .hash_password(password.expose().as_bytes())
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// Checks `password` against `hash`, using the parameters stored in the hash.
    pub fn verify(&self, password: &Password, hash: &PasswordHash) -> Verdict {
        let Ok(parsed) = Phc::new(hash.as_str()) else {
            return Verdict::Invalid;
        };
        match self
            .scrypt
            .verify_password(password.expose().as_bytes(), &parsed)
        {
            Ok(()) => Verdict::Valid {
                needs_rehash: hash.params().ok() != Some(self.params),
            },
            Err(_) => Verdict::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams {
        log_n: 4,
        r: 8,
        p: 1,
    };

    fn password(s: &str) -> Password {
        Password::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn password_length_is_bounded_in_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(1024)).is_ok());
        assert!(Password::parse(&"a".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", password("hunter22")),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn hash_is_phc_and_verifies() -> Result<(), PasswordError> {
        let hasher = PasswordHasher::new(FAST)?;
        let hash = hasher.hash(&password("correct horse"))?;
        assert!(
            hash.as_str().starts_with("$scrypt$ln=4,r=8,p=1$"),
            "{}",
            hash.0
        );
        assert_eq!(PasswordHash::parse(hash.as_str())?, hash);
        assert_eq!(
            hasher.verify(&password("correct horse"), &hash),
            Verdict::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher.verify(&password("correct horsE"), &hash),
            Verdict::Invalid
        );
        Ok(())
    }

    #[test]
    fn other_parameters_verify_but_need_rehash() -> Result<(), PasswordError> {
        let old = PasswordHasher::new(FAST)?.hash(&password("correct horse"))?;
        let hasher = PasswordHasher::new(HashParams { log_n: 5, ..FAST })?;
        assert_eq!(old.params()?, FAST);
        assert_eq!(
            hasher.verify(&password("correct horse"), &old),
            Verdict::Valid { needs_rehash: true }
        );
        Ok(())
    }

    #[test]
    fn default_parameters_are_the_specified_ones() {
        assert_eq!(HashParams::default().to_string(), "ln=15,r=8,p=3");
        assert_eq!(HashParams::default().memory_bytes(), 32 << 20);
    }

    #[test]
    fn malformed_and_monstrous_hashes_are_refused() {
        assert!(PasswordHash::parse("plaintext").is_err());
        assert!(PasswordHash::parse("$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA").is_err());
        // ln=30 would need 128 GiB to verify.
        assert!(
            PasswordHash::parse(
                "$scrypt$ln=30,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"
            )
            .is_err()
        );
        assert!(PasswordHasher::new(HashParams { log_n: 40, ..FAST }).is_err());
    }
}
