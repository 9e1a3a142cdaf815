//! Attacks on identity: spoofed headers, session fixation, cookie theft from the
//! store, and the cookie and header policy that blunts the rest.

use reqwest::StatusCode;
use storage::{SessionToken, Store};

use crate::app::{PASSWORD, email_of, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn spoofed_identity_headers_are_never_believed() {
    let app = spawn_app().await;
    app.logged_in("kate").await;
    let client = app.browser().client;
    for (name, value) in [
        ("X-Auth-User", "kate"),
        ("x-auth-email", "kate@example.com"),
        ("Remote-User", "kate"),
        ("Remote-Email", "kate@example.com"),
    ] {
        let resp = client
            .get(app.url("/user/kate"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{name} believed");
        assert_eq!(resp.headers().get("x-auth-user"), None);
    }
    let home = client
        .get(app.url("/"))
        .header("X-Auth-User", "kate")
        .send()
        .await
        .unwrap();
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("You are not logged in.")
    );
}

#[tokio::test]
async fn every_login_gets_a_new_token_and_a_planted_one_is_worthless() {
    let app = spawn_app().await;
    app.logged_in("leo").await;

    // The attacker plants a session token they know in the victim's browser (say
    // through a sibling subdomain); it names no session, so it is cleared.
    let planted = SessionToken::generate();
    let victim = app.browser();
    let resp = victim
        .client
        .get(app.url("/"))
        .header("cookie", format!("gatehouse_session={}", planted.expose()))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().contains("Max-Age=0")),
        "unknown token not cleared"
    );

    // Logging in twice from one browser: two different tokens, the first ended.
    let first = victim.login(&email_of("leo"), PASSWORD).await;
    let second = victim.login(&email_of("leo"), PASSWORD).await;
    let token = |page: &crate::app::Page| {
        let cookie = page.set_cookies()[0].to_owned();
        let value = cookie
            .split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap()
            .to_owned();
        SessionToken::parse(&value).expect("token")
    };
    let (first, second) = (token(&first), token(&second));
    assert_ne!(first, second);
    assert_ne!(first, planted);
    assert!(
        app.store.session(&first).await.unwrap().is_none(),
        "old session kept"
    );
    assert!(app.store.session(&second).await.unwrap().is_some());
}

#[tokio::test]
async fn the_store_keeps_only_a_hash_of_the_token() {
    let app = spawn_app().await;
    let browser = app.browser();
    let resp = browser.signup("mia", &email_of("mia"), PASSWORD).await;
    let cookie = resp.set_cookies()[0].to_owned();
    let value = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    let token = SessionToken::parse(value).unwrap();
    assert!(app.store.session_by_id(value).await.unwrap().is_none());
    let session = app
        .store
        .session(&token)
        .await
        .unwrap()
        .expect("session stored");
    assert_eq!(session.id, token.session_id());
    assert_ne!(session.id, value);
}

#[tokio::test]
async fn secure_mode_cookies_and_headers() {
    let config = web::Config {
        insecure_cookies: false,
        ..test_config()
    };
    let app = spawn_app_with(config, Store::memory().await.unwrap()).await;
    let browser = app.browser();
    let resp = browser.signup("nina", &email_of("nina"), PASSWORD).await;
    resp.assert_redirect_to("/user/nina");
    let cookie = resp.set_cookies()[0];
    assert!(cookie.starts_with("__Host-gatehouse_session="), "{cookie}");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = spawn_app().await;
    let page = app.browser().get("/login").await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Plain HTTP development mode: no HSTS.
    assert_eq!(page.header("strict-transport-security"), None);

    let css = app.browser().get(web::site::STYLE_PATH).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[tokio::test]
async fn an_expired_session_is_refused_and_removed() {
    let config = web::Config {
        sessions: web::config::SessionPolicy {
            idle_timeout: 3600,
            lifetime: 1,
            remember_lifetime: 1,
        },
        ..test_config()
    };
    let app = spawn_app_with(config, Store::memory().await.unwrap()).await;
    let browser = app.browser();
    browser.signup("olga", &email_of("olga"), PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    browser
        .get("/user/olga")
        .await
        .assert_redirect_to("/login?next=%2Fuser%2Folga");
    let sessions = app
        .store
        .sessions_of(&domain::Username::parse("olga").unwrap())
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{sessions:?}");
}
