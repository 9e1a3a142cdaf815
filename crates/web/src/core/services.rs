use std::sync::Arc;

use storage::Store;

use super::cache::SessionCache;
use super::hashing::{Hashing, HashingError};
use crate::config::Config;

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
}

impl Services {
    pub fn new(store: Store, config: Config) -> Result<Self, HashingError> {
        Ok(Self(Arc::new(Shared {
            hashing: Hashing::new(&config.hashing)?,
            sessions: SessionCache::default(),
            store,
            config: Arc::new(config),
        })))
    }
}

impl std::ops::Deref for Services {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
