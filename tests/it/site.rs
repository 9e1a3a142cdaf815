//! The login loop as a browser without JavaScript sees it.

use domain::{Email, HashParams, Password, PasswordHasher, Username};
use reqwest::StatusCode;

use crate::app::{PASSWORD, email_of, spawn_app};

#[tokio::test]
async fn signup_logs_in_and_lands_on_the_profile() {
    let app = spawn_app().await;
    let browser = app.browser();

    let resp = browser
        .signup("Alice", "  Alice@Example.COM ", PASSWORD)
        .await;
    resp.assert_redirect_to("/user/alice");
    assert!(
        resp.set_cookies()
            .iter()
            .any(|c| c.starts_with("gatehouse_session=")),
        "{:?}",
        resp.set_cookies()
    );

    let profile = browser.get("/user/alice").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.header("x-auth-user"), Some("alice"));
    profile.assert_contains("alice@example.com");
    profile.assert_contains("This is you.");

    // Stored normalised, with a scrypt PHC hash at the configured parameters.
    let user = app
        .store
        .user_by_username(&Username::parse("alice").unwrap())
        .await
        .unwrap()
        .expect("user stored");
    assert_eq!(user.email.as_str(), "alice@example.com");
    assert!(
        user.password_hash
            .as_str()
            .starts_with("$scrypt$ln=10,r=8,p=1$")
    );

    let home = browser.get("/").await;
    home.assert_contains("You are logged in as <strong>alice</strong>");
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_and_back() {
    let app = spawn_app().await;
    app.logged_in("bob").await;
    let visitor = app.browser();

    let resp = visitor.get("/user/bob").await;
    resp.assert_redirect_to("/login?next=%2Fuser%2Fbob");
    assert_eq!(resp.header("x-auth-user"), None);

    let login_page = visitor.get("/login?next=%2Fuser%2Fbob").await;
    assert_eq!(login_page.status, StatusCode::OK);
    login_page.assert_contains(r#"<input type="hidden" name="next" value="/user/bob">"#);

    let resp = visitor
        .post_form(
            "/login",
            &[
                ("email", "bob@example.com"),
                ("password", PASSWORD),
                ("next", "/user/bob"),
            ],
        )
        .await;
    resp.assert_redirect_to("/user/bob");
    let profile = visitor.get("/user/bob").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.header("x-auth-user"), Some("bob"));
}

#[tokio::test]
async fn unsafe_next_falls_back_to_the_profile() {
    let app = spawn_app().await;
    app.logged_in("carol").await;
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "https://127.0.0.1.evil.example/",
    ] {
        let browser = app.browser();
        let resp = browser
            .post_form(
                "/login",
                &[
                    ("email", "carol@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        resp.assert_redirect_to("/user/carol");
        // Nor is it echoed into the login page's form.
        let page = browser
            .get(&format!("/login?next={}", url_encode(next)))
            .await;
        assert!(!page.body.contains("name=\"next\""), "{next} kept");
    }
}

fn url_encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.logged_in("dave").await;

    let browser = app.browser();
    let wrong = browser.login("dave@example.com", "not the password").await;
    let unknown = browser
        .login("nobody@example.com", "not the password")
        .await;
    for resp in [&wrong, &unknown] {
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
        resp.assert_contains("Invalid email or password.");
        assert!(!resp.body.contains("not the password"), "password echoed");
        assert!(resp.set_cookies().is_empty(), "{:?}", resp.set_cookies());
    }
    // The email is kept for a retry.
    wrong.assert_contains(r#"value="dave@example.com""#);
    // A password too short to be anyone's is the same failure, not a hint.
    let short = browser.login("dave@example.com", "short").await;
    assert_eq!(short.status, StatusCode::UNAUTHORIZED);
    short.assert_contains("Invalid email or password.");

    assert_eq!(
        browser.get("/user/dave").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn unknown_users_get_a_404_page() {
    let app = spawn_app().await;
    let browser = app.logged_in("erin").await;
    for path in ["/user/nobody", "/user/a", "/user/%00"] {
        let resp = browser.get(path).await;
        assert_eq!(resp.status, StatusCode::NOT_FOUND, "{path}");
        resp.assert_contains("There is nothing at this address.");
    }
    // Addresses are case-insensitive: the canonical one is lowercase.
    browser
        .get("/user/ERIN")
        .await
        .assert_redirect_to("/user/erin");
    let resp = browser.get("/no/such/page").await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.logged_in("frank").await;
    let browser = app.browser();
    let login = browser.login(&email_of("frank"), PASSWORD).await;
    login.assert_redirect_to("/user/frank");
    // A copy of the cookie, as an attacker who stole it would hold.
    let cookie = login.set_cookies()[0].split(';').next().unwrap().to_owned();

    let resp = browser.logout().await;
    resp.assert_redirect_to("/");
    assert!(
        resp.set_cookies()
            .iter()
            .any(|c| c.starts_with("gatehouse_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        resp.set_cookies()
    );
    assert_eq!(resp.header("x-auth-user"), None);
    browser
        .get("/user/frank")
        .await
        .assert_redirect_to("/login?next=%2Fuser%2Ffrank");

    let replay = app
        .browser()
        .client
        .get(app.url("/user/frank"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::SEE_OTHER,
        "old cookie still works"
    );
    // Only the signup's session is left.
    let sessions = app
        .store
        .sessions_of(&Username::parse("frank").unwrap())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

#[tokio::test]
async fn remember_me_gives_a_lasting_cookie() {
    let app = spawn_app().await;
    app.logged_in("gina").await;
    let browser = app.browser();
    let plain = browser.login("gina@example.com", PASSWORD).await;
    assert!(
        !plain.set_cookies()[0].contains("Max-Age"),
        "{:?}",
        plain.set_cookies()
    );
    let remembered = browser
        .post_form(
            "/login",
            &[
                ("email", "gina@example.com"),
                ("password", PASSWORD),
                ("remember", "on"),
            ],
        )
        .await;
    remembered.assert_redirect_to("/user/gina");
    assert!(
        remembered.set_cookies()[0].contains(&format!("Max-Age={}", 30 * 24 * 3600)),
        "{:?}",
        remembered.set_cookies()
    );
}

#[tokio::test]
async fn a_login_rehashes_a_password_made_with_other_parameters() {
    let app = spawn_app().await;
    let old = PasswordHasher::new(HashParams {
        log_n: 11,
        r: 8,
        p: 1,
    })
    .unwrap();
    let user = domain::User {
        username: Username::parse("hank").unwrap(),
        email: Email::parse("hank@example.com").unwrap(),
        name: None,
        password_hash: old.hash(&Password::parse(PASSWORD).unwrap()).unwrap(),
        created_at: 0,
        groups: Vec::new(),
        disabled: false,
        email_verified: false,
    };
    app.store.create_user(&user).await.unwrap();

    app.browser()
        .login("hank@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/hank");
    let stored = app
        .store
        .user_by_username(&user.username)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.password_hash.as_str().starts_with("$scrypt$ln=10,"),
        "not rehashed"
    );
}
