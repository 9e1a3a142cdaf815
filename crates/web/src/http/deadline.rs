//! Bounded waits. A remote SurrealDB that is down or stalled makes its client
//! wait rather than fail; behind a proxy that is a stuck site. So: loading the
//! identity gives up after [`STORE_WAIT`], and every other request after
//! [`REQUEST_WAIT`] — both answered `503` with `Retry-After`, never a hang and
//! never a 500.

use std::time::Duration;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};

use super::response::Failure;

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

/// Answers `503` when `inner` takes longer than [`REQUEST_WAIT`].
pub struct Deadline<E> {
    pub inner: E,
}

impl<E: Endpoint> Endpoint for Deadline<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        match tokio::time::timeout(REQUEST_WAIT, self.inner.call(req)).await {
            Ok(result) => result.map(IntoResponse::into_response),
            Err(_) => {
                tracing::error!(path, "no answer within the request deadline");
                Ok(unavailable())
            }
        }
    }
}
