//! `/auth` over HTTP, as a proxy on loopback asks it (SPEC §6): who asks decides the
//! form of a denial; rules come from `/auth`'s own query; forwarded headers are
//! believed from trusted proxies only; API tokens work like sessions.

use reqwest::StatusCode;

use crate::app::{Page, TestApp, spawn_app_with, test_config};

const APP_URL: &str = "https://app.example.com/wiki/page?x=1";
const ENCODED_APP_URL: &str = "https%3A%2F%2Fapp.example.com%2Fwiki%2Fpage%3Fx%3D1";

async fn spawn() -> TestApp {
    let config = web::config::Config {
        allowed_domains: vec!["example.com".into()],
        ..test_config()
    };
    spawn_app_with(config, storage::Store::memory().await.unwrap()).await
}

fn nginx(url: &str) -> Vec<(&'static str, String)> {
    vec![("x-original-url", url.to_owned())]
}

fn caddy(proto: &str, host: &str, uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-forwarded-proto", proto.to_owned()),
        ("x-forwarded-host", host.to_owned()),
        ("x-forwarded-uri", uri.to_owned()),
        ("x-forwarded-method", "GET".to_owned()),
    ]
}

async fn ask(app: &TestApp, query: &str, cookie: Option<&str>, headers: &[(&str, String)]) -> Page {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/auth{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    crate::app::Browser::page(request.send().await.unwrap()).await
}

fn login_url(app: &TestApp, next: Option<&str>) -> String {
    match next {
        Some(next) => app.url(&format!("/login?next={next}")),
        None => app.url("/login"),
    }
}

#[tokio::test]
async fn a_logged_in_user_is_named_to_the_proxy() {
    let app = spawn().await;
    let alice = app.logged_in_verified("alice").await;
    let cookie = alice.cookie_header();
    for method in ["GET", "HEAD", "POST", "DELETE"] {
        let resp = crate::app::http_client()
            .request(method.parse().unwrap(), app.url("/auth"))
            .header("cookie", &cookie)
            .header("x-original-url", APP_URL)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        let headers = resp.headers();
        assert_eq!(headers["x-auth-user"], "alice");
        assert_eq!(headers["remote-user"], "alice");
        assert_eq!(headers["x-auth-email"], "alice@example.com");
        assert_eq!(headers["remote-email"], "alice@example.com");
        assert_eq!(headers["x-auth-email-verified"], "true");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn denials_take_the_form_each_proxy_can_act_on() {
    let app = spawn().await;
    let login_with_next = login_url(&app, Some(ENCODED_APP_URL));

    // nginx: 401, the login URL in Location (auth_request cannot follow redirects).
    let resp = ask(&app, "", None, &nginx(APP_URL)).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("location"), Some(login_with_next.as_str()));
    let resp = ask(&app, "?proxy=nginx", None, &[]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.header("location"),
        Some(login_url(&app, None).as_str())
    );

    // Caddy / Traefik: a browser is redirected, htmx told to navigate, others 401.
    let forwarded = caddy("https", "App.Example.com", "/wiki/page?x=1");
    let mut browser = forwarded.clone();
    browser.push(("accept", "text/html,application/xhtml+xml".into()));
    let resp = ask(&app, "", None, &browser).await;
    assert_eq!(resp.status, StatusCode::FOUND);
    assert_eq!(resp.header("location"), Some(login_with_next.as_str()));
    let mut htmx = browser.clone();
    htmx.push(("hx-request", "true".into()));
    let resp = ask(&app, "", None, &htmx).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("hx-redirect"), Some(login_with_next.as_str()));
    assert_eq!(resp.header("location"), None);
    let resp = ask(&app, "", None, &forwarded).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("location"), None);

    // Asked directly, with no proxy headers: a plain 401.
    let resp = ask(&app, "", None, &[]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("location"), None);
}

#[tokio::test]
async fn client_sent_identity_headers_are_not_identity() {
    let app = spawn().await;
    app.logged_in("alice").await;
    for name in ["x-auth-user", "remote-user", "X_Auth_User", "x-auth-email"] {
        let resp = ask(&app, "", None, &[(name, "alice".into())]).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(resp.header("x-auth-user"), None);
    }
    let resp = ask(&app, "", Some("gatehouse_session=forged"), &[]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_and_max_age_rules_refuse_known_users_with_403() {
    let app = spawn().await;
    let alice = app.logged_in("alice").await.cookie_header();
    let bob = app.logged_in("bob").await.cookie_header();

    let resp = ask(&app, "?users=alice,carol", Some(&alice), &nginx(APP_URL)).await;
    assert_eq!(resp.status, StatusCode::OK);
    let resp = ask(&app, "?users=alice,carol", Some(&bob), &nginx(APP_URL)).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(
        resp.header("x-auth-user"),
        Some("bob"),
        "the site still knows bob"
    );
    resp.assert_contains("not open to you");

    // The client's own URL cannot add or relax rules: only /auth's query counts.
    let sneaky = nginx("https://app.example.com/admin?users=bob&max_age=999999");
    let resp = ask(&app, "?users=alice", Some(&bob), &sneaky).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    let sneaky = caddy("https", "app.example.com", "/admin?users=bob");
    let resp = ask(&app, "?users=alice", Some(&bob), &sneaky).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);

    // Not logged in at all is still 401, not 403.
    let resp = ask(&app, "?users=alice", None, &nginx(APP_URL)).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);

    let resp = ask(&app, "?max_age=1", Some(&alice), &[]).await;
    assert_eq!(resp.status, StatusCode::OK, "a login this second is fresh");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let resp = ask(&app, "?max_age=1", Some(&alice), &[]).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "a 2 s old login is not");
    let resp = ask(&app, "?max_age=600", Some(&alice), &[]).await;
    assert_eq!(resp.status, StatusCode::OK);

    // A typo in the proxy's rules fails closed, with the reason.
    for bad in ["?user=alice", "?max_age=soon", "?proxy=apache"] {
        let resp = ask(&app, bad, Some(&alice), &[]).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn return_urls_outside_the_allowed_domains_are_dropped() {
    let app = spawn().await;
    for evil in [
        "https://evil.example/",
        "https://app.example.com.evil.example/",
        "https://example.com@evil.example/",
        "javascript:alert(1)",
    ] {
        let resp = ask(&app, "", None, &nginx(evil)).await;
        assert!(
            matches!(
                resp.status,
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
            ),
            "{evil}: {}",
            resp.status
        );
        if let Some(location) = resp.header("location") {
            assert_eq!(location, login_url(&app, None), "{evil}");
        }
    }
    let resp = ask(&app, "", None, &caddy("https", "evil.example", "/")).await;
    assert_eq!(resp.header("location"), None);
    let mut browser = caddy("https", "evil.example", "/x");
    browser.push(("accept", "text/html".into()));
    let resp = ask(&app, "", None, &browser).await;
    assert_eq!(
        resp.header("location"),
        Some(login_url(&app, None).as_str())
    );
}

#[tokio::test]
async fn mixed_or_malformed_forwarded_headers_are_refused() {
    let app = spawn().await;
    let mut mixed = nginx(APP_URL);
    mixed.push(("x-forwarded-host", "evil.example".into()));
    let resp = ask(&app, "", None, &mixed).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    resp.assert_contains("X-Original-URL");
    for bad in [
        caddy("https", "evil.example/@app.example.com", "/"),
        caddy("https", "app.example.com", "//evil.example/"),
        caddy("gopher", "app.example.com", "/"),
    ] {
        let resp = ask(&app, "", None, &bad).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let config = web::config::Config {
        allowed_domains: vec!["example.com".into()],
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..test_config()
    };
    let app = spawn_app_with(config, storage::Store::memory().await.unwrap()).await;
    // Loopback is not trusted here: X-Original-URL is not believed, so no `next`,
    // and the request is not even recognised as coming from nginx.
    let resp = ask(&app, "", None, &nginx(APP_URL)).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("location"), None);
    let resp = ask(&app, "?proxy=nginx", None, &nginx(APP_URL)).await;
    assert_eq!(
        resp.header("location"),
        Some(login_url(&app, None).as_str())
    );
    // Nor is a mix refused: none of it is read.
    let mut mixed = nginx(APP_URL);
    mixed.push(("x-forwarded-host", "evil.example".into()));
    assert_eq!(
        ask(&app, "", None, &mixed).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn after_login_the_user_returns_to_the_app_url() {
    let app = spawn().await;
    let visitor = app.logged_in("alice").await;
    visitor.logout().await;
    let resp = ask(&app, "", None, &nginx(APP_URL)).await;
    let login = resp.header("location").unwrap().to_owned();
    let path = login.strip_prefix(&app.url("")).unwrap();
    let form = visitor.get(path).await;
    form.assert_contains(&format!("value=\"{}\"", APP_URL.replace('&', "&amp;")));
    let resp = visitor
        .post_form(
            "/login",
            &[
                ("email", "alice@example.com"),
                ("password", crate::app::PASSWORD),
                ("next", APP_URL),
            ],
        )
        .await;
    resp.assert_redirect_to(APP_URL);
    // A return URL on a host that is not allowed is not followed.
    let resp = visitor
        .post_form(
            "/login",
            &[
                ("email", "alice@example.com"),
                ("password", crate::app::PASSWORD),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER);
    assert_ne!(resp.header("location"), Some("https://evil.example/"));
}

#[tokio::test]
async fn logout_is_seen_by_auth_at_once() {
    let app = spawn().await;
    let alice = app.logged_in("alice").await;
    let cookie = alice.cookie_header();
    assert_eq!(
        ask(&app, "", Some(&cookie), &[]).await.status,
        StatusCode::OK
    );
    alice.logout().await;
    let resp = ask(&app, "", Some(&cookie), &[]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("x-auth-user"), None);
}

#[tokio::test]
async fn api_tokens_authenticate_until_revoked_or_expired() {
    let app = spawn().await;
    app.logged_in_verified("alice").await;
    let alice = domain::Username::parse("alice").unwrap();
    let (token, info) = app
        .store
        .create_api_token(&alice, "ci", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token.expose());
    let resp = ask(&app, "", None, &[("authorization", bearer.clone())]).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.header("x-auth-user"), Some("alice"));
    // The site takes it too.
    let resp = ask(&app, "", None, &[("authorization", bearer.clone())]).await;
    assert_eq!(resp.header("remote-email"), Some("alice@example.com"));
    let page = crate::app::http_client()
        .get(app.url("/user/alice"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let used = app.store.api_token(&token).await.unwrap().unwrap();
    assert!(used.last_used.is_some(), "use is recorded");

    for wrong in [
        "Bearer gh_0000000000000000000000000000000000000000000000000000000000000000",
        "Bearer not-a-token",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
    ] {
        let resp = ask(&app, "", None, &[("authorization", wrong.into())]).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{wrong}");
    }

    assert!(app.store.delete_api_token(&alice, &info.id).await.unwrap());
    let resp = ask(&app, "", None, &[("authorization", bearer)]).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "revoked at once");

    let (expired, _) = app
        .store
        .create_api_token(&alice, "old", Some(storage::now() - 1))
        .await
        .unwrap();
    let resp = ask(
        &app,
        "",
        None,
        &[("authorization", format!("Bearer {}", expired.expose()))],
    )
    .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn a_proxy_passing_the_clients_query_as_rules_is_refused() {
    let app = spawn().await;
    let bob = app.logged_in("bob").await.cookie_header();
    // Caddy with a bare `uri /auth` sends the client's `?users=bob` as /auth's query.
    let leaked = caddy("https", "app.example.com", "/admin?users=bob");
    let resp = ask(&app, "?users=bob", Some(&bob), &leaked).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    resp.assert_contains("uri /auth?");
    // An explicit query of the proxy's own is read as rules.
    let resp = ask(&app, "?users=alice", Some(&bob), &leaked).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_logout_on_one_node_is_seen_by_the_cached_auth_of_another() {
    let store = storage::Store::memory().await.unwrap();
    let first = spawn_app_with(test_config(), store.clone()).await;
    let second = spawn_app_with(test_config(), store).await;
    let alice = first.logged_in("alice").await;
    let cookie = alice.cookie_header();
    // Wait for the second node's change feed, then let it cache the session.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        assert_eq!(
            ask(&second, "", Some(&cookie), &[]).await.status,
            StatusCode::OK
        );
        let metrics = second.metrics().await;
        if metrics.contains("gatehouse_session_cache_entries 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never cached:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    alice.logout().await;
    let logged_out = std::time::Instant::now();
    loop {
        let status = ask(&second, "", Some(&cookie), &[]).await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            logged_out.elapsed() < std::time::Duration::from_millis(500),
            "the other node still lets the old cookie in"
        );
    }
    eprintln!(
        "revocation seen by the other node after {:?}",
        logged_out.elapsed()
    );
}

#[tokio::test]
async fn metrics_count_requests_and_logins_on_the_operator_listener_only() {
    let app = spawn().await;
    let alice = app.logged_in("alice").await;
    ask(&app, "", Some(&alice.cookie_header()), &[]).await;
    ask(&app, "", None, &[]).await;
    app.browser()
        .login("alice@example.com", "wrong password")
        .await;
    let resp = crate::app::http_get(format!("http://{}/metrics", app.metrics_addr)).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "gatehouse_requests_total{route=\"/auth\",status=\"200\"} 1",
        "gatehouse_requests_total{route=\"/auth\",status=\"401\"} 1",
        "gatehouse_auth_duration_seconds_count 2",
        // Buckets are cumulative: both answers took under a second.
        "gatehouse_auth_duration_seconds_bucket{le=\"1\"} 2",
        "gatehouse_logins_total{outcome=\"failure\"} 1",
        "gatehouse_hashing_in_flight 0",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // The public listener has no /metrics, not even for loopback (a proxy on the
    // same host makes every visitor look like loopback).
    let resp = crate::app::http_get(app.url("/metrics")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
