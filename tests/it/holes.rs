//! Attacks that broke other gates (oauth2-proxy, Authelia, tinyauth, authentik
//! advisories), each performed over HTTP against the real app. Each of these
//! succeeded before the fix that its test names; the proxy-borne ones (gatehouse's
//! cookies reaching apps, bare `/admin`, mixed-spelling identity headers, `/metrics`
//! through the proxy) are attacked through real nginx and Caddy in `proxies.rs`.

use reqwest::StatusCode;
use serde_json::json;
use web::config::Config;

use crate::app::{Browser, PASSWORD, TestApp, email_of, spawn_app, spawn_app_with, test_config};

/// Credentials a browser may have cached for the site (a staging `auth_basic`, a
/// corporate proxy) and attaches to any request, cross-site forms included.
const BASIC: (&str, &str) = ("authorization", "Basic YWxpY2U6c2VjcmV0");

async fn auth_status(app: &TestApp, cookie: &str) -> StatusCode {
    auth_with(app, "cookie", cookie).await
}

/// `/auth`'s status for a request carrying `name: value`.
async fn auth_with(app: &TestApp, name: &str, value: &str) -> StatusCode {
    crate::app::http_client()
        .get(app.url("/auth"))
        .header(name, value)
        .send()
        .await
        .unwrap()
        .status()
}

/// A new API token of `browser`'s user, minted with the session cookie.
async fn mint_token(app: &TestApp, browser: &Browser) -> String {
    let resp = browser
        .api_same_origin("POST", "/me/tokens", Some(json!({ "name": "laptop" })))
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.body);
    let token = resp.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        auth_with(app, "authorization", &bearer).await,
        StatusCode::OK
    );
    token
}

#[tokio::test]
async fn an_authorization_header_other_than_an_accepted_token_exempts_nothing_from_csrf() {
    let app = spawn_app().await;
    let victim = app.logged_in("vic").await;
    let mallory = app.logged_in("mallory").await;

    // Login CSRF with the browser's cached Basic credentials: no session for anyone.
    let fresh = app.browser();
    let login = [("email", "mallory@example.com"), ("password", PASSWORD)];
    let resp = fresh.submit("/login", &login, &[BASIC], false).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.body);
    assert_eq!(
        resp.cookie_value("gatehouse_session"),
        None,
        "logged in by a forged form"
    );

    // Forced logout with the victim's cookie plus Basic (or a made-up bearer token).
    let made_up = format!("Bearer gh_{}", "ab".repeat(32));
    for authorization in [BASIC.1, made_up.as_str(), "Bearer", "Negotiate abc"] {
        let resp = victim
            .submit("/logout", &[], &[("authorization", authorization)], false)
            .await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{authorization}");
        assert_eq!(
            auth_status(&app, &victim.cookie_header()).await,
            StatusCode::OK,
            "{authorization} logged the victim out"
        );
    }
    // The same through the JSON API (a cookie, Basic, no Origin).
    let resp = victim
        .api("DELETE", "/sessions/current", &[BASIC], None)
        .await;
    resp.problem(StatusCode::FORBIDDEN);
    assert_eq!(
        auth_status(&app, &victim.cookie_header()).await,
        StatusCode::OK
    );

    // A token gatehouse accepts exempts the request, and is then the whole identity:
    // the victim's cookie riding along is not read.
    let token = mint_token(&app, &mallory).await;
    let bearer = format!("Bearer {token}");
    let resp = victim
        .api("GET", "/me", &[("authorization", &bearer)], None)
        .await;
    assert_eq!(resp.json()["username"], "mallory", "{}", resp.body);
    let resp = victim
        .submit("/logout", &[], &[("authorization", &bearer)], false)
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
    assert_eq!(
        auth_status(&app, &victim.cookie_header()).await,
        StatusCode::OK,
        "a token request ended the cookie's session"
    );
}

#[tokio::test]
async fn unsafe_requests_from_another_site_are_refused_even_with_a_token() {
    let app = spawn_app().await;
    let victim = app.logged_in("olga").await;
    let own_origin = app.url("");
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
    ] {
        // The forger somehow has a token for this browser: the origin still stops it.
        let resp = victim.submit("/logout", &[], headers, true).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{headers:?}");
        resp.assert_contains("Cross-site request refused");
        assert_eq!(
            auth_status(&app, &victim.cookie_header()).await,
            StatusCode::OK
        );
    }
    // The browser's own same-origin headers pass.
    let same = [
        ("origin", own_origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let resp = victim.submit("/logout", &[], &same, true).await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);
}

#[tokio::test]
async fn an_unparsable_forwarded_hop_does_not_let_the_client_choose_its_address() {
    let app = spawn_app().await;
    app.logged_in("vince").await;
    // The test client is on loopback: a trusted proxy that appends the real client
    // (203.0.113.5) to whatever X-Forwarded-For the client sent.
    let attacker = app.browser();
    let mut throttled = 0;
    for i in 0..25 {
        let chain = format!("198.51.100.{i}, x, 203.0.113.5");
        let email = format!("nobody{i}@example.com");
        let resp = attacker
            .submit(
                "/login",
                &[("email", &email), ("password", "wrong password")],
                &[("x-forwarded-for", &chain)],
                true,
            )
            .await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
        }
    }
    assert!(
        throttled >= 4,
        "the address throttle never caught 203.0.113.5 ({throttled} of 25 throttled)"
    );

    // Charging a victim's office address: the attacker's own address pays.
    let attacker = app.browser();
    for _ in 0..22 {
        attacker
            .submit(
                "/login",
                &[("email", "x@example.com"), ("password", "wrong password")],
                &[("x-forwarded-for", "192.0.2.10, x, 203.0.113.6")],
                true,
            )
            .await;
    }
    let victim = app.browser();
    let resp = victim
        .submit(
            "/login",
            &[("email", &email_of("vince")), ("password", PASSWORD)],
            &[("x-forwarded-for", "192.0.2.10")],
            true,
        )
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);

    // The session records the address the trusted proxy vouched for.
    let resp = app
        .browser()
        .submit(
            "/login",
            &[("email", &email_of("vince")), ("password", PASSWORD)],
            &[("x-forwarded-for", "198.51.100.77, x, 203.0.113.7")],
            true,
        )
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
    let vince = domain::Username::parse("vince").unwrap();
    let addresses: Vec<Option<String>> = app
        .store
        .sessions_of(&vince)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.address)
        .collect();
    assert!(
        addresses.contains(&Some("203.0.113.7".into())),
        "{addresses:?}"
    );
    assert!(!addresses.contains(&Some("198.51.100.77".into())));
}

#[tokio::test]
async fn a_password_change_revokes_the_api_tokens_too() {
    let app = spawn_app().await;
    let owner = app.logged_in("petra").await;
    // A thief with a copy of the cookie mints a token in one request.
    let stolen = Browser::page(
        crate::app::http_client()
            .post(app.url("/api/v1/me/tokens"))
            .header("cookie", owner.cookie_header())
            .header("origin", app.url(""))
            .header("content-type", "application/json")
            .body(r#"{"name":"backdoor"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::CREATED, "{}", stolen.body);
    let bearer = format!("Bearer {}", stolen.json()["token"].as_str().unwrap());
    let resp = owner
        .post_form(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "a new passphrase"),
                ("confirm", "a new passphrase"),
            ],
        )
        .await;
    resp.assert_redirect_to("/user/petra");
    assert_eq!(
        auth_with(&app, "authorization", &bearer).await,
        StatusCode::UNAUTHORIZED,
        "the token survived"
    );
    let petra = domain::Username::parse("petra").unwrap();
    assert!(app.store.api_tokens_of(&petra).await.unwrap().is_empty());
    assert_eq!(
        auth_status(&app, &owner.cookie_header()).await,
        StatusCode::OK,
        "the owner's own session stays"
    );
    // The page says so before the change.
    let page = owner.get("/account/password").await;
    page.assert_contains("every API token of yours is revoked");
}

#[tokio::test]
async fn the_api_password_change_revokes_the_tokens_and_needs_the_session() {
    let app = spawn_app().await;
    let owner = app.logged_in("quinn").await;
    let token = mint_token(&app, &owner).await;
    let bearer = format!("Bearer {token}");
    let change = json!({ "current": PASSWORD, "password": "another passphrase" });
    // A token (a leaked one, say) cannot change the password.
    let resp = app
        .browser()
        .api(
            "PUT",
            "/me/password",
            &[("authorization", &bearer)],
            Some(change.clone()),
        )
        .await;
    resp.problem(StatusCode::FORBIDDEN);
    let resp = owner
        .api_same_origin(
            "PUT",
            "/me/password",
            Some(json!({ "current": "not it at all", "password": "another passphrase" })),
        )
        .await;
    let problem = resp.problem(StatusCode::FORBIDDEN);
    assert_eq!(problem["errors"][0]["field"], "current");

    let resp = owner
        .api_same_origin("PUT", "/me/password", Some(change))
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
    assert_eq!(resp.json()["tokens_revoked"], 1);
    assert_eq!(
        auth_with(&app, "authorization", &bearer).await,
        StatusCode::UNAUTHORIZED,
        "the token survived"
    );
    assert_eq!(
        app.browser()
            .login(&email_of("quinn"), "another passphrase")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn emails_with_invisible_characters_are_refused_and_domains_kept_in_ascii() {
    let app = spawn_app().await;
    for (i, email) in [
        "alice\u{200b}@example.com",
        "alice\u{00ad}@example.com",
        "\u{202e}alice@example.com",
        "alice@exam\u{200d}ple.com",
    ]
    .into_iter()
    .enumerate()
    {
        let username = format!("spoof{i}");
        let resp = app.browser().signup(&username, email, PASSWORD).await;
        assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY, "{email:?}");
        resp.assert_contains("invisible or control characters");
        let resp = app
            .browser()
            .api(
                "POST",
                "/users",
                &[],
                Some(json!({ "username": username, "email": email, "password": PASSWORD })),
            )
            .await;
        let problem = resp.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    }
    assert_eq!(app.store.count_users().await.unwrap(), 0);

    // An internationalised domain is stored and forwarded in its ASCII form, and the
    // Unicode spelling logs in to the same account.
    let browser = app.browser();
    let resp = browser
        .signup("jurgen", "Juergen@Bücher.de", PASSWORD)
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);
    let jurgen = domain::Username::parse("jurgen").unwrap();
    assert!(app.store.set_email_verified(&jurgen, true).await.unwrap());
    let resp = crate::app::http_client()
        .get(app.url("/auth"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-auth-email"], "juergen@xn--bcher-kva.de");
    let resp = app.browser().login("juergen@bücher.de", PASSWORD).await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);
    let resp = app
        .browser()
        .login("juergen@xn--bcher-kva.de", PASSWORD)
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn next_must_match_an_allowed_origin_scheme_and_port() {
    let config = Config {
        public_url: "https://auth.example.com/".parse().unwrap(),
        allowed_domains: vec!["apps.example.net".into()],
        ..test_config()
    };
    let app = spawn_app_with(config, storage::Store::memory().await.unwrap()).await;
    app.logged_in("nina").await;
    for (next, followed) in [
        ("http://auth.example.com:9/x", false),
        ("https://auth.example.com:9/x", false),
        ("http://auth.example.com/x", false),
        ("http://wiki.apps.example.net/", false),
        ("https://wiki.apps.example.net:8443/", false),
        ("https://auth.example.com/x", true),
        ("https://wiki.apps.example.net/page", true),
    ] {
        let browser = app.browser();
        let resp = browser
            .post_form(
                "/login",
                &[
                    ("email", &email_of("nina")),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        let expected = if followed { next } else { "/user/nina" };
        resp.assert_redirect_to(expected);
    }
    // /auth does not hand such a URL to the login page either.
    let resp = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/auth"))
        .header("x-original-url", "http://auth.example.com:9/x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["location"], "https://auth.example.com/login");
}

#[tokio::test]
async fn two_login_tabs_opened_at_once_both_work() {
    let app = spawn_app().await;
    app.logged_in("tabby").await;
    let login = [("email", "tabby@example.com"), ("password", PASSWORD)];
    let token_of = |page: &crate::app::Page| {
        page.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    };
    // Both tabs load /login before either has the CSRF cookie; the browser keeps
    // the cookie of the last answer.
    let browser = app.browser();
    let first_tab = browser.get("/login").await;
    browser.forget_cookies();
    let second_tab = browser.get("/login").await;
    let (first, second) = (token_of(&first_tab), token_of(&second_tab));
    assert_ne!(first, second);

    // The first tab submits: its browser sends Origin and Sec-Fetch-Site, as every
    // current browser does on a form post.
    let origin = app.url("");
    let same_origin = [
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let mut fields = login.to_vec();
    fields.push(("csrf", first.as_str()));
    let resp = browser.submit("/login", &fields, &same_origin, false).await;
    resp.assert_redirect_to("/user/tabby");

    // An older browser sends neither: the first tab's form comes back, filled in,
    // with the token of this browser's cookie, and that one goes through.
    let browser = app.browser();
    let first_tab = browser.get("/login").await;
    browser.forget_cookies();
    browser.get("/login").await;
    let mut fields = login.to_vec();
    let stale = token_of(&first_tab);
    fields.push(("csrf", stale.as_str()));
    let resp = browser.submit("/login", &fields, &[], false).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    resp.assert_contains("This form had expired");
    resp.assert_contains("value=\"tabby@example.com\"");
    assert!(!resp.body.contains(PASSWORD), "the password came back");
    let fresh = token_of(&resp);
    assert_ne!(fresh, stale);
    let mut fields = login.to_vec();
    fields.push(("csrf", fresh.as_str()));
    let resp = browser.submit("/login", &fields, &[], false).await;
    resp.assert_redirect_to("/user/tabby");

    // A token that is not ours is refused even with same-origin headers.
    let forged = format!("{}{}", &second[..32], "00".repeat(32));
    let mut fields = login.to_vec();
    fields.push(("csrf", forged.as_str()));
    let resp = app
        .browser()
        .submit("/login", &fields, &same_origin, false)
        .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
}
