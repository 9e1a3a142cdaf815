//! Several `gatehouse` processes on one real SurrealDB server over `ws://` (the
//! official server, built from crates.io by `cargo xtask surrealdb`): what one node
//! does, the others see; and when the server goes away — killed, or stalled — the
//! nodes answer 503 within a bound instead of hanging, `/auth` stops admitting from
//! its cache, and everything comes back by itself when the server does.
//!
//! Without the server binary these tests say so and pass, unless
//! `GATEHOUSE_REQUIRE_E2E=1` (set by `.ci/run`, which builds it first).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::app::{Browser, PASSWORD, email_of};
use crate::support::process::Server;
use crate::support::programs::free_port;

const DB_PASSWORD: &str = "cluster-test-secret";

/// The SurrealDB server: `$GATEHOUSE_SURREAL_BIN`, or where `cargo xtask
/// surrealdb` puts it.
fn surreal_bin() -> Option<PathBuf> {
    let found = std::env::var_os("GATEHOUSE_SURREAL_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(
                PathBuf::from(home).join(".cache/gatehouse-surreal/target/debug/surreal-for-tests"),
            )
        })
        .filter(|p| p.is_file());
    crate::support::programs::found_or_skip(
        found,
        "the SurrealDB server is not built",
        "run `cargo xtask surrealdb`",
    )
}

/// `surreal start` on a surrealkv folder, killed by PID when dropped.
struct Surreal {
    bin: PathBuf,
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Surreal {
    fn start(bin: &Path, dir: &Path, port: u16) -> Self {
        Self {
            bin: bin.to_owned(),
            child: Self::spawn(bin, dir, port),
            port,
            dir: dir.to_owned(),
        }
    }

    fn spawn(bin: &Path, dir: &Path, port: u16) -> Child {
        let mut child = Command::new(bin)
            .args([
                "start",
                "--user",
                "root",
                "--pass",
                DB_PASSWORD,
                "--log",
                "warn",
            ])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg(format!("surrealkv://{}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("SurrealDB did not listen");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// kill -9, then the same server again on the same folder and port.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = Self::spawn(&self.bin, &self.dir, self.port);
    }
}

impl Drop for Surreal {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(db: &Surreal) -> Server {
    Server::start_with(
        &db.url(),
        &[
            "--scrypt-log-n",
            "10",
            "--db-user",
            "root",
            "--db-password",
            DB_PASSWORD,
        ],
    )
}

/// `/auth` on `node` with `browser`'s cookies: the status and how long it took.
async fn auth(node: &Server, browser: &Browser) -> (StatusCode, Duration) {
    let started = Instant::now();
    let status = crate::app::http_client()
        .get(format!("http://{}/auth", node.addr))
        .header("cookie", browser.cookie_header())
        .header("x-original-url", "https://app.example.com/")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::REQUEST_TIMEOUT);
    (status, started.elapsed())
}

async fn get(node: &Server, path: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let status = crate::app::http_client()
        .get(format!("http://{}{path}", node.addr))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::REQUEST_TIMEOUT);
    (status, started.elapsed())
}

/// A figure for the CI log: straight to the process's stderr, past the test
/// harness's capture.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test]
async fn three_nodes_on_one_surrealdb_server_see_each_others_changes() {
    let Some(bin) = surreal_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Surreal::start(&bin, &dir.path().join("db"), free_port());
    let nodes = [node(&db), node(&db), node(&db)];
    let [a, b, c] = &nodes;

    // A signup race across the nodes: one wins.
    let racers: Vec<Browser> = nodes.iter().map(Server::browser).collect();
    for racer in &racers {
        racer.get("/signup").await;
    }
    let racer_email = email_of("racer");
    let answers = futures::future::join_all(
        racers
            .iter()
            .map(|r| r.signup("racer", &racer_email, PASSWORD)),
    )
    .await;
    let won = answers
        .iter()
        .filter(|p| p.status == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(
        won,
        1,
        "{:?}",
        answers.iter().map(|p| p.status).collect::<Vec<_>>()
    );

    // A login on A is admitted on B and C.
    let alice = a.browser();
    alice.signup("alice", &email_of("alice"), PASSWORD).await;
    for node in [a, b, c] {
        assert_eq!(auth(node, &alice).await.0, StatusCode::OK);
    }
    // One CSRF key: a form from A is accepted by B.
    let visitor = a.browser();
    visitor.get("/login").await;
    visitor
        .at(&format!("http://{}", b.addr))
        .login(&email_of("alice"), PASSWORD)
        .await
        .assert_redirect_to("/user/alice");
    // An API token made on A works on C.
    let made = alice
        .api_same_origin(
            "POST",
            "/me/tokens",
            Some(serde_json::json!({ "name": "t" })),
        )
        .await;
    let token = made.json()["token"].as_str().unwrap().to_owned();
    let on_c = crate::app::http_client()
        .get(format!("http://{}/auth", c.addr))
        .header("authorization", format!("Bearer {token}"))
        .header("x-original-url", "https://app.example.com/")
        .send()
        .await
        .unwrap();
    assert_eq!(on_c.status(), StatusCode::OK);
    // The login throttle counts across nodes.
    let intruder = a.browser();
    let mut throttled = false;
    for i in 0..9 {
        let at = intruder.at(&format!("http://{}", nodes[i % 3].addr));
        at.get("/login").await;
        let page = at.login(&email_of("alice"), "a wrong password").await;
        throttled |= page.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(
        throttled,
        "failures spread over three nodes were never throttled"
    );

    // Revocation on C — a logout, a revocation from another session, a password
    // change — seen by A's and B's cached /auth.
    let mut delays = Vec::new();
    let mut by_kind: [Vec<Duration>; 3] = Default::default();
    let rounds = 90;
    let mut password = PASSWORD.to_owned();
    let c_base = format!("http://{}", c.addr);
    for round in 0..rounds {
        let kind = round % 3;
        let user = a.browser();
        user.get("/login").await;
        let page = user.login(&email_of("racer"), &password).await;
        if page.status != StatusCode::SEE_OTHER {
            // Throttled by the loop above: wait it out once.
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        // Cached on A and B.
        for node in [a, b] {
            assert_eq!(auth(node, &user).await.0, StatusCode::OK);
            assert_eq!(auth(node, &user).await.0, StatusCode::OK);
        }
        let cookie = user.cookie_header();
        // The other session, on C, for the revocation and the password change.
        let other = crate::app::browser_for(&c_base);
        if kind > 0 {
            other.get("/login").await;
            other
                .login(&email_of("racer"), &password)
                .await
                .assert_redirect_to("/user/racer");
        }
        let at_c = user.at(&c_base);
        at_c.get("/").await;
        let started = match kind {
            0 => {
                let started = Instant::now();
                at_c.logout().await;
                started
            }
            1 => {
                // The session's id is the SHA-256 of the cookie's token.
                let token = cookie
                    .split("; ")
                    .find_map(|c| c.strip_prefix("gatehouse_session="))
                    .unwrap();
                let id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
                other.get("/account/sessions").await;
                let started = Instant::now();
                other
                    .post_form(&format!("/account/sessions/{id}/revoke"), &[])
                    .await
                    .assert_redirect_to("/account/sessions");
                started
            }
            _ => {
                let new = format!("password number {round}");
                other.get("/account/password").await;
                let started = Instant::now();
                other
                    .post_form(
                        "/account/password",
                        &[
                            ("current", &password),
                            ("password", &new),
                            ("confirm", &new),
                        ],
                    )
                    .await
                    .assert_redirect_to("/user/racer");
                password = new;
                started
            }
        };
        for node in [a, b] {
            loop {
                let status = crate::app::http_client()
                    .get(format!("http://{}/auth", node.addr))
                    .header("cookie", &cookie)
                    .header("x-original-url", "https://app.example.com/")
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status == StatusCode::UNAUTHORIZED {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(5), "never seen");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let delay = started.elapsed();
        delays.push(delay);
        by_kind[kind].push(delay);
    }
    assert!(
        delays.len() >= rounds / 2,
        "{} rounds measured",
        delays.len()
    );
    delays.sort();
    let kinds: Vec<String> = ["logout", "revocation", "password change"]
        .iter()
        .zip(by_kind.iter_mut())
        .map(|(name, d)| {
            d.sort();
            format!("{name} p50 {:?}", percentile(d, 0.5))
        })
        .collect();
    report(&format!(
        "cross-node revocation seen by both other nodes' cached /auth after: p50 {:?}, p99 {:?}, max {:?} ({} revocations: {})",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().unwrap(),
        delays.len(),
        kinds.join(", ")
    ));
    for node in nodes {
        assert!(node.terminate().success());
    }
}

#[tokio::test]
async fn when_the_server_goes_away_nodes_answer_503_in_time_and_come_back_by_themselves() {
    let Some(bin) = surreal_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut db = Surreal::start(&bin, &dir.path().join("db"), free_port());
    let a = node(&db);
    let b = node(&db);
    // Acknowledged signups on A; a session cached on B.
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let name = format!("kept{i}");
        let browser = a.browser();
        let page = browser.signup(&name, &email_of(&name), PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        acknowledged.push(name);
    }
    let user = b.browser();
    user.get("/login").await;
    user.login(&email_of("kept0"), PASSWORD)
        .await
        .assert_redirect_to("/user/kept0");
    assert_eq!(auth(&b, &user).await.0, StatusCode::OK);
    assert_eq!(auth(&b, &user).await.0, StatusCode::OK);

    for fault in ["kill -9", "SIGSTOP"] {
        // A login on A sent as the server goes, before A can know: let go within
        // 3 s (well under a proxy's timeout), not after the 10-s request deadline.
        let early = a.browser();
        let form = early.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{fault}: {}", a.log());
        let stuck = a.browser();
        stuck.get("/login").await;
        let gone = Instant::now();
        match fault {
            "kill -9" => db.kill(),
            _ => db.signal("-STOP"),
        }
        let first = early.login(&email_of("kept3"), PASSWORD).await;
        let first_took = gone.elapsed();
        assert_eq!(
            first.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault}: {}",
            first.body
        );
        assert!(
            first_took <= Duration::from_secs(3),
            "{fault}: the first login took {first_took:?}"
        );
        // /auth stops admitting from the cache within the grace, and never hangs.
        let (closed_after, worst) = loop {
            let (status, took) = auth(&b, &user).await;
            assert!(
                took < Duration::from_secs(8),
                "{fault}: /auth took {took:?}"
            );
            if status != StatusCode::OK {
                assert!(
                    matches!(
                        status,
                        StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
                    ),
                    "{fault}: /auth answered {status}"
                );
                break (gone.elapsed(), took);
            }
            assert!(
                gone.elapsed() < Duration::from_secs(10),
                "{fault}: /auth still admits"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Known to be down now: readiness and a login answer 503 at once.
        let (ready, ready_took) = get(&a, "/readyz").await;
        assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "{fault}");
        assert!(
            ready_took < Duration::from_secs(1),
            "{fault}: /readyz took {ready_took:?}"
        );
        // (Its form was loaded before the fault: a page is 503 too now.)
        let form = stuck.get("/login").await;
        assert_eq!(form.status, StatusCode::SERVICE_UNAVAILABLE, "{fault}");
        let login_started = Instant::now();
        let login = stuck.login(&email_of("kept1"), PASSWORD).await;
        let login_took = login_started.elapsed();
        assert_eq!(
            login.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault}: {}",
            login.body
        );
        assert!(login.header("retry-after").is_some(), "{fault}");
        assert!(
            login_took < Duration::from_secs(1),
            "{fault}: a login took {login_took:?} with the store known to be down"
        );

        // The server comes back: both nodes reconnect by themselves.
        let back = Instant::now();
        match fault {
            "kill -9" => db.restart(),
            _ => db.signal("-CONT"),
        }
        let reconnected = loop {
            let (a_ready, _) = get(&a, "/readyz").await;
            let (b_ready, _) = get(&b, "/readyz").await;
            if a_ready == StatusCode::OK && b_ready == StatusCode::OK {
                break back.elapsed();
            }
            assert!(
                back.elapsed() < Duration::from_secs(60),
                "{fault}: no reconnect"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let admitted = loop {
            if auth(&b, &user).await.0 == StatusCode::OK {
                break back.elapsed();
            }
            assert!(
                back.elapsed() < Duration::from_secs(60),
                "{fault}: the session is not admitted again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        report(&format!(
            "{fault}: a login under way answered 503 {first_took:?} after the fault; \
             /auth refused the cached session {closed_after:?} after the fault (that answer took {worst:?}); \
             then /readyz 503 in {ready_took:?}; a login 503 in {login_took:?}; both nodes ready {reconnected:?} after the server returned, the session admitted again after {admitted:?}"
        ));
    }
    // Nothing acknowledged was lost.
    let checker = a.browser();
    checker.get("/login").await;
    checker.login(&email_of("kept2"), PASSWORD).await;
    for name in &acknowledged {
        let page = checker.get(&format!("/user/{name}")).await;
        assert_eq!(page.status, StatusCode::OK, "{name} lost");
    }
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// The CLI is a door like the others: `gatehouse user passwd` against the store a
/// node is serving ends the user's sessions on that node at once (its cache hears
/// the change feed) and queues the same notice the account page sends, which the
/// node mails; `gatehouse token create` notifies the owner too.
#[tokio::test]
async fn the_cli_on_a_served_store_ends_sessions_on_the_node_and_notifies_like_the_site() {
    let Some(bin) = surreal_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let db = Surreal::start(&bin, &dir.path().join("db"), free_port());
    let mail_dir = mail.display().to_string();
    let node = Server::start_with(
        &db.url(),
        &[
            "--scrypt-log-n",
            "10",
            "--db-user",
            "root",
            "--db-password",
            DB_PASSWORD,
            "--mail-dir",
            &mail_dir,
        ],
    );
    let tess = node.browser();
    tess.signup("tess", &email_of("tess"), PASSWORD)
        .await
        .assert_redirect_to("/user/tess");
    assert_eq!(auth(&node, &tess).await.0, StatusCode::OK);

    let store = [
        "--db",
        &db.url(),
        "--db-user",
        "root",
        "--db-password",
        DB_PASSWORD,
    ];
    let mut passwd = vec!["user", "passwd", "tess", "--scrypt-log-n", "10"];
    passwd.extend_from_slice(&store);
    let out = crate::support::process::run_with_input(&passwd, "a whole new secret\n");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("1 session(s) ended"), "{said}");
    // The node's cached session is gone within the change feed's delay.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = auth(&node, &tess).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "/auth still answers {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new password works on the node; the old one does not.
    let again = node.browser();
    again.get("/login").await;
    again
        .login(&email_of("tess"), "a whole new secret")
        .await
        .assert_redirect_to("/user/tess");

    let mut token = vec!["token", "create", "tess", "--name", "backup"];
    token.extend_from_slice(&store);
    let out = crate::support::process::run(&token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Both notices, queued by the CLI, mailed by the node.
    let deadline = Instant::now() + Duration::from_secs(20);
    let wanted = [
        "Your password was changed",
        "A new API token was made for your account",
    ];
    loop {
        let sent: Vec<String> = std::fs::read_dir(&mail)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|subject| {
                !sent
                    .iter()
                    .any(|m| m.contains(subject) && m.contains(&email_of("tess")))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not mailed: {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = node.log();
    assert!(!log.contains("a whole new secret"), "{log}");
}
