//! Bounded waits. A remote SurrealDB that is down or stalled makes its client
//! wait rather than fail; behind a proxy that is a stuck site. So: while the store
//! is known to be down ([`StoreHealth`], from a ping every half second)
//! a request that needs it is answered at once, and one already waiting is
//! let go the moment the store goes down; otherwise loading the identity gives up
//! after [`STORE_WAIT`], and every other request after [`REQUEST_WAIT`]. Each is
//! answered `503` with `Retry-After`, never a hang and never a 500.

use std::future::Future;
use std::time::Duration;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};

use super::response::Failure;
use crate::core::health::StoreHealth;

/// How long one store read on the request path may take (the identity, `/readyz`).
pub const STORE_WAIT: Duration = Duration::from_secs(3);
/// How long a whole request may take: a login waiting for a hashing slot, then
/// its store writes, fits well inside.
pub const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// The neutral answer when the store did not answer in time.
pub fn unavailable() -> Response {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The user database is not answering. Try again shortly.",
    )
    .with_retry_after(5)
    .into_response()
}

/// Runs `work` for at most `wait`, and not while the store is known to be down:
/// `None` at once when it is, or as soon as it goes down, or after `wait`.
pub async fn bounded<F: Future>(
    health: &StoreHealth,
    wait: Duration,
    work: F,
) -> Option<F::Output> {
    if health.is_down() {
        return None;
    }
    tokio::select! {
        biased;
        done = tokio::time::timeout(wait, work) => done.ok(),
        () = health.went_down() => None,
    }
}

/// Paths that never touch the store: liveness and the embedded assets answer
/// whatever the store does.
fn needs_no_store(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/assets/")
}

/// Answers `503` when `inner` takes longer than [`REQUEST_WAIT`], or the store is
/// (or goes) down while it runs.
pub struct Deadline<E> {
    pub inner: E,
    pub health: StoreHealth,
}

impl<E: Endpoint> Endpoint for Deadline<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        if needs_no_store(&path) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        // Known down: said once by the health check, not again for every request.
        if self.health.is_down() {
            return Ok(unavailable());
        }
        match bounded(&self.health, REQUEST_WAIT, self.inner.call(req)).await {
            Some(result) => result.map(IntoResponse::into_response),
            None if self.health.is_down() => {
                tracing::warn!(path, "let go: the store went down while the request waited");
                Ok(unavailable())
            }
            None => {
                tracing::error!(path, "no answer within the request deadline");
                Ok(unavailable())
            }
        }
    }
}
