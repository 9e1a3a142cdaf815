//! Bad input gets a clear 4xx with a message, never a 500, and writes nothing.

use reqwest::StatusCode;

use crate::app::{PASSWORD, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";

type Fields = Vec<(String, String)>;

fn signup_body(username: &str, email: &str, password: &str, confirm: &str) -> Fields {
    vec![
        ("username".into(), username.into()),
        ("email".into(), email.into()),
        ("password".into(), password.into()),
        ("confirm".into(), confirm.into()),
    ]
}

#[tokio::test]
async fn invalid_signups_are_refused_with_messages_and_nothing_is_written() {
    let app = spawn_app().await;
    let browser = app.browser();
    let long = "a".repeat(1025);
    let cases: Vec<(Fields, StatusCode, &str)> = vec![
        (
            signup_body("ivan", "not-an-email", PASSWORD, PASSWORD),
            StatusCode::UNPROCESSABLE_ENTITY,
            "An email address looks like name@example.com.",
        ),
        (
            signup_body("ivan", "ivan@example.com", &long, &long),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A password is at most 1024 characters long.",
        ),
        (
            signup_body("ivan", "ivan@example.com", "short", "short"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A password is at least 8 characters long.",
        ),
        (
            signup_body("ivan", "ivan@example.com", PASSWORD, "something else"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "The passwords do not match.",
        ),
        (
            signup_body("iv", "ivan@example.com", PASSWORD, PASSWORD),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A username is 3 to 32 characters long.",
        ),
        (
            signup_body("iv an", "ivan@example.com", PASSWORD, PASSWORD),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A username may only contain",
        ),
        (
            vec![
                ("username".into(), "ivan".into()),
                ("email".into(), "ivan@example.com".into()),
            ],
            StatusCode::BAD_REQUEST,
            "The form is missing the field 'password'.",
        ),
        (
            {
                let mut body = signup_body("ivan", "ivan@example.com", PASSWORD, PASSWORD);
                body.push(("is_admin".into(), "true".into()));
                body
            },
            StatusCode::BAD_REQUEST,
            "does not take",
        ),
        (
            {
                let mut body = signup_body("ivan", "ivan@example.com", PASSWORD, PASSWORD);
                body.push(("username".into(), "mallory".into()));
                body
            },
            StatusCode::BAD_REQUEST,
            "more than once",
        ),
    ];
    for (body, status, message) in cases {
        let page = browser.post_fields("/signup", body.clone()).await;
        assert_eq!(page.status, status, "{body:?}: {}", page.body);
        page.assert_contains(message);
        // Validation errors keep what the user typed, never the password.
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(!page.body.contains(PASSWORD), "password echoed");
            page.assert_contains("id=\"signup-form\"");
        }
    }
    assert_eq!(app.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_4xx() {
    let app = spawn_app().await;
    let browser = app.browser();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "/login",
            FORM,
            b"email=%ff%fe&password=x".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
        ),
        (
            "/login",
            FORM,
            b"email=a\xffb&password=x".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
        ),
        (
            "/login",
            FORM,
            b"email=%zz&password=x".to_vec(),
            StatusCode::BAD_REQUEST,
            "percent-encoding",
        ),
        (
            "/login",
            FORM,
            b"email=a%00b&password=x".to_vec(),
            StatusCode::BAD_REQUEST,
            "NUL",
        ),
        (
            "/login",
            FORM,
            vec![b'a'; 17 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "16 KiB",
        ),
        (
            "/signup",
            "application/json",
            b"{\"username\":\"x\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "x-www-form-urlencoded",
        ),
        (
            "/login",
            FORM,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "missing the field",
        ),
        (
            "/signup",
            FORM,
            b"&&&=&".to_vec(),
            StatusCode::BAD_REQUEST,
            "does not take",
        ),
    ];
    for (path, content_type, body, status, message) in cases {
        let page = browser.post_raw(path, content_type, body.clone()).await;
        assert_eq!(
            page.status,
            status,
            "{path} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(40)]),
            page.body
        );
        page.assert_contains(message);
    }
}

#[tokio::test]
async fn login_input_limits() {
    let app = spawn_app().await;
    let browser = app.browser();
    let long = "a".repeat(1025);
    let page = browser.login("someone@example.com", &long).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("A password is at most 1024 characters long.");
    let page = browser.login("someone", PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("An email address looks like name@example.com.");
}

#[tokio::test]
async fn taken_usernames_and_emails_are_refused_whatever_their_case() {
    let app = spawn_app().await;
    app.logged_in("judy").await;
    let browser = app.browser();
    let page = browser.signup("JUDY", "other@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    page.assert_contains("This username is already taken.");
    page.assert_contains(r#"value="JUDY""#);
    let page = browser.signup("judy2", "Judy@Example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    page.assert_contains("An account with this email already exists.");
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn wrong_methods_are_405_not_500() {
    let app = spawn_app().await;
    let browser = app.browser();
    for (method, path) in [("DELETE", "/login"), ("PUT", "/signup"), ("GET", "/logout")] {
        let resp = browser
            .request_raw(
                method,
                path,
                "application/x-www-form-urlencoded",
                Vec::new(),
            )
            .await;
        assert_eq!(
            resp.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // Without the CSRF token an unsafe method is refused before routing.
    let resp = browser
        .client
        .delete(app.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
