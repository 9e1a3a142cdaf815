//! The session cache that keeps `/auth` off the database: a live session and its
//! user, by session id, in memory.
//!
//! Revocation stays immediate: the node that ends a session evicts it itself before
//! answering, and every node watches the `session` and `user` tables (SurrealDB
//! LIVE SELECT) and evicts on any change, so another node's logout, revocation or
//! password change is seen as soon as its notification arrives. While the feed is
//! not running (before it starts, or after it broke) the cache is off and every
//! request reads the store.
//!
//! A loader that read the store before an eviction must not put the stale record
//! back: inserts carry the generation they started from, and any eviction moves
//! the generation on.
//!
//! Entries are keyed by the session id's bytes (the SHA-256 of the token), not its
//! hex string: a lookup on every request then needs no encoding and no allocation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use domain::Username;
use futures::StreamExt;
use storage::Store;
use storage::watch::Change;

use super::Authenticated;
use super::health::StoreHealth;

/// How long subscribing to the change feeds may take.
const SUBSCRIBE_WAIT: Duration = super::health::HEALTH_WAIT;

/// Entries kept at most; past it the cache starts again from empty.
const CAPACITY: usize = 100_000;

/// A session id as bytes: [`storage::SessionToken::session_digest`].
pub type SessionKey = [u8; 32];

/// The key of a session id in hex, as the store and the change feed name it.
fn key_of(id: &str) -> Option<SessionKey> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(id, &mut key).ok().map(|()| key)
}

#[derive(Clone, Default)]
pub struct SessionCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<SessionKey, Arc<Authenticated>>>,
    generation: AtomicU64,
    enabled: AtomicBool,
}

impl SessionCache {
    /// The generation to pass to [`insert`](Self::insert) after reading the store.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &SessionKey) -> Option<Arc<Authenticated>> {
        if !self.inner.enabled.load(Ordering::Acquire) {
            return None;
        }
        self.entries().get(key).cloned()
    }

    /// Caches a session read from the store at `generation`, unless something was
    /// evicted since.
    pub fn insert(&self, generation: u64, found: Arc<Authenticated>) {
        if !self.inner.enabled.load(Ordering::Acquire) {
            return;
        }
        let Some(key) = found.session().and_then(|s| key_of(&s.id)) else {
            return;
        };
        let mut entries = self.entries();
        if self.generation() != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, found);
    }

    pub fn evict(&self, id: &str) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        match key_of(id) {
            Some(key) => {
                entries.remove(&key);
            }
            // Not an id this cache could hold: to be safe, forget everything.
            None => entries.clear(),
        }
    }

    /// Drops every session of `username` (password change, revoke all others).
    pub fn evict_user(&self, username: &Username) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, found| found.user.username != *username);
    }

    pub fn clear(&self) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_enabled(&self, enabled: bool) {
        self.clear();
        self.inner.enabled.store(enabled, Ordering::Release);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Arc<Authenticated>>> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches the store for the life of the process and keeps the cache honest;
    /// the cache is on only while both feeds run and the store answers. A remote
    /// store that goes away may leave a feed silent rather than ended, so the
    /// cache also goes off (fail closed) the moment `health` finds the store down,
    /// until the feeds are subscribed again.
    pub fn spawn_watcher(&self, store: Store, health: StoreHealth) {
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                let subscribe = async { (store.watch("session").await, store.watch("user").await) };
                match tokio::time::timeout(SUBSCRIBE_WAIT, subscribe).await {
                    Ok((Ok(sessions), Ok(users))) if !health.is_down() => {
                        cache.set_enabled(true);
                        tracing::info!("session change feeds running; cache on");
                        cache.follow(&health, sessions, users).await;
                        tracing::warn!(
                            "the session change feed ended or the store stopped answering; cache off until it is back"
                        );
                    }
                    Ok((Ok(_), Ok(_))) => {}
                    Ok((Err(err), _) | (_, Err(err))) => {
                        tracing::warn!(error = %err, "cannot watch sessions; cache off");
                    }
                    Err(_) => {
                        tracing::warn!("the store did not answer the subscription; cache off")
                    }
                }
                cache.set_enabled(false);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn follow(
        &self,
        health: &StoreHealth,
        mut sessions: impl futures::Stream<Item = Change> + Unpin,
        mut users: impl futures::Stream<Item = Change> + Unpin,
    ) {
        loop {
            tokio::select! {
                () = health.went_down() => return,
                change = sessions.next() => match change {
                    Some(Change::Created(_)) => {}
                    Some(Change::Updated(id) | Change::Deleted(id)) => self.evict(&id),
                    Some(Change::Lost) | None => return,
                },
                change = users.next() => match change {
                    Some(Change::Created(_)) => {}
                    // A user's name or email changed: rare, so start again.
                    Some(Change::Updated(_) | Change::Deleted(_)) => self.clear(),
                    Some(Change::Lost) | None => return,
                },
            }
        }
    }
}
