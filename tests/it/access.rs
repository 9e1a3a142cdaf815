//! Who may pass (issue "Who may pass"): the signup policy, invitations, groups at
//! `/auth`, disabled accounts — each attacked over HTTP the way a stranger or an
//! ex-member would try it.

use domain::{GroupName, Username};
use reqwest::StatusCode;
use serde_json::json;
use storage::NewInvitation;
use web::config::SignupPolicy;

use crate::app::{PASSWORD, TestApp};
use crate::support::accounts::spawn;

async fn user_count(app: &TestApp) -> u64 {
    app.store.count_users().await.unwrap()
}

async fn invitation(app: &TestApp, email: Option<&str>, groups: &str, lifetime: i64) -> String {
    let (token, _) = app
        .store
        .create_invitation(NewInvitation {
            email: email.map(|e| domain::Email::parse(e).unwrap()),
            groups: GroupName::parse_list(groups).unwrap(),
            lifetime,
            created_by: Some("test".into()),
        })
        .await
        .unwrap();
    token.expose().to_owned()
}

#[tokio::test]
async fn a_stranger_cannot_sign_up_when_signup_is_closed_or_by_invitation() {
    for policy in [SignupPolicy::Closed, SignupPolicy::Invite] {
        let app = spawn(policy).await;
        let stranger = app.browser();
        let page = stranger.get("/signup").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{policy:?}");
        assert!(
            !page.body.contains("name=\"password\""),
            "{policy:?}: a form"
        );
        // Posting the form anyway (with a fresh CSRF token from /login).
        stranger.get("/login").await;
        let posted = stranger
            .signup("mallory", "mallory@example.com", PASSWORD)
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN, "{policy:?}");
        posted.assert_contains(match policy {
            SignupPolicy::Closed => "Sign-up is closed",
            _ => "by invitation only",
        });
        // A made-up invitation does not open it either.
        let forged = format!("inv_{}", "ab".repeat(32));
        let with_forged = stranger
            .post_form(
                "/signup",
                &[
                    ("username", "mallory"),
                    ("email", "mallory@example.com"),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                    ("invite", &forged),
                ],
            )
            .await;
        assert_eq!(with_forged.status, StatusCode::FORBIDDEN, "{policy:?}");
        let api = stranger
            .api_same_origin(
                "POST",
                "/users",
                Some(json!({
                    "username": "mallory",
                    "email": "mallory@example.com",
                    "password": PASSWORD,
                })),
            )
            .await;
        assert_eq!(
            api.status,
            StatusCode::FORBIDDEN,
            "{policy:?}: {}",
            api.body
        );
        assert_eq!(api.header("content-type"), Some("application/problem+json"));
        assert_eq!(user_count(&app).await, 0, "{policy:?}");
    }
}

/// The username hint while typing says "taken" only to a visitor who may sign up:
/// on a closed or invitation-only site a stranger cannot list the accounts.
#[tokio::test]
async fn the_username_hint_lists_no_accounts_to_strangers() {
    let app = spawn(SignupPolicy::Invite).await;
    let link = invitation(&app, None, "", 3600).await;
    let creator = app.browser();
    creator
        .post_fields(
            "/signup",
            [
                ("username", "taken"),
                ("email", "taken@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
                ("invite", link.as_str()),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        )
        .await
        .assert_redirect_to("/user/taken");
    let stranger = app.browser();
    let hint = stranger.get("/signup/check/username?username=taken").await;
    assert_eq!(hint.status, StatusCode::OK);
    assert!(!hint.body.contains("already taken"), "{}", hint.body);
    // With a live invitation (the form's hidden field, sent along by htmx), the
    // hint is the real one.
    let live = invitation(&app, None, "", 3600).await;
    let invited = stranger
        .get(&format!(
            "/signup/check/username?username=taken&invite={live}"
        ))
        .await;
    invited.assert_contains("already taken");
}

#[tokio::test]
async fn an_invitation_signs_up_once_into_its_groups_and_not_after_it_expires() {
    let app = spawn(SignupPolicy::Invite).await;
    let link = invitation(&app, Some("ivy@example.com"), "ops,qa", 3600).await;
    let ivy = app.browser();
    let page = ivy.get(&format!("/signup?invite={link}")).await;
    assert_eq!(page.status, StatusCode::OK);
    // The invitation names the email: shown, carried, not editable.
    page.assert_contains("ivy@example.com");
    page.assert_contains("name=\"invite\"");
    let fields = |username: &str, email: &str| -> Vec<(String, String)> {
        [
            ("username", username),
            ("email", email),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("invite", link.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    // Another email than the invitation's is refused, and the link stays unused.
    let other = ivy
        .post_fields("/signup", fields("ivy", "someone@example.com"))
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    other.assert_contains("This invitation is for ivy@example.com.");
    ivy.post_fields("/signup", fields("ivy", "ivy@example.com"))
        .await
        .assert_redirect_to("/user/ivy");
    let ivy_user = app
        .store
        .user_by_username(&Username::parse("ivy").unwrap())
        .await
        .unwrap()
        .unwrap();
    let groups: Vec<&str> = ivy_user.groups.iter().map(GroupName::as_str).collect();
    assert_eq!(groups, ["ops", "qa"]);

    // Used up: a second visitor with the same link gets nowhere.
    let again = app.browser();
    assert_eq!(
        again.get(&format!("/signup?invite={link}")).await.status,
        StatusCode::FORBIDDEN
    );
    again.get("/login").await;
    let reused = again
        .post_fields("/signup", fields("ivy2", "ivy@example.com"))
        .await;
    assert_eq!(reused.status, StatusCode::FORBIDDEN);
    reused.assert_contains("not valid");

    // An expired invitation opens nothing, through the API either.
    let expired = invitation(&app, None, "", -1).await;
    let api = app
        .browser()
        .api_same_origin(
            "POST",
            "/users",
            Some(json!({
                "username": "late",
                "email": "late@example.com",
                "password": PASSWORD,
                "invitation": expired,
            })),
        )
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN, "{}", api.body);
    // A live one works through the API too.
    let live = invitation(&app, None, "", 3600).await;
    let created = app
        .browser()
        .api_same_origin(
            "POST",
            "/users",
            Some(json!({
                "username": "api-user",
                "email": "api-user@example.com",
                "password": PASSWORD,
                "invitation": live,
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(user_count(&app).await, 2);
}

#[tokio::test]
async fn two_racing_signups_with_one_invitation_make_one_account() {
    let app = spawn(SignupPolicy::Invite).await;
    let link = invitation(&app, None, "", 3600).await;
    let (a, b) = (app.browser(), app.browser());
    a.get("/login").await;
    b.get("/login").await;
    let form = |name: &'static str| {
        vec![
            ("username".to_owned(), name.to_owned()),
            ("email".to_owned(), format!("{name}@example.com")),
            ("password".to_owned(), PASSWORD.to_owned()),
            ("confirm".to_owned(), PASSWORD.to_owned()),
            ("invite".to_owned(), link.clone()),
        ]
    };
    let (ra, rb) = tokio::join!(
        a.post_fields("/signup", form("racer-a")),
        b.post_fields("/signup", form("racer-b"))
    );
    let created = [&ra, &rb]
        .iter()
        .filter(|p| p.status == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(created, 1, "{} / {}", ra.status, rb.status);
    assert_eq!(user_count(&app).await, 1);
}

#[tokio::test]
async fn groups_admit_members_only_and_a_removal_or_disable_is_seen_at_once() {
    let app = spawn(SignupPolicy::Open).await;
    let admins = GroupName::parse("admins").unwrap();
    let olga = app.logged_in("olga").await;
    let nick = app.logged_in("nick").await;
    let olga_name = Username::parse("olga").unwrap();
    app.store
        .set_groups(
            &olga_name,
            &GroupName::parse_list("ops,admins").unwrap(),
            &admins,
        )
        .await
        .unwrap();

    let me = olga.api_same_origin("GET", "/me", None).await;
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["groups"], json!(["admins", "ops"]));
    olga.get("/user/olga").await.assert_contains("admins, ops");

    let member = crate::app::auth_as_nginx(&app, &olga, "?groups=ops").await;
    assert_eq!(member.status, StatusCode::OK);
    assert_eq!(member.header("x-auth-groups"), Some("admins,ops"));
    assert_eq!(member.header("remote-groups"), Some("admins,ops"));
    let stranger = crate::app::auth_as_nginx(&app, &nick, "?groups=ops,qa").await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    // A user in no group is announced with an empty list, never left out.
    let open = crate::app::auth_as_nginx(&app, &nick, "").await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(open.header("x-auth-groups"), Some(""));
    // users= and groups= together: the named users and the members.
    assert_eq!(
        crate::app::auth_as_nginx(&app, &nick, "?users=nick&groups=ops")
            .await
            .status,
        StatusCode::OK
    );
    // A spoofed X-Auth-Groups from the client never reaches the decision.
    let spoofed = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(app.url("/auth?groups=ops"))
        .header("cookie", nick.cookie_header())
        .header("x-auth-groups", "ops")
        .header("x_auth_groups", "ops")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::FORBIDDEN);

    // The removal is seen on the very next request (the cache hears the change).
    app.store
        .set_groups(
            &olga_name,
            &GroupName::parse_list("admins").unwrap(),
            &admins,
        )
        .await
        .unwrap();
    let mut removed = StatusCode::OK;
    for _ in 0..50 {
        removed = crate::app::auth_as_nginx(&app, &olga, "?groups=ops")
            .await
            .status;
        if removed == StatusCode::FORBIDDEN {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(removed, StatusCode::FORBIDDEN, "the removal was not seen");

    // Disabling ends every session at once; the right password then says so, a
    // wrong one gets the usual answer.
    let nick_name = Username::parse("nick").unwrap();
    let ended = app
        .store
        .set_disabled(&nick_name, true, &admins)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.sessions, 1);
    assert_eq!(
        crate::app::auth_as_nginx(&app, &nick, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app.browser();
    let right = again.login("nick@example.com", PASSWORD).await;
    assert_eq!(right.status, StatusCode::FORBIDDEN);
    right.assert_contains("This account is disabled");
    let wrong = again.login("nick@example.com", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.body.contains("This account is disabled"));
    wrong.assert_contains("Invalid email or password.");
}

#[test]
fn a_public_deployment_must_choose_who_may_sign_up() {
    let settings = |pairs: &[(&str, &str)]| {
        let text: String = pairs
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\"\n"))
            .collect();
        toml::from_str::<web::cli::Settings>(&text).unwrap().check()
    };
    let public = settings(&[("public_url", "https://auth.example.com/")]);
    let err = public.unwrap_err().to_string();
    assert!(err.contains("--signup"), "{err}");
    let chosen = settings(&[
        ("public_url", "https://auth.example.com/"),
        ("signup", "invite"),
    ])
    .unwrap();
    assert_eq!(chosen.signup, SignupPolicy::Invite);
    // A development run on this machine stays open.
    let local = settings(&[("public_url", "http://127.0.0.1:8080/")]).unwrap();
    assert_eq!(local.signup, SignupPolicy::Open);
    assert!(settings(&[("signup", "sometimes")]).is_err());
}
