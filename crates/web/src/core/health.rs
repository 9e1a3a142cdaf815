//! Whether the store is known to be down. One task per node asks the store every
//! [`HEALTH_EVERY`] and says here what it learnt, so that a request need not find
//! out for itself by waiting: while the store is down, requests that would read it
//! are answered at once, those already waiting on it are let go the moment it goes
//! down, and the session cache turns itself off ([`super::cache`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use storage::Store;
use tokio::sync::Notify;

/// How often the store is asked, and how long it may take to answer: a store that
/// went away is known to be down within their sum (2 s). The wait is long enough
/// that a busy machine's slow answer is not taken for a dead store (requests would
/// get 503).
pub const HEALTH_EVERY: Duration = Duration::from_millis(500);
pub const HEALTH_WAIT: Duration = Duration::from_millis(1500);

#[derive(Clone, Default)]
pub struct StoreHealth {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    down: AtomicBool,
    went_down: Notify,
}

impl StoreHealth {
    /// Whether the last check found the store not answering.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }

    /// Records what a check found; wakes every waiter of [`went_down`](Self::went_down)
    /// when the store has just gone down.
    pub fn set_down(&self, down: bool) {
        let was = self.inner.down.swap(down, Ordering::AcqRel);
        if down && !was {
            tracing::warn!("the store is not answering: requests that need it get 503 at once");
            self.inner.went_down.notify_waiters();
        } else if was && !down {
            tracing::info!("the store answers again");
        }
    }

    /// Asks `store` every [`HEALTH_EVERY`], for the life of the process, whether it
    /// answers within [`HEALTH_WAIT`].
    pub fn spawn_checker(&self, store: Store) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEALTH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match store.ping(HEALTH_WAIT).await {
                    Ok(()) => health.set_down(false),
                    Err(err) => {
                        if !health.is_down() {
                            tracing::warn!(error = %err, "the store stopped answering");
                        }
                        health.set_down(true);
                    }
                }
            }
        });
    }

    /// Completes when the store is down (at once if it is already).
    pub async fn went_down(&self) {
        loop {
            let notified = self.inner.went_down.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_down() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiters_are_let_go_when_the_store_goes_down() {
        let health = StoreHealth::default();
        assert!(!health.is_down());
        let waiting = tokio::spawn({
            let health = health.clone();
            async move { health.went_down().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        health.set_down(true);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        // Already down: at once.
        tokio::time::timeout(Duration::from_millis(100), health.went_down())
            .await
            .unwrap();
        health.set_down(false);
        assert!(!health.is_down());
    }
}
