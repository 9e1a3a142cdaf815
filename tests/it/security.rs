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
        SessionToken::parse(page.cookie_value("gatehouse_session").unwrap()).expect("token")
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

/// Session fixation as it is done: the attacker plants a token of a session that
/// is live (their own) in the victim's browser, and the victim logs in with it in
/// the jar. The login must not carry on with that token: it ends that session and
/// sets a new one, so the attacker's copy opens nothing.
#[tokio::test]
async fn a_live_token_planted_before_login_is_ended_by_the_login() {
    let app = spawn_app().await;
    app.logged_in("leo").await;
    let attacker = app.logged_in("mallory").await;
    let planted = attacker.cookie_header();
    let planted_token = planted
        .split("; ")
        .find_map(|c| c.strip_prefix("gatehouse_session="))
        .unwrap()
        .to_owned();
    let auth_with = |cookie: String| {
        let url = app.url("/auth");
        async move {
            crate::app::http_client()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(auth_with(planted.clone()).await, StatusCode::OK);

    let victim = app.browser();
    let login = [("email", "leo@example.com"), ("password", PASSWORD)];
    let fixed = format!("gatehouse_session={planted_token}");
    let resp = victim
        .submit("/login", &login, &[("cookie", &fixed)], true)
        .await;
    resp.assert_redirect_to("/user/leo");
    let new = resp
        .cookie_value("gatehouse_session")
        .expect("a new session cookie")
        .to_owned();
    assert_ne!(new, planted_token, "the planted token was kept");
    let planted = SessionToken::parse(&planted_token).unwrap();
    assert!(app.store.session(&planted).await.unwrap().is_none());
    assert_eq!(
        auth_with(format!("gatehouse_session={planted_token}")).await,
        StatusCode::UNAUTHORIZED,
        "the attacker's copy still opens something"
    );
    assert_eq!(
        auth_with(format!("gatehouse_session={new}")).await,
        StatusCode::OK
    );
}

/// What the store keeps of a session or API token: its SHA-256 (computed here, not
/// by the code under test), never the secret. The store's files on disk are
/// searched for both.
#[tokio::test]
async fn the_store_keeps_only_a_hash_of_the_token() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("db").display());
    let store = Store::open(&url, None).await.unwrap();
    let app = spawn_app_with(test_config(), store).await;
    let browser = app.browser();
    let resp = browser.signup("mia", &email_of("mia"), PASSWORD).await;
    let session_secret = resp.cookie_value("gatehouse_session").unwrap().to_owned();
    let mia = domain::Username::parse("mia").unwrap();
    let (api_token, _) = app.store.create_api_token(&mia, "t", None).await.unwrap();
    let api_secret = api_token.expose().to_owned();
    let sha = |secret: &str| hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let token = SessionToken::parse(&session_secret).unwrap();
    let session = app
        .store
        .session(&token)
        .await
        .unwrap()
        .expect("session stored");
    assert_eq!(session.id, sha(&session_secret));
    assert!(
        app.store
            .session_by_id(&session_secret)
            .await
            .unwrap()
            .is_none()
    );
    drop(app);
    // Let the store close its files, then read every byte it wrote.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut bytes = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for (what, secret) in [("session", &session_secret), ("API token", &api_secret)] {
        assert!(
            holds(&sha(secret)),
            "the {what}'s hash is not in the store's files"
        );
        assert!(
            !holds(secret),
            "the {what}'s secret is in the store's files"
        );
        assert!(
            !holds(&secret[secret.len() - 32..]),
            "part of the {what}'s secret is stored"
        );
    }
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
