//! Second factors (issue "Second factors"): TOTP enrolment and the login in two
//! steps, with codes computed by the test from the secret the page shows, as an
//! authenticator app computes them. A pending second step opens nothing; a code
//! works once; a recovery code works once; `/auth?mfa=1` asks for the second
//! factor (through nginx and Caddy in `proxies.rs`).

use reqwest::StatusCode;
use serde_json::json;

use crate::app::{Browser, PASSWORD, Page, email_of, spawn_app};
use crate::support::factors::{between, code_at, code_now, enrol_in_store, shown_secret};

#[tokio::test]
async fn totp_enrols_with_a_code_and_then_every_login_takes_two_steps() {
    let app = spawn_app().await;
    let tina = app.logged_in("tina").await;
    let page = tina.get("/account/security").await;
    page.assert_contains("Off.");
    let setup = tina.post_form("/account/security/totp", &[]).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    setup.assert_contains("<svg");
    let secret = shown_secret(&setup.body);
    assert_eq!(secret.len(), 32, "{secret}");
    // A wrong code does not confirm it.
    let wrong = tina
        .post_form("/account/security/totp/confirm", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !app.store
            .totp(&domain::Username::parse("tina").unwrap())
            .await
            .unwrap()
            .unwrap()
            .confirmed
    );
    let before_confirm = tina.cookie_header();
    let confirmed = tina
        .post_form(
            "/account/security/totp/confirm",
            &[("code", &code_now(&secret))],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let codes: Vec<String> = between(&confirmed.body, "<ul id=\"recovery-codes\">", "</ul>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    tina.get("/account/security")
        .await
        .assert_contains("10 recovery codes left");
    // The code proved the new factor: the browser's session started again as one
    // that used it (a new token; the old one is dead).
    let rotated = confirmed.cookie_value("gatehouse_session").unwrap();
    assert!(!before_confirm.contains(rotated));
    let allowed = crate::app::auth_as_nginx(&app, &tina, "?mfa=1").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("x-auth-factors"), Some("pwd,otp"));
    let stale = crate::app::http_client()
        .get(app.url("/auth"))
        .header("cookie", &before_confirm)
        .header("x-original-url", "https://app.example.com/")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);

    // The password now leads to the second step, holding no session.
    let browser = app.browser();
    browser.get("/login").await;
    let first = browser.login(&email_of("tina"), PASSWORD).await;
    first.assert_redirect_to("/login/code");
    assert!(first.cookie_value("gatehouse_session").is_none());
    assert!(first.cookie_value("gatehouse_pending").is_some());
    // … which opens nothing: no page, no API call, no /auth.
    assert_eq!(
        crate::app::auth_as_nginx(&app, &browser, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    for path in ["/user/tina", "/account/security", "/account/sessions"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.header("location").unwrap().starts_with("/login"));
    }
    browser
        .api("GET", "/me", &[], None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    browser
        .api_same_origin("POST", "/me/tokens", Some(json!({ "name": "sneaky" })))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    // A wrong code: refused, still no session.
    let code_page = browser.get("/login/code").await;
    assert_eq!(code_page.status, StatusCode::OK);
    let wrong = browser
        .post_form("/login/code", &[("code", "123456")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("not right");
    // The code the enrolment used is spent; the next step's code works.
    let used_step = app
        .store
        .totp(&domain::Username::parse("tina").unwrap())
        .await
        .unwrap()
        .unwrap()
        .last_step;
    let used_step = u64::try_from(used_step).unwrap();
    let step_used = browser
        .post_form(
            "/login/code",
            &[("code", &code_at(&secret, used_step * 30))],
        )
        .await;
    assert_eq!(
        step_used.status,
        StatusCode::UNAUTHORIZED,
        "a replay passed"
    );
    let next_code = code_at(&secret, (used_step + 1) * 30);
    let done = browser
        .post_form("/login/code", &[("code", &next_code)])
        .await;
    done.assert_redirect_to("/user/tina");
    assert!(done.cookie_value("gatehouse_session").is_some());
    let allowed = crate::app::auth_as_nginx(&app, &browser, "?mfa=1").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("x-auth-factors"), Some("pwd,otp"));
    // The pending login is gone with its use.
    assert_eq!(
        browser.get("/login/code").await.status,
        StatusCode::SEE_OTHER
    );

    // The same code once more, on another login: refused (used already).
    let again = app.browser();
    again.get("/login").await;
    again
        .login(&email_of("tina"), PASSWORD)
        .await
        .assert_redirect_to("/login/code");
    let replay = again
        .post_form("/login/code", &[("code", &next_code)])
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "a replay passed");
    // Nor an earlier step's code that is still inside the ±1-step window (a code
    // seen over a shoulder a moment before the owner used a later one).
    let earlier = again
        .post_form(
            "/login/code",
            &[("code", &code_at(&secret, used_step * 30))],
        )
        .await;
    assert_eq!(
        earlier.status,
        StatusCode::UNAUTHORIZED,
        "an earlier step's code passed after a later one"
    );
    // A recovery code works, once, in any case and spacing.
    let recovery = codes[0].to_uppercase().replace('-', " ");
    again
        .post_form("/login/code", &[("code", &recovery)])
        .await
        .assert_redirect_to("/user/tina");
    assert_eq!(
        crate::app::auth_as_nginx(&app, &again, "?mfa=1")
            .await
            .header("x-auth-factors"),
        Some("pwd,recovery")
    );
    let third = app.browser();
    third.get("/login").await;
    third.login(&email_of("tina"), PASSWORD).await;
    let reused = third.post_form("/login/code", &[("code", &codes[0])]).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);

    // The API asks for the code in `otp`.
    let api = app.browser();
    let body = |otp: Option<&str>| {
        let mut body = json!({ "email": email_of("tina"), "password": PASSWORD });
        if let Some(otp) = otp {
            body["otp"] = json!(otp);
        }
        body
    };
    let needed = api
        .api("POST", "/sessions", &[], Some(body(None)))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert!(
        needed["detail"].as_str().unwrap().contains("otp"),
        "{needed}"
    );
    api.api("POST", "/sessions", &[], Some(body(Some("999999"))))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let mut with_token = body(Some(&codes[1]));
    with_token["token"] = json!({ "name": "script" });
    let made = api.api("POST", "/sessions", &[], Some(with_token)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let token = made.json()["token"]["token"].as_str().unwrap().to_owned();
    let me = api
        .api(
            "GET",
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
        .json();
    assert_eq!(me["factors"], json!(["pwd", "recovery"]));
    let gate = crate::app::http_client()
        .get(app.url("/auth?mfa=1"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-original-url", "https://app.example.com/")
        .send()
        .await
        .unwrap();
    assert_eq!(gate.status(), StatusCode::OK);

    // Turning it off asks for the password.
    let refused = done_browser_remove(&browser, "not the password").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    done_browser_remove(&browser, PASSWORD)
        .await
        .assert_redirect_to("/account/security");
    let plain = app.browser();
    plain.get("/login").await;
    plain
        .login(&email_of("tina"), PASSWORD)
        .await
        .assert_redirect_to("/user/tina");
}

async fn done_browser_remove(browser: &Browser, password: &str) -> Page {
    browser
        .post_form("/account/security/totp/remove", &[("password", password)])
        .await
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor_and_the_users_sessions_end() {
    let app = crate::support::accounts::spawn(web::config::SignupPolicy::Open).await;
    crate::support::accounts::add_user(&app, "root", "admins").await;
    crate::support::accounts::add_user(&app, "uli", "").await;
    let secret = enrol_in_store(&app, "uli").await;
    crate::support::factors::passkey_in_store(&app, "uli", "old phone").await;
    let uli = app.browser();
    uli.get("/login").await;
    uli.login(&email_of("uli"), PASSWORD).await;
    uli.post_form("/login/code", &[("code", &code_now(&secret))])
        .await
        .assert_redirect_to("/user/uli");
    let root = crate::support::accounts::log_in(&app, "root").await;
    let reset = root
        .api_same_origin("DELETE", "/admin/users/uli/factors", None)
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert_eq!(reset.json()["sessions_ended"], 1);
    assert_eq!(
        crate::app::auth_as_nginx(&app, &uli, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        app.store
            .totp(&domain::Username::parse("uli").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.store
            .passkeys(&domain::Username::parse("uli").unwrap())
            .await
            .unwrap()
            .is_empty(),
        "the passkeys went with the reset"
    );
    let again = app.browser();
    again.get("/login").await;
    again
        .login(&email_of("uli"), PASSWORD)
        .await
        .assert_redirect_to("/user/uli");
    // A user who is not an admin cannot.
    uli.get("/login").await;
    uli.login(&email_of("uli"), PASSWORD).await;
    uli.api_same_origin("DELETE", "/admin/users/root/factors", None)
        .await
        .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn members_of_a_group_that_requires_a_second_factor_set_one_up_before_passing() {
    let config = web::config::Config {
        require_mfa_groups: vec![domain::GroupName::parse("ops").unwrap()],
        ..crate::app::test_config()
    };
    let app = crate::app::spawn_app_with(config, storage::Store::memory().await.unwrap()).await;
    crate::support::accounts::add_user(&app, "olga", "ops").await;
    crate::support::accounts::add_user(&app, "paul", "").await;
    let paul = crate::support::accounts::log_in(&app, "paul").await;
    assert_eq!(
        crate::app::auth_as_nginx(&app, &paul, "").await.status,
        StatusCode::OK
    );
    // The login sends olga to set one up; the gate refuses her meanwhile.
    let olga = app.browser();
    olga.get("/login").await;
    olga.login(&email_of("olga"), PASSWORD)
        .await
        .assert_redirect_to("/account/security");
    olga.get("/account/security")
        .await
        .assert_contains("must use a second factor");
    assert_eq!(
        crate::app::auth_as_nginx(&app, &olga, "").await.status,
        StatusCode::FORBIDDEN
    );
    // The API is no way around it: its operations refuse her too, and its login
    // gives her nothing with the password alone; who she is stays hers to ask.
    let refused = olga.api_same_origin("GET", "/me/sessions", None).await;
    let problem = refused.problem(StatusCode::FORBIDDEN);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{problem}"
    );
    assert_eq!(
        olga.api_same_origin("GET", "/me", None).await.status,
        StatusCode::OK
    );
    let api_login = app
        .browser()
        .api(
            "POST",
            "/sessions",
            &[],
            Some(serde_json::json!({"email": email_of("olga"), "password": PASSWORD})),
        )
        .await;
    api_login.problem(StatusCode::FORBIDDEN);
    let setup = olga.post_form("/account/security/totp", &[]).await;
    let secret = shown_secret(&setup.body);
    let confirmed = olga
        .post_form(
            "/account/security/totp/confirm",
            &[("code", &code_now(&secret))],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let allowed = crate::app::auth_as_nginx(&app, &olga, "").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("x-auth-factors"), Some("pwd,otp"));
    let sessions = olga.api_same_origin("GET", "/me/sessions", None).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
}
