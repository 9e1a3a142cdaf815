//! Accounts for tests: an app with a sign-up policy, users made in the store,
//! browsers logged in.

use domain::{Email, GroupName, Password, PasswordHasher, User, Username};
use reqwest::StatusCode;
use web::config::{Config, SignupPolicy};

use crate::app::{Browser, PASSWORD, TestApp, email_of, spawn_app_with, test_config};

pub async fn spawn(signup: SignupPolicy) -> TestApp {
    let config = Config {
        signup,
        ..test_config()
    };
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

/// A user made straight in the store (as `gatehouse user add` does), with
/// [`PASSWORD`] hashed at the tests' parameters.
pub async fn add_user(app: &TestApp, name: &str, groups: &str) -> User {
    let hasher = PasswordHasher::new(test_config().hashing.params).unwrap();
    let user = User {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&email_of(name)).unwrap(),
        name: domain::DisplayName::parse("").unwrap(),
        password_hash: hasher.hash(&Password::parse(PASSWORD).unwrap()).unwrap(),
        created_at: storage::now(),
        groups: GroupName::parse_list(groups).unwrap(),
        disabled: false,
        email_verified: true,
    };
    app.store.create_user(&user).await.unwrap();
    user
}

/// A browser logged in as `name`.
pub async fn log_in(app: &TestApp, name: &str) -> Browser {
    let browser = app.browser();
    browser.get("/login").await;
    let page = browser.login(&email_of(name), PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}
