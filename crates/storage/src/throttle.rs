//! Failed-login counters, in the store so that restarts and other nodes see them.
//! One record per key (`throttle:⟨account:…⟩`, `throttle:⟨address:…⟩`), read and
//! written by record id.
//!
//! The policy is the caller's ([`ThrottlePolicy`]): a few free failures, then each
//! failure blocks the key for twice as long as the one before (2, 4, 8 … s), up
//! to a cap. A
//! stranger can delay a victim's logins by at most the cap, never lock them out.

use surrealdb::types::{RecordId, SurrealValue};

use crate::store::retry_conflicts;
use crate::{StorageError, Store};

/// How failures turn into delays for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before the first delay.
    pub free_failures: i64,
    /// The longest delay, in seconds.
    pub max_delay: i64,
    /// Seconds without a failure after which the count starts again.
    pub forget_after: i64,
}

impl ThrottlePolicy {
    /// The delay after the `failures`-th failure: 0 while free, then 2, 4, 8 … s,
    /// capped. (Times are whole seconds, so a delay of d s lasts between d−1 and d.)
    pub fn delay(&self, failures: i64) -> i64 {
        let over = failures - self.free_failures;
        if over <= 0 {
            return 0;
        }
        let doubled = 1_i64.checked_shl(u32::try_from(over).unwrap_or(u32::MAX).min(62));
        doubled.unwrap_or(i64::MAX).min(self.max_delay)
    }
}

#[derive(Debug, SurrealValue)]
struct ThrottleRecord {
    failures: i64,
    last_failure: i64,
    blocked_until: i64,
}

fn throttle_id(key: &str) -> RecordId {
    RecordId::new("throttle", key)
}

impl Store {
    /// Seconds until `key` may try again (0: now).
    pub async fn throttle_wait(&self, key: &str, now: i64) -> Result<i64, StorageError> {
        Ok(self.throttle_status(key, now).await?.unwrap_or(0))
    }

    /// `None` when `key` has no failures on record (nothing to clear after a
    /// success), else the seconds until it may try again.
    pub async fn throttle_status(&self, key: &str, now: i64) -> Result<Option<i64>, StorageError> {
        let record: Option<ThrottleRecord> = self.db.select(throttle_id(key)).await?;
        Ok(record.map(|r| (r.blocked_until - now).max(0)))
    }

    /// Counts a failure for `key` and returns the number of failures so far.
    pub async fn record_failure(
        &self,
        key: &str,
        now: i64,
        policy: &ThrottlePolicy,
    ) -> Result<i64, StorageError> {
        // Read-modify-write in one statement, so concurrent failures all count.
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "UPSERT $id SET \
                       failures = IF last_failure != NONE AND last_failure + $forget > $now \
                         THEN failures + 1 ELSE 1 END, \
                       last_failure = $now \
                     RETURN AFTER",
                )
                .bind(("id", throttle_id(key)))
                .bind(("now", now))
                .bind(("forget", policy.forget_after))
        )?;
        #[derive(Debug, SurrealValue)]
        struct Count {
            failures: i64,
        }
        let counts: Vec<Count> = response.take(0)?;
        let failures = counts.first().map_or(1, |c| c.failures);
        let delay = policy.delay(failures);
        retry_conflicts!(
            self.db
                .query("UPDATE $id SET blocked_until = $until RETURN NONE")
                .bind(("id", throttle_id(key)))
                .bind(("until", now.saturating_add(delay)))
        )?;
        Ok(failures)
    }

    /// Forgets `key`'s failures (after a successful login).
    pub async fn clear_failures(&self, key: &str) -> Result<(), StorageError> {
        retry_conflicts!(self.db.query("DELETE $id").bind(("id", throttle_id(key))))?;
        Ok(())
    }

    /// Removes counters nobody has failed on for `older_than` seconds.
    pub async fn sweep_throttles(&self, now: i64, older_than: i64) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("DELETE throttle WHERE last_failure + $older <= $now")
                .bind(("now", now))
                .bind(("older", older_than))
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: ThrottlePolicy = ThrottlePolicy {
        free_failures: 3,
        max_delay: 60,
        forget_after: 900,
    };

    #[test]
    fn delays_double_after_the_free_failures_and_are_capped() {
        let delays: Vec<i64> = (1..=12).map(|n| POLICY.delay(n)).collect();
        assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(POLICY.delay(i64::MAX), 60);
    }

    #[tokio::test]
    async fn failures_block_then_clear_and_are_forgotten() {
        let store = Store::memory().await.unwrap();
        let key = "account:alice@example.com";
        for n in 1..=3 {
            assert_eq!(store.record_failure(key, 1000, &POLICY).await.unwrap(), n);
            assert_eq!(store.throttle_wait(key, 1000).await.unwrap(), 0);
        }
        assert_eq!(store.record_failure(key, 1000, &POLICY).await.unwrap(), 4);
        assert_eq!(store.throttle_wait(key, 1000).await.unwrap(), 2);
        store.record_failure(key, 1001, &POLICY).await.unwrap();
        assert_eq!(store.throttle_wait(key, 1001).await.unwrap(), 4);
        assert_eq!(store.throttle_wait(key, 1005).await.unwrap(), 0);
        assert_eq!(store.throttle_wait("account:other", 1001).await.unwrap(), 0);

        // Long after the last failure the count starts again.
        assert_eq!(store.record_failure(key, 5000, &POLICY).await.unwrap(), 1);
        store.clear_failures(key).await.unwrap();
        assert_eq!(store.record_failure(key, 5000, &POLICY).await.unwrap(), 1);
        store.sweep_throttles(9000, 900).await.unwrap();
        assert_eq!(store.throttle_wait(key, 5000).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn concurrent_failures_all_count() {
        let store = Store::memory().await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.record_failure("address:x", 10, &POLICY).await })
            })
            .collect();
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.unwrap().unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=20).collect::<Vec<_>>());
    }
}
