//! The htmx contract over HTTP (SPEC §5): fragments for htmx, pages for the rest,
//! errors in the alert slot, redirects htmx can follow, embedded assets.

use reqwest::StatusCode;

use crate::app::{Browser, PASSWORD, email_of, spawn_app};

const HTMX: (&str, &str) = ("hx-request", "true");

fn is_fragment(body: &str) -> bool {
    !body.contains("<html") && !body.contains("<!DOCTYPE")
}

#[tokio::test]
async fn htmx_gets_fragments_and_everyone_else_whole_pages() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser.get("/login").await;
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    assert!(page.header("vary").unwrap().contains("HX-Request"));
    let fragment = browser.get_with("/login", &[HTMX]).await;
    assert!(
        fragment.body.starts_with("<form id=\"login-form\""),
        "{}",
        fragment.body
    );
    assert!(fragment.header("vary").unwrap().contains("HX-Request"));
    // History restores need the whole page.
    let restore = browser
        .get_with("/login", &[HTMX, ("hx-history-restore-request", "true")])
        .await;
    assert!(restore.body.starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn form_errors_swap_in_place_and_success_redirects_htmx() {
    let app = spawn_app().await;
    app.logged_in("abe").await;
    let browser = app.browser();
    let token = browser.csrf_token().await;
    let post = |fields: Vec<(&'static str, String)>, htmx: bool| {
        let mut request = browser
            .client
            .post(app.url("/login"))
            .header("cookie", browser.cookie_header())
            .header("x-csrf-token", &token)
            .form(&fields);
        if htmx {
            request = request.header("hx-request", "true");
        }
        async move { Browser::page(request.send().await.unwrap()).await }
    };
    let wrong = vec![
        ("email", email_of("abe")),
        ("password", "wrong password".into()),
    ];
    let resp = post(wrong, true).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert!(
        is_fragment(&resp.body) && resp.body.starts_with("<form"),
        "{}",
        resp.body
    );
    resp.assert_contains("Invalid email or password.");
    resp.assert_contains("value=\"abe@example.com\"");
    assert!(!resp.body.contains("wrong password"));

    let right = vec![
        ("email", email_of("abe")),
        ("password", PASSWORD.into()),
        ("next", "/user/abe?tab=1".into()),
    ];
    let resp = post(right.clone(), true).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.header("hx-redirect"), Some("/user/abe?tab=1"));
    assert_eq!(
        resp.header("location"),
        None,
        "a 303 would be swapped into the form"
    );
    let resp = post(right, false).await;
    resp.assert_redirect_to("/user/abe?tab=1");
}

#[tokio::test]
async fn logged_out_htmx_requests_are_told_to_navigate_to_login() {
    let app = spawn_app().await;
    let resp = app
        .browser()
        .get_with("/account/sessions?x=1", &[HTMX])
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.header("hx-redirect"),
        Some("/login?next=%2Faccount%2Fsessions%3Fx%3D1")
    );
    assert_eq!(resp.header("location"), None);
}

#[tokio::test]
async fn errors_become_alerts_for_htmx_never_whole_pages() {
    let app = spawn_app().await;
    let browser = app.logged_in("bea").await;
    let resp = browser.get_with("/user/nobody-here", &[HTMX]).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert!(is_fragment(&resp.body), "{}", resp.body);
    assert_eq!(resp.header("hx-retarget"), Some("#alerts"));
    assert_eq!(resp.header("hx-reswap"), Some("innerHTML"));
    resp.assert_contains("role=\"alert\"");
    // A forged form on an htmx request: 403, as an alert.
    let resp = Browser::page(
        browser
            .client
            .post(app.url("/logout"))
            .header("cookie", browser.cookie_header())
            .header("hx-request", "true")
            .header("x-csrf-token", "00")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert!(is_fragment(&resp.body));
    assert_eq!(resp.header("hx-retarget"), Some("#alerts"));
    // Without htmx, the same errors are whole pages.
    let resp = browser.get("/user/nobody-here").await;
    assert!(resp.body.starts_with("<!DOCTYPE html>"));
    assert_eq!(resp.header("hx-retarget"), None);
}

#[tokio::test]
async fn htmx_and_css_are_embedded_and_cached_forever() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser.get("/login").await;
    let quoted_after = |marker: &str| {
        let rest = page.body.split(marker).nth(1).unwrap();
        rest.split('"').next().unwrap().to_owned()
    };
    let js = quoted_after("<script src=\"");
    let css = quoted_after("rel=\"stylesheet\" href=\"");
    assert_eq!(js, "/assets/htmx-2.0.11/htmx.min.js");
    for (path, kind) in [(js.as_str(), "javascript"), (css.as_str(), "css")] {
        let asset = browser.get(path).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(asset.header("content-type").unwrap().contains(kind));
    }
    let htmx = browser.get(&js).await;
    assert!(
        htmx.body.contains("2.0.11") && htmx.body.len() > 40_000,
        "not htmx 2.0.11"
    );
    // No inline script anywhere, and the CSP forbids it and eval.
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script src=").count()
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"));
    assert!(
        page.body.contains("&quot;allowEval&quot;:false")
            || page.body.contains("\"allowEval\":false")
    );
}

#[tokio::test]
async fn signup_fields_are_checked_while_typing() {
    let app = spawn_app().await;
    app.logged_in("cleo").await;
    let browser = app.browser();
    let hint = |path: &'static str| {
        let browser = &browser;
        async move { browser.get_with(path, &[HTMX]).await }
    };
    hint("/signup/check/username?username=cleo")
        .await
        .assert_contains("already taken");
    hint("/signup/check/username?username=CLEO")
        .await
        .assert_contains("already taken");
    hint("/signup/check/username?username=x")
        .await
        .assert_contains("3 to 32 characters");
    hint("/signup/check/username?username=cleo2")
        .await
        .assert_contains("Available");
    let email = hint("/signup/check/email?email=cleo%40example.com").await;
    assert!(
        !email.body.contains("taken") && !email.body.contains("exists"),
        "enumeration: {}",
        email.body
    );
    hint("/signup/check/email?email=nope")
        .await
        .assert_contains("class=\"error hint\"");
    hint("/signup/check/password?password=short")
        .await
        .assert_contains("at least 8");
    assert_eq!(
        hint("/signup/check/nothing?nothing=1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sessions_can_be_revoked_without_javascript() {
    let app = spawn_app().await;
    let me = app.logged_in("dina").await;
    let laptop = app.browser();
    laptop.login(&email_of("dina"), PASSWORD).await;
    let phone = app.browser();
    phone.login(&email_of("dina"), PASSWORD).await;
    let stranger = app.logged_in("eve").await;

    let page = me.get("/account/sessions").await;
    assert_eq!(page.body.matches("<tr id=\"session-").count(), 3);
    page.assert_contains("this device");
    let ids: Vec<String> = page
        .body
        .split("action=\"/account/sessions/")
        .skip(1)
        .filter_map(|rest| rest.split('/').next().map(str::to_owned))
        .filter(|id| id.len() == 64)
        .collect();
    assert_eq!(ids.len(), 2, "a revoke button for each other session");

    // Someone else's session id is not found, and stays alive.
    let resp = stranger
        .post_form(&format!("/account/sessions/{}/revoke", ids[0]), &[])
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);

    let resp = me
        .post_form(&format!("/account/sessions/{}/revoke", ids[0]), &[])
        .await;
    resp.assert_redirect_to("/account/sessions");
    let alive = [
        laptop.get("/user/dina").await.status,
        phone.get("/user/dina").await.status,
    ];
    assert_eq!(
        alive.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{alive:?}"
    );

    me.post_form("/account/sessions/revoke-others", &[])
        .await
        .assert_redirect_to("/account/sessions");
    assert_eq!(laptop.get("/user/dina").await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/user/dina").await.status, StatusCode::SEE_OTHER);
    assert_eq!(me.get("/user/dina").await.status, StatusCode::OK);
    me.get("/account/sessions")
        .await
        .assert_contains("No other sessions.");
    assert_eq!(stranger.get("/user/eve").await.status, StatusCode::OK);
}

/// The first visit to the login page, as a browser makes it (`Accept-Encoding: br,
/// gzip`): the page, its stylesheet and htmx, under 25 KB on the wire (SPEC §10),
/// the assets precompressed at build time; a client that accepts no encoding gets
/// the plain files.
#[tokio::test]
async fn the_first_visit_to_login_is_small_on_the_wire() {
    let app = spawn_app().await;
    let client = crate::app::http_client();
    let fetch = |path: String, accept: &'static str| {
        let client = client.clone();
        let url = app.url(&path);
        async move {
            let mut request = client.get(url);
            if !accept.is_empty() {
                request = request.header("accept-encoding", accept);
            }
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let headers = resp.headers().clone();
            let header_bytes: usize = headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum();
            let body = resp.bytes().await.unwrap();
            (headers, header_bytes, body.len())
        }
    };
    let (_, page_headers, page) = fetch("/login".into(), "br, gzip").await;
    let html = crate::app::http_get(app.url("/login"))
        .await
        .text()
        .await
        .unwrap();
    let asset = |attribute: &str| {
        html.split(&format!("{attribute}=\""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .find(|path| path.starts_with("/assets/"))
            .unwrap()
            .to_owned()
    };
    let (css_path, js_path) = (asset("href"), asset("src"));
    let mut total = page + page_headers;
    for path in [&css_path, &js_path] {
        let (headers, header_bytes, body) = fetch(path.clone(), "br, gzip").await;
        assert_eq!(headers["content-encoding"], "br", "{path}");
        assert!(
            headers["vary"]
                .to_str()
                .unwrap()
                .contains("Accept-Encoding"),
            "{path}"
        );
        let (gzip_headers, _, gzip_body) = fetch(path.clone(), "gzip").await;
        assert_eq!(gzip_headers["content-encoding"], "gzip");
        let (plain_headers, _, plain_body) = fetch(path.clone(), "").await;
        assert!(plain_headers.get("content-encoding").is_none());
        assert!(
            body < gzip_body && gzip_body < plain_body,
            "{path}: {body} {gzip_body} {plain_body}"
        );
        total += body + header_bytes;
    }
    eprintln!("first visit to /login: {total} bytes on the wire (HTML {page})");
    assert!(total < 25_000, "first visit: {total} bytes");
}

/// Pages of 1 KiB or more go out gzip-compressed to clients that take it, and the
/// CSRF token in them is salted afresh in every response, so that compression
/// beside reflected input cannot leak it (BREACH). Every salted token still works.
#[tokio::test]
async fn pages_are_compressed_and_their_csrf_token_changes_every_time() {
    let app = spawn_app().await;
    let browser = app.browser();
    let plain = browser.get("/signup").await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.body.len() >= web::http::response::COMPRESS_HTML_FROM);
    let token_in = |html: &str| {
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    };
    let first = token_in(&plain.body);

    let resp = browser
        .client
        .get(app.url("/signup?next=%2Fuser%2Freflected"))
        .header("cookie", browser.cookie_header())
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let vary: Vec<&str> = resp
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(vary.contains(&"Accept-Encoding"), "{vary:?}");
    let compressed = resp.bytes().await.unwrap();
    let mut html = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut html,
    )
    .unwrap();
    assert!(html.contains("/user/reflected"), "the page reflects next");
    assert!(
        compressed.len() * 2 < html.len(),
        "{} -> {}",
        html.len(),
        compressed.len()
    );
    let second = token_in(&html);
    assert_ne!(first, second, "the same token in two responses");
    // Only the salt and MAC differ: both are for this browser's nonce.
    assert_eq!(first[..32], second[..32]);

    // The token from the compressed page signs this browser up.
    let fields: Vec<(String, String)> = [
        ("username", "squeezed"),
        ("email", "squeezed@example.com"),
        ("password", crate::app::PASSWORD),
        ("confirm", crate::app::PASSWORD),
        ("csrf", second.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signed_up = browser.post_without_csrf("/signup", &fields).await;
    assert_eq!(
        signed_up.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_up.body
    );

    // A client that takes no compression gets plain HTML.
    let identity = browser
        .client
        .get(app.url("/login"))
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(identity.headers().get("content-encoding").is_none());
    assert!(identity.text().await.unwrap().contains("<form"));
}
