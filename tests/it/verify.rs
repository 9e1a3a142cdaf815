//! Verified addresses (issue "Mail"): a link by mail at signup and on a change of
//! address; `/auth` passes the address to apps only once it is verified;
//! `--require-verified-email` keeps unverified users out of `/auth` and the API;
//! `--signup-domains`; the admin page and the CLI send links and vouch.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use web::config::{Config, MailSettings, MailTransport};

use crate::app::{Browser, PASSWORD, TestApp, email_of, spawn_app_with, test_config};
use crate::support::mail::verify_path;
use crate::support::mail::{decoded, wait_for_messages};

fn with_mail(dir: &Path) -> Config {
    Config {
        mail: MailSettings {
            transport: MailTransport::Dir(dir.to_owned()),
            from: "gatehouse@example.com".into(),
        },
        ..test_config()
    }
}

async fn spawn(config: Config) -> TestApp {
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

/// The messages in `dir` with `subject`, waiting for `count` of them.
async fn messages_about(dir: &Path, subject: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = wait_for_messages(dir, 0).await;
        let found: Vec<String> = all.into_iter().filter(|m| m.contains(subject)).collect();
        if found.len() >= count {
            return found;
        }
        assert!(Instant::now() < deadline, "no {count} × {subject:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/auth` for `browser`: status, `X-Auth-Email`, `X-Auth-Email-Verified`.
async fn gate(app: &TestApp, browser: &Browser, query: &str) -> (StatusCode, String, String) {
    let resp = crate::app::http_client()
        .get(app.url(&format!("/auth{query}")))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| "<none>".into())
    };
    (
        resp.status(),
        header("x-auth-email"),
        header("x-auth-email-verified"),
    )
}

/// Opens the link (a form; the GET changes nothing) and presses its button.
async fn verify(app: &TestApp, path: &str) -> crate::app::Page {
    let visitor = app.browser();
    let form = visitor.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    form.assert_contains("Verify my address");
    let token = path.split("token=").nth(1).unwrap();
    visitor.post_form("/verify", &[("token", token)]).await
}

#[tokio::test]
async fn a_signup_mails_a_link_and_only_a_verified_address_reaches_apps() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(with_mail(dir.path())).await;
    let vera = app.logged_in("vera").await;
    // Not verified: the user passes, the address does not.
    assert_eq!(
        gate(&app, &vera, "").await,
        (StatusCode::OK, String::new(), "false".into())
    );
    let me = vera.api_same_origin("GET", "/me", None).await;
    assert_eq!(me.json()["email_verified"], false, "{}", me.body);
    vera.get("/user/vera").await.assert_contains("not verified");

    let sent = messages_about(dir.path(), "Verify your email address", 1).await;
    assert!(sent[0].contains("To: vera@example.com"), "{}", sent[0]);
    assert!(sent[0].contains("text/plain") && sent[0].contains("text/html"));
    let path = verify_path(&app, &sent[0]);
    // Opening the link (as a mail scanner would) verifies nothing.
    assert_eq!(app.browser().get(&path).await.status, StatusCode::OK);
    assert_eq!(gate(&app, &vera, "").await.2, "false");
    let done = verify(&app, &path).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    done.assert_contains("is verified");
    // At once, on the session already cached.
    assert_eq!(
        gate(&app, &vera, "").await,
        (StatusCode::OK, "vera@example.com".into(), "true".into())
    );
    let me = vera.api_same_origin("GET", "/me", None).await;
    assert_eq!(me.json()["email_verified"], true);
    // Used: dead. Made up: dead. A GET with a used link shows the form, the POST
    // says it expired.
    let token = path.split("token=").nth(1).unwrap();
    let again = app
        .browser()
        .post_form("/verify", &[("token", token)])
        .await;
    assert_eq!(again.status, StatusCode::GONE);
    again.assert_contains("expired");
    let made_up = format!("/verify?token=ev_{}", "ab".repeat(32));
    let page = app.browser().get(&made_up).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        verify(&app, &made_up).await.status,
        StatusCode::GONE,
        "a made-up link verified"
    );
    assert_eq!(
        app.browser().get("/verify?token=nonsense").await.status,
        StatusCode::GONE
    );
}

#[tokio::test]
async fn required_verification_keeps_the_unverified_out_of_auth_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(Config {
        require_verified_email: true,
        ..with_mail(dir.path())
    })
    .await;
    // The signup lands on the page that says what to do.
    let browser = app.browser();
    let signed = browser.signup("uma", &email_of("uma"), PASSWORD).await;
    signed.assert_redirect_to("/account/email");
    let page = browser.get("/account/email").await;
    page.assert_contains("not verified yet");
    page.assert_contains("Send the link again");

    // The gate refuses with the reason; the API too, but for who-am-I and logout.
    let (status, ..) = gate(&app, &browser, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let me = browser.api_same_origin("GET", "/me", None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["email_verified"], false);
    for (method, path) in [
        ("GET", "/me/sessions"),
        ("GET", "/me/tokens"),
        ("GET", "/users/uma"),
    ] {
        let resp = browser.api_same_origin(method, path, None).await;
        resp.problem(StatusCode::FORBIDDEN);
        assert!(
            resp.body.contains("Verify your email"),
            "{path}: {}",
            resp.body
        );
    }
    let made = browser
        .api_same_origin("POST", "/me/tokens", Some(serde_json::json!({"name": "x"})))
        .await;
    made.problem(StatusCode::FORBIDDEN);
    let api_login = app
        .browser()
        .api(
            "POST",
            "/sessions",
            &[],
            Some(serde_json::json!({"email": email_of("uma"), "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        api_login.status,
        StatusCode::FORBIDDEN,
        "{}",
        api_login.body
    );
    // A wrong password still says only that.
    let wrong = app
        .browser()
        .api(
            "POST",
            "/sessions",
            &[],
            Some(serde_json::json!({"email": email_of("uma"), "password": "wrong wrong wrong"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A login on the site lands on the email page too.
    let again = app.browser();
    again.get("/login").await;
    again
        .login(&email_of("uma"), PASSWORD)
        .await
        .assert_redirect_to("/account/email");

    // Resending right after the signup's link is throttled (Retry-After).
    let first = messages_about(dir.path(), "Verify your email address", 1).await;
    let resent = browser.post_form("/account/email/verify", &[]).await;
    assert_eq!(
        resent.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        resent.body
    );
    assert!(resent.header("retry-after").is_some());

    // Verified: through the gate and into the API.
    verify(&app, &verify_path(&app, &first[0])).await;
    assert_eq!(
        gate(&app, &browser, "").await,
        (StatusCode::OK, "uma@example.com".into(), "true".into())
    );
    let sessions = browser.api_same_origin("GET", "/me/sessions", None).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
    // An operator-made account (the CLI, seeding) counts as verified.
    crate::support::accounts::add_user(&app, "otto", "").await;
    let otto = crate::support::accounts::log_in(&app, "otto").await;
    assert_eq!(gate(&app, &otto, "").await.0, StatusCode::OK);
}

#[tokio::test]
async fn signup_domains_limit_who_may_sign_up_and_write_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(Config {
        require_verified_email: true,
        signup_domains: vec!["example.com".into()],
        ..with_mail(dir.path())
    })
    .await;
    for email in [
        "eve@evil.example",
        "eve@sub.example.com",
        "eve@example.com.evil",
    ] {
        let browser = app.browser();
        let page = browser.signup("eve", email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}");
        page.assert_contains("only to addresses at example.com");
    }
    let api = app.browser().api("POST", "/users", &[], Some(serde_json::json!({"username": "eve", "email": "eve@evil.example", "password": PASSWORD}))).await;
    assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", api.body);
    assert_eq!(app.store.count_users().await.unwrap(), 0);
    app.browser()
        .signup("eddie", "Ed@EXAMPLE.com", PASSWORD)
        .await
        .assert_redirect_to("/account/email");
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn a_new_address_needs_the_password_and_starts_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(with_mail(dir.path())).await;
    crate::support::accounts::add_user(&app, "carl", "").await;
    crate::support::accounts::add_user(&app, "dora", "").await;
    let carl = crate::support::accounts::log_in(&app, "carl").await;
    assert_eq!(gate(&app, &carl, "").await.2, "true");
    let page = carl.get("/account/email").await;
    page.assert_contains("verified");
    assert!(!page.body.contains("Send the link again"));

    let change = |email: &'static str, password: &'static str| {
        let carl = &carl;
        async move {
            carl.post_form(
                "/account/email",
                &[("email", email), ("password", password)],
            )
            .await
        }
    };
    assert_eq!(
        change("carl@new.example", "wrong wrong wrong").await.status,
        StatusCode::FORBIDDEN
    );
    let taken = change("dora@example.com", PASSWORD).await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    taken.assert_contains("already exists");
    assert_eq!(
        change("not an address", PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    change("carl@new.example", PASSWORD)
        .await
        .assert_redirect_to("/account/email?changed=1");
    // The new address is not passed on until verified; the old one hears of it.
    assert_eq!(
        gate(&app, &carl, "").await,
        (StatusCode::OK, String::new(), "false".into())
    );
    let notice = messages_about(dir.path(), "Your email address was changed", 1).await;
    assert!(notice[0].contains("To: carl@example.com"), "{}", notice[0]);
    assert!(notice[0].contains("carl@new.example"));
    let link = messages_about(dir.path(), "Verify your email address", 1).await;
    assert!(link[0].contains("To: carl@new.example"), "{}", link[0]);
    verify(&app, &verify_path(&app, &link[0])).await;
    assert_eq!(
        gate(&app, &carl, "").await,
        (StatusCode::OK, "carl@new.example".into(), "true".into())
    );
    // The old address no longer logs in; the new one does.
    assert_eq!(
        app.browser()
            .login("carl@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_admin_mails_a_verification_link_from_the_users_page() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(with_mail(dir.path())).await;
    crate::support::accounts::add_user(&app, "root", "admins").await;
    app.logged_in("ulla").await;
    messages_about(dir.path(), "Verify your email address", 1).await;
    let root = crate::support::accounts::log_in(&app, "root").await;
    let page = root.get("/admin/users").await;
    page.assert_contains("not verified");
    page.assert_contains("Mail a verification link");
    root.post_form("/admin/users/ulla/verification", &[])
        .await
        .assert_redirect_to("/admin/users");
    let links = messages_about(dir.path(), "Verify your email address", 2).await;
    // One of the two works (the newer; the store's own test tells them apart).
    let mut statuses = Vec::new();
    for link in &links {
        statuses.push(verify(&app, &verify_path(&app, link)).await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    // Verified: the button goes, and a second press is a 409.
    assert!(
        !root
            .get("/admin/users")
            .await
            .body
            .contains("Mail a verification link")
    );
    let again = root.post_form("/admin/users/ulla/verification", &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

/// The real binary on surrealkv, the server's SMTP down during a signup: the
/// signup succeeds at once, and the link goes out when the mail server is back,
/// after a restart of gatehouse too. Then the CLI queues links and vouches.
#[tokio::test]
async fn a_signup_while_the_mail_server_is_down_gets_its_link_later_and_the_cli_helps() {
    let Some(python) = crate::support::mail::smtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let port = crate::support::programs::free_port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let args = ["--scrypt-log-n", "10", "--smtp-url", &smtp];
    let server = crate::support::process::Server::start_with(&db, &args);
    let started = Instant::now();
    let page = server
        .browser()
        .signup("sam", &email_of("sam"), PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("mail_failed") {
        assert!(Instant::now() < deadline, "never tried:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());

    let maildir = dir.path().join("maildir");
    let smtpd = crate::support::mail::Smtpd::start(&python, port, &maildir);
    let server = crate::support::process::Server::start_with(&db, &args);
    let message = smtpd.delivered().await;
    assert!(message.contains("Verify your email address"), "{message}");
    assert!(message.contains("To: sam@example.com"), "{message}");
    let start = message.find("/verify?token=").unwrap() + "/verify?token=".len();
    let token: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let visitor = server.browser();
    visitor.get(&format!("/verify?token={token}")).await;
    let done = visitor.post_form("/verify", &[("token", &token)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(server.log().contains("mail_sent"));
    assert!(server.terminate().success());

    // The CLI, with the server stopped (one process per surrealkv folder).
    let cli = |args: &[&str]| {
        let out = Command::new(crate::support::process::gatehouse_bin())
            .args(args)
            .args(["--db", &db])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, shown) = cli(&["user", "show", "sam"]);
    assert!(ok && shown.contains("email_verified\ttrue"), "{shown}");
    let (ok, said) = cli(&["user", "send-verification", "sam"]);
    assert!(!ok && said.contains("verified already"), "{said}");
    let (ok, said) = cli(&["user", "verify-email", "sam", "--no"]);
    assert!(ok, "{said}");
    let (ok, said) = cli(&["user", "send-verification", "sam"]);
    assert!(ok && said.contains("queued"), "{said}");
    let (ok, said) = cli(&["user", "reset", "sam"]);
    assert!(ok && said.contains("queued"), "{said}");
    let (ok, said) = cli(&["user", "reset", "nobody"]);
    assert!(!ok && said.contains("no user nobody"), "{said}");
    let (_, shown) = cli(&["user", "show", "sam"]);
    assert!(shown.contains("email_verified\tfalse"), "{shown}");

    // Started again: both queued messages go out.
    let server = crate::support::process::Server::start_with(&db, &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivered = loop {
        let all: Vec<String> = std::fs::read_dir(maildir.join("new"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|f| decoded(&std::fs::read_to_string(f.path()).unwrap()))
            .collect();
        if all.len() >= 3 {
            break all;
        }
        assert!(Instant::now() < deadline, "{all:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(delivered.iter().any(|m| m.contains("/reset?token=pr_")));
    assert_eq!(
        delivered
            .iter()
            .filter(|m| m.contains("/verify?token=ev_"))
            .count(),
        2
    );
    assert!(server.terminate().success());
    // After an upgrade: every account vouched for at once.
    let (ok, said) = cli(&["user", "verify-email"]);
    assert!(!ok && said.contains("required"), "{said}");
    let (ok, said) = cli(&["user", "verify-email", "--all"]);
    assert!(
        ok && said.contains("1 address(es) marked verified"),
        "{said}"
    );
    let (_, shown) = cli(&["user", "show", "sam"]);
    assert!(shown.contains("email_verified\ttrue"), "{shown}");
}
