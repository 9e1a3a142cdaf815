//! Bench-only: the floor `/auth` is measured against (`cargo xtask bench`). A bare
//! poem handler that answers every request 200 with the same headers an allowed
//! `/auth` sends, with no session lookup, no middleware, no store.

use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{Response, Server, handler};

#[handler]
fn allowed() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("x-auth-user", "bench")
        .header("remote-user", "bench")
        .header("x-auth-email", "bench@example.com")
        .header("remote-email", "bench@example.com")
        // The bench user is in no group: gatehouse sends the lists empty.
        .header("x-auth-groups", "")
        .header("remote-groups", "")
        .header("cache-control", "no-store")
        .header("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
        .header("x-frame-options", "DENY")
        .header("vary", "HX-Request")
        .finish()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr}/");
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run(allowed)
        .await
}
