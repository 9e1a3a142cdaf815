//! The composition root: the one place that knows the route table, the order of
//! the layers, and how the app is served — the same way for `main` and for the
//! tests. Metric route labels come from the same table (and, for the API, from its
//! spec), not from a second list.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::{HeaderValue, Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::middleware::SetHeader;
use poem::web::Data;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler, post,
};

use crate::http::response::Failure;
use crate::http::{AppState, csrf, deadline, identity, metrics, response};
use crate::site::{
    self, admin, email, home, login, logout, passkeys, password, reset, security, sessions, signup,
    user,
};
use crate::{api, gate};

/// No inline script, no eval, nothing from other origins, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The path the gate answers on, before the router.
pub const AUTH_PATH: &str = "/auth";

/// The site's routes, written once: they build the router and name the metric
/// labels.
macro_rules! site_routes {
    ($($path:expr => $endpoint:expr),* $(,)?) => {
        /// Every route pattern of the site, for metric labels.
        const SITE_PATTERNS: &[&str] = &[$($path),*];

        fn site_routes() -> Route {
            Route::new()$(.at($path, $endpoint))*
        }
    };
}

site_routes! {
    "/" => get(home::get),
    "/signup" => get(signup::get).post(signup::post),
    "/login" => get(login::get).post(login::post),
    login::CODE_PATH => get(login::code_get).post(login::code_post),
    reset::FORGOT_PATH => get(reset::forgot_get).post(reset::forgot_post),
    reset::RESET_PATH => get(reset::reset_get).post(reset::reset_post),
    "/logout" => post(logout::post),
    "/user/:username" => get(user::get),
    "/signup/check/:field" => get(signup::check),
    "/account/password" => get(password::get).post(password::post),
    sessions::PATH => get(sessions::get),
    "/account/sessions/:id/revoke" => post(sessions::revoke),
    "/account/sessions/revoke-others" => post(sessions::revoke_others),
    security::PATH => get(security::get),
    email::PATH => get(email::get).post(email::change),
    email::SEND_PATH => post(email::send),
    email::VERIFY_PATH => get(email::link_get).post(email::link_post),
    "/account/security/totp" => post(security::begin),
    passkeys::REGISTER_PATH => post(security::passkey_finish),
    "/account/security/passkeys/begin" => post(security::passkey_begin),
    "/account/security/passkeys/:id/remove" => post(security::passkey_remove),
    passkeys::SECOND_FACTOR_PATH => post(login::passkey_second_finish),
    "/login/code/passkey/begin" => post(login::passkey_second_begin),
    passkeys::PASSWORDLESS_PATH => post(login::passkey_finish),
    "/login/passkey/begin" => post(login::passkey_begin),
    "/account/security/totp/confirm" => post(security::confirm),
    "/account/security/totp/remove" => post(security::remove),
    admin::PATH => get(admin::get),
    "/admin/users/:username/disable" => post(admin::row_change),
    "/admin/users/:username/enable" => post(admin::row_change),
    "/admin/users/:username/revoke" => post(admin::row_change),
    "/admin/users/:username/groups" => post(admin::groups),
    "/admin/users/:username/factors" => post(admin::row_change),
    "/admin/users/:username/reset" => post(admin::row_change),
    "/admin/users/:username/verification" => post(admin::row_change),
    "/admin/users/:username/delete" => get(admin::confirm_delete).post(admin::delete),
    "/admin/invitations" => post(admin::invite),
    "/admin/invitations/:id/revoke" => post(admin::revoke_invitation),
    site::STYLE_PATH => get(site::style),
    site::HTMX_PATH => get(site::htmx),
    site::PASSKEY_JS_PATH => get(site::passkey_js),
    "/healthz" => get(healthz),
    "/readyz" => get(readyz),
    api::SPEC_PATH => get(api::spec_json),
    api::DOCS_PATH => get(api::docs),
    api::SWAGGER_JS_PATH => get(api::swagger_js),
    api::SWAGGER_CSS_PATH => get(api::swagger_css),
    api::DOCS_JS_PATH => get(api::docs_js),
}

/// The API's OpenAPI document (`gatehouse openapi`), from the same service the
/// routes serve.
pub fn api_spec() -> &'static str {
    crate::api::spec()
}

/// The whole application as one poem endpoint.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let routes = site_routes()
        .nest(api::PREFIX, api::operations(state.clone()))
        .data(state.clone())
        .catch_error(|_: NotFoundError| async {
            Failure::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing at this address.",
            )
        })
        .catch_error(|_: MethodNotAllowedError| async {
            Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This address does not take that kind of request.",
            )
        });
    // Inside out: CSRF runs inside the identity middleware (only a request an API
    // token authenticated is exempt, and it must know which those are); failures
    // are rendered outside both — as problems under /api/, as pages elsewhere.
    let site = csrf::middleware(routes, state.clone(), site::csrf_refused);
    // A deadline on every handler (the identity's store read has its own): a
    // stalled store answers 503, not a hang — inside the renderers, so the 503
    // becomes a page or a problem like any other failure.
    let site = deadline::Deadline {
        inner: site,
        health: state.health.clone(),
    };
    let site = identity::middleware(site, state.clone());
    let site = api::problem::problem_responses(site);
    let site = site::error::failures(site).after(|resp| async move {
        let mut resp = resp?;
        if !resp.headers().contains_key("content-security-policy") {
            resp.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
        }
        Ok(resp)
    });
    // `/auth` is asked before every request to every gated app: it goes straight to
    // its handler, past the router, CSRF (it changes nothing) and the renderers,
    // keeping what it needs — the identity middleware, the security headers and
    // the metrics. Its failures are bare statuses.
    let gate = identity::middleware(gate::endpoint(state.clone()), state.clone()).with(
        security_headers(&state).overriding("content-security-policy", CONTENT_SECURITY_POLICY),
    );
    let app = AuthFirst {
        gate,
        site: response::compress_html(site.with(security_headers(&state))),
    };
    metrics::middleware(app, state.metrics().clone(), classify)
}

/// A route pattern split into segments; `:name` and `{name}` match any one segment.
struct Pattern {
    segments: Vec<String>,
    label: String,
}

/// The labels: the site's table, then the API's operations from its spec.
static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let api_paths: Vec<String> = serde_json::from_str::<serde_json::Value>(api::spec())
        .ok()
        .and_then(|spec| {
            spec["paths"].as_object().map(|paths| {
                paths
                    .keys()
                    .map(|p| format!("{}{p}", api::PREFIX))
                    .collect()
            })
        })
        .unwrap_or_default();
    SITE_PATTERNS
        .iter()
        .map(|p| (*p).to_owned())
        .chain(api_paths)
        .map(|pattern| {
            let segments: Vec<String> = pattern.split('/').map(str::to_owned).collect();
            let label = segments
                .iter()
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.clone(),
                })
                .collect::<Vec<_>>()
                .join("/");
            Pattern { segments, label }
        })
        .collect()
});

/// The metric label of a request (its route pattern, so labels stay few), and
/// whether it is a login attempt (counted by outcome).
fn classify(path: &str, method: &Method) -> (&'static str, bool) {
    if path == AUTH_PATH {
        return (AUTH_PATH, false);
    }
    let segments: Vec<&str> = path.split('/').collect();
    let label = PATTERNS
        .iter()
        .find(|p| {
            p.segments.len() == segments.len()
                && p.segments.iter().zip(&segments).all(|(want, got)| {
                    want == got || want.starts_with(':') || want.starts_with('{')
                })
        })
        .map_or("other", |p| p.label.as_str());
    let login = *method == Method::POST
        && (label == "/login" || label.strip_prefix(api::PREFIX) == Some("/sessions"));
    (label, login)
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
        if req.uri().path() == AUTH_PATH {
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
    state.health.spawn_checker(state.store.clone());
    state
        .sessions
        .spawn_watcher(state.store.clone(), state.health.clone());
    crate::core::mail::spawn_sender((*state).clone());
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

/// Deletes ended sessions, dead links and stale login throttles once an hour. The
/// first sweep waits a minute or two (a random part, so nodes started together do
/// not all scan at once): a start serves before it cleans up.
fn spawn_session_sweeper(state: AppState) {
    tokio::spawn(async move {
        let jitter = u64::from(rand::random::<u8>()) * 60 / 255;
        let first = tokio::time::Instant::now() + Duration::from_secs(60 + jitter);
        let mut interval = tokio::time::interval_at(first, Duration::from_secs(3600));
        loop {
            interval.tick().await;
            let idle = state.config.sessions.idle_timeout;
            let now = storage::now();
            if let Err(err) = state.store.delete_expired_sessions(now, idle).await {
                tracing::warn!(error = %err, "sweeping expired sessions failed");
            }
            if let Err(err) = state.store.delete_expired_links(now).await {
                tracing::warn!(error = %err, "sweeping expired links failed");
            }
            // Each counter is kept as long as its own policy remembers it.
            let throttle = state.config.throttle;
            let forget = [throttle.account, throttle.address, throttle.factor]
                .iter()
                .map(|policy| policy.forget_after)
                .max()
                .unwrap_or_default();
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
    match state.store.ping(crate::http::deadline::STORE_WAIT).await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
