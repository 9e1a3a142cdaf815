//! Mail (issue "Mail"): "Forgot your password?" answered the same for every
//! address, the reset link read from the message the server wrote, used once, and
//! built from the public URL whatever `Host` says; and the outbox that keeps a
//! message until a mail server takes it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use web::config::{self, Config, MailSettings, MailTransport};

use crate::app::{Browser, PASSWORD, TestApp, email_of, spawn_app_with, test_config};
use crate::support::mail::{Smtpd, messages, reset_link, smtpd_python, wait_for_messages};
use crate::support::programs::free_port;

async fn spawn_with_mail_dir(dir: &Path) -> TestApp {
    let config = Config {
        mail: MailSettings {
            transport: MailTransport::Dir(dir.to_owned()),
            from: "gatehouse@example.com".into(),
        },
        ..test_config()
    };
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

/// `/forgot` with the form, the body with its CSRF tokens (which differ in every
/// response) blanked out.
async fn forgot(browser: &Browser, email: &str) -> (StatusCode, String) {
    browser.get("/forgot").await;
    let page = browser.post_form("/forgot", &[("email", email)]).await;
    (page.status, without_tokens(&page.body))
}

/// `text` with every run of 64 or more hex digits replaced by `TOKEN`.
fn without_tokens(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 64 { "TOKEN" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() >= 64 { "TOKEN" } else { &run });
    out
}

#[tokio::test]
async fn a_reset_link_by_mail_sets_a_new_password_once_and_ends_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_mail_dir(dir.path()).await;
    // Made by an operator (verified): her only mail is the reset link.
    crate::support::accounts::add_user(&app, "rosa", "").await;
    let owner = crate::support::accounts::log_in(&app, "rosa").await;
    let rosa = domain::Username::parse("rosa").unwrap();
    let (api_token, _) = app.store.create_api_token(&rosa, "ci", None).await.unwrap();
    let bearer = format!("Bearer {}", api_token.expose());
    let token_auth = || async {
        crate::app::http_client()
            .get(app.url("/auth"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(token_auth().await, StatusCode::OK);
    let stranger = app.browser();
    // The same answer for an account and for nobody.
    let (known_status, known) = forgot(&stranger, &email_of("rosa")).await;
    let (unknown_status, unknown) = forgot(&stranger, "nobody@example.com").await;
    assert_eq!(known_status, StatusCode::OK);
    assert_eq!((known_status, &known), (unknown_status, &unknown));
    assert!(known.contains("If an account uses that address"), "{known}");
    // One message: for rosa only, with a link on the public URL.
    let sent = wait_for_messages(dir.path(), 1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(messages(dir.path()).len(), 1, "a message for nobody");
    assert!(sent[0].contains("To: rosa@example.com"), "{}", sent[0]);
    assert!(sent[0].contains("text/plain") && sent[0].contains("text/html"));
    let link = reset_link(&sent[0]);
    assert!(link.starts_with(&app.url("/reset?token=")), "{link}");
    let path = link.strip_prefix(&app.url("")).unwrap().to_owned();

    // The link leads to a form; a new password there ends rosa's sessions.
    let visitor = app.browser();
    let form = visitor.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    form.assert_contains("rosa");
    let token = path.split("token=").nth(1).unwrap();
    let short = visitor
        .post_form(
            "/reset",
            &[
                ("token", token),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = visitor
        .post_form(
            "/reset",
            &[
                ("token", token),
                ("password", "a brand new secret"),
                ("confirm", "a brand new secret"),
            ],
        )
        .await;
    done.assert_redirect_to("/login?reset=1");
    assert_eq!(
        owner.get("/user/rosa").await.status,
        StatusCode::SEE_OTHER,
        "the old session still works"
    );
    // ...and so do API tokens, in the store and at the gate.
    assert_eq!(
        token_auth().await,
        StatusCode::UNAUTHORIZED,
        "the API token still works"
    );
    assert!(app.store.api_tokens_of(&rosa).await.unwrap().is_empty());
    assert_eq!(
        app.browser()
            .login(&email_of("rosa"), PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = app.browser();
    fresh.get("/login").await;
    fresh
        .login(&email_of("rosa"), "a brand new secret")
        .await
        .assert_redirect_to("/user/rosa");
    // Used: the link is dead.
    let reused = visitor.get(&path).await;
    assert_eq!(reused.status, StatusCode::GONE);
    reused.assert_contains("expired or was used");
    // And a notice went out.
    let all = wait_for_messages(dir.path(), 2).await;
    assert!(
        all.iter().any(|m| m.contains("Your password was changed")),
        "{all:?}"
    );
}

#[tokio::test]
async fn reset_links_come_from_the_public_url_and_a_login_voids_them() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_mail_dir(dir.path()).await;
    crate::support::accounts::add_user(&app, "hugo", "").await;
    // A forged Host header changes nothing in the link.
    let forger = app.browser();
    forger.get("/forgot").await;
    let token = forger.csrf_token().await;
    let resp = crate::app::http_client()
        .post(app.url("/forgot"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("cookie", forger.cookie_header())
        .form(&[
            ("email", email_of("hugo").as_str()),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    // The forged request is answered like any other, and its own message — the
    // only one so far — links to the public URL.
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = wait_for_messages(dir.path(), 1).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("To: hugo@example.com"), "{}", sent[0]);
    assert!(!sent[0].contains("evil.example"), "{}", sent[0]);
    assert!(reset_link(&sent[0]).starts_with(&app.url("/reset")));
    let browser = app.browser();
    forgot(&browser, &email_of("hugo")).await;
    let sent = wait_for_messages(dir.path(), 2).await;
    for message in &sent {
        assert!(!message.contains("evil.example"), "{message}");
        assert!(reset_link(message).starts_with(&app.url("/reset")));
    }
    // A right password voids the link still out.
    let link = reset_link(sent.last().unwrap());
    let path = link.strip_prefix(&app.url("")).unwrap().to_owned();
    let hugo = app.browser();
    hugo.get("/login").await;
    hugo.login(&email_of("hugo"), PASSWORD)
        .await
        .assert_redirect_to("/user/hugo");
    assert_eq!(app.browser().get(&path).await.status, StatusCode::GONE);
    // A made-up token too.
    let made_up = format!("/reset?token=pr_{}", "ab".repeat(32));
    assert_eq!(app.browser().get(&made_up).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn without_a_mail_transport_the_page_says_to_ask_an_administrator() {
    let app = crate::app::spawn_app().await;
    let page = app.browser().get("/forgot").await;
    page.assert_contains("ask an administrator");
    let (status, body) = forgot(&app.browser(), "x@example.com").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("ask an administrator"));
}

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1 (made with
/// the `openssl` command): `(ca.pem, cert.pem, key.pem)`.
fn certificates(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let openssl = crate::support::programs::require("openssl")?;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=gatehouse test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    Some((
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    ))
}

/// An app sending through `smtp`, on `mem://`.
async fn spawn_with_smtp(smtp: config::SmtpSettings) -> TestApp {
    let config = Config {
        mail: MailSettings {
            transport: MailTransport::Smtp(smtp),
            from: "gatehouse@example.com".into(),
        },
        ..test_config()
    };
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

/// Asks for a reset link for `name`'s account (made first, by an operator: no
/// verification mail).
async fn ask_for_a_reset(app: &TestApp, name: &str) {
    crate::support::accounts::add_user(app, name, "").await;
    let browser = app.browser();
    browser.get("/forgot").await;
    let page = browser
        .post_form("/forgot", &[("email", &email_of(name))])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

/// STARTTLS with a password, and TLS from the first byte: the message is
/// delivered only over TLS, after AUTH, to a server whose certificate checks out
/// against `--smtp-ca-file`; without that CA (the system's roots only) nothing is
/// sent and the message stays in the outbox.
#[tokio::test]
async fn mail_goes_over_starttls_or_smtps_with_credentials_and_a_checked_certificate() {
    let Some(python) = smtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        return;
    };
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let ca_pem = std::fs::read(&ca).unwrap();
    let smtp = |port: u16, tls: config::SmtpTls, ca: bool| config::SmtpSettings {
        host: "localhost".into(),
        port,
        tls,
        username: Some("mailer".into()),
        password: Some("s3cret pass".into()),
        ca_pem: ca.then(|| ca_pem.clone()),
    };

    for (tls, flag, name) in [
        (config::SmtpTls::StartTls, "--starttls", "stella"),
        (config::SmtpTls::Implicit, "--smtps", "ivan"),
    ] {
        let port = free_port();
        let maildir = dir.path().join(name);
        let server = Smtpd::start_with(
            &python,
            port,
            &maildir,
            &[flag, cert, key, "--auth", "mailer:s3cret pass"],
        );
        let app = spawn_with_smtp(smtp(port, tls, true)).await;
        ask_for_a_reset(&app, name).await;
        let message = server.delivered().await;
        assert!(message.contains(&email_of(name)), "{message}");
        reset_link(&message);
        let events = server.events();
        assert!(events.contains("auth ok mailer"), "{tls:?}: {events}");
        assert!(
            events.contains(&format!(
                "delivered tls gatehouse@example.com {}",
                email_of(name)
            )),
            "{tls:?}: {events}"
        );
        if tls == config::SmtpTls::StartTls {
            assert!(events.contains("tls\n"), "{events}");
        }
        drop(app);

        // The same server, but gatehouse does not trust its CA: nothing leaves.
        let distrusting = spawn_with_smtp(smtp(port, tls, false)).await;
        ask_for_a_reset(&distrusting, &format!("{name}2")).await;
        // Wait for the sender's first attempt to have failed on the certificate
        // (not merely for time to pass: a sender that never tried would pass that).
        let deadline = Instant::now() + Duration::from_secs(20);
        let failure = loop {
            let failures = distrusting.store.outbox_failures().await.unwrap();
            assert_eq!(failures.len(), 1, "{tls:?}: {failures:?}");
            if let (attempts, Some(error)) = &failures[0]
                && *attempts >= 1
            {
                break error.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{tls:?}: never tried: {failures:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            failure.to_ascii_lowercase().contains("certificate")
                || failure.contains("UnknownIssuer"),
            "{tls:?}: failed for another reason: {failure}"
        );
        assert_eq!(
            server.events().matches("delivered").count(),
            1,
            "{tls:?}: sent to a server whose certificate it could not check"
        );
        assert!(!server.events().contains("auth ok mailer\nauth ok"));
    }
}

/// A server that answers "try again later" (451) gets the message again after the
/// back-off, and takes it.
#[tokio::test]
async fn a_message_refused_for_now_is_sent_again_after_a_wait() {
    let Some(python) = smtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Smtpd::start_with(
        &python,
        port,
        &dir.path().join("maildir"),
        &["--refuse", "1"],
    );
    let app = spawn_with_smtp(config::SmtpSettings::relay("127.0.0.1", port)).await;
    let asked = Instant::now();
    ask_for_a_reset(&app, "rita").await;
    let message = server.delivered().await;
    let took = asked.elapsed();
    reset_link(&message);
    let events = server.events();
    let refused = events.find("refused").expect(&events);
    let delivered = events.find("delivered plain").expect(&events);
    assert!(refused < delivered, "{events}");
    assert_eq!(events.matches("delivered").count(), 1, "{events}");
    // The first retry waits 2 s.
    assert!(took >= Duration::from_secs(2), "retried after {took:?}");
    assert_eq!(app.store.outbox_len().await.unwrap(), 0);
}

/// Reset requests are throttled per address given: five free, then a wait. (That
/// they take the same time for any address is `timing::a_reset_request_*`.)
#[tokio::test]
async fn reset_requests_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    // With the default policy: five free requests per address, then a wait.
    let strict = spawn_with_mail_dir(dir.path()).await;
    let asker = strict.browser();
    asker.get("/forgot").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            asker
                .post_form("/forgot", &[("email", "victim@example.com")])
                .await
                .status,
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// Notices: a second factor added, an API token made, the password changed, the
/// account disabled — each mailed to the account's address.
#[tokio::test]
async fn the_owner_hears_of_a_new_factor_a_new_token_a_new_password_and_a_disable() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_mail_dir(dir.path()).await;
    crate::support::accounts::add_user(&app, "root", "admins").await;
    crate::support::accounts::add_user(&app, "nina", "").await;
    let nina = crate::support::accounts::log_in(&app, "nina").await;
    let setup = nina.post_form("/account/security/totp", &[]).await;
    let secret = crate::support::factors::shown_secret(&setup.body);
    nina.post_form(
        "/account/security/totp/confirm",
        &[("code", &crate::support::factors::code_now(&secret))],
    )
    .await;
    let made = nina
        .api_same_origin(
            "POST",
            "/me/tokens",
            Some(serde_json::json!({ "name": "backup script" })),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    // A password changed on the account page.
    let changed = nina
        .post_form(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "another good secret"),
                ("confirm", "another good secret"),
            ],
        )
        .await;
    assert!(changed.status.is_redirection(), "{}", changed.body);
    let root = crate::support::accounts::log_in(&app, "root").await;
    let disabled = root
        .api_same_origin("POST", "/admin/users/nina/disable", None)
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    let sent = wait_for_messages(dir.path(), 4).await;
    for subject in [
        "Your password was changed",
        "A second factor was added to your account",
        "A new API token was made for your account",
        "Your account was disabled",
    ] {
        let message = sent
            .iter()
            .find(|m| m.contains(subject))
            .unwrap_or_else(|| panic!("no {subject:?} in {sent:?}"));
        assert!(message.contains("To: nina@example.com"), "{message}");
    }
    assert!(sent.iter().any(|m| m.contains("backup script")));
}

/// An admin mails a user a reset link (page and API); without mail it is a 409.
#[tokio::test]
async fn an_admin_mails_a_user_a_reset_link() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_mail_dir(dir.path()).await;
    crate::support::accounts::add_user(&app, "root", "admins").await;
    crate::support::accounts::add_user(&app, "olaf", "").await;
    let root = crate::support::accounts::log_in(&app, "root").await;
    root.get("/admin/users")
        .await
        .assert_contains("Mail a reset link");
    let sent = root
        .api_same_origin("POST", "/admin/users/olaf/reset", None)
        .await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT, "{}", sent.body);
    let mail = wait_for_messages(dir.path(), 1).await;
    assert!(mail[0].contains("To: olaf@example.com"), "{}", mail[0]);
    let link = reset_link(&mail[0]);
    let path = link.strip_prefix(&app.url("")).unwrap().to_owned();
    assert_eq!(app.browser().get(&path).await.status, StatusCode::OK);
    root.api_same_origin("POST", "/admin/users/nobody/reset", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    // The page's form too.
    root.post_form("/admin/users/olaf/reset", &[])
        .await
        .assert_redirect_to("/admin/users");
    wait_for_messages(dir.path(), 2).await;

    let plain = crate::support::accounts::spawn(web::config::SignupPolicy::Open).await;
    crate::support::accounts::add_user(&plain, "root", "admins").await;
    crate::support::accounts::add_user(&plain, "olaf", "").await;
    let root = crate::support::accounts::log_in(&plain, "root").await;
    assert!(
        !root
            .get("/admin/users")
            .await
            .body
            .contains("Mail a reset link")
    );
    root.api_same_origin("POST", "/admin/users/olaf/reset", None)
        .await
        .problem(StatusCode::CONFLICT);
}

/// The outbox is bounded: once full, asking for a link is a clear 503 with
/// `Retry-After` (never a 500), and a signup still succeeds (its link can be asked
/// for again later).
#[tokio::test]
async fn a_full_outbox_refuses_more_mail_clearly_and_loses_no_signup() {
    let config = Config {
        mail: MailSettings {
            // A relay nobody listens on: nothing leaves, the outbox fills.
            transport: MailTransport::Smtp(config::SmtpSettings::relay("127.0.0.1", free_port())),
            from: "gatehouse@example.com".into(),
        },
        ..test_config()
    };
    let store = storage::Store::memory().await.unwrap().with_outbox_limit(2);
    let app = spawn_app_with(config, store).await;
    let browser = app.browser();
    browser.get("/forgot").await;
    for email in ["a@example.com", "b@example.com"] {
        let page = browser.post_form("/forgot", &[("email", email)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    let full = browser
        .post_form("/forgot", &[("email", "c@example.com")])
        .await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    full.assert_contains("Too much mail is waiting");
    assert!(full.header("retry-after").is_some());
    let signed = app
        .browser()
        .signup("fred", &email_of("fred"), PASSWORD)
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert!(
        app.store
            .user_by_username(&domain::Username::parse("fred").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(app.store.outbox_len().await.unwrap(), 2);
}
