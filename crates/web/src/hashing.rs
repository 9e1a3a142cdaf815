//! Password hashing off the async runtime, with a fixed number of slots and a
//! bounded queue: a login flood gets 503s, never an out-of-memory kill, and `/auth`
//! keeps its threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use domain::{Password, PasswordError, PasswordHash, PasswordHasher, Verdict};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::HashingPolicy;

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every slot is busy and the queue is full.
    #[error("too many password checks in progress")]
    Busy,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("password hashing task failed: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct Hashing {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: PasswordHasher,
    slots: Semaphore,
    /// Callers waiting for or holding a slot.
    in_flight: AtomicUsize,
    limit: usize,
    /// A hash of a random password at the current parameters, made once: an unknown
    /// email is checked against it so that it costs what a wrong password costs.
    dummy: OnceCell<PasswordHash>,
}

impl Hashing {
    pub fn new(policy: &HashingPolicy) -> Result<Self, PasswordError> {
        Ok(Self {
            inner: Arc::new(Inner {
                hasher: PasswordHasher::new(policy.params)?,
                slots: Semaphore::new(policy.slots.max(1)),
                in_flight: AtomicUsize::new(0),
                limit: policy.slots.max(1) + policy.queue,
                dummy: OnceCell::new(),
            }),
        })
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError> {
        let hasher = self.inner.hasher.clone();
        self.run(move || hasher.hash(&password))
            .await?
            .map_err(Into::into)
    }

    pub async fn verify(
        &self,
        password: Password,
        hash: PasswordHash,
    ) -> Result<Verdict, HashingError> {
        let hasher = self.inner.hasher.clone();
        self.run(move || hasher.verify(&password, &hash)).await
    }

    /// Spends the time of a real verification and answers `Invalid`: for an unknown
    /// email, or a password too short to be anyone's.
    pub async fn verify_unknown_user(&self) -> Result<Verdict, HashingError> {
        let dummy = self.dummy_hash().await?;
        let password = Password::parse("not anyone's password")
            .map_err(|e| HashingError::Task(e.to_string()))?;
        self.verify(password, dummy).await?;
        Ok(Verdict::Invalid)
    }

    /// Makes the dummy hash in the background at start-up, so that the first
    /// unknown-email login does not pay for it twice.
    pub fn warm_up(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.dummy_hash().await {
                tracing::warn!(error = %err, "making the dummy password hash failed");
            }
        });
    }

    async fn dummy_hash(&self) -> Result<PasswordHash, HashingError> {
        self.inner
            .dummy
            .get_or_try_init(|| async {
                let random = Password::parse(&format!("{:032x}", rand::random::<u128>()))
                    .map_err(|e| HashingError::Task(e.to_string()))?;
                self.hash(random).await
            })
            .await
            .cloned()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.limit {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingError::Busy);
        }
        // Released on every path, also when the caller gives up and drops us.
        let _in_flight = InFlight(&inner.in_flight);
        let _permit = inner
            .slots
            .acquire()
            .await
            .map_err(|e| HashingError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashingError::Task(e.to_string()))
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
