use std::sync::Arc;

use storage::Store;

use crate::config::Config;
use crate::hashing::Hashing;

/// What every handler can reach: the store, the settings and the hashing pool.
/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub hashing: Hashing,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Result<Self, domain::PasswordError> {
        Ok(Self {
            hashing: Hashing::new(&config.hashing)?,
            store,
            config: Arc::new(config),
        })
    }
}
