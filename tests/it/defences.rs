//! SPEC §7, attacked: forged and missing CSRF tokens, password guessing against the
//! throttle, open redirects through `next` and proxy return URLs, a password change
//! that must log a thief out, racing signups and the enumeration timing.

use std::time::Duration;

use reqwest::StatusCode;
use storage::{Store, ThrottlePolicy};
use web::config::{Config, ThrottleSettings};

use crate::app::{Browser, PASSWORD, TestApp, email_of, spawn_app, spawn_app_with, test_config};

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn auth_status(app: &TestApp, browser: &Browser) -> StatusCode {
    crate::app::http_client()
        .get(app.url("/auth"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = spawn_app().await;
    let victim = app.logged_in("vera").await;
    let attacker = app.browser();
    let attackers_token = attacker.csrf_token().await;

    // Login CSRF: a cross-site form logging the victim in as the attacker.
    let login = fields(&[("email", "vera@example.com"), ("password", PASSWORD)]);
    let fresh = app.browser();
    let resp = fresh.post_without_csrf("/login", &login).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    // Not a dead end: the same form again, ready to send (it is the user's own
    // browser that sends it then, with the cookie and the token).
    resp.assert_contains("This form had expired");
    resp.assert_contains("value=\"vera@example.com\"");
    assert!(
        !resp
            .set_cookies()
            .iter()
            .any(|c| c.contains("gatehouse_session"))
    );

    // Signup: nothing is written.
    let signup = fields(&[
        ("username", "mal"),
        ("email", "mal@example.com"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ]);
    assert_eq!(
        fresh.post_without_csrf("/signup", &signup).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.store.count_users().await.unwrap(), 1);

    // Logout: the victim stays logged in.
    assert_eq!(
        victim.post_without_csrf("/logout", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(auth_status(&app, &victim).await, StatusCode::OK);

    // Forged: the attacker's own valid token, with the victim's cookie.
    let mut forged = fields(&[
        ("current", PASSWORD),
        ("password", "new password 1"),
        ("confirm", "new password 1"),
    ]);
    forged.push(("csrf".into(), attackers_token.clone()));
    let resp = victim.post_without_csrf("/account/password", &forged).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    for bad in ["", "00", &"0".repeat(64), &attackers_token[..63]] {
        let mut logout = fields(&[]);
        logout.push(("csrf".into(), bad.to_owned()));
        assert_eq!(
            victim.post_without_csrf("/logout", &logout).await.status,
            StatusCode::FORBIDDEN,
            "{bad:?}"
        );
    }
    // Two tokens, one of them good, are not one good token.
    let mut twice = fields(&[("csrf", &victim.csrf_token().await)]);
    twice.push(("csrf".into(), attackers_token.clone()));
    assert_eq!(
        victim.post_without_csrf("/logout", &twice).await.status,
        StatusCode::FORBIDDEN
    );
    // A wrong header token is refused even with a good field.
    let resp = victim
        .client
        .post(app.url("/logout"))
        .header("cookie", victim.cookie_header())
        .header("x-csrf-token", attackers_token)
        .form(&fields(&[("csrf", &victim.csrf_token().await)]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(auth_status(&app, &victim).await, StatusCode::OK);

    // The real form works, and so does the header htmx sends.
    assert_eq!(victim.logout().await.status, StatusCode::SEE_OTHER);
    assert_eq!(auth_status(&app, &victim).await, StatusCode::UNAUTHORIZED);
    let resp = victim
        .post_raw(
            "/login",
            "application/x-www-form-urlencoded",
            b"email=vera%40example.com&password=correct+horse+battery".to_vec(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_node_on_one_store_accepts_the_same_tokens() {
    let store = Store::memory().await.unwrap();
    let first = spawn_app_with(test_config(), store.clone()).await;
    let second = spawn_app_with(test_config(), store).await;
    let browser = first.browser();
    browser.csrf_token().await;
    let resp = browser
        .at(&second.url(""))
        .signup("nina", &email_of("nina"), PASSWORD)
        .await;
    resp.assert_redirect_to("/user/nina");
}

fn throttled_config(account: ThrottlePolicy, address: ThrottlePolicy) -> Config {
    Config {
        throttle: ThrottleSettings {
            account,
            address,
            ..ThrottleSettings::default()
        },
        ..test_config()
    }
}

const LENIENT: ThrottlePolicy = ThrottlePolicy {
    free_failures: 1000,
    max_delay: 1,
    forget_after: 900,
};

#[tokio::test]
async fn password_guessing_is_slowed_per_account_with_a_capped_delay() {
    let account = ThrottlePolicy {
        free_failures: 3,
        max_delay: 2,
        forget_after: 900,
    };
    let store = Store::memory().await.unwrap();
    let app = spawn_app_with(throttled_config(account, LENIENT), store.clone()).await;
    app.logged_in("olga").await;
    let guesser = app.browser();
    for _ in 0..3 {
        let resp = guesser.login(&email_of("olga"), "wrong password").await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    }
    // The fourth failure costs a delay; during it even the right password waits.
    assert_eq!(
        guesser
            .login(&email_of("olga"), "wrong password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let resp = app.browser().login(&email_of("olga"), PASSWORD).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS, "{}", resp.body);
    // 2 s, or 1 s if the clock ticked over since the failure.
    assert!(
        matches!(resp.header("retry-after"), Some("1" | "2")),
        "{:?}",
        resp.headers
    );
    resp.assert_contains("Too many failed logins");
    assert!(!resp.body.contains(PASSWORD));

    // Another node (or a restart) over the same store sees the same count.
    let other = spawn_app_with(throttled_config(account, LENIENT), store).await;
    let resp = other.browser().login(&email_of("olga"), PASSWORD).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);

    // An unknown email is throttled exactly the same way: no enumeration.
    for _ in 0..4 {
        guesser.login("nobody@example.com", "wrong password").await;
    }
    let resp = guesser.login("nobody@example.com", "wrong password").await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);

    // However many failures a stranger piles up, the victim waits at most the cap.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        guesser.login(&email_of("olga"), "wrong password").await;
    }
    let resp = app.browser().login(&email_of("olga"), PASSWORD).await;
    let wait: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!(wait <= 2, "waited {wait} s");
    tokio::time::sleep(Duration::from_secs(wait + 1)).await;
    app.browser()
        .login(&email_of("olga"), PASSWORD)
        .await
        .assert_redirect_to("/user/olga");
}

#[tokio::test]
async fn guessing_across_accounts_from_one_address_is_slowed_too() {
    let address = ThrottlePolicy {
        free_failures: 4,
        max_delay: 60,
        forget_after: 900,
    };
    let app = spawn_app_with(
        throttled_config(LENIENT, address),
        Store::memory().await.unwrap(),
    )
    .await;
    let guesser = app.browser();
    for n in 0..5 {
        let resp = guesser
            .login(&format!("user{n}@example.com"), "password1")
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    }
    let resp = guesser.login("user9@example.com", "password1").await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_password_change_logs_out_every_other_session() {
    let app = spawn_app().await;
    let owner = app.logged_in("paul").await;
    let thief = app.browser();
    thief
        .login(&email_of("paul"), PASSWORD)
        .await
        .assert_redirect_to("/user/paul");
    assert_eq!(auth_status(&app, &thief).await, StatusCode::OK);

    // Wrong current password, or a mismatch: 422, nothing changes.
    let resp = owner
        .post_form(
            "/account/password",
            &[
                ("current", "not it at all"),
                ("password", "brand new pass"),
                ("confirm", "brand new pass"),
            ],
        )
        .await;
    assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY);
    resp.assert_contains("not your current password");
    assert!(!resp.body.contains("brand new pass"));
    let resp = owner
        .post_form(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "brand new pass"),
                ("confirm", "other"),
            ],
        )
        .await;
    assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(auth_status(&app, &thief).await, StatusCode::OK);

    let resp = owner
        .post_form(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "brand new pass"),
                ("confirm", "brand new pass"),
            ],
        )
        .await;
    resp.assert_redirect_to("/user/paul");
    assert_eq!(
        auth_status(&app, &thief).await,
        StatusCode::UNAUTHORIZED,
        "the thief is out at once"
    );
    assert_eq!(
        auth_status(&app, &owner).await,
        StatusCode::OK,
        "the owner stays in"
    );
    assert_eq!(
        app.browser()
            .login(&email_of("paul"), PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    app.browser()
        .login(&email_of("paul"), "brand new pass")
        .await
        .assert_redirect_to("/user/paul");
    // Anonymous visitors are sent to log in first.
    let resp = app.browser().get("/account/password").await;
    resp.assert_redirect_to("/login?next=%2Faccount%2Fpassword");
}

/// Where a redirect may lead: a local path, or the site's own host.
fn stays_home(location: &str, app: &TestApp) -> bool {
    if location.starts_with('/') {
        return !location.starts_with("//") && !location.starts_with("/\\");
    }
    location.starts_with(&app.url("/"))
}

const OPEN_REDIRECTS: &[&str] = &[
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "http:\\\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "https://evil.example",
    "HTTPS://EVIL.EXAMPLE/",
    "https://127.0.0.1.evil.example/",
    "https://127.0.0.1@evil.example/",
    "https://a@127.0.0.1/",
    "https://evil.example\\@127.0.0.1/",
    "https://evil.example#@127.0.0.1/",
    "https://evil.example?@127.0.0.1/",
    "https://evil%2Eexample/",
    "https://%65vil.example/",
    "https://evil。example/",
    "http://0x7f.0.0.1.evil.example/",
    "/\t/evil.example",
    "/\n/evil.example",
    "/ /evil.example",
    "\t//evil.example",
    "%2F%2Fevil.example",
    "%2f%2fevil.example",
    "ftp://127.0.0.1/",
    "//127.0.0.1@evil.example",
];

#[tokio::test]
async fn no_next_leads_off_site() {
    let app = spawn_app().await;
    app.logged_in("quinn").await;
    let browser = app.browser();
    for next in OPEN_REDIRECTS {
        let resp = browser
            .post_form(
                "/login",
                &[
                    ("email", "quinn@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER, "{next:?}");
        let location = resp.header("location").unwrap();
        assert!(stays_home(location, &app), "{next:?} led to {location}");

        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let page = browser.get(&format!("/login?next={encoded}")).await;
        assert!(
            page.status == StatusCode::OK || page.status == StatusCode::BAD_REQUEST,
            "{next:?}: {}",
            page.status
        );
        if let Some(kept) = page.body.split("name=\"next\" value=\"").nth(1) {
            let kept = kept.split('"').next().unwrap().replace("&amp;", "&");
            assert!(stays_home(&kept, &app), "{next:?} kept as {kept}");
        }
    }
}

#[tokio::test]
async fn no_proxy_return_url_leads_off_site() {
    let app = spawn_app().await;
    for next in OPEN_REDIRECTS {
        let Ok(value) = reqwest::header::HeaderValue::from_str(next) else {
            continue; // not sendable as a header at all
        };
        let resp = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/auth"))
            .header("x-original-url", value)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                resp.status(),
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
            ),
            "{next:?}: {}",
            resp.status()
        );
        if let Some(location) = resp.headers().get("location") {
            let location = location.to_str().unwrap();
            let login: url::Url = location.parse().unwrap();
            assert_eq!(login.host_str(), Some("127.0.0.1"));
            if let Some((_, back)) = login.query_pairs().find(|(k, _)| k == "next") {
                assert!(stays_home(&back, &app), "{next:?} returns to {back}");
            }
        }
    }
}

#[tokio::test]
async fn racing_signups_for_one_name_create_one_user() {
    let app = spawn_app().await;
    let attempts: Vec<_> = (0..8)
        .map(|n| {
            let browser = app.browser();
            tokio::spawn(async move {
                browser
                    .signup("rhea", &format!("rhea{n}@example.com"), PASSWORD)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn the_throttled_address_is_the_real_one_unless_a_trusted_proxy_says_otherwise() {
    let address = ThrottlePolicy {
        free_failures: 2,
        max_delay: 60,
        forget_after: 900,
    };
    let guess = |browser: Browser, forwarded_for: String| async move {
        let mut login = fields(&[("email", "x@example.com"), ("password", "password1")]);
        login.push(("csrf".into(), browser.csrf_token().await));
        browser
            .client
            .post(format!("{}/login", browser.base()))
            .header("cookie", browser.cookie_header())
            .header("x-forwarded-for", forwarded_for)
            .form(&login)
            .send()
            .await
            .unwrap()
            .status()
    };
    // Loopback is not a trusted proxy here: X-Forwarded-For is the client's own
    // claim, and rotating it does not escape the count on 127.0.0.1.
    let mut config = throttled_config(LENIENT, address);
    config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    let app = spawn_app_with(config, Store::memory().await.unwrap()).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(guess(app.browser(), format!("203.0.113.{n}")).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );

    // Behind a trusted proxy (loopback, the default), each forwarded client counts
    // on its own.
    let app = spawn_app_with(
        throttled_config(LENIENT, address),
        Store::memory().await.unwrap(),
    )
    .await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(guess(app.browser(), format!("203.0.113.{n}")).await);
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}
