//! Builds the app — the same way for `main` and for the tests — and runs it on a
//! listener until told to stop.

use std::future::Future;
use std::time::Duration;

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::{HeaderValue, StatusCode};
use poem::listener::TcpAcceptor;
use poem::middleware::SetHeader;
use poem::web::Data;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler, post,
};

use crate::error::WebError;
use crate::pages::{self, home, login, logout, password, sessions, signup, user};
use crate::state::AppState;
use crate::{api, auth, csrf, metrics};

/// No inline script, no eval, nothing from other origins, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The whole application as one poem endpoint.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let routes = Route::new()
        .at("/", get(home::get))
        .at("/signup", get(signup::get).post(signup::post))
        .at("/login", get(login::get).post(login::post))
        .at("/logout", post(logout::post))
        .at("/user/:username", get(user::get))
        .at("/signup/check/:field", get(signup::check))
        .at("/account/password", get(password::get).post(password::post))
        .at(sessions::PATH, get(sessions::get))
        .at("/account/sessions/:id/revoke", post(sessions::revoke))
        .at(
            "/account/sessions/revoke-others",
            post(sessions::revoke_others),
        )
        .at(pages::STYLE_PATH, get(pages::style))
        .at(pages::HTMX_PATH, get(pages::htmx))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .nest(api::PREFIX, api::operations(state.clone()))
        .at(api::SPEC_PATH, get(api::spec_json))
        .at(api::DOCS_PATH, get(api::docs))
        .data(state.clone())
        .catch_error(|_: NotFoundError| async { WebError::NotFound.into_response() })
        .catch_error(|_: MethodNotAllowedError| async {
            pages::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This address does not take that kind of request.",
            )
        });
    // CSRF runs inside the auth middleware: only a request that an API token
    // authenticated is exempt, and it must know which requests those are.
    let app = csrf::middleware(routes, state.clone(), pages::csrf_refused);
    let app = pages::htmx_errors(auth::middleware(app, state.clone()));
    let site = api::problem::problem_responses(app).after(|resp| async move {
        let mut resp = resp?;
        // The API docs page brings its own policy.
        if !resp.headers().contains_key("content-security-policy") {
            resp.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
        }
        Ok(resp)
    });
    // `/auth` is asked before every request to every gated app: it goes straight to
    // its handler, past the router, CSRF (it changes nothing), the API's problem
    // rewriting and the CSP hook, keeping what it needs — the auth middleware,
    // error fragments for htmx, the security headers and the metrics.
    let gate = auth::middleware(auth::endpoint::endpoint(state.clone()), state.clone());
    let gate = pages::htmx_errors(gate).with(
        security_headers(&state).overriding("content-security-policy", CONTENT_SECURITY_POLICY),
    );
    let app = AuthFirst {
        gate,
        site: site.with(security_headers(&state)),
    };
    metrics::middleware(app, state.metrics.clone())
}

fn security_headers(state: &AppState) -> SetHeader {
    let headers = SetHeader::new()
        .overriding("x-content-type-options", "nosniff")
        .overriding("referrer-policy", "same-origin")
        .overriding("x-frame-options", "DENY")
        // Fragment or page depends on it: caches must keep them apart.
        .appending("vary", "HX-Request");
    if state.config.secure_cookies() {
        headers.overriding("strict-transport-security", "max-age=31536000")
    } else {
        headers
    }
}

/// Sends `/auth` to `gate` and everything else to `site`.
struct AuthFirst<G, S> {
    gate: G,
    site: S,
}

impl<G: Endpoint, S: Endpoint> Endpoint for AuthFirst<G, S> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.uri().path() == "/auth" {
            self.gate.call(req).await.map(IntoResponse::into_response)
        } else {
            self.site.call(req).await.map(IntoResponse::into_response)
        }
    }
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then lets
/// requests in flight finish (up to 10 s).
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    state.hashing.warm_up();
    state.sessions.spawn_watcher(state.store.clone());
    spawn_session_sweeper(state.clone());
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), shutdown, Some(Duration::from_secs(10)))
        .await
}

/// Operator-only routes, for `--metrics-listen`: Prometheus text at `/metrics`.
/// They have a listener of their own because the public one cannot tell a
/// scraper from the internet: behind a proxy on the same host, every request
/// arrives from loopback.
pub fn operator_app(state: AppState) -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/metrics", get(metrics::get))
        .data(state)
        .map_to_response()
}

/// Serves [`operator_app`] on `listener` until `shutdown` completes.
pub async fn run_operator(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(operator_app(state), shutdown, Some(Duration::from_secs(1)))
        .await
}

/// Deletes ended sessions and stale login throttles once an hour.
fn spawn_session_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(3600));
        loop {
            interval.tick().await;
            let idle = state.config.sessions.idle_timeout;
            let now = storage::now();
            if let Err(err) = state.store.delete_expired_sessions(now, idle).await {
                tracing::warn!(error = %err, "sweeping expired sessions failed");
            }
            let forget = state.config.throttle.address.forget_after;
            if let Err(err) = state.store.sweep_throttles(now, forget).await {
                tracing::warn!(error = %err, "sweeping login throttles failed");
            }
        }
    });
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers.
#[handler]
async fn readyz(Data(state): Data<&AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
