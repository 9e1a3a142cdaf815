//! `spawn_app()`: the app as `main` builds it, on 127.0.0.1:0, with a test-speed
//! scrypt (ln=10, set through configuration like any operator would) and
//! plain-HTTP cookies. `TestApp` hands out `Browser`s — clients with their own
//! cookie jar that do not follow redirects, so tests see every 303.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use domain::HashParams;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use storage::Store;
use tokio::sync::oneshot;
use web::AppState;
use web::config::{Config, HashingPolicy};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    /// The operator listener (`--metrics-listen`), on a port of its own.
    pub metrics_addr: SocketAddr,
    pub store: Store,
    /// The app's state, for what tests set up as the app would (a sealed secret).
    pub state: AppState,
    /// Dropping it stops the server.
    _shutdown: oneshot::Sender<()>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Test configuration: fast hashing, insecure cookies (plain HTTP), given store URL.
pub fn test_config() -> Config {
    Config {
        db_url: "mem://".into(),
        insecure_cookies: true,
        hashing: HashingPolicy {
            params: HashParams {
                log_n: 10,
                r: 8,
                p: 1,
            },
            slots: 2,
            queue: 64,
        },
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config(), Store::memory().await.unwrap()).await
}

pub async fn spawn_app_with(mut config: Config, store: Store) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.listen = addr;
    if config.public_url.host_str() == Some("127.0.0.1") {
        config.public_url = format!("http://{addr}/").parse().unwrap();
    }
    // `http://localhost/`: the site on its name (passkeys need one), at this port.
    if config.public_url.host_str() == Some("localhost") && config.public_url.port().is_none() {
        config.public_url = format!("http://localhost:{}/", addr.port())
            .parse()
            .unwrap();
    }
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    config.metrics_listen = Some(metrics_addr);
    let state = AppState::new(store.clone(), config).await.unwrap();
    tokio::spawn(web::app::run_operator(
        metrics,
        state.clone(),
        std::future::pending(),
    ));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(web::app::run(listener, state.clone(), async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        store,
        state,
        _shutdown: tx,
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The Prometheus text from the operator listener.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_addr);
        let resp = http_get(url).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// A new visitor: an empty cookie jar.
    pub fn browser(&self) -> Browser {
        browser_for(&self.url(""))
    }

    /// A visitor who has signed up (and so is logged in) as `username`.
    pub async fn logged_in(&self, username: &str) -> Browser {
        let browser = self.browser();
        let resp = browser
            .signup(username, &email_of(username), PASSWORD)
            .await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);
        browser
    }

    /// [`TestApp::logged_in`], with the address marked verified in the store (as
    /// `gatehouse user verify-email` does) before the session is first read.
    pub async fn logged_in_verified(&self, username: &str) -> Browser {
        let browser = self.logged_in(username).await;
        let name = domain::Username::parse(username).unwrap();
        assert!(self.store.set_email_verified(&name, true).await.unwrap());
        browser
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A new visitor to the server at `base` (`http://host:port`).
pub fn browser_for(base: &str) -> Browser {
    browser_resolving(base, &[], "127.0.0.1:1".parse().unwrap())
}

/// A new visitor for whom each of `hosts` resolves to `addr`'s IP (the port comes
/// from the URL), as if DNS pointed them at a proxy on this machine.
pub fn browser_resolving(base: &str, hosts: &[&str], addr: SocketAddr) -> Browser {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for host in hosts {
        client = client.resolve(host, addr);
    }
    Browser {
        base: base.to_owned(),
        client: client.build().unwrap(),
        jar: Arc::default(),
        csrf: Arc::default(),
    }
}

/// A plain HTTP client for the tests: never through a proxy named by
/// `HTTP_PROXY`/`http_proxy` in the environment (everything here is on loopback).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `GET url` with [`http_client`].
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Response {
    http_client().get(url).send().await.unwrap()
}

/// `/auth` as nginx asks it (`X-Original-URL`), with `browser`'s cookies.
pub async fn auth_as_nginx(app: &TestApp, browser: &Browser, query: &str) -> Page {
    let request = http_client()
        .get(app.url(&format!("/auth{query}")))
        .header("cookie", browser.cookie_header())
        .header("x-original-url", "https://app.example.com/");
    Browser::page(request.send().await.unwrap()).await
}

pub fn email_of(username: &str) -> String {
    format!("{username}@example.com")
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_redirect_to(&self, location: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        assert_eq!(self.header("location"), Some(location));
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "{text:?} not in page:\n{}",
            self.body
        );
    }

    /// The body as JSON (panics with the body when it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts an RFC 9457 problem with `status`, and returns it.
    #[track_caller]
    pub fn problem(&self, status: StatusCode) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16(), "{problem}");
        assert_eq!(problem["type"], "about:blank");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        problem
    }

    /// The value this response sets for cookie `name` (not a removal).
    pub fn cookie_value(&self, name: &str) -> Option<&str> {
        self.set_cookies().into_iter().find_map(|cookie| {
            let value = cookie.strip_prefix(name)?.strip_prefix('=')?;
            let value = value.split(';').next().unwrap_or_default();
            (!value.is_empty() && !cookie.contains("Max-Age=0")).then_some(value)
        })
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// A client that keeps cookies as a browser would (by name, removed by
/// `Max-Age=0`) and does not follow redirects. The jar is ours rather than
/// reqwest's so the tests use reqwest with no features beyond those SurrealDB
/// already turns on: the test build then shares its compiled dependencies with
/// the server build.
pub struct Browser {
    base: String,
    pub client: reqwest::Client,
    jar: Arc<Mutex<Vec<(String, String)>>>,
    /// The CSRF token last seen in a form (hidden `csrf` field).
    csrf: Arc<Mutex<Option<String>>>,
}

impl Browser {
    /// The server this visitor talks to (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same visitor (same cookies) talking to another server.
    pub fn at(&self, base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: self.client.clone(),
            jar: Arc::clone(&self.jar),
            csrf: Arc::clone(&self.csrf),
        }
    }

    pub async fn page(resp: reqwest::Response) -> Page {
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let cookies = self.cookie_header();
        let request = if cookies.is_empty() {
            request
        } else {
            request.header("cookie", cookies)
        };
        let page = Self::page(request.send().await.unwrap()).await;
        if let Some(token) = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            *self.csrf.lock().unwrap() = Some(token.to_owned());
        }
        let mut jar = self.jar.lock().unwrap();
        for cookie in page.set_cookies() {
            let Some((name, value)) = cookie.split(';').next().and_then(|p| p.split_once('='))
            else {
                continue;
            };
            jar.retain(|(n, _)| n != name);
            if !cookie.contains("Max-Age=0") {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
        drop(jar);
        page
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// GET with extra request headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// The cookies this visitor holds, as a `Cookie` header value.
    pub fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Drops every cookie, as if the next request left before the last answer's
    /// `Set-Cookie` arrived (two tabs loading at once).
    pub fn forget_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    /// The CSRF token a page of the site gave this visitor (loading the login
    /// page for it, as a browser would have, when none was seen yet).
    pub async fn csrf_token(&self) -> String {
        if let Some(token) = self.csrf.lock().unwrap().clone() {
            return token;
        }
        let page = self.get("/login").await;
        self.csrf
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| panic!("no CSRF token on /login: {}", page.body))
    }

    /// Submits a form as the site's own page would: with the CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.post_fields(path, fields).await
    }

    pub async fn post_fields(&self, path: &str, mut fields: Vec<(String, String)>) -> Page {
        fields.push(("csrf".into(), self.csrf_token().await));
        self.post_without_csrf(path, &fields).await
    }

    /// A form as a forger would send it: only the given fields.
    pub async fn post_without_csrf(&self, path: &str, fields: &[(String, String)]) -> Page {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields),
        )
        .await
    }

    /// Submits a form with extra request headers, with this visitor's CSRF token
    /// (`csrf`) or without one (a forger's form).
    pub async fn submit(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
        csrf: bool,
    ) -> Page {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if csrf {
            fields.push(("csrf".into(), self.csrf_token().await));
        }
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(&fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// POSTs `body` byte for byte with the given content type (the CSRF token in
    /// its header, as htmx sends it).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        self.request_raw("POST", path, content_type, body).await
    }

    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Page {
        let token = self.csrf_token().await;
        let request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-csrf-token", token)
            .body(body);
        self.send(request).await
    }

    /// A JSON API call as a script or a single-page app makes it: this visitor's
    /// cookies, the given headers, and `body` as `application/json`.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Page {
        let mut request = self.client.request(
            method.parse().unwrap(),
            format!("{}/api/v1{path}", self.base),
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap());
        }
        self.send(request).await
    }

    /// An API call from gatehouse's own origin (as a browser sends it from a page
    /// of the site).
    pub async fn api_same_origin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Page {
        let origin = self.base.trim_end_matches('/').to_owned();
        self.api(method, path, &[("origin", &origin)], body).await
    }

    pub async fn signup(&self, username: &str, email: &str, password: &str) -> Page {
        self.post_form(
            "/signup",
            &[
                ("username", username),
                ("email", email),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn logout(&self) -> Page {
        self.post_form("/logout", &[]).await
    }
}
