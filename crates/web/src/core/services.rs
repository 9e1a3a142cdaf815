use std::sync::Arc;

use domain::{GroupName, HashParams};
use storage::Store;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

use super::cache::SessionCache;
use super::error::CoreError;
use super::hashing::{Hashing, HashingError};
use super::health::StoreHealth;
use super::seal::FactorSeal;
use crate::config::{Config, HashingPolicy, MailSettings, MailTransport};

/// What every use case can reach: the store, the settings, the hashing pool and
/// the session cache. One `Arc`: cloned per request, never per field.
#[derive(Clone)]
pub struct Services(Arc<Shared>);

/// The fields of [`Services`], reached through `Deref`.
pub struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    pub hashing: Hashing,
    /// Live sessions in memory for `/auth`; see [`super::cache`].
    pub sessions: SessionCache,
    /// Whether the store is known to be down; see [`super::health`].
    pub health: StoreHealth,
    /// The WebAuthn relying party, or why passkeys are off; see [`super::passkeys`].
    pub passkeys: Result<Webauthn, String>,
    /// The key that seals TOTP secrets, or why TOTP is off; see [`super::seal`].
    pub seal: Result<FactorSeal, String>,
}

impl Services {
    pub fn new(
        store: Store,
        config: Config,
        seal: Result<FactorSeal, String>,
    ) -> Result<Self, HashingError> {
        Ok(Self(Arc::new(Shared {
            seal,
            hashing: Hashing::new(&config.hashing)?,
            sessions: SessionCache::default(),
            health: StoreHealth::default(),
            passkeys: relying_party(&config.public_url),
            store,
            config: Arc::new(config),
        })))
    }
}

impl Services {
    /// [`Services::for_cli`] on the store at `url`.
    pub async fn open_for_cli(
        url: &str,
        credentials: Option<&storage::DbCredentials>,
        admin_group: GroupName,
        params: HashParams,
    ) -> Result<Self, CoreError> {
        let store = Store::open(url, credentials).await?;
        Ok(Self::for_cli(store, admin_group, params)?)
    }

    /// What the command line's use cases reach: `store`, the admins' group,
    /// the scrypt cost of the hashes it makes, one hashing slot, and notices queued
    /// in the store's outbox for the server to send. No second factor is sealed or
    /// opened from here.
    pub fn for_cli(
        store: Store,
        admin_group: GroupName,
        params: HashParams,
    ) -> Result<Self, HashingError> {
        let config = Config {
            admin_group,
            hashing: HashingPolicy {
                params,
                slots: 1,
                queue: 1,
            },
            mail: MailSettings {
                transport: MailTransport::Outbox,
                ..MailSettings::default()
            },
            ..Config::default()
        };
        Self::new(
            store,
            config,
            Err("the command line opens no second factor".to_owned()),
        )
    }
}

impl std::ops::Deref for Services {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The WebAuthn relying party for `public_url`, or why passkeys are off: its host
/// is the RP id and its origin the only one accepted, so it must name a host.
pub fn relying_party(public_url: &Url) -> Result<Webauthn, String> {
    let Some(host) = public_url.domain() else {
        return Err(format!(
            "passkeys need the public URL to name a host, not an address ({public_url})"
        ));
    };
    let origin = Url::parse(&public_url.origin().ascii_serialization())
        .map_err(|e| format!("public URL origin: {e}"))?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| b.rp_name("gatehouse").build())
        .map_err(|e| format!("passkeys for {origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_urls_host_and_origin() {
        let url = Url::parse("https://login.example.com/").unwrap();
        let rp = relying_party(&url).unwrap();
        assert_eq!(
            rp.get_allowed_origins()[0].as_str(),
            "https://login.example.com/"
        );
        let err = relying_party(&Url::parse("http://127.0.0.1:8080/").unwrap()).unwrap_err();
        assert!(err.contains("not an address"), "{err}");
        assert!(relying_party(&Url::parse("http://localhost:8080/").unwrap()).is_ok());
    }
}
