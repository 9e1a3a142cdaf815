//! The admins' doors (issue "Who may pass"): `/admin/users` with plain forms and
//! htmx, and `/api/v1/admin/…` — each change checked in the store and at `/auth`
//! on the next request; the last admin protected; and every admin route and
//! operation refused to anyone who is not an admin.

use domain::{Email, GroupName, HashParams, Password, PasswordHasher, User, Username};
use reqwest::StatusCode;
use serde_json::json;
use web::config::SignupPolicy;

use crate::app::{PASSWORD, TestApp, email_of};
use crate::support::accounts::{add_user, log_in, spawn};

async fn user(app: &TestApp, name: &str) -> Option<User> {
    app.store
        .user_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
}

async fn auth_with_token(app: &TestApp, token: &str) -> StatusCode {
    crate::app::http_client()
        .get(app.url("/auth"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-original-url", "https://app.example.com/")
        .send()
        .await
        .unwrap()
        .status()
}

/// Every admin operation of the API, with a body where it takes one.
fn api_operations() -> Vec<(&'static str, &'static str, Option<serde_json::Value>)> {
    vec![
        ("GET", "/admin/users", None),
        ("GET", "/admin/users/root", None),
        ("POST", "/admin/users/root/disable", None),
        ("POST", "/admin/users/root/enable", None),
        ("DELETE", "/admin/users/root", None),
        ("DELETE", "/admin/users/root/sessions", None),
        ("DELETE", "/admin/users/root/factors", None),
        ("POST", "/admin/users/root/reset", None),
        (
            "PUT",
            "/admin/users/bob/groups",
            Some(json!({ "groups": ["admins"] })),
        ),
        ("GET", "/admin/invitations", None),
        (
            "POST",
            "/admin/invitations",
            Some(json!({ "groups": ["admins"] })),
        ),
        ("DELETE", "/admin/invitations/abc", None),
    ]
}

/// Every form and page of the admin site.
const PAGE_POSTS: &[(&str, &[(&str, &str)])] = &[
    ("/admin/users/root/disable", &[]),
    ("/admin/users/root/enable", &[]),
    ("/admin/users/root/revoke", &[]),
    ("/admin/users/root/factors", &[]),
    ("/admin/users/root/reset", &[]),
    ("/admin/users/root/verification", &[]),
    ("/admin/users/bob/groups", &[("groups", "admins")]),
    ("/admin/users/root/delete", &[]),
    ("/admin/invitations", &[("groups", "admins")]),
    ("/admin/invitations/abc/revoke", &[]),
];
const PAGE_GETS: &[&str] = &[
    "/admin/users",
    "/admin/users?q=r",
    "/admin/users/root/delete",
];

#[tokio::test]
async fn no_admin_route_or_operation_opens_to_anyone_but_an_admin() {
    let app = spawn(SignupPolicy::Open).await;
    add_user(&app, "root", "admins").await;
    add_user(&app, "bob", "ops").await;
    let bob = log_in(&app, "bob").await;
    let root = log_in(&app, "root").await;
    let root_name = Username::parse("root").unwrap();
    let root_sessions = app.store.sessions_of(&root_name).await.unwrap();
    assert_eq!(root_sessions.len(), 1);
    let (bob_token, _) = app
        .store
        .create_api_token(&Username::parse("bob").unwrap(), "t", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", bob_token.expose());

    // The spec lists no admin operation this test leaves out.
    let spec: serde_json::Value =
        serde_json::from_str(&app.browser().get("/api/openapi.json").await.body).unwrap();
    let mut documented: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/admin"))
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    documented.sort();
    let mut tested: Vec<String> = api_operations()
        .iter()
        .map(|(m, p, _)| {
            let p = p
                .replace("/root", "/{username}")
                .replace("/bob", "/{username}")
                .replace("/abc", "/{id}");
            format!("{m} {p}")
        })
        .collect();
    tested.sort();
    tested.dedup();
    assert_eq!(tested, documented);
    // Nor does the site's route table list an admin form this test leaves out.
    let routes = include_str!("../../crates/web/src/app.rs");
    let mut routed: Vec<String> = routes
        .lines()
        .filter(|line| line.trim_start().starts_with("\"/admin") && line.contains("post("))
        .filter_map(|line| line.split('"').nth(1).map(str::to_owned))
        .collect();
    routed.sort();
    let mut posted: Vec<String> = PAGE_POSTS
        .iter()
        .map(|(path, _)| {
            path.replace("/root", "/:username")
                .replace("/bob", "/:username")
                .replace("/abc", "/:id")
        })
        .collect();
    posted.sort();
    assert_eq!(posted, routed);

    let stranger = app.browser();
    for (method, path, body) in api_operations() {
        // A member of another group, with the cookie (from the site) and a token.
        let page = bob.api_same_origin(method, path, body.clone()).await;
        let problem = page.problem(StatusCode::FORBIDDEN);
        assert!(
            problem["detail"].as_str().unwrap().contains("Admins only"),
            "{method} {path}: {problem}"
        );
        let page = app
            .browser()
            .api(method, path, &[("authorization", &bearer)], body.clone())
            .await;
        page.problem(StatusCode::FORBIDDEN);
        // Nobody.
        let page = stranger.api(method, path, &[], body).await;
        page.problem(StatusCode::UNAUTHORIZED);
    }
    for path in PAGE_GETS {
        let page = bob.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        page.assert_contains("Admins only");
        assert!(!page.body.contains("root@example.com"), "{path}");
        let page = stranger.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.header("location").unwrap().starts_with("/login?next="));
    }
    stranger.get("/login").await;
    for (path, fields) in PAGE_POSTS {
        let page = bob.post_form(path, fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
        let page = stranger.post_form(path, fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        // htmx gets 401 + HX-Redirect, or 403, never the page.
        let page = bob
            .submit(path, fields, &[("hx-request", "true")], true)
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.body.contains("<html"), "{path}");
    }
    // Nothing changed: root is an enabled admin with the session they had, bob is
    // not an admin, no invitation exists.
    let root_now = user(&app, "root").await.unwrap();
    assert!(!root_now.disabled);
    assert_eq!(root_now.groups, GroupName::parse_list("admins").unwrap());
    assert_eq!(
        user(&app, "bob").await.unwrap().groups,
        GroupName::parse_list("ops").unwrap()
    );
    assert!(app.store.invitations().await.unwrap().is_empty());
    // root's session is the one it was (not ended, not replaced), and nothing was
    // queued to mail (no reset or verification link, no notice).
    assert_eq!(
        app.store.sessions_of(&root_name).await.unwrap(),
        root_sessions
    );
    assert_eq!(app.store.outbox_len().await.unwrap(), 0);
    assert_eq!(
        crate::app::auth_as_nginx(&app, &root, "").await.status,
        StatusCode::OK
    );
    // The header links the admin page for admins only.
    assert!(root.get("/").await.body.contains("href=\"/admin/users\""));
    assert!(!bob.get("/").await.body.contains("href=\"/admin/users\""));
}

#[tokio::test]
async fn the_admin_api_manages_users_and_auth_sees_each_change_at_once() {
    let app = spawn(SignupPolicy::Invite).await;
    add_user(&app, "root", "admins").await;
    add_user(&app, "bob", "ops").await;
    let root = log_in(&app, "root").await;
    let bob = log_in(&app, "bob").await;
    let (bob_token, _) = app
        .store
        .create_api_token(&Username::parse("bob").unwrap(), "t", None)
        .await
        .unwrap();
    let bob_token = bob_token.expose().to_owned();
    let api = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let root = &root;
        async move { root.api_same_origin(method, &path, body).await }
    };

    let list = api("GET", "/admin/users".into(), None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list = list.json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["users"][0]["username"], "bob");
    assert_eq!(list["users"][1]["admin"], true);
    assert!(list.get("next").is_none());
    let found = api("GET", "/admin/users?search=BO".into(), None)
        .await
        .json();
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    let detail = api("GET", "/admin/users/bob".into(), None).await.json();
    assert_eq!(detail["user"]["groups"], json!(["ops"]));
    assert_eq!(detail["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(detail["tokens"].as_array().unwrap().len(), 1);
    api("GET", "/admin/users/nobody".into(), None)
        .await
        .problem(StatusCode::NOT_FOUND);

    // Groups: /auth?groups= follows at the next request.
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "?groups=ops")
            .await
            .status,
        StatusCode::OK
    );
    let set = api(
        "PUT",
        "/admin/users/bob/groups".into(),
        Some(json!({ "groups": ["Dev", "qa"] })),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["groups"], json!(["dev", "qa"]));
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "?groups=ops")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let allowed = crate::app::auth_as_nginx(&app, &bob, "?groups=dev").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("x-auth-groups"), Some("dev,qa"));
    let bad = api(
        "PUT",
        "/admin/users/bob/groups".into(),
        Some(json!({ "groups": ["no way"] })),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["errors"][0]["field"], "groups");

    // Disable: the session and the token stop at once; the right password then
    // says so; enable lets bob in again.
    let disabled = api("POST", "/admin/users/bob/disable".into(), None).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(
        disabled.json(),
        json!({ "sessions_ended": 1, "tokens_revoked": 1 })
    );
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        auth_with_token(&app, &bob_token).await,
        StatusCode::UNAUTHORIZED
    );
    let refused = app.browser().login(&email_of("bob"), PASSWORD).await;
    refused.assert_contains("disabled");
    let enabled = api("POST", "/admin/users/bob/enable".into(), None).await;
    assert_eq!(enabled.status, StatusCode::NO_CONTENT);
    let bob = log_in(&app, "bob").await;
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "").await.status,
        StatusCode::OK
    );

    // Ending bob's access leaves the account.
    let ended = api("DELETE", "/admin/users/bob/sessions".into(), None).await;
    assert_eq!(ended.json()["sessions_ended"], 1);
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(user(&app, "bob").await.is_some());

    // The last admin: not disabled, deleted or taken out of the admins.
    for (method, path, body) in [
        ("POST", "/admin/users/root/disable", None),
        ("DELETE", "/admin/users/root", None),
        (
            "PUT",
            "/admin/users/root/groups",
            Some(json!({ "groups": ["ops"] })),
        ),
    ] {
        let problem = api(method, path.into(), body)
            .await
            .problem(StatusCode::CONFLICT);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("last enabled admin"),
            "{problem}"
        );
    }
    let root_now = user(&app, "root").await.unwrap();
    assert!(!root_now.disabled && root_now.groups.iter().any(|g| g.as_str() == "admins"));
    // With bob an admin too, root may step down.
    api(
        "PUT",
        "/admin/users/bob/groups".into(),
        Some(json!({ "groups": ["admins"] })),
    )
    .await;
    let stepped = api(
        "PUT",
        "/admin/users/root/groups".into(),
        Some(json!({ "groups": [] })),
    )
    .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.body);
    // … and is no longer one: at once.
    api("GET", "/admin/users".into(), None)
        .await
        .problem(StatusCode::FORBIDDEN);
    let bob = log_in(&app, "bob").await;
    let deleted = bob
        .api_same_origin("DELETE", "/admin/users/root", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(user(&app, "root").await.is_none());
    assert_eq!(
        crate::app::auth_as_nginx(&app, &root, "").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Invitations: made, listed, used once, revoked.
    let made = bob
        .api_same_origin(
            "POST",
            "/admin/invitations",
            Some(json!({ "email": "Carol@Example.com", "groups": ["ops"], "expires_in": 3600 })),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let made = made.json();
    let link = made["link"].as_str().unwrap();
    assert!(link.starts_with(&app.url("/signup?invite=inv_")), "{link}");
    assert_eq!(made["invitation"]["email"], "carol@example.com");
    assert_eq!(made["invitation"]["created_by"], "bob");
    let listed = bob
        .api_same_origin("GET", "/admin/invitations", None)
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("inv_"), "a secret in the list");
    let carol = app.browser();
    let path = link.strip_prefix(&app.url("")).unwrap();
    carol.get(path).await.assert_contains("carol@example.com");
    let invite = link.split("invite=").nth(1).unwrap();
    let signed = carol
        .post_form(
            "/signup",
            &[
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
                ("invite", invite),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(
        user(&app, "carol").await.unwrap().groups,
        GroupName::parse_list("ops").unwrap()
    );
    let second = bob
        .api_same_origin("POST", "/admin/invitations", Some(json!({})))
        .await
        .json();
    let id = second["invitation"]["id"].as_str().unwrap();
    let revoked = bob
        .api_same_origin("DELETE", &format!("/admin/invitations/{id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert!(app.store.invitations().await.unwrap().is_empty());
    bob.api_same_origin(
        "POST",
        "/admin/invitations",
        Some(json!({ "expires_in": 10, "groups": ["a b"] })),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_admin_page_works_with_plain_forms_and_swaps_rows_for_htmx() {
    let app = spawn(SignupPolicy::Invite).await;
    add_user(&app, "root", "admins").await;
    add_user(&app, "bob", "ops").await;
    // Enough users for two pages (50 each), made in one go.
    let hash = PasswordHasher::new(HashParams {
        log_n: 4,
        r: 8,
        p: 1,
    })
    .unwrap()
    .hash(&Password::parse(PASSWORD).unwrap())
    .unwrap();
    for i in 0..60 {
        let name = format!("user{i:02}");
        app.store
            .create_user(&User {
                username: Username::parse(&name).unwrap(),
                email: Email::parse(&email_of(&name)).unwrap(),
                name: domain::DisplayName::parse("").unwrap(),
                password_hash: hash.clone(),
                created_at: 1,
                groups: Vec::new(),
                disabled: false,
                email_verified: false,
            })
            .await
            .unwrap();
    }
    let root = log_in(&app, "root").await;
    let bob = log_in(&app, "bob").await;

    let first = root.get("/admin/users").await;
    assert_eq!(first.status, StatusCode::OK);
    first.assert_contains("62 users in all");
    assert_eq!(first.body.matches("<tr id=\"user-").count(), 50);
    first.assert_contains("id=\"user-bob\"");
    assert!(!first.body.contains("rel=\"prev\""));
    let next = first
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let second = root.get(&next).await;
    assert_eq!(second.body.matches("<tr id=\"user-").count(), 12);
    second.assert_contains("id=\"user-user59\"");
    second.assert_contains("rel=\"prev\"");
    assert!(!second.body.contains("rel=\"next\""));
    // Search by the start of a username or an email.
    let found = root.get("/admin/users?q=BO").await;
    assert_eq!(found.body.matches("<tr id=\"user-").count(), 1);
    found.assert_contains("id=\"user-bob\"");
    // htmx: the search swaps the table alone.
    let fragment = root
        .get_with("/admin/users?q=bo", &[("hx-request", "true")])
        .await;
    assert!(
        fragment.body.starts_with("<div id=\"users\""),
        "{}",
        fragment.body
    );

    // Disable with a plain form: back to the same search, bob out at once.
    let back = "/admin/users?q=bo";
    root.post_form("/admin/users/bob/disable", &[("back", back)])
        .await
        .assert_redirect_to(back);
    assert!(user(&app, "bob").await.unwrap().disabled);
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let listed = root.get(back).await;
    listed.assert_contains("disabled");
    // The form's way back cannot be pointed elsewhere.
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/login",
        "/admin/users\\@x",
    ] {
        root.post_form("/admin/users/bob/enable", &[("back", evil)])
            .await
            .assert_redirect_to("/admin/users");
    }
    assert!(!user(&app, "bob").await.unwrap().disabled);

    // htmx: the row comes back alone, with what happened.
    let row = root
        .submit(
            "/admin/users/bob/groups",
            &[("groups", "ops, Dev"), ("back", back)],
            &[("hx-request", "true")],
            true,
        )
        .await;
    assert_eq!(row.status, StatusCode::OK, "{}", row.body);
    assert!(row.body.starts_with("<tr id=\"user-bob\""), "{}", row.body);
    row.assert_contains("value=\"dev, ops\"");
    assert_eq!(
        user(&app, "bob").await.unwrap().groups,
        GroupName::parse_list("dev,ops").unwrap()
    );
    let bad = root
        .post_form("/admin/users/bob/groups", &[("groups", "no way")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("may only contain");
    let bob = log_in(&app, "bob").await;
    let row = root
        .submit(
            "/admin/users/bob/revoke",
            &[],
            &[("hx-request", "true")],
            true,
        )
        .await;
    row.assert_contains("1 session(s) ended");
    assert_eq!(
        crate::app::auth_as_nginx(&app, &bob, "").await.status,
        StatusCode::UNAUTHORIZED
    );

    // The last admin, refused with a page (and an alert for htmx).
    let refused = root.post_form("/admin/users/root/disable", &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_contains("last enabled admin");
    let alert = root
        .submit(
            "/admin/users/root/delete",
            &[],
            &[("hx-request", "true")],
            true,
        )
        .await;
    assert_eq!(alert.status, StatusCode::CONFLICT);
    assert_eq!(alert.header("hx-retarget"), Some("#alerts"));
    assert!(user(&app, "root").await.is_some());

    // Delete: a confirmation page, then the form.
    let confirm = root
        .get("/admin/users/user00/delete?back=%2Fadmin%2Fusers%3Fq%3Du")
        .await;
    confirm.assert_contains("Delete user00?");
    confirm.assert_contains("value=\"/admin/users?q=u\"");
    root.post_form(
        "/admin/users/user00/delete",
        &[("back", "/admin/users?q=u")],
    )
    .await
    .assert_redirect_to("/admin/users?q=u");
    assert!(user(&app, "user00").await.is_none());
    assert_eq!(
        root.post_form("/admin/users/user00/delete", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // An invitation: its link shown once on the page, and it works.
    let made = root
        .post_form(
            "/admin/invitations",
            &[
                ("email", "dan@example.com"),
                ("groups", "ops"),
                ("expires_in", "86400"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let link = made
        .body
        .split("id=\"invitation-link\" type=\"text\" readonly value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        !root.get("/admin/users").await.body.contains(&link),
        "the link shown twice"
    );
    let dan = app.browser();
    dan.get(link.strip_prefix(&app.url("")).unwrap())
        .await
        .assert_contains("dan@example.com");
    let invite = link.split("invite=").nth(1).unwrap();
    dan.post_form(
        "/signup",
        &[
            ("username", "dan"),
            ("email", "dan@example.com"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("invite", invite),
        ],
    )
    .await
    .assert_redirect_to("/user/dan");
    let bad = root
        .post_form(
            "/admin/invitations",
            &[("email", "not an email"), ("expires_in", "5")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("60 seconds to a year");
    // Revoke one with htmx: its row goes.
    let made = root
        .submit("/admin/invitations", &[], &[("hx-request", "true")], true)
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    assert!(made.body.starts_with("<section"), "{}", made.body);
    let id = app.store.invitations().await.unwrap()[0].id.clone();
    let gone = root
        .submit(
            &format!("/admin/invitations/{id}/revoke"),
            &[],
            &[("hx-request", "true")],
            true,
        )
        .await;
    assert_eq!((gone.status, gone.body.as_str()), (StatusCode::OK, ""));
    assert!(app.store.invitations().await.unwrap().is_empty());
}
