//! The `deploy/` configurations of nginx and Caddy, run for real (Debian's
//! `nginx-light` and `caddy`) between a client and a small upstream app that echoes
//! the headers it receives. The files are used as shipped, with only addresses,
//! ports and `max_age=600` (shortened to 1 s) replaced.
//!
//! Without nginx or Caddy these tests say so and pass, unless
//! `GATEHOUSE_REQUIRE_E2E=1` (set by `.ci/run`), where a missing program fails them.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use poem::listener::TcpAcceptor;
use reqwest::StatusCode;
use serde_json::Value;

use crate::app::{Browser, PASSWORD, Page, TestApp, browser_resolving, email_of, spawn_app_with};
use crate::support::programs::{free_port, require};

const HOSTS: [&str; 2] = ["app.example.com", "auth.example.com"];

fn deploy_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The app behind the proxy: answers every request with the headers it received,
/// as `{"headers": {name: value}, "uri": …}` (httpbin's shape, which check-proxy
/// reads).
async fn spawn_echo() -> SocketAddr {
    #[poem::handler]
    fn echo(req: &poem::Request) -> poem::web::Json<Value> {
        let mut headers = serde_json::Map::new();
        for (name, value) in req.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(seen)) => *seen = format!("{seen}, {value}"),
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value));
                }
            }
        }
        poem::web::Json(serde_json::json!({ "headers": headers, "uri": req.uri().to_string() }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(echo));
    addr
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

/// A proxy process, killed by PID when dropped.
struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Proxy {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(program: &Path, config: &str, port: u16) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::write(dir.path().join("gatehouse.conf"), config).unwrap();
    let main = format!(
        // One process (no master): killing it by PID leaves no orphaned worker.
        "user root;\nmaster_process off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n  \
         proxy_temp_path {root}/proxy;\n  fastcgi_temp_path {root}/fastcgi;\n  \
         uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n  \
         include {root}/gatehouse.conf;\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
    let child = Command::new(program)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut proxy = Proxy { child, dir };
    proxy.wait_until_listening(port);
    proxy
}

fn start_caddy(program: &Path, config: &str, port: u16) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Caddyfile");
    // Test-only globals: no admin endpoint (parallel tests would share its port), and
    // plain HTTP on loopback.
    std::fs::write(
        &file,
        format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{config}"),
    )
    .unwrap();
    let child = Command::new(program)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("error.log")).unwrap())
        .spawn()
        .unwrap();
    let mut proxy = Proxy { child, dir };
    proxy.wait_until_listening(port);
    proxy
}

/// gatehouse, the echo app and a proxy configured from `deploy/`, all on loopback.
struct Setup {
    kind: Kind,
    gatehouse: TestApp,
    proxy: Proxy,
    port: u16,
}

impl Setup {
    /// Starts the proxy `kind` with its deploy file, after `edit` (which the
    /// check-proxy tests use to break it on purpose).
    async fn start(kind: Kind, edit: impl Fn(String) -> String) -> Option<Self> {
        let program = require(match kind {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        })?;
        let port = free_port();
        let echo = spawn_echo().await;
        let config = web::config::Config {
            public_url: format!("http://auth.example.com:{port}/").parse().unwrap(),
            cookie_domain: Some("example.com".into()),
            // A public host: second-factor secrets need the operator's key.
            secret_key: Some(secrecy::SecretString::from(
                "the proxies' test secret key, 32+ characters",
            )),
            ..crate::app::test_config()
        };
        let gatehouse = spawn_app_with(config, storage::Store::memory().await.unwrap()).await;
        let shipped = match kind {
            Kind::Nginx => deploy_file("nginx/gatehouse.conf")
                .replace("listen 80;", &format!("listen 127.0.0.1:{port};")),
            Kind::Caddy => deploy_file("caddy/Caddyfile")
                .replace(
                    "auth.example.com {",
                    &format!("http://auth.example.com:{port} {{"),
                )
                .replace(
                    "app.example.com {",
                    &format!("http://app.example.com:{port} {{"),
                ),
        };
        let config = edit(
            shipped
                .replace("127.0.0.1:8080", &gatehouse.addr.to_string())
                .replace("127.0.0.1:3000", &echo.to_string())
                .replace("max_age=600", "max_age=1"),
        );
        let proxy = match kind {
            Kind::Nginx => start_nginx(&program, &config, port),
            Kind::Caddy => start_caddy(&program, &config, port),
        };
        Some(Self {
            kind,
            gatehouse,
            proxy,
            port,
        })
    }

    fn base(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }

    /// A new visitor whose DNS points both hosts at the proxy.
    fn visitor(&self) -> Browser {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        browser_resolving(&self.base("app.example.com"), &HOSTS, addr)
    }

    fn auth(&self, visitor: &Browser) -> Browser {
        visitor.at(&self.base("auth.example.com"))
    }

    /// A visitor logged in as `username` (signed up through the proxy).
    async fn logged_in(&self, username: &str) -> Browser {
        let visitor = self.visitor();
        let resp = self
            .auth(&visitor)
            .signup(username, &email_of(username), PASSWORD)
            .await;
        assert_eq!(
            resp.status,
            StatusCode::SEE_OTHER,
            "{}\n{}",
            resp.body,
            self.proxy.log()
        );
        visitor
    }
}

/// What the echo app received, or a panic saying what came instead.
#[track_caller]
fn echoed(page: &Page) -> serde_json::Map<String, Value> {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let json: Value = serde_json::from_str(&page.body).unwrap();
    json["headers"].as_object().unwrap().clone()
}

fn encode(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

async fn gates_an_app(kind: Kind) {
    let Some(setup) = Setup::start(kind, |config| config).await else {
        return;
    };
    let app_url = format!("{}/wiki/page?x=1", setup.base("app.example.com"));
    let html = ("accept", "text/html");

    // Anonymous: sent to the login page, which will send the user back.
    let visitor = setup.visitor();
    let resp = visitor.get_with("/wiki/page?x=1", &[html]).await;
    assert_eq!(
        resp.status,
        StatusCode::FOUND,
        "{}\n{}",
        resp.body,
        setup.proxy.log()
    );
    let login = resp.header("location").unwrap().to_owned();
    assert_eq!(
        login,
        format!(
            "{}/login?next={}",
            setup.base("auth.example.com"),
            encode(&app_url)
        )
    );

    // Sign up, log out, then log in from that login page, through the proxy.
    let auth = setup.auth(&visitor);
    auth.signup("alice", &email_of("alice"), PASSWORD).await;
    auth.logout().await;
    let form = auth
        .get(login.strip_prefix(&setup.base("auth.example.com")).unwrap())
        .await;
    form.assert_contains(&format!("value=\"{}\"", app_url));
    let resp = auth
        .post_form(
            "/login",
            &[
                ("email", &email_of("alice")),
                ("password", PASSWORD),
                ("next", &app_url),
            ],
        )
        .await;
    resp.assert_redirect_to(&app_url);

    // Back at the app: the upstream sees alice, whatever the client claims.
    let spoofed = [
        ("x-auth-user", "mallory"),
        ("remote-user", "mallory"),
        ("x_auth_user", "mallory"),
        ("x-auth-email", "mallory@evil.example"),
    ];
    let resp = visitor.get_with("/wiki/page?x=1", &spoofed).await;
    let seen = echoed(&resp);
    assert_eq!(seen["x-auth-user"], "alice");
    assert_eq!(seen["remote-user"], "alice");
    // Her address is not verified yet: the app gets none (nginx drops the empty
    // header, Caddy passes it empty), and is told so.
    for name in ["x-auth-email", "remote-email"] {
        assert!(
            seen.get(name).is_none_or(|v| v == ""),
            "{name}: {:?}",
            seen.get(name)
        );
    }
    assert_eq!(seen["x-auth-email-verified"], "false");
    assert!(
        !resp.body.contains("mallory"),
        "a spoofed header reached the app: {}",
        resp.body
    );
    // Verified (an operator vouches, in the store): the cached session hears of it
    // through the change feed, and the app gets the address.
    setup
        .gatehouse
        .store
        .set_email_verified(&domain::Username::parse("alice").unwrap(), true)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let seen = loop {
        let seen = echoed(&visitor.get_with("/wiki/page?x=1", &spoofed).await);
        if seen["x-auth-email-verified"] == "true" {
            break seen;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(seen["x-auth-email"], "alice@example.com");
    assert_eq!(seen["remote-email"], "alice@example.com");

    // Every mix of '-' and '_' that CGI-style apps read as X-Auth-User is removed
    // too (oauth2-proxy GHSA-vjrc-mh2v-45x6).
    let mixed = [
        ("x-auth_user", "mallory"),
        ("x_auth-user", "mallory"),
        ("X-Auth_User", "mallory"),
        ("x-auth_email", "mallory@evil.example"),
        ("x_auth_email", "mallory@evil.example"),
        ("remote_user", "mallory"),
        ("Remote_Email", "mallory@evil.example"),
    ];
    let resp = visitor.get_with("/wiki/page", &mixed).await;
    let seen = echoed(&resp);
    assert_eq!(seen["x-auth-user"], "alice");
    assert!(
        !resp.body.contains("mallory"),
        "a mixed-spelling header reached the app: {}",
        resp.body
    );

    // The app gets the visitor's other cookies, never gatehouse's own: the session
    // token would let it act as alice anywhere behind the gate.
    let ours = visitor.cookie_header();
    assert!(ours.contains("gatehouse_session="), "{ours}");
    let cookie_jars = [
        format!("theme=dark; {ours}; lang=en"),
        format!("{ours}; theme=dark; lang=en"),
    ];
    for cookies in &cookie_jars {
        let resp = setup
            .visitor()
            .get_with("/wiki/page", &[("cookie", cookies)])
            .await;
        let seen = echoed(&resp);
        assert_eq!(seen["x-auth-user"], "alice");
        assert_eq!(seen["cookie"], "theme=dark; lang=en", "sent {cookies}");
    }

    // Operator-only routes are not reachable through the public proxy.
    let resp = setup.auth(&visitor).get("/metrics").await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "{}", resp.body);

    // A stranger claiming to be alice gets the login page, not the app.
    let stranger = setup.visitor();
    let mut claims = spoofed.to_vec();
    claims[0].1 = "alice";
    claims.push(html);
    let resp = stranger.get_with("/wiki/page", &claims).await;
    assert_eq!(resp.status, StatusCode::FOUND);
    assert!(
        !resp.body.contains("\"headers\""),
        "the app answered: {}",
        resp.body
    );

    // groups=admins on /admin/: alice is an admin; bob is refused, in any case of
    // the path, whatever the query or the groups he claims.
    let admins = domain::GroupName::parse("admins").unwrap();
    setup
        .gatehouse
        .store
        .set_groups(
            &domain::Username::parse("alice").unwrap(),
            std::slice::from_ref(&admins),
            &admins,
        )
        .await
        .unwrap();
    let resp = visitor.get("/admin/panel").await;
    let seen = echoed(&resp);
    assert_eq!(seen["x-auth-user"], "alice", "{}", resp.body);
    assert_eq!(seen["x-auth-groups"], "admins");
    assert_eq!(seen["remote-groups"], "admins");
    let bob = setup.logged_in("bob").await;
    let claimed = bob
        .get_with(
            "/admin/panel",
            &[("x-auth-groups", "admins"), ("x_auth_groups", "admins")],
        )
        .await;
    assert_eq!(claimed.status, StatusCode::FORBIDDEN, "{}", claimed.body);
    // Bob is in no group: an empty list (nginx drops a header set to an empty value;
    // either way no client's value reaches the app).
    let seen = echoed(&bob.get("/wiki/page").await);
    assert!(
        seen.get("x-auth-groups").is_none_or(|g| g == ""),
        "{seen:?}"
    );
    // The bare prefix, a trailing slash, another case and an encoded slash are all
    // under the rule.
    for path in [
        "/admin/panel",
        "/ADMIN/panel",
        "/Admin/panel?users=bob",
        "/admin/panel?groups=ops",
        "/admin/panel?max_age=1",
        "/admin",
        "/admin/",
        "/ADMIN",
        "/admin?x=1",
        "/admin%2Fpanel",
        "/Admin%2fpanel",
    ] {
        let resp = bob.get(path).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{path}: {}", resp.body);
    }
    assert_eq!(echoed(&bob.get("/wiki/page").await)["x-auth-user"], "bob");

    // max_age=1 on /billing/: a fresh login passes; two seconds later it does not.
    auth.login(&email_of("alice"), PASSWORD).await;
    assert_eq!(
        echoed(&visitor.get("/billing/invoice").await)["x-auth-user"],
        "alice"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for path in ["/billing/invoice", "/billing", "/Billing%2Finvoice"] {
        assert_eq!(
            visitor.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(visitor.get("/wiki/page").await.status, StatusCode::OK);

    // mfa=1 on /vault/: a password alone is refused, and a client's claim of a
    // second factor never reaches the app; after a login with a code it passes.
    let claimed = bob
        .get_with("/vault/secret", &[("x-auth-factors", "pwd,otp")])
        .await;
    assert_eq!(claimed.status, StatusCode::FORBIDDEN, "{}", claimed.body);
    let seen = echoed(
        &bob.get_with("/wiki/page", &[("x-auth-factors", "pwd,otp")])
            .await,
    );
    assert_eq!(seen["x-auth-factors"], "pwd", "{seen:?}");
    let secret = crate::support::factors::enrol_in_store(&setup.gatehouse, "alice").await;
    let asked = auth.login(&email_of("alice"), PASSWORD).await;
    asked.assert_redirect_to("/login/code");
    assert_eq!(
        visitor.get("/vault/secret").await.status,
        StatusCode::FORBIDDEN,
        "the session from before the code is a password-only one"
    );
    auth.post_form(
        "/login/code",
        &[("code", &crate::support::factors::code_now(&secret))],
    )
    .await
    .assert_redirect_to("/user/alice");
    for path in ["/vault/secret", "/vault", "/VAULT/secret"] {
        let seen = echoed(&visitor.get(path).await);
        assert_eq!(seen["x-auth-user"], "alice", "{path}");
        assert_eq!(seen["x-auth-factors"], "pwd,otp", "{path}");
    }

    // A session a passkey opened — alone, as "Sign in with a passkey" records it
    // (the ceremony itself runs in Chromium, browser.rs) — passes mfa=1 too, and
    // the app is told which factor.
    let alice = domain::Username::parse("alice").unwrap();
    let (by_passkey, _) = setup
        .gatehouse
        .store
        .create_session(
            &alice,
            storage::NewSession {
                lifetime: 3600,
                remember: false,
                user_agent: None,
                address: None,
                factors: vec!["passkey".to_owned()],
                authenticated_at: None,
            },
        )
        .await
        .unwrap();
    let cookie = format!("gatehouse_session={}", by_passkey.expose());
    let seen = echoed(
        &stranger
            .get_with("/vault/secret", &[("cookie", &cookie)])
            .await,
    );
    assert_eq!(seen["x-auth-user"], "alice", "{seen:?}");
    assert_eq!(seen["x-auth-factors"], "passkey", "{seen:?}");

    // An API token works through the proxy like a session.
    let (token, _) = setup
        .gatehouse
        .store
        .create_api_token(&alice, "t", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token.expose());
    let resp = stranger
        .get_with("/wiki/page", &[("authorization", &bearer)])
        .await;
    let seen = echoed(&resp);
    assert_eq!(seen["x-auth-user"], "alice");
    // ...but the app never receives the token, in any spelling of the scheme: it
    // could replay it as alice anywhere gatehouse gates.
    assert!(!resp.body.contains(token.expose()), "{seen:?}");
    assert_eq!(seen.get("authorization"), None, "{seen:?}");
    let shouted = format!("BEARER {}", token.expose());
    let resp = stranger
        .get_with("/wiki/page", &[("authorization", &shouted)])
        .await;
    assert_eq!(echoed(&resp)["x-auth-user"], "alice");
    assert!(!resp.body.contains(token.expose()), "{}", resp.body);
    // The app's own credentials still reach it, beside a session cookie. (A bearer
    // token of another kind is not one: a request with a bearer token is that
    // token's alone, and gatehouse does not accept it.)
    let session = visitor.cookie_header();
    for theirs in ["Basic YXBwOmFwcC1zZWNyZXQ=", "Digest username=\"app\""] {
        let resp = stranger
            .get_with(
                "/wiki/page",
                &[("cookie", &session), ("authorization", theirs)],
            )
            .await;
        let seen = echoed(&resp);
        assert_eq!(seen["x-auth-user"], "alice", "{seen:?}");
        assert_eq!(seen["authorization"], theirs, "{seen:?}");
    }

    // After logout the old cookie is refused at once.
    let old_cookie = visitor.cookie_header();
    auth.logout().await;
    let resp = stranger
        .get_with("/wiki/page", &[("cookie", &old_cookie), html])
        .await;
    assert_eq!(resp.status, StatusCode::FOUND, "{}", resp.body);

    if setup.kind == Kind::Caddy {
        // Caddy passes gatehouse's answer on: htmx is told to navigate, scripts get 401.
        let resp = stranger
            .get_with("/wiki/page", &[html, ("hx-request", "true")])
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
        assert!(resp.header("hx-redirect").unwrap().contains("/login?next="));
        let resp = stranger
            .get_with("/wiki/page", &[("accept", "application/json")])
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn nginx_gates_an_app_with_the_shipped_config() {
    gates_an_app(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_gates_an_app_with_the_shipped_config() {
    gates_an_app(Kind::Caddy).await;
}

/// `gatehouse check-proxy` against a proxy as shipped or as broken on purpose.
async fn check_proxy(kind: Kind, edit: impl Fn(String) -> String) -> Option<(bool, String)> {
    let setup = Setup::start(kind, edit).await?;
    setup.logged_in("alice").await;
    let alice = domain::Username::parse("alice").unwrap();
    let (token, _) = setup
        .gatehouse
        .store
        .create_api_token(&alice, "check", None)
        .await
        .unwrap();
    let url = format!("{}/wiki/page", setup.base("app.example.com"));
    let token = token.expose().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::process::run(&[
            "check-proxy",
            &url,
            "--resolve",
            "app.example.com=127.0.0.1",
            "--token",
            &token,
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("gh_") && !stderr.contains("gh_"),
        "the token leaked"
    );
    Some((out.status.success(), format!("{stdout}{stderr}")))
}

#[tokio::test]
async fn check_proxy_passes_the_shipped_nginx_config() {
    let Some((ok, report)) = check_proxy(Kind::Nginx, |config| config).await else {
        return;
    };
    assert!(ok, "{report}");
    assert_eq!(report.matches("ok   ").count(), 6, "{report}");
}

#[tokio::test]
async fn check_proxy_passes_the_shipped_caddyfile_and_catches_a_bare_auth_uri() {
    let Some((ok, report)) = check_proxy(Kind::Caddy, |config| config).await else {
        return;
    };
    assert!(ok, "{report}");
    assert_eq!(report.matches("ok   ").count(), 6, "{report}");
    let bare = |config: String| config.replace("uri /auth?\n", "uri /auth\n");
    let (ok, report) = check_proxy(Kind::Caddy, bare).await.unwrap();
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL client query kept from /auth: NO"),
        "{report}"
    );
}

#[tokio::test]
async fn check_proxy_catches_a_proxy_that_passes_spoofed_identity_headers() {
    let without_overwrite = |config: String| {
        config
            .lines()
            .filter(|line| {
                !line.contains("proxy_set_header X-Auth-")
                    && !line.contains("proxy_set_header Remote-")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let Some((ok, report)) = check_proxy(Kind::Nginx, without_overwrite).await else {
        return;
    };
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL identity headers overwritten: NO"),
        "{report}"
    );
}

/// A proxy that passes the client's `Authorization` on as it came (nginx does by
/// default) hands the app gatehouse's API token.
#[tokio::test]
async fn check_proxy_catches_a_proxy_that_passes_the_api_token_on() {
    let passing_authorization = |config: String| {
        config
            .lines()
            .filter(|line| !line.contains("proxy_set_header Authorization"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let Some((ok, report)) = check_proxy(Kind::Nginx, passing_authorization).await else {
        return;
    };
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL gatehouse's API token kept from the app: NO"),
        "{report}"
    );
    let without_strip =
        |config: String| config.replace("request_header @gatehouse_token -Authorization", "");
    let (ok, report) = check_proxy(Kind::Caddy, without_strip).await.unwrap();
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL gatehouse's API token kept from the app: NO"),
        "{report}"
    );
}

#[tokio::test]
async fn check_proxy_catches_a_proxy_that_does_not_forward_the_url() {
    let without_url = |config: String| {
        config
            .lines()
            .filter(|line| !line.contains("X-Original-URL"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let Some((ok, report)) = check_proxy(Kind::Nginx, without_url).await else {
        return;
    };
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL original URL forwarded: NO"),
        "{report}"
    );
}
