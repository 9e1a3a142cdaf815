use std::sync::Arc;

use storage::{StorageError, Store};

use crate::auth::cache::SessionCache;
use crate::config::Config;
use crate::csrf::CsrfKey;
use crate::hashing::Hashing;

/// What every handler can reach: the store, the settings, the hashing pool and the
/// CSRF key. One `Arc`: middleware and `Data` clone it on every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`], reached through `Deref`.
pub struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    pub hashing: Hashing,
    pub csrf_key: CsrfKey,
    /// Live sessions in memory for `/auth`; see [`crate::auth::cache`].
    pub sessions: SessionCache,
    pub metrics: crate::metrics::Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Hashing(#[from] crate::hashing::HashingError),
    #[error("cannot load the shared secret from the store: {0}")]
    Storage(#[from] StorageError),
}

impl AppState {
    /// The state for `config`. The CSRF key comes from the configured secret, or
    /// else from the store, where the first node to start generates it.
    pub async fn new(store: Store, config: Config) -> Result<Self, StateError> {
        let secret = match &config.secret_key {
            Some(secret) => secrecy::ExposeSecret::expose_secret(secret).to_owned(),
            None => store.shared_secret("csrf").await?,
        };
        Ok(Self(Arc::new(Shared {
            hashing: Hashing::new(&config.hashing)?,
            csrf_key: CsrfKey::from_secret(&secret),
            sessions: SessionCache::default(),
            metrics: crate::metrics::Metrics::default(),
            store,
            config: Arc::new(config),
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
