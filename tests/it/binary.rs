//! The real `gatehouse` binary, as an operator runs it: restarts on the embedded
//! store, the lock held against a second process, seeding, `--help`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use storage::Store;

use crate::app::PASSWORD;
use crate::support::process::{Server, gatehouse_bin, printed, run, run_with_input};

#[tokio::test]
async fn a_user_survives_a_restart_and_the_folder_is_locked_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());

    let server = Server::start(&db);
    let browser = server.browser();
    browser
        .signup("pat", "pat@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/pat");

    // A second process on the same folder is refused with a way out.
    let seed = dir.path().join("users.toml");
    std::fs::write(
        &seed,
        "[[users]]\nusername = \"quinn\"\nemail = \"quinn@example.com\"\npassword = \"password1\"\n",
    )
    .unwrap();
    let second = run(&["seed", seed.to_str().unwrap(), "--db", &db]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        stderr.contains("a running server holds this store")
            && stderr.contains("stop the server first"),
        "{stderr}"
    );
    assert!(stderr.contains("ws://"), "no way out named: {stderr}");

    assert!(server.terminate().success(), "unclean exit on SIGTERM");

    let server = Server::start(&db);
    // The session survived too: the same browser is still logged in.
    let profile = browser
        .at(&format!("http://{}", server.addr))
        .get("/user/pat")
        .await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.header("x-auth-user"), Some("pat"));
    server
        .browser()
        .login("pat@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/pat");
}

#[tokio::test]
async fn seeding_twice_updates_instead_of_duplicating() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/users.toml");
    let fixtures = fixtures.to_str().unwrap();
    let text = std::fs::read_to_string(fixtures).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let users = parsed["users"].as_array().unwrap();
    let count = users.len();
    assert!(count >= 2, "fixtures should hold a few users");

    let first = run(&["seed", fixtures, "--db", &db, "--scrypt-log-n", "10"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains(&format!("{count} created, 0 updated")),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let second = run(&["seed", fixtures, "--db", &db, "--scrypt-log-n", "10"]);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains(&format!("0 created, {count} updated")),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );

    // A fixture user logs in on a server over the seeded folder.
    let user = &users[0];
    let server = Server::start(&db);
    server
        .browser()
        .login(
            user["email"].as_str().unwrap(),
            user["password"].as_str().unwrap(),
        )
        .await
        .assert_redirect_to(&format!("/user/{}", user["username"].as_str().unwrap()));
    assert!(server.terminate().success());

    let store = Store::open(&db, None).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), count as u64);
}

#[tokio::test]
async fn a_bad_seed_file_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let seed = dir.path().join("users.toml");
    std::fs::write(
        &seed,
        "[[users]]\nusername = \"ruth\"\nemail = \"ruth@example.com\"\npassword = \"password1\"\n\n\
         [[users]]\nusername = \"x\"\nemail = \"bad\"\npassword = \"password1\"\n",
    )
    .unwrap();
    let out = run(&["seed", seed.to_str().unwrap(), "--db", &db]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("user #2"), "{stderr}");
    let store = Store::open(&db, None).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn the_health_command_checks_a_running_server() {
    let server = Server::start("mem://");
    let url = format!("http://{}/readyz", server.addr);
    let ok = tokio::task::spawn_blocking(move || run(&["health", &url]))
        .await
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let url = format!("http://{}/readyz", server.addr);
    assert!(server.terminate().success());
    let down = tokio::task::spawn_blocking(move || run(&["health", &url]))
        .await
        .unwrap();
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("does not answer"));
}

#[test]
fn serve_help_documents_the_stable_flags() {
    let out = run(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--db",
        "--public-url",
        "--insecure-cookies",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} not in --help:\n{help}");
    }
    assert!(
        help.contains("GATEHOUSE_DB"),
        "environment not documented:\n{help}"
    );
}

#[tokio::test]
async fn api_tokens_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/users.toml");
    let seeded = run(&[
        "seed",
        fixtures.to_str().unwrap(),
        "--db",
        &db,
        "--scrypt-log-n",
        "10",
    ]);
    assert!(seeded.status.success());

    let nobody = run(&["token", "create", "nobody", "--db", &db]);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user nobody"));
    // The API's rules, not looser ones: no control characters, 60 s to ten years.
    for (args, message) in [
        (&["--name", "bad\u{7}name"][..], "control characters"),
        (&["--expires-in", "10"], "60 seconds"),
        (&["--name", ""], "1 to 64 characters"),
    ] {
        let mut argv = vec!["token", "create", "alice", "--db", &db];
        argv.extend_from_slice(args);
        let refused = run(&argv);
        assert!(!refused.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    let created = run(&[
        "token",
        "create",
        "alice",
        "--name",
        "backup job",
        "--db",
        &db,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(token.starts_with("gh_") && token.len() == 67, "{token}");
    let log = String::from_utf8_lossy(&created.stderr);
    assert!(
        !log.contains(&token),
        "the secret leaked into the log: {log}"
    );

    let listed = run(&["token", "list", "alice", "--db", &db]);
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listing.contains("name=backup job"), "{listing}");
    assert!(!listing.contains(&token));
    let id = listing.split_whitespace().next().unwrap().to_owned();

    let ask = |addr: SocketAddr, token: String| async move {
        crate::app::http_client()
            .get(format!("http://{addr}/auth"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    };
    let server = Server::start(&db);
    let resp = ask(server.addr, token.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-auth-user"], "alice");
    assert!(server.terminate().success());

    let revoked = run(&["token", "revoke", "alice", &id, "--db", &db]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let again = run(&["token", "revoke", "alice", &id, "--db", &db]);
    assert!(!again.status.success());

    let server = Server::start(&db);
    assert_eq!(
        ask(server.addr, token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn user_passwd_sets_the_password_and_ends_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let server = Server::start(&db);
    let browser = server.browser();
    browser
        .signup("tess", "tess@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/tess");
    assert!(server.terminate().success());

    let minted = run(&["token", "create", "tess", "--db", &db]);
    assert!(minted.status.success());
    let mut passwd = Command::new(gatehouse_bin())
        .args([
            "user",
            "passwd",
            "tess",
            "--db",
            &db,
            "--scrypt-log-n",
            "10",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        passwd
            .stdin
            .take()
            .unwrap()
            .write_all(b"a whole new secret\n")
            .unwrap();
    }
    let out = passwd.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 session(s) ended, 1 API token(s) revoked"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = run(&["token", "list", "tess", "--db", &db]);
    assert!(
        listed.status.success() && listed.stdout.is_empty(),
        "a token survived"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("a whole new secret"));

    let server = Server::start(&db);
    let old = browser
        .at(&format!("http://{}", server.addr))
        .get("/user/tess")
        .await;
    assert_eq!(
        old.status,
        StatusCode::SEE_OTHER,
        "the old session survived"
    );
    assert_eq!(
        server
            .browser()
            .login("tess@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    server
        .browser()
        .login("tess@example.com", "a whole new secret")
        .await
        .assert_redirect_to("/user/tess");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn audit_events_name_user_and_address_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let server = Server::start(&db);
    let browser = server.browser();
    browser.signup("uma", "uma@example.com", PASSWORD).await;
    let first_cookie = browser.cookie_header();
    browser.logout().await;
    assert_eq!(
        browser
            .login("uma@example.com", "a wrong password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    browser
        .login("uma@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/uma");
    browser
        .post_form(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "another secret"),
                ("confirm", "another secret"),
            ],
        )
        .await
        .assert_redirect_to("/user/uma");
    // An API token made and revoked, a second browser's session revoked, then every
    // other one; a forged form; a login throttled.
    let made = browser
        .api_same_origin(
            "POST",
            "/me/tokens",
            Some(serde_json::json!({ "name": "t" })),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let api_token = made.json()["token"].as_str().unwrap().to_owned();
    let token_id = made.json()["id"].as_str().unwrap().to_owned();
    let revoked = browser
        .api_same_origin("DELETE", &format!("/me/tokens/{token_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let other = server.browser();
    other.login("uma@example.com", "another secret").await;
    let session_id = browser
        .api_same_origin("GET", "/me/sessions", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    browser
        .post_form(&format!("/account/sessions/{session_id}/revoke"), &[])
        .await;
    other.login("uma@example.com", "another secret").await;
    browser
        .post_form("/account/sessions/revoke-others", &[])
        .await;
    let forged = server.browser().post_without_csrf("/logout", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let intruder = server.browser();
    let mut throttled = false;
    for _ in 0..8 {
        let resp = intruder.login("uma@example.com", "a wrong password").await;
        throttled |= resp.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(throttled, "never throttled");
    let cookies = format!("{}; {}", browser.cookie_header(), other.cookie_header());
    let (status, log) = server.terminate_with_log();
    assert!(status.success());

    // Every audit event the code writes, each with its user (or the email tried)
    // and the client's address.
    for (event, names_user) in [
        ("signup", true),
        ("logout", true),
        ("login_failed", true),
        ("login_throttled", true),
        ("login", true),
        ("password_changed", true),
        ("token_created", true),
        ("token_revoked", true),
        ("session_revoked", true),
        ("sessions_revoked", true),
        ("csrf_refused", false),
    ] {
        let line = log
            .lines()
            .find(|l| {
                l.contains(&format!("event=\"{event}\"")) || l.contains(&format!("event={event} "))
            })
            .unwrap_or_else(|| panic!("no {event} event in:\n{log}"));
        if names_user {
            assert!(line.contains("uma"), "{event} names no user: {line}");
        }
        assert!(
            line.contains("127.0.0.1"),
            "{event} names no address: {line}"
        );
    }
    let all_cookies = format!("{first_cookie}; {cookies}");
    let secrets = [PASSWORD, "a wrong password", "another secret", &api_token]
        .into_iter()
        .map(str::to_owned)
        .chain(
            all_cookies
                .split("; ")
                .filter_map(|c| c.split_once('=').map(|(_, v)| v.to_owned())),
        );
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret is in the log:\n{log}");
    }
}

/// Signups streamed at a server that is then killed with SIGKILL: every signup
/// that was answered with success must be there after a restart.
#[tokio::test]
async fn acknowledged_signups_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let mut acknowledged: Vec<String> = Vec::new();
    for cycle in 0..3 {
        let server = Server::start(&db);
        let base = format!("http://{}", server.addr);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut streams = Vec::new();
        for stream in 0..4 {
            let browser = crate::app::browser_for(&base);
            let token = browser.csrf_token().await;
            let cookie = browser.cookie_header();
            let acked = Arc::clone(&acked);
            let base = base.clone();
            streams.push(tokio::spawn(async move {
                for n in 0.. {
                    let name = format!("k{cycle}_{stream}_{n}");
                    let sent = browser
                        .client
                        .post(format!("{base}/signup"))
                        .header("cookie", &cookie)
                        .form(&[
                            ("username", name.as_str()),
                            ("email", &format!("{name}@example.com")),
                            ("password", PASSWORD),
                            ("confirm", PASSWORD),
                            ("csrf", &token),
                        ])
                        .send()
                        .await;
                    match sent {
                        Ok(resp) if resp.status() == StatusCode::SEE_OTHER => {
                            acked.lock().unwrap().push(name);
                        }
                        Ok(resp) => panic!("signup {name}: {}", resp.status()),
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        for stream in streams {
            stream.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() > 10,
            "cycle {cycle}: only {} signups answered",
            acked.len()
        );
        acknowledged.extend(acked);
    }
    let store = Store::open(&db, None).await.unwrap();
    let mut lost = Vec::new();
    for name in &acknowledged {
        let username = domain::Username::parse(name).unwrap();
        if store.user_by_username(&username).await.unwrap().is_none() {
            lost.push(name.clone());
        }
    }
    eprintln!(
        "kill -9: 3 cycles, {} acknowledged signups, {} lost",
        acknowledged.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// A login flood against two hashing slots at ln=14 (16 MiB each): the excess gets
/// 503 + Retry-After, and memory stays under base + slots × scrypt memory: the
/// queue holds requests, never more scrypt buffers.
#[tokio::test]
async fn a_login_flood_stays_within_its_memory_bound() {
    const SCRYPT_MIB: u64 = 16;
    const SLOTS: u64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    // glibc raises its mmap threshold after the first large free; from then on a
    // freed scrypt buffer stays in its thread's arena, resident or not depending on
    // which thread hashed last (the base then varied by 26 MiB between runs). A
    // fixed threshold makes every buffer an mmap returned when its hash ends, so
    // the peak counts exactly the buffers alive at once.
    let server = Server::start_with_env(
        &db,
        &[
            "--scrypt-log-n",
            "14",
            "--scrypt-p",
            "1",
            "--hash-slots",
            "2",
        ],
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
    );
    let browser = server.browser();
    browser
        .signup("flo", "flo@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/flo");
    // The base: after as many logins one at a time as the flood will let through,
    // so that the store's growth from their writes is in it.
    for _ in 0..40 {
        browser
            .login("flo@example.com", PASSWORD)
            .await
            .assert_redirect_to("/user/flo");
    }
    let base_kib = server.memory_kib("VmRSS");
    eprintln!("login flood: RSS after 40 logins {} MiB", base_kib / 1024);

    let token = browser.csrf_token().await;
    let cookie = browser.cookie_header();
    let url = format!("http://{}/login", server.addr);
    let logins: Vec<_> = (0..120)
        .map(|_| {
            let client = browser.client.clone();
            let (url, cookie, token) = (url.clone(), cookie.clone(), token.clone());
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("cookie", cookie)
                    .form(&[
                        ("email", "flo@example.com"),
                        ("password", PASSWORD),
                        ("csrf", &token),
                    ])
                    .send()
                    .await
                    .unwrap();
                let retry = resp.headers().contains_key("retry-after");
                (resp.status(), retry)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await.unwrap());
    }
    let peak_kib = server.memory_kib("VmHWM");
    let ok = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SEE_OTHER)
        .count();
    let busy = answers
        .iter()
        .filter(|(s, retry)| *s == StatusCode::SERVICE_UNAVAILABLE && *retry)
        .count();
    eprintln!(
        "login flood: 120 logins, {ok} logged in, {busy} got 503; base {} MiB, peak during \
         the flood {} MiB",
        base_kib / 1024,
        peak_kib / 1024
    );
    let mut seen = std::collections::BTreeMap::new();
    for (status, retry) in &answers {
        *seen.entry((status.as_u16(), *retry)).or_insert(0) += 1;
    }
    assert_eq!(
        ok + busy,
        120,
        "(status, retry-after) counts: {seen:?}\n{}",
        server.log()
    );
    assert!(busy > 0, "a queue of 32 should overflow at 120 at once");
    // One buffer per slot, and 16 MiB for what 120 open connections hold (hyper's
    // buffers and this debug build's request futures, about 100 KiB each) and the
    // flood's own writes. (Hashing on Tokio's blocking pool, as before, peaked
    // about 49 MiB over its base here: one buffer per thread used.)
    let bound_kib = base_kib + SLOTS * SCRYPT_MIB * 1024 + 16 * 1024;
    assert!(
        peak_kib <= bound_kib,
        "peak {peak_kib} KiB over {bound_kib} KiB"
    );
    assert!(server.terminate().success());
}

/// The README's two commands, as written there: the run command's arguments given
/// to the built binary in an empty folder, then what the README promises of it — the
/// address it names, plain-HTTP cookies, a sign-up through the form landing on the
/// profile; and the test command is the one CI runs.
#[tokio::test]
async fn the_readme_commands_do_what_the_readme_says() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## The two commands")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"The two commands\"");
    let commands: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::trim)
        .collect();
    let [run, test] = commands[..] else {
        panic!("expected two commands in the README, found {commands:?}");
    };
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains(test),
        ".ci/run does not run the README's {test:?}"
    );
    let args: Vec<&str> = run
        .strip_prefix("cargo run -- ")
        .unwrap_or_else(|| panic!("{run:?} is not `cargo run -- …`"))
        .split_whitespace()
        .collect();
    let url = section
        .split("open <")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("the README names the address to open");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(&args, Some(dir.path()));
    assert_eq!(
        format!("http://{}/", server.addr),
        url,
        "listens elsewhere than the README says"
    );
    let browser = crate::app::browser_for(url.trim_end_matches('/'));
    let page = browser.get("/signup").await;
    assert_eq!(page.status, StatusCode::OK);
    let resp = browser
        .signup("reader", "reader@example.com", PASSWORD)
        .await;
    resp.assert_redirect_to("/user/reader");
    for cookie in resp.set_cookies().iter().chain(page.set_cookies().iter()) {
        assert!(
            !cookie.contains("Secure") && !cookie.starts_with("__Host-"),
            "{cookie}"
        );
    }
    assert_eq!(resp.header("strict-transport-security"), None);
    let profile = browser.get("/user/reader").await;
    assert_eq!(profile.status, StatusCode::OK);
    profile.assert_contains("reader");
    assert!(
        dir.path().join("data/gatehouse").exists(),
        "the embedded store is not where the README says"
    );
    let (status, log) = server.terminate_with_log();
    assert!(status.success(), "{log}");
    assert!(log.contains("secure_cookies=false"), "{log}");
}

/// `gatehouse user add --admin`, `user groups`, `user disable` and `invite create`
/// on a store no server holds: the last admin is protected, and an invitation link
/// printed by the CLI signs someone up on a server started with `--signup invite`.
#[tokio::test]
async fn the_cli_adds_admins_guards_the_last_one_and_invites() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let added = run_with_input(
        &[
            "user",
            "add",
            "root",
            "--email",
            "root@example.com",
            "--admin",
            "--groups",
            "ops",
            "--scrypt-log-n",
            "10",
            "--db",
            &db,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", printed(&added));
    assert!(
        printed(&added).contains("in groups [admins,ops]"),
        "{}",
        printed(&added)
    );

    // The only admin: cannot be disabled, deleted or removed from admins.
    for args in [
        &["user", "disable", "root"][..],
        &["user", "delete", "root"],
        &["user", "groups", "root", "remove", "admins"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--db", &db]);
        let out = run(&all);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            printed(&out).contains("last admin"),
            "{args:?}: {}",
            printed(&out)
        );
    }
    let listed = run(&["user", "list", "--db", &db]);
    assert!(
        printed(&listed).contains("root\troot@example.com\t[admins,ops]"),
        "{}",
        printed(&listed)
    );

    let invite = run(&[
        "invite",
        "create",
        "--groups",
        "qa",
        "--public-url",
        "https://auth.example.com/",
        "--db",
        &db,
    ]);
    assert!(invite.status.success(), "{}", printed(&invite));
    let link = String::from_utf8_lossy(&invite.stdout).trim().to_owned();
    let token = link
        .strip_prefix("https://auth.example.com/signup?invite=")
        .unwrap_or_else(|| panic!("{link}"))
        .to_owned();

    let server = Server::start_with(&db, &["--scrypt-log-n", "10", "--signup", "invite"]);
    let stranger = server.browser();
    assert_eq!(stranger.get("/signup").await.status, StatusCode::FORBIDDEN);
    let invited = server.browser();
    let page = invited.get(&format!("/signup?invite={token}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let fields: Vec<(String, String)> = [
        ("username", "quinn"),
        ("email", "quinn@example.com"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("invite", token.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    invited
        .post_fields("/signup", fields)
        .await
        .assert_redirect_to("/user/quinn");
    // root at work on the page and in the API: every change an audit line naming
    // who, what, to whom, from where and through which door.
    let root = server.browser();
    root.get("/login").await;
    root.login("root@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/root");
    root.post_form("/admin/users/quinn/groups", &[("groups", "qa, ops")])
        .await
        .assert_redirect_to("/admin/users");
    let made = root
        .api_same_origin(
            "POST",
            "/admin/invitations",
            Some(serde_json::json!({ "email": "rita@example.com" })),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let ended = root
        .api_same_origin("DELETE", "/admin/users/quinn/sessions", None)
        .await;
    assert_eq!(ended.json()["sessions_ended"], 1);
    invited
        .login("quinn@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/quinn");
    let (status, log) = server.terminate_with_log();
    assert!(status.success());
    for (event, target, via) in [
        ("groups_changed", "quinn", "page"),
        ("invitation_created", "rita@example.com", "api"),
        ("access_revoked", "quinn", "api"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")))
            .unwrap_or_else(|| panic!("no {event} in:\n{log}"));
        for part in [
            "by=root",
            &format!("user={target}"),
            "address=127.0.0.1",
            &format!("via=\"{via}\""),
        ] {
            assert!(line.contains(part), "{event} lacks {part}: {line}");
        }
    }
    let link = made.json()["link"].as_str().unwrap().to_owned();
    assert!(
        !log.contains(link.split("invite=").nth(1).unwrap()),
        "the invitation's secret in the log"
    );
    let shown = run(&["user", "show", "quinn", "--db", &db]);
    assert!(shown.status.success(), "{}", printed(&shown));
    assert!(
        printed(&shown).contains("groups\t[ops,qa]"),
        "{}",
        printed(&shown)
    );
    let listed = run(&["user", "list", "--db", &db]);
    assert!(
        printed(&listed).contains("quinn\tquinn@example.com\t[ops,qa]"),
        "{}",
        printed(&listed)
    );
    let disabled = run(&["user", "disable", "quinn", "--db", &db]);
    assert!(disabled.status.success(), "{}", printed(&disabled));
    assert!(
        printed(&disabled).contains("1 session(s) ended"),
        "{}",
        printed(&disabled)
    );
}

/// Second-factor secrets at rest, through `gatehouse factors reseal`: a store
/// whose TOTP secrets were sealed under one secret key refuses a start with
/// another (instead of refusing every code), the command moves them to the new
/// key with the server stopped, and the codes work again; a public URL without
/// any key refuses to start once a user has an app. The stored record never
/// holds the secret in clear.
#[tokio::test]
async fn factor_secrets_are_sealed_and_move_to_a_new_key_with_factors_reseal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("db").display());
    let old_key = dir.path().join("old.key");
    let new_key = dir.path().join("new.key");
    std::fs::write(&old_key, "the old secret key, thirty-two characters\n").unwrap();
    std::fs::write(&new_key, "the new secret key, thirty-two characters\n").unwrap();
    let config = |key: Option<&Path>| web::config::Config {
        public_url: "https://auth.example.test/".parse().unwrap(),
        secret_key: key.map(|k| {
            secrecy::SecretString::from(std::fs::read_to_string(k).unwrap().trim().to_owned())
        }),
        ..crate::app::test_config()
    };
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let otto = domain::Username::parse("otto").unwrap();
    {
        let store = Store::open(&url, None).await.unwrap();
        let state = web::AppState::new(store.clone(), config(Some(&old_key)))
            .await
            .unwrap();
        let sealed = state.seal.as_ref().unwrap().seal(&otto, secret).unwrap();
        assert!(store.begin_totp(&otto, &sealed).await.unwrap());
        let stored = store.totp(&otto).await.unwrap().unwrap().secret;
        assert!(!stored.contains(secret), "{stored}");
        // With another key, or none on a public URL: no start, and why.
        let refused = web::AppState::new(store.clone(), config(Some(&new_key)))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("factors reseal"), "{refused}");
        let refused = web::AppState::new(store.clone(), config(None))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("GATEHOUSE_SECRET_KEY"), "{refused}");
    }
    // The store is closed: the command opens it (a few tries while the folder's
    // lock is let go).
    let args = [
        "factors",
        "reseal",
        "--db",
        url.as_str(),
        "--old-secret-key-file",
        old_key.to_str().unwrap(),
        "--secret-key-file",
        new_key.to_str().unwrap(),
    ];
    let mut out = run(&args);
    for _ in 0..20 {
        if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("LOCK") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        out = run(&args);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 secret(s) sealed under the new key"),
        "{stdout}"
    );
    // Given neither key they were sealed under, the command names the users it
    // cannot open and records nothing.
    let other_key = dir.path().join("other.key");
    std::fs::write(
        &other_key,
        "a third secret key, thirty-two characters
",
    )
    .unwrap();
    let wrong = run(&[
        "factors",
        "reseal",
        "--db",
        url.as_str(),
        "--old-secret-key-file",
        other_key.to_str().unwrap(),
        "--secret-key-file",
        old_key.to_str().unwrap(),
    ]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("otto"));

    let store = Store::open(&url, None).await.unwrap();
    let state = web::AppState::new(store.clone(), config(Some(&new_key)))
        .await
        .unwrap();
    let stored = store.totp(&otto).await.unwrap().unwrap().secret;
    assert_eq!(
        state.seal.as_ref().unwrap().open(&otto, &stored).unwrap(),
        secret
    );
}

/// The commands read the server's settings: `GATEHOUSE_CONFIG` (or `--config`)
/// names the store and the scrypt cost for `user add` as for `serve`, so a user
/// added from another folder lands in the server's store, not in a new
/// `./data/gatehouse` beside the operator; and a taken name is said as such.
#[tokio::test]
async fn the_commands_act_on_the_store_the_configuration_names() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(&config, format!("db = \"{db}\"\nscrypt_log_n = 10\n")).unwrap();
    let config = config.display().to_string();
    let gatehouse = |args: &[&str], input: &str| {
        let mut child = Command::new(gatehouse_bin())
            .args(args)
            .current_dir(elsewhere.path())
            .env("GATEHOUSE_CONFIG", &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let added = gatehouse(
        &[
            "user",
            "add",
            "root",
            "--email",
            "root@example.com",
            "--admin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        !elsewhere.path().join("data").exists(),
        "the command made a store of its own in the working folder"
    );
    let again = gatehouse(
        &["user", "add", "root", "--email", "other@example.com"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("the username root is taken"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // The server started on the same file sees the user, and its scrypt cost.
    let server = Server::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-cookies",
            "--config",
            &config,
        ],
        None,
    );
    let browser = server.browser();
    browser.get("/login").await;
    browser
        .login("root@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/root");
}
