//! The site in a real browser: Debian's Chromium driven through chromedriver with
//! fantoccini, with JavaScript on (htmx swaps, checked not to replace the document)
//! and off (plain forms and 303s). A failing test leaves a screenshot in
//! `target/browser-failures/`.
//!
//! Without chromium and chromedriver these tests say so and pass, unless
//! `GATEHOUSE_REQUIRE_E2E=1` (set by `.ci/run`).

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::app::{PASSWORD, TestApp, email_of, spawn_app};
use crate::support::programs::require;

/// chromedriver on a port of its own, killed by PID when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    let chromium = require("chromium")?;
    let chromedriver = require("chromedriver")?;
    let _ = chromium;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            driver.child.try_wait().unwrap().is_none(),
            "chromedriver exited"
        );
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(driver)
}

async fn open_browser(driver: &Driver, javascript: bool, profile: &std::path::Path) -> Client {
    let mut prefs = json!({});
    if !javascript {
        prefs = json!({ "profile.managed_default_content_settings.javascript": 2 });
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": prefs,
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

/// Runs `body` with a fresh app and browser; on a panic, saves a screenshot, then
/// always quits the browser and the driver before passing the panic on.
async fn with_browser<F, Fut>(name: &str, javascript: bool, body: F)
where
    F: FnOnce(Client, TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_on(name, javascript, spawn_app(), body).await;
}

/// [`with_browser`] with an app of the test's own making.
async fn with_browser_on<A, F, Fut>(name: &str, javascript: bool, app: A, body: F)
where
    A: Future<Output = TestApp>,
    F: FnOnce(Client, TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(driver) = start_driver() else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, javascript, profile.path()).await;
    let app = app.await;
    let outcome = tokio::spawn(body(client.clone(), app)).await;
    if outcome.is_err() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-failures");
        std::fs::create_dir_all(&dir).unwrap();
        if let Ok(png) = client.screenshot().await {
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, png).unwrap();
            eprintln!("screenshot of the failure: {}", path.display());
        }
    }
    let _ = client.close().await;
    drop(driver);
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// How many requests the document has made (scripts, styles, htmx's XHRs).
async fn resources_loaded(client: &Client) -> u64 {
    client
        .execute(
            "return performance.getEntriesByType('resource').length;",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// The element's text, or "" while it is missing or being swapped out.
async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `check` until it holds (htmx swaps happen after the click returns).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the element's text contains `needle`.
async fn wait_for_text(client: &Client, css: &str, needle: &str) {
    eventually(&format!("{needle:?} in {css}"), || async {
        text_of(client, css).await.contains(needle)
    })
    .await;
}

/// Waits until the browser is at `path` (with its query).
async fn wait_for_path(client: &Client, path: &str) {
    eventually(&format!("the page {path}"), || async {
        path_of(client).await == path
    })
    .await;
}

/// Marks the current document: if a later check still finds the mark, no page
/// load happened in between.
async fn mark_document(client: &Client) {
    client
        .execute("window.gatehouseMark = 'still here'; return null;", vec![])
        .await
        .unwrap();
}

async fn document_is_marked(client: &Client) -> bool {
    client
        .execute("return window.gatehouseMark || null;", vec![])
        .await
        .unwrap()
        == json!("still here")
}

async fn path_of(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

#[tokio::test]
async fn signup_validates_inline_and_lands_on_the_profile() {
    with_browser("signup_js", true, |client, app| async move {
        app.logged_in("taken").await;
        client.goto(&app.url("/signup")).await.unwrap();
        mark_document(&client).await;
        fill(&client, "#field-username", "taken").await;
        wait_for_text(&client, "#field-username-error", "already taken").await;
        fill(&client, "#field-username", "wendy").await;
        wait_for_text(&client, "#field-username-error", "Available").await;
        // What the JavaScript-off test looks for: the inline checks, counted.
        assert!(
            app.metrics()
                .await
                .contains("route=\"/signup/check/{field}\""),
            "inline checks not counted"
        );
        fill(&client, "#field-password", "short").await;
        wait_for_text(&client, "#field-password-error", "at least 8").await;
        assert!(
            document_is_marked(&client).await,
            "inline validation reloaded the page"
        );

        fill(&client, "#field-email", "wendy@example.com").await;
        fill(&client, "#field-password", PASSWORD).await;
        fill(&client, "#field-confirm", PASSWORD).await;
        click(&client, "#signup-form button[type=submit]").await;
        wait_for_path(&client, "/user/wendy").await;
        assert!(text_of(&client, "main").await.contains("This is you"));
    })
    .await;
}

#[tokio::test]
async fn a_failed_login_shows_its_error_in_place_then_login_lands_on_next() {
    with_browser("login_js", true, |client, app| async move {
        app.logged_in("xena").await;
        client
            .goto(&app.url("/login?next=%2Fuser%2Fxena"))
            .await
            .unwrap();
        mark_document(&client).await;
        // Count from a settled page: htmx (deferred) and the stylesheet may still be
        // arriving when `goto` returns on a busy machine.
        eventually("the page and htmx loaded", || async {
            client
                .execute(
                    "return document.readyState === 'complete' && typeof htmx !== 'undefined';",
                    vec![],
                )
                .await
                .unwrap()
                == json!(true)
        })
        .await;
        let requests_before = resources_loaded(&client).await;
        fill(&client, "#field-email", &email_of("xena")).await;
        fill(&client, "#field-password", "not the password").await;
        click(&client, "#login-form button[type=submit]").await;
        eventually("the error", || async {
            client
                .find(Locator::Css("#login-form .alert"))
                .await
                .is_ok_and(|_| true)
        })
        .await;
        assert!(
            text_of(&client, "#login-form .alert")
                .await
                .contains("Invalid email or password.")
        );
        assert!(
            document_is_marked(&client).await,
            "the failed login replaced the document"
        );
        assert_eq!(path_of(&client).await, "/login?next=%2Fuser%2Fxena");
        let requests = resources_loaded(&client).await - requests_before;
        eprintln!("a failed login with JavaScript on took {requests} request(s)");
        assert_eq!(requests, 1, "one POST, nothing else");
        // The password is not put back; the email is.
        let password = client.find(Locator::Css("#field-password")).await.unwrap();
        assert_eq!(password.prop("value").await.unwrap().as_deref(), Some(""));

        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/user/xena").await;
    })
    .await;
}

#[tokio::test]
async fn revoking_a_session_removes_its_row() {
    with_browser("sessions_js", true, |client, app| async move {
        let other = app.logged_in("yara").await;
        client.goto(&app.url("/login")).await.unwrap();
        fill(&client, "#field-email", &email_of("yara")).await;
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/user/yara").await;
        client.goto(&app.url("/account/sessions")).await.unwrap();
        mark_document(&client).await;
        let rows = client
            .find_all(Locator::Css("table.sessions tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            text_of(&client, "table.sessions")
                .await
                .contains("this device")
        );
        click(&client, "table.sessions button").await;
        eventually("one row left", || async {
            client
                .find_all(Locator::Css("table.sessions tbody tr"))
                .await
                .unwrap()
                .len()
                == 1
        })
        .await;
        assert!(
            document_is_marked(&client).await,
            "revoking reloaded the page"
        );
        assert_eq!(
            other.get("/user/yara").await.status,
            reqwest::StatusCode::SEE_OTHER,
            "the revoked session still works"
        );
    })
    .await;
}

#[tokio::test]
async fn everything_works_with_javascript_off() {
    with_browser("no_js", false, |client, app| async move {
        let other = app.logged_in("zoe").await;
        // A failed login: the whole page comes back with the error.
        client
            .goto(&app.url("/login?next=%2Faccount%2Fsessions"))
            .await
            .unwrap();
        fill(&client, "#field-email", &email_of("zoe")).await;
        fill(&client, "#field-password", "not the password").await;
        click(&client, "#login-form button[type=submit]").await;
        eventually("the error page", || async {
            client
                .find(Locator::Css("#login-form .alert"))
                .await
                .is_ok()
        })
        .await;
        // Then the right password lands on next.
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/account/sessions").await;
        assert_eq!(
            client
                .find_all(Locator::Css("table.sessions tbody tr"))
                .await
                .unwrap()
                .len(),
            2
        );
        // Revoke the other session with a plain form: 303 back, one row left.
        click(&client, "table.sessions button").await;
        eventually("one row left", || async {
            client
                .find_all(Locator::Css("table.sessions tbody tr"))
                .await
                .is_ok_and(|rows| rows.len() == 1)
        })
        .await;
        assert_eq!(
            other.get("/user/zoe").await.status,
            reqwest::StatusCode::SEE_OTHER
        );
        // Sign up as someone new, in a fresh session.
        click(&client, "header form button").await;
        wait_for_path(&client, "/").await;
        client.goto(&app.url("/signup")).await.unwrap();
        fill(&client, "#field-username", "zack").await;
        fill(&client, "#field-email", "zack@example.com").await;
        fill(&client, "#field-password", PASSWORD).await;
        fill(&client, "#field-confirm", PASSWORD).await;
        click(&client, "#signup-form button[type=submit]").await;
        wait_for_path(&client, "/user/zack").await;
        // JavaScript really was off: the page has no htmx, and typing in the
        // sign-up form sent none of the inline checks htmx would have sent.
        if let Ok(kind) = client.execute("return typeof window.htmx;", vec![]).await {
            assert_eq!(kind, "undefined", "htmx ran");
        }
        let metrics = app.metrics().await;
        assert!(
            !metrics.contains("route=\"/signup/check/{field}\""),
            "inline checks reached the server:\n{metrics}"
        );
    })
    .await;
}

/// A script run in the page that hands its result to `done` (WebDriver's async
/// script callback).
async fn run_async(client: &Client, script: &str) -> serde_json::Value {
    let script = format!("const done = arguments[arguments.length - 1];\n{script}");
    client.execute_async(&script, vec![]).await.unwrap()
}

#[tokio::test]
async fn api_docs_render_under_their_policy_and_pages_can_call_the_api() {
    with_browser("api_docs", true, |client, app| async move {
        // Swagger UI runs under the site's CSP (no inline script, no eval): the
        // operations appear only if its scripts were allowed to run.
        client.goto(&app.url("/api/docs")).await.unwrap();
        eventually("Swagger UI's 23 operations", || async {
            client
                .find_all(Locator::Css(".swagger-ui .opblock"))
                .await
                .map(|ops| ops.len())
                .unwrap_or(0)
                == 23
        })
        .await;
        assert!(text_of(&client, ".swagger-ui").await.contains("/me/tokens"));

        // Logged in through the site's form, a page's fetch() uses the cookie, and
        // the browser's own Origin header lets its DELETE through.
        app.browser()
            .signup("wren", &email_of("wren"), PASSWORD)
            .await;
        client.goto(&app.url("/login")).await.unwrap();
        fill(&client, "#field-email", &email_of("wren")).await;
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/user/wren").await;
        let me = run_async(
            &client,
            "fetch('/api/v1/me').then(r => r.json()).then(j => done(j.username), e => done(String(e)));",
        )
        .await;
        assert_eq!(me, json!("wren"));
        let logout = run_async(
            &client,
            "fetch('/api/v1/sessions/current', { method: 'DELETE' }).then(r => done(r.status), e => done(String(e)));",
        )
        .await;
        assert_eq!(logout, json!(204));
        let after = run_async(
            &client,
            "fetch('/api/v1/me').then(r => done(r.status), e => done(String(e)));",
        )
        .await;
        assert_eq!(after, json!(401));
    })
    .await;
}

/// Logs the browser in as `name` through the login form.
async fn log_in_as(client: &Client, app: &TestApp, name: &str) {
    client.goto(&app.url("/login")).await.unwrap();
    fill(client, "#field-email", &email_of(name)).await;
    fill(client, "#field-password", PASSWORD).await;
    click(client, "#login-form button[type=submit]").await;
    wait_for_path(client, &format!("/user/{name}")).await;
}

async fn stored_user(app: &TestApp, name: &str) -> domain::User {
    app.store
        .user_by_username(&domain::Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_admin_page_searches_and_changes_rows_in_place_with_javascript() {
    with_browser("admin_js", true, |client, app| async move {
        crate::support::accounts::add_user(&app, "root", "admins").await;
        crate::support::accounts::add_user(&app, "bob", "ops").await;
        crate::support::accounts::add_user(&app, "carl", "").await;
        log_in_as(&client, &app, "root").await;
        // The header links the page for an admin.
        click(&client, "header.site a[href='/admin/users']").await;
        wait_for_path(&client, "/admin/users").await;
        mark_document(&client).await;
        assert_eq!(
            client
                .find_all(Locator::Css("#users tbody tr"))
                .await
                .unwrap()
                .len(),
            3
        );
        // Typing searches (debounced) and swaps the table; the address follows.
        fill(&client, "#field-q", "bo").await;
        eventually("only bob listed", || async {
            let rows = client
                .find_all(Locator::Css("#users tbody tr"))
                .await
                .unwrap_or_default();
            rows.len() == 1 && text_of(&client, "#users tbody").await.contains("bob")
        })
        .await;
        wait_for_path(&client, "/admin/users?q=bo").await;
        // Disable: the row changes in place.
        click(&client, "#user-bob form[action$='/disable'] button").await;
        wait_for_text(&client, "#user-bob", "disabled").await;
        assert!(stored_user(&app, "bob").await.disabled);
        // Groups: typed and saved in the row.
        fill(&client, "#user-bob input[name=groups]", "ops, Dev").await;
        click(&client, "#user-bob form.groups button").await;
        wait_for_text(&client, "#user-bob", "groups saved").await;
        assert_eq!(
            stored_user(&app, "bob")
                .await
                .groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect::<Vec<_>>(),
            ["dev", "ops"]
        );
        // The last admin: refused, said in the page's alert area.
        fill(&client, "#field-q", "root").await;
        eventually("root listed", || async {
            text_of(&client, "#users tbody").await.contains("root")
        })
        .await;
        click(&client, "#user-root form[action$='/disable'] button").await;
        wait_for_text(&client, "#alerts", "last enabled admin").await;
        assert!(!stored_user(&app, "root").await.disabled);
        // An invitation: its link appears in the section.
        fill(&client, "#invitations #field-email", "dora@example.com").await;
        click(&client, "#invitations form button[type=submit]").await;
        eventually("the invitation link", || async {
            match client.find(Locator::Css("#invitation-link")).await {
                Ok(field) => field
                    .prop("value")
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|v| v.contains("/signup?invite=inv_")),
                Err(_) => false,
            }
        })
        .await;
        assert_eq!(app.store.invitations().await.unwrap().len(), 1);
        assert!(
            document_is_marked(&client).await,
            "an admin action reloaded the page"
        );
    })
    .await;
}

#[tokio::test]
async fn the_admin_page_works_with_javascript_off() {
    with_browser("admin_no_js", false, |client, app| async move {
        crate::support::accounts::add_user(&app, "root", "admins").await;
        crate::support::accounts::add_user(&app, "bob", "ops").await;
        log_in_as(&client, &app, "root").await;
        client.goto(&app.url("/admin/users")).await.unwrap();
        fill(&client, "#field-q", "bo").await;
        click(&client, "form.search button[type=submit]").await;
        wait_for_path(&client, "/admin/users?q=bo").await;
        click(&client, "#user-bob form[action$='/disable'] button").await;
        wait_for_path(&client, "/admin/users?q=bo").await;
        wait_for_text(&client, "#user-bob", "disabled").await;
        assert!(stored_user(&app, "bob").await.disabled);
        // Delete: a confirmation page, then back to the same search.
        click(&client, "#user-bob a[href*='/delete']").await;
        wait_for_text(&client, "h1", "Delete bob?").await;
        click(&client, "button.danger").await;
        wait_for_path(&client, "/admin/users?q=bo").await;
        wait_for_text(&client, "#users", "No users found").await;
        assert!(
            app.store
                .user_by_username(&domain::Username::parse("bob").unwrap())
                .await
                .unwrap()
                .is_none()
        );
        // An invitation: the page comes back with its link.
        fill(&client, "#invitations #field-groups", "ops").await;
        click(&client, "#invitations form button[type=submit]").await;
        wait_for_text(&client, "#invitations", "Send this sign-up link").await;
        let link = client
            .find(Locator::Css("#invitation-link"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(link.contains("/signup?invite=inv_"), "{link}");
        assert_eq!(
            app.store.invitations().await.unwrap()[0].groups[0].as_str(),
            "ops"
        );
    })
    .await;
}

#[tokio::test]
async fn a_login_with_a_second_factor_takes_two_steps_in_the_browser() {
    for javascript in [true, false] {
        let name = if javascript { "totp_js" } else { "totp_no_js" };
        with_browser(name, javascript, |client, app| async move {
            crate::support::accounts::add_user(&app, "tilda", "").await;
            let secret = crate::support::factors::enrol_in_store(&app, "tilda").await;
            client
                .goto(&app.url("/login?next=/account/sessions"))
                .await
                .unwrap();
            fill(&client, "#field-email", &email_of("tilda")).await;
            fill(&client, "#field-password", PASSWORD).await;
            click(&client, "#login-form button[type=submit]").await;
            wait_for_path(&client, "/login/code").await;
            // A wrong code: the form says so, in place with htmx.
            fill(&client, "#field-code", "000000").await;
            click(&client, "#code-form button[type=submit]").await;
            wait_for_text(&client, "#code-form", "not right").await;
            fill(
                &client,
                "#field-code",
                &crate::support::factors::code_now(&secret),
            )
            .await;
            click(&client, "#code-form button[type=submit]").await;
            wait_for_path(&client, "/account/sessions").await;
            let factors = client
                .find(Locator::Css("table.sessions"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(factors.contains("this device"), "{factors}");
        })
        .await;
    }
}

#[tokio::test]
async fn the_authenticator_set_up_shows_its_qr_code_and_takes_a_code() {
    with_browser("totp_setup", true, |client, app| async move {
        crate::support::accounts::add_user(&app, "theo", "").await;
        log_in_as(&client, &app, "theo").await;
        client.goto(&app.url("/account/security")).await.unwrap();
        click(&client, "#security form button[type=submit]").await;
        wait_for_text(&client, "#security", "Scan this code").await;
        // The QR code is drawn: an inline SVG with a size, under the site's CSP.
        let size = client
            .execute(
                "const r = document.querySelector('figure.qr svg').getBoundingClientRect(); return [r.width, r.height];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(size, json!([200, 200]), "{size}");
        let secret = text_of(&client, "#totp-secret").await;
        fill(&client, "#field-code", &crate::support::factors::code_now(&secret)).await;
        click(&client, "#confirm-form button[type=submit]").await;
        wait_for_text(&client, "#security", "Keep these recovery codes").await;
        assert_eq!(
            client
                .find_all(Locator::Css("#recovery-codes li"))
                .await
                .unwrap()
                .len(),
            10
        );
    })
    .await;
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    for javascript in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = mail_dir_config(dir.path());
        let app = crate::app::spawn_app_with(config, storage::Store::memory().await.unwrap());
        let maildir = dir.path().to_owned();
        let name = if javascript {
            "reset_js"
        } else {
            "reset_no_js"
        };
        with_browser_on(name, javascript, app, |client, app| async move {
            crate::support::accounts::add_user(&app, "vera", "").await;
            client.goto(&app.url("/login")).await.unwrap();
            click(&client, "a[href='/forgot']").await;
            wait_for_path(&client, "/forgot").await;
            fill(&client, "#field-email", &email_of("vera")).await;
            click(&client, "#forgot-form button[type=submit]").await;
            wait_for_text(&client, "#forgot-form", "If an account uses that address").await;
            let sent = crate::support::mail::wait_for_messages(&maildir, 1).await;
            let link = crate::support::mail::reset_link(&sent[0]);
            client.goto(&link).await.unwrap();
            fill(&client, "#field-password", "my new password").await;
            fill(&client, "#field-confirm", "my new password").await;
            click(&client, "#reset-form button[type=submit]").await;
            wait_for_path(&client, "/login?reset=1").await;
            wait_for_text(&client, "#reset-done", "Your password was changed").await;
            fill(&client, "#field-email", &email_of("vera")).await;
            fill(&client, "#field-password", "my new password").await;
            click(&client, "#login-form button[type=submit]").await;
            wait_for_path(&client, "/user/vera").await;
        })
        .await;
    }
}

/// The tests' configuration, writing mail as `.eml` files into `dir`.
fn mail_dir_config(dir: &std::path::Path) -> web::config::Config {
    web::config::Config {
        mail: web::config::MailSettings {
            transport: web::config::MailTransport::Dir(dir.to_owned()),
            from: "gatehouse@example.com".into(),
        },
        ..crate::app::test_config()
    }
}

/// Verification under `--require-verified-email`, with JavaScript on and off: the
/// signup lands on the email page; the link read from the written message opens a
/// page whose button verifies; the gate then passes the address on.
#[tokio::test]
async fn a_new_address_is_verified_through_the_mailed_link() {
    for javascript in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = web::config::Config {
            require_verified_email: true,
            ..mail_dir_config(dir.path())
        };
        let app = crate::app::spawn_app_with(config, storage::Store::memory().await.unwrap());
        let maildir = dir.path().to_owned();
        let name = if javascript {
            "verify_js"
        } else {
            "verify_no_js"
        };
        with_browser_on(name, javascript, app, |client, app| async move {
            client.goto(&app.url("/signup")).await.unwrap();
            fill(&client, "#field-username", "vicky").await;
            fill(&client, "#field-email", &email_of("vicky")).await;
            fill(&client, "#field-password", PASSWORD).await;
            fill(&client, "#field-confirm", PASSWORD).await;
            click(&client, "#signup-form button[type=submit]").await;
            wait_for_path(&client, "/account/email").await;
            wait_for_text(&client, "#email-status", "not verified yet").await;
            let sent = crate::support::mail::wait_for_messages(&maildir, 1).await;
            let path = crate::support::mail::verify_path(&app, &sent[0]);
            client.goto(&app.url(&path)).await.unwrap();
            click(&client, "#verify-form button[type=submit]").await;
            wait_for_text(&client, "#verified", "is verified").await;
            client.goto(&app.url("/account/email")).await.unwrap();
            wait_for_text(&client, "#email-status", "verified.").await;
            let user = app
                .store
                .user_by_username(&domain::Username::parse("vicky").unwrap())
                .await
                .unwrap()
                .unwrap();
            assert!(user.email_verified);
        })
        .await;
    }
}

/// A WebDriver command of Chromium's virtual authenticators
/// (`/session/{id}/webauthn/…`), which fantoccini has no method for.
#[derive(Debug)]
struct WebAuthnCommand {
    method: poem::http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (poem::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(serde_json::Value::to_string),
        )
    }
}

/// Adds a virtual authenticator like a phone's or a laptop's: it keeps
/// discoverable credentials and verifies its user (a PIN, a fingerprint).
async fn add_virtual_authenticator(client: &Client) -> String {
    let id = client
        .issue_cmd(WebAuthnCommand {
            method: poem::http::Method::POST,
            path: "authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            })),
        })
        .await
        .unwrap();
    id.as_str().unwrap().to_owned()
}

async fn authenticator_credentials(client: &Client, authenticator: &str) -> Vec<serde_json::Value> {
    let credentials = client
        .issue_cmd(WebAuthnCommand {
            method: poem::http::Method::GET,
            path: format!("authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .unwrap();
    credentials.as_array().unwrap().clone()
}

/// `/auth?mfa=1` asked with the browser's session cookie: the status and the
/// factors it reports.
async fn gate_with_browser_session(client: &Client, app: &TestApp) -> (u16, Option<String>) {
    let cookie = client.get_named_cookie("gatehouse_session").await.unwrap();
    let resp = crate::app::http_client()
        .get(app.url("/auth?mfa=1"))
        .header("cookie", format!("gatehouse_session={}", cookie.value()))
        .header("x-original-url", "https://app.example.com/")
        .send()
        .await
        .unwrap();
    let factors = resp
        .headers()
        .get("x-auth-factors")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), factors)
}

async fn log_out_in_browser(client: &Client) {
    click(client, "header.site form.inline button").await;
    eventually("the logout", || async {
        !text_of(client, "header.site").await.contains("Log out")
    })
    .await;
}

#[tokio::test]
async fn a_passkey_is_registered_then_logs_in_as_a_second_factor_and_alone_then_is_removed() {
    let app = crate::support::factors::spawn_on_localhost();
    with_browser_on("passkeys", true, app, |client, app| async move {
        let site = |path: &str| format!("http://localhost:{}{path}", app.addr.port());
        let pia = domain::Username::parse("pia").unwrap();
        crate::support::accounts::add_user(&app, "pia", "").await;
        client.goto(&site("/login")).await.unwrap();
        fill(&client, "#field-email", &email_of("pia")).await;
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/user/pia").await;
        let authenticator = add_virtual_authenticator(&client).await;

        // Register: the script shows the form, the authenticator makes a
        // discoverable credential, the page lists it under its name.
        client.goto(&site("/account/security")).await.unwrap();
        eventually("the passkey form shown by the script", || async {
            client
                .find(Locator::Css("#passkey-add"))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        })
        .await;
        fill(&client, "#field-passkey-name", "Test key").await;
        click(&client, "#passkey-add button[type=submit]").await;
        wait_for_text(&client, "#passkeys", "Test key").await;
        // Making it verified the user: the session now counts a second factor.
        assert_eq!(
            gate_with_browser_session(&client, &app).await,
            (200, Some("pwd,passkey".to_owned()))
        );
        let stored = app.store.passkeys(&pia).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "Test key");
        let held = authenticator_credentials(&client, &authenticator).await;
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0]["isResidentCredential"], json!(true), "{held:?}");

        // The password now leads to a second step that the passkey completes.
        log_out_in_browser(&client).await;
        client
            .goto(&site("/login?next=/account/sessions"))
            .await
            .unwrap();
        fill(&client, "#field-email", &email_of("pia")).await;
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/login/code").await;
        assert!(
            client.find(Locator::Css("#code-form")).await.is_err(),
            "no code to type without an authenticator app"
        );
        click(&client, "#passkey-second button[type=submit]").await;
        wait_for_path(&client, "/account/sessions").await;
        client.goto(&site("/account/security")).await.unwrap();
        wait_for_text(&client, "#session-factors", "pwd, passkey").await;
        assert_eq!(
            gate_with_browser_session(&client, &app).await,
            (200, Some("pwd,passkey".to_owned()))
        );

        // Signing in with the passkey alone: no email, no password. The answer the
        // script sends is kept, to be replayed below.
        log_out_in_browser(&client).await;
        client.goto(&site("/login")).await.unwrap();
        client
            .execute(
                "const send = window.fetch;
                 window.fetch = function (url, options) {
                   if (url === '/login/passkey') sessionStorage.setItem('sent', options.body);
                   return send.apply(this, arguments);
                 };
                 return null;",
                vec![],
            )
            .await
            .unwrap();
        // "Remember me" on the login form goes along.
        click(&client, "#login-form input[name=remember]").await;
        click(&client, "#passkey-login button[type=submit]").await;
        wait_for_path(&client, "/user/pia").await;
        let sessions = app.store.sessions_of(&pia).await.unwrap();
        assert_eq!(
            sessions.len(),
            1,
            "the one just started (the last one was logged out)"
        );
        assert!(sessions[0].remember, "remember me");
        client.goto(&site("/account/security")).await.unwrap();
        wait_for_text(&client, "#session-factors", "Logged in with: passkey").await;
        // A passkey verifies its user: the gate counts it as a second factor.
        assert_eq!(
            gate_with_browser_session(&client, &app).await,
            (200, Some("passkey".to_owned()))
        );
        let used = app.store.passkeys(&pia).await.unwrap();
        assert!(used[0].last_used_at.is_some());
        assert_ne!(
            used[0].credential, stored[0].credential,
            "the sign counter moved"
        );

        // The same signed answer again (a replay): its challenge is spent.
        let replay = run_async(
            &client,
            "const token = JSON.parse(document.body.getAttribute('hx-headers'))['x-csrf-token'];
             fetch('/login/passkey', { method: 'POST', credentials: 'omit',
               headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
               body: sessionStorage.getItem('sent') })
               .then(r => done(r.status), e => done(String(e)));",
        )
        .await;
        // (Refused twice over: the challenge is spent, and the sign counter moved.)
        assert_eq!(replay, json!(401), "a replayed passkey answer");
        // Two answers signed for one challenge, each with a fresh counter: only
        // the first one opens a session — a challenge is good for one login.
        let twice = run_async(
            &client,
            r"(async () => {
               const token = JSON.parse(document.body.getAttribute('hx-headers'))['x-csrf-token'];
               const post = (url, body) => fetch(url, { method: 'POST',
                 headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
                 body: JSON.stringify(body) });
               const dec = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')
                 + '==='.slice((s.length + 3) % 4)), c => c.charCodeAt(0));
               const enc = b => btoa(String.fromCharCode(...new Uint8Array(b)))
                 .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
               const begun = await (await post('/login/passkey/begin', {})).json();
               const publicKey = begun.options.publicKey;
               publicKey.challenge = dec(publicKey.challenge);
               const one = await navigator.credentials.get({ publicKey });
               const two = await navigator.credentials.get({ publicKey });
               const body = c => ({ ceremony: begun.ceremony, credential: {
                 id: c.id, rawId: enc(c.rawId), type: c.type, extensions: {},
                 response: { authenticatorData: enc(c.response.authenticatorData),
                   clientDataJSON: enc(c.response.clientDataJSON),
                   signature: enc(c.response.signature),
                   userHandle: enc(c.response.userHandle) } } });
               const first = await post('/login/passkey', body(one));
               const second = await post('/login/passkey', body(two));
               return [first.status, second.status];
             })().then(done, e => done(String(e)));",
        )
        .await;
        assert_eq!(twice, json!([200, 401]), "one challenge, two logins");

        // Remove it, with the password: the list is empty, and the authenticator's
        // copy opens nothing any more.
        fill(
            &client,
            "form.remove-passkey input[name=password]",
            PASSWORD,
        )
        .await;
        click(&client, "form.remove-passkey button[type=submit]").await;
        wait_for_text(&client, "#security", "None yet.").await;
        assert!(app.store.passkeys(&pia).await.unwrap().is_empty());
        log_out_in_browser(&client).await;
        client.goto(&site("/login")).await.unwrap();
        click(&client, "#passkey-login button[type=submit]").await;
        wait_for_text(&client, "#passkey-login", "not accepted").await;
        assert_eq!(path_of(&client).await, "/login");
    })
    .await;
}

#[tokio::test]
async fn without_javascript_passkeys_are_not_offered_and_the_second_step_says_why() {
    let app = crate::support::factors::spawn_on_localhost();
    with_browser_on("passkeys_no_js", false, app, |client, app| async move {
        let site = |path: &str| format!("http://localhost:{}{path}", app.addr.port());
        crate::support::accounts::add_user(&app, "pia", "").await;
        crate::support::factors::passkey_in_store(&app, "pia", "laptop").await;
        client.goto(&site("/login")).await.unwrap();
        let button = client.find(Locator::Css("#passkey-login")).await.unwrap();
        assert!(!button.is_displayed().await.unwrap());
        fill(&client, "#field-email", &email_of("pia")).await;
        fill(&client, "#field-password", PASSWORD).await;
        click(&client, "#login-form button[type=submit]").await;
        wait_for_path(&client, "/login/code").await;
        wait_for_text(&client, "#passkey-needs-script", "passkeys need JavaScript").await;
        let second = client.find(Locator::Css("#passkey-second")).await.unwrap();
        assert!(!second.is_displayed().await.unwrap());
    })
    .await;
}
