//! Passkeys over HTTP (issue "Second factors"): what can be shown without an
//! authenticator — the ceremonies take JSON from this site only, a challenge only
//! for its own ceremony, and a password for an account whose second factor is a
//! passkey opens nothing. The ceremonies themselves, with a real (virtual)
//! authenticator, run in Chromium (`browser.rs`).

use reqwest::StatusCode;
use serde_json::json;

use crate::app::{Browser, PASSWORD, email_of, spawn_app};
use crate::support::factors::{passkey_in_store, spawn_on_localhost};

/// A well-formed assertion that no authenticator signed.
fn forged_assertion() -> serde_json::Value {
    json!({
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "extensions": {},
        "response": {
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
            "signature": "MEUCIQ",
            "userHandle": "AAAAAAAAQACAAAAAAAAAAA"
        }
    })
}

async fn post_json(browser: &Browser, path: &str, body: &serde_json::Value) -> crate::app::Page {
    browser
        .post_raw(path, "application/json", serde_json::to_vec(body).unwrap())
        .await
}

#[tokio::test]
async fn a_passwordless_ceremony_takes_json_from_this_site_and_its_challenge_once() {
    let app = spawn_on_localhost().await;
    let visitor = app.browser();
    let login = visitor.get("/login").await;
    login.assert_contains("id=\"passkey-login\"");
    login.assert_contains("Sign in with a passkey");
    let begun = post_json(&visitor, "/login/passkey/begin", &json!({})).await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.body);
    let begun = begun.json();
    let ceremony = begun["ceremony"].as_str().unwrap().to_owned();
    assert!(ceremony.starts_with("wc_"), "{ceremony}");
    let options = &begun["options"]["publicKey"];
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "required");
    assert!(
        options["challenge"].as_str().unwrap().len() >= 43,
        "{options}"
    );
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "a passwordless login names no credential: {options}"
    );
    assert!(begun.get("mediation").is_none(), "{begun}");

    // An answer no authenticator signed: refused, no session, and the challenge
    // is used up — the store no longer holds it. (Two genuine answers for one
    // challenge: browser.rs.)
    let body = json!({ "ceremony": ceremony, "credential": forged_assertion() });
    let forged = post_json(&visitor, "/login/passkey", &body).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.body);
    assert_eq!(forged.json()["error"], "That passkey was not accepted.");
    assert!(forged.cookie_value("gatehouse_session").is_none());
    assert_eq!(
        app.store
            .take_challenge(&ceremony, storage::Ceremony::Passwordless)
            .await
            .unwrap(),
        None,
        "the refused ceremony is spent"
    );
    // A ceremony that never was.
    let made_up =
        json!({ "ceremony": format!("wc_{}", "a".repeat(64)), "credential": forged_assertion() });
    assert_eq!(
        post_json(&visitor, "/login/passkey", &made_up).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Bad input: clear 4xx answers.
    let form = visitor
        .post_form("/login/passkey", &[("ceremony", &ceremony)])
        .await;
    assert_eq!(
        form.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        form.body
    );
    assert!(
        form.json()["error"]
            .as_str()
            .unwrap()
            .contains("JavaScript")
    );
    let garbage = visitor
        .post_raw(
            "/login/passkey",
            "application/json",
            b"{\"ceremony\":".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let huge = visitor
        .post_raw("/login/passkey", "application/json", vec![b' '; 70 * 1024])
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);

    // CSRF: without the token, or from another site, nothing starts.
    let forger = app.browser();
    let no_token = forger.post_without_csrf("/login/passkey/begin", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let cross_site = visitor
        .submit(
            "/login/passkey/begin",
            &[],
            &[("origin", "https://evil.example")],
            true,
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn passkeys_are_off_when_the_public_url_is_an_address() {
    let app = spawn_app().await;
    let visitor = app.browser();
    let login = visitor.get("/login").await;
    assert!(!login.body.contains("passkey-login"), "{}", login.body);
    let begun = post_json(&visitor, "/login/passkey/begin", &json!({})).await;
    assert_eq!(begun.status, StatusCode::NOT_FOUND);
    assert!(
        begun.json()["error"]
            .as_str()
            .unwrap()
            .contains("not an address"),
        "{}",
        begun.body
    );
    let alice = app.logged_in("alice").await;
    alice
        .get("/account/security")
        .await
        .assert_contains("Passkeys are off");
}

#[tokio::test]
async fn a_password_for_a_passkey_account_opens_nothing_and_the_api_says_why() {
    let app = spawn_on_localhost().await;
    crate::support::accounts::add_user(&app, "pia", "").await;
    passkey_in_store(&app, "pia", "laptop").await;
    let browser = app.browser();
    browser.get("/login").await;
    let first = browser.login(&email_of("pia"), PASSWORD).await;
    first.assert_redirect_to("/login/code");
    assert!(first.cookie_value("gatehouse_session").is_none());
    assert_eq!(
        crate::app::auth_as_nginx(&app, &browser, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    for path in ["/user/pia", "/account/security"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
    }
    browser
        .api("GET", "/me", &[], None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    // The second step offers the passkey (shown by the script) and says what to
    // do without script; there is no code to type.
    let step = browser.get("/login/code").await;
    assert_eq!(step.status, StatusCode::OK);
    step.assert_contains("id=\"passkey-second\"");
    step.assert_contains("passkeys need JavaScript");
    assert!(!step.body.contains("id=\"code-form\""), "{}", step.body);
    let code = browser
        .post_form("/login/code", &[("code", "123456")])
        .await;
    assert_eq!(code.status, StatusCode::UNAUTHORIZED);
    assert!(code.cookie_value("gatehouse_session").is_none());
    // A second-step ceremony needs this browser's pending login.
    let stranger = app.browser();
    stranger.get("/login").await;
    let begun = post_json(&stranger, "/login/code/passkey/begin", &json!({})).await;
    assert_eq!(begun.status, StatusCode::GONE, "{}", begun.body);

    // The API cannot use a passkey: a right password gets a clear 403.
    let api = app
        .browser()
        .api(
            "POST",
            "/sessions",
            &[],
            Some(json!({ "email": email_of("pia"), "password": PASSWORD })),
        )
        .await;
    let problem = api.problem(StatusCode::FORBIDDEN);
    assert!(
        problem["detail"].as_str().unwrap().contains("passkey"),
        "{problem}"
    );
    // A wrong one is still the usual 401.
    app.browser()
        .api(
            "POST",
            "/sessions",
            &[],
            Some(json!({ "email": email_of("pia"), "password": "not the password" })),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn passkeys_are_listed_and_removed_with_the_password_only_by_their_owner() {
    let app = spawn_on_localhost().await;
    // Pia logs in with her authenticator app: a session that may change factors.
    crate::support::accounts::add_user(&app, "pia", "").await;
    let secret = crate::support::factors::enrol_in_store(&app, "pia").await;
    let pia = app.browser();
    pia.get("/login").await;
    pia.login(&email_of("pia"), PASSWORD)
        .await
        .assert_redirect_to("/login/code");
    pia.post_form(
        "/login/code",
        &[("code", &crate::support::factors::code_now(&secret))],
    )
    .await
    .assert_redirect_to("/user/pia");
    let bob = app.logged_in("bob").await;
    let laptop = passkey_in_store(&app, "pia", "laptop <b>").await;
    let page = pia.get("/account/security").await;
    page.assert_contains("laptop &lt;b&gt;");
    page.assert_contains("never used");
    page.assert_contains("Adding a passkey needs JavaScript.");
    let remove = format!("/account/security/passkeys/{laptop}/remove");
    // Someone else's passkey: not found, and still there.
    let other = bob.post_form(&remove, &[("password", PASSWORD)]).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    // A wrong password: refused.
    let wrong = pia
        .post_form(&remove, &[("password", "nope nope nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let pia_name = domain::Username::parse("pia").unwrap();
    assert_eq!(app.store.passkeys(&pia_name).await.unwrap().len(), 1);
    pia.post_form(&remove, &[("password", PASSWORD)])
        .await
        .assert_redirect_to("/account/security");
    assert!(app.store.passkeys(&pia_name).await.unwrap().is_empty());
    pia.get("/account/security")
        .await
        .assert_contains("None yet.");
    // Adding one takes the script's JSON; a plain form gets a clear answer.
    let form = pia
        .post_form("/account/security/passkeys", &[("name", "x")])
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A registration answer for a ceremony that never was: gone.
    let begun = post_json(&pia, "/account/security/passkeys/begin", &json!({})).await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.body);
    let options = &begun.json()["options"]["publicKey"];
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["user"]["name"], "pia");
    // Bob cannot finish Pia's ceremony.
    let body = json!({
        "ceremony": begun.json()["ceremony"],
        "name": "stolen",
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
            "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" }
        }
    });
    let stolen = post_json(&bob, "/account/security/passkeys", &body).await;
    assert_eq!(stolen.status, StatusCode::GONE, "{}", stolen.body);
    let bad_name = json!({ "ceremony": begun.json()["ceremony"], "name": " ", "credential": body["credential"] });
    let unnamed = post_json(&pia, "/account/security/passkeys", &bad_name).await;
    assert_eq!(
        unnamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unnamed.body
    );
}

#[tokio::test]
async fn an_api_token_cannot_add_a_passkey() {
    // A token that could add a passkey would buy a login with no password.
    let app = spawn_on_localhost().await;
    let pia = app.logged_in("pia").await;
    let created = pia
        .api_same_origin("POST", "/me/tokens", Some(json!({ "name": "ci" })))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.json()["token"].as_str().unwrap().to_owned();
    let begun = crate::app::http_client()
        .post(app.url("/account/security/passkeys/begin"))
        .header("authorization", format!("Bearer {secret}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_str(&begun.text().await.unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("API token"),
        "{body}"
    );
}

#[tokio::test]
async fn a_session_without_the_second_factor_cannot_change_the_factors() {
    // A session that used only the password — one opened before the user set up
    // a second factor — must not add a factor of its own (and be upgraded by it)
    // nor remove the user's: with the password alone it would get past them.
    let app = spawn_on_localhost().await;
    crate::support::accounts::add_user(&app, "vic", "").await;
    let stale = crate::support::accounts::log_in(&app, "vic").await;
    crate::support::factors::enrol_in_store(&app, "vic").await;
    let key = passkey_in_store(&app, "vic", "vic's key").await;
    let begun = post_json(&stale, "/account/security/passkeys/begin", &json!({})).await;
    assert_eq!(begun.status, StatusCode::FORBIDDEN, "{}", begun.body);
    assert!(
        begun.json()["error"]
            .as_str()
            .unwrap()
            .contains("second factor")
    );
    let remove_key = stale
        .post_form(
            &format!("/account/security/passkeys/{key}/remove"),
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        remove_key.status,
        StatusCode::FORBIDDEN,
        "{}",
        remove_key.body
    );
    let remove_app = stale
        .post_form("/account/security/totp/remove", &[("password", PASSWORD)])
        .await;
    assert_eq!(
        remove_app.status,
        StatusCode::FORBIDDEN,
        "{}",
        remove_app.body
    );
    let vic = domain::Username::parse("vic").unwrap();
    assert_eq!(app.store.passkeys(&vic).await.unwrap().len(), 1);
    assert!(app.store.totp(&vic).await.unwrap().is_some());
}

/// The same for an account whose only second factor is a passkey: a session
/// opened with the password before the passkey was added must not set up an
/// authenticator app of its own — neither start an enrolment nor confirm one in
/// progress — which would then pass as the second factor.
#[tokio::test]
async fn a_password_only_session_cannot_set_up_an_app_on_a_passkey_account() {
    let app = spawn_on_localhost().await;
    crate::support::accounts::add_user(&app, "pia", "").await;
    let stale = crate::support::accounts::log_in(&app, "pia").await;
    passkey_in_store(&app, "pia", "pia's key").await;
    let pia = domain::Username::parse("pia").unwrap();

    let begun = stale.post_form("/account/security/totp", &[]).await;
    assert_eq!(begun.status, StatusCode::FORBIDDEN, "{}", begun.body);
    begun.assert_contains("second factor");
    assert!(!begun.body.contains("totp-secret"), "{}", begun.body);
    assert!(app.store.totp(&pia).await.unwrap().is_none());

    // An enrolment in progress (the owner began one and went away): the stale
    // session cannot confirm it, even with the right code.
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let sealed = app.state.seal.as_ref().unwrap().seal(&pia, secret).unwrap();
    assert!(app.store.begin_totp(&pia, &sealed).await.unwrap());
    let confirmed = stale
        .post_form(
            "/account/security/totp/confirm",
            &[("code", &crate::support::factors::code_now(secret))],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::FORBIDDEN,
        "{}",
        confirmed.body
    );
    assert!(!app.store.totp(&pia).await.unwrap().unwrap().confirmed);
    assert!(!confirmed.body.contains("recovery-codes"));
}
