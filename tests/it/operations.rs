//! Running gatehouse day to day, through the real binary: the commands beside a
//! serving store (the control socket), and backups taken while it serves.

use std::process::Command;

use reqwest::StatusCode;

use crate::app::PASSWORD;
use crate::support::process::{
    Server, assert_printed, gatehouse_bin, printed, run, run_with_input,
};

/// The commands beside a running server on the embedded store: they reach it
/// through `control.sock` (owner-only) and run there, so what they change the
/// server sees at once — a disabled user's browser is out on its next request —
/// and a user of another uid is refused by the socket's mode and, were that
/// opened, by the server's check of the peer.
#[tokio::test]
async fn the_commands_run_beside_a_serving_store_through_its_control_socket() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("db");
    let db = format!("surrealkv://{}", folder.display());
    let server = Server::start(&db);
    let socket = folder.join("control.sock");
    let mode = std::fs::metadata(&socket).unwrap().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the socket is not owner-only: {mode:o}"
    );

    let added = run_with_input(
        &[
            "user",
            "add",
            "root",
            "--email",
            "root@example.com",
            "--admin",
            "--db",
            &db,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", printed(&added));
    assert!(printed(&added).contains("added root (root@example.com) in groups [admins]"));
    let root = server.browser();
    root.login("root@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/root");

    let pat = server.browser();
    pat.signup("pat", "pat@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/pat");
    let listed = run(&["user", "list", "--db", &db]);
    assert!(listed.status.success(), "{}", printed(&listed));
    assert_printed(&listed, "pat\tpat@example.com\t[]", true);
    assert_printed(&listed, "2 user(s)", true);

    // Disabled beside the server: pat's live session (in the server's cache) is
    // over on the next request, not when the cache would have expired.
    assert_eq!(pat.get("/auth").await.status, StatusCode::OK);
    let disabled = run(&["user", "disable", "pat", "--db", &db]);
    assert!(disabled.status.success(), "{}", printed(&disabled));
    assert_printed(&disabled, "1 session(s) ended", true);
    assert_eq!(pat.get("/auth").await.status, StatusCode::UNAUTHORIZED);

    let minted = run(&["token", "create", "root", "--name", "beside", "--db", &db]);
    assert!(minted.status.success(), "{}", printed(&minted));
    let token = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
    let stranger = server.browser();
    let auth = stranger
        .get_with("/auth", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(auth.status, StatusCode::OK);
    assert_eq!(auth.header("x-auth-user"), Some("root"));

    let invited = run(&["invite", "create", "--db", &db]);
    assert!(invited.status.success(), "{}", printed(&invited));
    let link = String::from_utf8_lossy(&invited.stdout).trim().to_owned();
    let invite = link
        .split("invite=")
        .nth(1)
        .unwrap_or_else(|| panic!("{link}"));
    let listed = run(&["invite", "list", "--db", &db]);
    assert_printed(&listed, "expires in", true);
    assert!(
        !printed(&listed).contains(invite),
        "a listed invitation shows its secret"
    );

    // A refusal comes back as the command's own error, exit status 1.
    let missing = run(&["user", "show", "nobody", "--db", &db]);
    assert_eq!(missing.status.code(), Some(1));
    assert_printed(&missing, "there is no user nobody", true);
    assert_printed(&missing, "backtrace", false);
    // What cannot run beside the server says so, and what to do.
    let seed = dir.path().join("users.toml");
    std::fs::write(&seed, "users = []\n").unwrap();
    let seeded = run(&["seed", seed.to_str().unwrap(), "--db", &db]);
    assert!(!seeded.status.success());
    assert_printed(&seeded, "stop the server first", true);

    // Another user: a copy of the binary it may run, a folder it may enter.
    let bin = dir.path().join("gatehouse");
    std::fs::copy(gatehouse_bin(), &bin).unwrap();
    for (path, mode) in [
        (dir.path(), 0o755),
        (folder.as_path(), 0o755),
        (bin.as_path(), 0o755),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .output()
    };
    let Ok(refused) = as_nobody(&["user", "list", "--db", &db]) else {
        let why = "setpriv is missing: the other-uid refusal is not tested";
        assert!(std::env::var("GATEHOUSE_REQUIRE_E2E").is_err(), "{why}");
        eprintln!("{why}");
        return;
    };
    assert!(!refused.status.success());
    assert_printed(&refused, "refused this user", true);
    // Past the socket's mode, the server's own check of the peer's uid.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = as_nobody(&["user", "list", "--db", &db]).unwrap();
    assert!(!refused.status.success());
    assert_printed(&refused, "the server's own user only", true);
    assert_printed(&refused, "pat@example.com", false);

    let (status, log) = server.terminate_with_log();
    assert!(status.success());
    assert!(
        log.contains("control socket: a command from another user refused"),
        "{log}"
    );
    assert!(!socket.exists(), "the socket outlived the server");
}

/// A backup taken while the server serves a signup load holds every signup the
/// server acknowledged before the backup started; restored into a new folder it
/// brings back sessions (the same browser is still logged in), second factors
/// (sealed under the secret key the backup also carries: a login with a code
/// works), CSRF tokens, invitations — and restores into nothing else.
#[tokio::test]
async fn a_backup_under_signup_load_restores_everything_acknowledged_before_it() {
    use crate::support::factors::{code_at, code_now, now, shown_secret};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let dir = tempfile::tempdir().unwrap();
    let db = format!("surrealkv://{}", dir.path().join("db").display());
    let server = Server::start(&db);
    let pat = server.browser();
    pat.signup("pat", "pat@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/pat");
    let tina = server.browser();
    tina.signup("tina", "tina@example.com", PASSWORD)
        .await
        .assert_redirect_to("/user/tina");
    let setup = tina.post_form("/account/security/totp", &[]).await;
    let secret = shown_secret(&setup.body);
    let enrolled_step = now() / 30;
    let confirmed = tina
        .post_form(
            "/account/security/totp/confirm",
            &[("code", &code_at(&secret, enrolled_step * 30))],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let invited = run(&["invite", "create", "--db", &db]);
    assert!(invited.status.success(), "{}", printed(&invited));
    let invitation = String::from_utf8_lossy(&invited.stderr)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    // pat's CSRF token, taken from a page of the old server.
    assert_eq!(pat.get("/account/sessions").await.status, StatusCode::OK);

    // Two visitors sign up as fast as the server lets them, noting when each
    // signup was acknowledged.
    let acknowledged: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..2 {
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        let base = format!("http://{}", server.addr);
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                let name = format!("load{worker}x{n}");
                let visitor = crate::app::browser_for(&base);
                let page = visitor
                    .signup(&name, &format!("{name}@example.com"), PASSWORD)
                    .await;
                if page.status == StatusCode::SEE_OTHER {
                    acknowledged.lock().unwrap().push((name, Instant::now()));
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let file = dir.path().join("backup.surql");
    let started = Instant::now();
    let backup = {
        let (db, file) = (db.clone(), file.clone());
        tokio::task::spawn_blocking(move || run(&["backup", file.to_str().unwrap(), "--db", &db]))
            .await
            .unwrap()
    };
    assert!(backup.status.success(), "{}", printed(&backup));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let before: Vec<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < started)
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        before.len() >= 2,
        "the load acknowledged too little: {before:?}"
    );
    eprintln!(
        "signups acknowledged: {} before the backup, {} in all; {}",
        before.len(),
        acknowledged.lock().unwrap().len(),
        String::from_utf8_lossy(&backup.stdout).trim()
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is readable by others");
    assert!(server.terminate().success());

    // Never on top of a store with records.
    let refused = run(&["restore", file.to_str().unwrap(), "--db", &db]);
    assert!(!refused.status.success());
    assert_printed(&refused, "holds records already", true);

    let restored_db = format!("surrealkv://{}", dir.path().join("restored").display());
    let restored = run(&["restore", file.to_str().unwrap(), "--db", &restored_db]);
    assert!(restored.status.success(), "{}", printed(&restored));
    let server = Server::start(&restored_db);
    let listed = run(&["user", "list", "--db", &restored_db]);
    assert!(listed.status.success(), "{}", printed(&listed));
    let listed = printed(&listed);
    for name in before.iter().chain([&"pat".to_owned(), &"tina".to_owned()]) {
        assert!(
            listed.contains(&format!("{name}\t{name}@example.com")),
            "{name} acknowledged before the backup, missing after restore"
        );
    }
    let base = format!("http://{}", server.addr);
    let back = pat.at(&base);
    let auth = back.get("/auth").await;
    assert_eq!(auth.status, StatusCode::OK, "the session did not survive");
    assert_eq!(auth.header("x-auth-user"), Some("pat"));
    // The old page's CSRF token is good on the restored store (the key came too).
    let out = back.logout().await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(back.get("/auth").await.status, StatusCode::UNAUTHORIZED);

    let tina = server.browser();
    tina.login("tina@example.com", PASSWORD)
        .await
        .assert_redirect_to("/login/code");
    let code = if now() / 30 > enrolled_step {
        code_now(&secret)
    } else {
        code_at(&secret, (enrolled_step + 1) * 30)
    };
    let second = tina.post_form("/login/code", &[("code", &code)]).await;
    second.assert_redirect_to("/user/tina");
    let invitations = run(&["invite", "list", "--db", &restored_db]);
    assert_printed(&invitations, &invitation, true);
}
