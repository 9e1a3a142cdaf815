use std::sync::Arc;

use storage::{StorageError, Store};

use super::csrf_key::CsrfKey;
use super::metrics::Metrics;
use crate::config::Config;
use crate::core::Services;
use crate::core::hashing::HashingError;

/// What the adapters hold: the use cases' [`Services`], and the HTTP layer's own
/// CSRF key and metrics. One `Arc`; it derefs to [`Services`], so
/// `state.store` and `state.config` read as before.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub services: Services,
    pub csrf_key: CsrfKey,
    pub metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Hashing(#[from] HashingError),
    #[error("cannot load the shared secret from the store: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Seal(String),
}

impl AppState {
    /// The state for `config`. The CSRF key comes from the configured secret, or
    /// else from the store, where the first node to start generates it; likewise
    /// the key that seals second factors (see [`crate::core::seal`]), which must
    /// open the store's.
    /// The state on the store `config` names.
    pub async fn open(config: Config) -> Result<Self, StateError> {
        let store = Store::open(&config.db_url, config.db_credentials.as_ref()).await?;
        Self::new(store, config).await
    }

    pub async fn new(store: Store, config: Config) -> Result<Self, StateError> {
        let secret = match &config.secret_key {
            Some(secret) => secrecy::ExposeSecret::expose_secret(secret).to_owned(),
            None => store.shared_secret("csrf").await?,
        };
        // Second-factor secrets: sealed under the operator's key (checked, and
        // those an older version stored in clear sealed now) before anything runs.
        let seal = crate::core::seal::load(&store, &config).await?;
        match crate::core::seal::prepare(&store, &seal).await? {
            Ok(prepared) if prepared.sealed_now > 0 => tracing::info!(
                sealed = prepared.sealed_now,
                "sealed the second-factor secrets an older version stored in clear"
            ),
            Ok(_) => {}
            Err(refusal) => return Err(StateError::Seal(refusal)),
        }
        Ok(Self(Arc::new(Shared {
            services: Services::new(store, config, seal)?,
            csrf_key: CsrfKey::from_secret(&secret),
            metrics: Metrics::default(),
        })))
    }

    pub fn csrf_key(&self) -> &CsrfKey {
        &self.0.csrf_key
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0.services
    }
}
