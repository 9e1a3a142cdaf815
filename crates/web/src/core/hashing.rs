//! Password hashing off the async runtime, on a fixed set of threads (the slots)
//! with a bounded queue: a login flood gets 503s, never an out-of-memory kill, and
//! `/auth` keeps its threads.
//!
//! Dedicated threads rather than Tokio's blocking pool: the allocator keeps a freed
//! scrypt buffer in the arena of the thread that used it, so hashing on whichever of
//! up to 512 blocking threads happens to be free grows memory by one scrypt buffer
//! per thread ever used (measured: a flood of 120 logins on 2 slots at 16 MiB each
//! peaked 100 MiB over the base). With `slots` threads, at most `slots` buffers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use domain::{Password, PasswordError, PasswordHash, PasswordHasher, Verdict};
use tokio::sync::OnceCell;

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

type Job = Box<dyn FnOnce() + Send>;

struct Inner {
    hasher: PasswordHasher,
    /// Work for the hashing threads; they stop when the last sender is dropped.
    jobs: mpsc::Sender<Job>,
    /// Jobs queued or running.
    in_flight: Arc<AtomicUsize>,
    limit: usize,
    /// A hash of a random password at the current parameters, made once: an unknown
    /// email is checked against it so that it costs what a wrong password costs.
    dummy: OnceCell<PasswordHash>,
}

impl Hashing {
    pub fn new(policy: &HashingPolicy) -> Result<Self, HashingError> {
        let hasher = PasswordHasher::new(policy.params)?;
        let slots = policy.slots.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..slots {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| HashingError::Task(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                hasher,
                jobs,
                in_flight: Arc::new(AtomicUsize::new(0)),
                limit: slots + policy.queue,
                dummy: OnceCell::new(),
            }),
        })
    }

    /// Hashes running or queued: the queue depth `/metrics` reports.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
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
        // Counted until the job has run (or is dropped unrun), even if the caller
        // gives up waiting: the queue bound is about work, not waiters.
        let counted = InFlight(Arc::clone(&inner.in_flight));
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _counted = counted;
            let _ = done.send(work());
        });
        inner
            .jobs
            .send(job)
            .map_err(|_| HashingError::Task("the hashing threads have stopped".into()))?;
        result
            .await
            .map_err(|_| HashingError::Task("a hashing thread failed".into()))
    }
}

/// Puts the calling hashing thread below request handling (nice ≈ 9): during a
/// login flood the scheduler still runs `/auth` first, and hashing takes the rest.
/// Raising niceness needs no privilege; should it fail, hashing runs as it is.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let Ok(value) = ThreadPriorityValue::try_from(25u8) else {
        return;
    };
    if let Err(err) =
        thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(value))
    {
        tracing::warn!(error = ?err, "cannot lower the hashing threads' priority");
    }
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
