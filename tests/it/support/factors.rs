//! Second factors for tests: TOTP codes as an authenticator app computes them,
//! enrolments and passkeys put straight in the store.

use storage::StoredPasskey;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::app::{TestApp, spawn_app_with, test_config};

/// The code an authenticator app shows at Unix time `at` for a base32 secret.
pub fn code_at(secret: &str, at: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(at)
}

pub fn now() -> u64 {
    u64::try_from(storage::now()).unwrap()
}

pub fn code_now(secret: &str) -> String {
    code_at(secret, now())
}

/// Enrols `name` straight in the store, as confirmed (no step used yet), the
/// secret sealed under the app's key as an enrolment seals it; returns the secret.
pub async fn enrol_in_store(app: &TestApp, name: &str) -> String {
    let secret = Secret::Raw(b"gatehouse-test-secret-20b".to_vec())
        .to_encoded()
        .to_string();
    let username = domain::Username::parse(name).unwrap();
    let sealed = app
        .state
        .seal
        .as_ref()
        .unwrap()
        .seal(&username, &secret)
        .unwrap();
    assert!(app.store.begin_totp(&username, &sealed).await.unwrap());
    assert!(
        app.store
            .confirm_totp(&username, 0, Vec::new())
            .await
            .unwrap()
    );
    secret
}

/// The secret an enrolment page shows, as a user types it into their app.
pub fn shown_secret(body: &str) -> String {
    between(body, "<code id=\"totp-secret\">", "<").to_owned()
}

pub fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    body.split(start)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .unwrap_or_else(|| panic!("{start:?} not in {body}"))
}

/// The app on `http://localhost:PORT/`: passkeys need a host name.
pub async fn spawn_on_localhost() -> TestApp {
    let mut config = test_config();
    config.public_url = "http://localhost/".parse().unwrap();
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

/// Gives `name` a passkey straight in the store (its credential is not one an
/// authenticator made: enough for the account to have a passkey).
pub async fn passkey_in_store(app: &TestApp, name: &str, label: &str) -> String {
    let id = storage::passkeys::passkey_key(label.as_bytes());
    let passkey = StoredPasskey {
        id: id.clone(),
        username: domain::Username::parse(name).unwrap(),
        handle: "00000000-0000-4000-8000-000000000000".into(),
        name: label.into(),
        credential: "{}".into(),
        created_at: storage::now(),
        last_used_at: None,
    };
    assert!(app.store.add_passkey(&passkey).await.unwrap());
    id
}
