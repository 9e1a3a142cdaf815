//! `cargo xtask bench --db ws`: after the main bench, the same gatehouse binary on
//! the official SurrealDB server (`ws://`, two nodes) beside the embedded store, in
//! one run, on one surrealkv folder that both open in turn:
//!
//! 1. a store with 10 users: `/auth` peak and login time, embedded and `ws://`; the
//!    delay before a logout on node A is refused by node B's cached `/auth`
//!    (p50/p99 over many logouts); the time node A needs to serve again after the
//!    SurrealDB server is killed and started again;
//! 2. 10,000 users and 50,000 live sessions: the embedded server's RSS after logins
//!    and an `/auth` load;
//! 3. 100,000 users and 100,000 live sessions: `/auth` peak and login time again,
//!    as ratios against step 1.
//!
//! Users and sessions beyond the bench's own are written straight into the store
//! through the SurrealDB server's `/sql` endpoint (all with the bench password's
//! hash at the default scrypt parameters), so filling costs seconds, not hours of
//! scrypt. Prints a table and writes `target/bench-ws.json`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::{HashParams, Password, PasswordHasher};
use serde_json::{Value, json};

use crate::load::{
    PASSWORD, Server, Session, http, median, oha_run, print_rows, row, signup, sorted,
};

const DB_USER: &str = "root";
const DB_PASSWORD: &str = "bench-root-password";
/// Logouts timed across the two nodes.
const REVOCATIONS: usize = 100;
/// Logins timed at each size (sequential; scrypt at the default parameters).
const LOGINS: usize = 15;
/// Records written per `/sql` request.
const CHUNK: usize = 2_000;
/// The longest wait for a server to go quiet before it is measured.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

pub struct Scale<'a> {
    pub oha: &'a Path,
    pub binary: &'a Path,
    pub surreal: PathBuf,
    pub dir: PathBuf,
    /// Where the report goes (`bench-ws.json` in the target folder).
    pub out: PathBuf,
    pub seconds: u64,
}

/// The SurrealDB server on a surrealkv folder; killed on drop.
struct Surreal {
    child: Child,
    port: u16,
}

impl Surreal {
    fn start(bin: &Path, folder: &Path, port: u16) -> anyhow::Result<Self> {
        let child = Command::new(bin)
            .args([
                "start",
                "--user",
                DB_USER,
                "--pass",
                DB_PASSWORD,
                "--log",
                "warn",
            ])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg(format!("surrealkv://{}", folder.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the SurrealDB server")?;
        let server = Self { child, port };
        let started = Instant::now();
        while !server.healthy() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the SurrealDB server did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn healthy(&self) -> bool {
        http(self.addr(), "GET", "/health", &[], "").is_ok_and(|r| r.status == 200)
    }

    /// Runs SurrealQL in gatehouse's namespace and database; fails on any error.
    fn sql(&self, query: &str) -> anyhow::Result<Value> {
        let auth = format!(
            "Authorization: Basic {}",
            base64(&format!("{DB_USER}:{DB_PASSWORD}"))
        );
        let reply = http(
            self.addr(),
            "POST",
            "/sql",
            &[
                &auth,
                "Accept: application/json",
                "Content-Type: text/plain",
                "surreal-ns: gatehouse",
                "surreal-db: gatehouse",
            ],
            query,
        )?;
        if reply.status != 200 {
            bail!("/sql answered {}: {}", reply.status, reply.body);
        }
        let body = dechunk(&reply.body);
        let results: Value = serde_json::from_str(&body).context("/sql's JSON")?;
        for result in results.as_array().into_iter().flatten() {
            if result["status"] != "OK" {
                bail!("/sql: {result}");
            }
        }
        Ok(results)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A clean shutdown (SIGTERM): what an operator's restart does.
    fn stop(mut self) -> anyhow::Result<()> {
        crate::load::terminate(&mut self.child)
    }

    /// Waits for the server's background work (compaction after a fill) to end.
    fn settle(&self) -> anyhow::Result<Duration> {
        let pid = self.child.id();
        crate::load::settle(|| crate::load::process_cpu_seconds(pid), SETTLE_LIMIT)
    }
}

impl Drop for Surreal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked HTTP/1.1 body, joined (a plain one is returned as it is).
fn dechunk(body: &str) -> String {
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What one size of store measured.
struct Sized {
    auth_rps: f64,
    auth_p99_ms: f64,
    login_ms: f64,
    /// Seconds until the processes went quiet before measuring.
    settled_s: f64,
}

impl Sized {
    fn json(&self) -> Value {
        json!({ "auth_rps": self.auth_rps, "auth_p99_ms": self.auth_p99_ms, "login_ms": self.login_ms, "settled_s": self.settled_s })
    }
}

impl Scale<'_> {
    fn gatehouse(&self, db: &str) -> anyhow::Result<Server> {
        let mut command = Command::new(self.binary);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--insecure-cookies",
                "--db",
                db,
            ])
            .env("RUST_LOG", "warn,gatehouse=info,web=info");
        if db.starts_with("ws://") {
            command.args(["--db-user", DB_USER, "--db-password", DB_PASSWORD]);
        }
        let server = Server::start(&mut command)?;
        let started = Instant::now();
        while !http(server.addr, "GET", "/readyz", &[], "").is_ok_and(|r| r.status == 200) {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("gatehouse on {db} was not ready within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// One pinned `/auth` load on a fresh embedded server over `db`: requests per
    /// second and the server's CPU microseconds per answer.
    fn pinned_auth(&self, db: &str, session: &Session) -> anyhow::Result<(f64, f64)> {
        let server = self.gatehouse(db)?;
        server.pin("1")?;
        server.settle(SETTLE_LIMIT)?;
        let cookie = format!("Cookie: {}", session.cookie);
        let headers = [cookie.as_str(), "X-Original-URL: http://app.example.com/"];
        let url = format!("http://{}/auth", server.addr);
        oha_run(self.oha, Some("0"), &url, 1, &["-c", "16"], &headers)?;
        let before = server.cpu_seconds()?;
        let load = oha_run(
            self.oha,
            Some("0"),
            &url,
            self.seconds,
            &["-c", "16"],
            &headers,
        )?;
        let per_answer = (server.cpu_seconds()? - before) / load.total().max(1.0) * 1e6;
        if load.status("200") < load.total() {
            bail!("/auth did not admit every request: {:?}", load.statuses);
        }
        server.terminate()?;
        Ok((load.rps, per_answer))
    }

    fn embedded(&self) -> String {
        format!("surrealkv://{}", self.dir.join("db").display())
    }

    /// `/auth` at full speed with the bench session, then the median login time,
    /// once the server (and `store`, the SurrealDB server, if any) went quiet.
    fn measure(
        &self,
        server: &Server,
        store: Option<&Surreal>,
        session: &Session,
    ) -> anyhow::Result<Sized> {
        let mut settled = server.settle(SETTLE_LIMIT)?;
        if let Some(store) = store {
            settled = settled.max(store.settle()?);
        }
        let cookie = format!("Cookie: {}", session.cookie);
        let headers = [cookie.as_str(), "X-Original-URL: http://app.example.com/"];
        let url = format!("http://{}/auth", server.addr);
        // Warm the session cache and the connection pool first.
        oha_run(self.oha, None, &url, 1, &["-c", "16"], &headers)?;
        let load = oha_run(self.oha, None, &url, self.seconds, &["-c", "16"], &headers)?;
        if load.status("200") < load.total() {
            bail!("/auth did not admit every request: {:?}", load.statuses);
        }
        let mut logins = Vec::new();
        for _ in 0..LOGINS {
            logins.push(login(server.addr, session)?.1.as_secs_f64() * 1000.0);
        }
        Ok(Sized {
            auth_rps: load.rps,
            auth_p99_ms: load.p99_ms,
            login_ms: median(&sorted(logins.into_iter())),
            settled_s: settled.as_secs_f64(),
        })
    }

    pub fn run(&self) -> anyhow::Result<()> {
        // A dry run of the steps against a debug server: GATEHOUSE_BENCH_FILL_DIVISOR=100.
        let divisor: usize = std::env::var("GATEHOUSE_BENCH_FILL_DIVISOR")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(1)
            .max(1);
        let n = |count: usize| (count / divisor).max(11);
        let folder = self.dir.join("db");
        let hash = PasswordHasher::new(HashParams::DEFAULT)?
            .hash(&Password::parse(PASSWORD)?)?
            .as_str()
            .to_owned();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();

        eprintln!("== ws: the SurrealDB server and two gatehouse nodes, 10 users");
        let port = free_port()?;
        let surreal = Surreal::start(&self.surreal, &folder, port)?;
        let ws = format!("ws://127.0.0.1:{port}");
        let a = self.gatehouse(&ws)?;
        let b = self.gatehouse(&ws)?;
        let session = signup(a.addr)?;
        fill_users(&surreal, 1, 10, &hash, now)?;
        let ws_small = self.measure(&a, Some(&surreal), &session)?;
        eprintln!(
            "   /auth {:.0}/s, login {:.1} ms",
            ws_small.auth_rps, ws_small.login_ms
        );
        eprintln!("== ws: {REVOCATIONS} logouts on node A seen by node B's cached /auth");
        let mut delays = Vec::new();
        for _ in 0..REVOCATIONS {
            delays.push(revocation_delay(a.addr, b.addr, &session)?.as_secs_f64() * 1000.0);
        }
        let delays = sorted(delays.into_iter());
        let percentile = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
        let (rev_p50, rev_p99, rev_max) =
            (percentile(0.5), percentile(0.99), delays[delays.len() - 1]);
        eprintln!("   p50 {rev_p50:.1} ms, p99 {rev_p99:.1} ms, max {rev_max:.1} ms");

        eprintln!("== ws: kill -9 the SurrealDB server, start it again");
        surreal.kill();
        std::thread::sleep(Duration::from_secs(1));
        let down = http(a.addr, "GET", "/readyz", &[], "")?.status;
        let restarted = Instant::now();
        let surreal = Surreal::start(&self.surreal, &folder, port)?;
        let server_up = restarted.elapsed();
        let cookie = format!("Cookie: {}", session.cookie);
        loop {
            let ready = http(a.addr, "GET", "/readyz", &[], "")?.status == 200;
            let admitted = http(a.addr, "GET", "/auth", &[&cookie], "")?.status == 200;
            if ready && admitted {
                break;
            }
            if restarted.elapsed() > Duration::from_secs(60) {
                bail!("node A did not serve again within 60 s of the restart");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let back = restarted.elapsed();
        eprintln!(
            "   /readyz while down: {down}; server up after {:.0} ms, node A serving after {:.0} ms",
            server_up.as_secs_f64() * 1000.0,
            back.as_secs_f64() * 1000.0
        );
        a.terminate()?;
        b.terminate()?;
        surreal.stop()?;
        // The 10-user store, kept to measure against the big one in turns.
        let small_copy = self.dir.join("db-small");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&folder)
            .arg(&small_copy)
            .status()?;
        if !copied.success() {
            bail!("cannot copy the store");
        }

        eprintln!("== embedded, the same folder, 10 users");
        let e = self.gatehouse(&self.embedded())?;
        let embedded_small = self.measure(&e, None, &session)?;
        eprintln!(
            "   /auth {:.0}/s, login {:.1} ms",
            embedded_small.auth_rps, embedded_small.login_ms
        );
        e.terminate()?;

        eprintln!("== filling to 10,000 users and 50,000 live sessions");
        let surreal = Surreal::start(&self.surreal, &folder, port)?;
        let filled = Instant::now();
        fill_users(&surreal, 10, n(10_000), &hash, now)?;
        fill_sessions(&surreal, 0, n(50_000), n(10_000), now)?;
        eprintln!("   {:.1} s", filled.elapsed().as_secs_f64());
        surreal.stop()?;
        let e = self.gatehouse(&self.embedded())?;
        let idle_rss = e.memory_kib("VmRSS")?;
        self.measure(&e, None, &session)?;
        let rss_10k = e.memory_kib("VmRSS")?;
        let hwm_10k = e.memory_kib("VmHWM")?;
        eprintln!(
            "   embedded RSS: {} MiB idle, {} MiB after /auth and logins (peak {} MiB)",
            idle_rss / 1024,
            rss_10k / 1024,
            hwm_10k / 1024
        );
        e.terminate()?;

        eprintln!("== filling to 100,000 users and 100,000 live sessions");
        let surreal = Surreal::start(&self.surreal, &folder, port)?;
        let filled = Instant::now();
        fill_users(&surreal, n(10_000), n(100_000), &hash, now)?;
        fill_sessions(&surreal, n(50_000), n(100_000), n(100_000), now)?;
        eprintln!("   {:.1} s", filled.elapsed().as_secs_f64());
        let a = self.gatehouse(&ws)?;
        let ws_big = self.measure(&a, Some(&surreal), &session)?;
        a.terminate()?;
        surreal.stop()?;
        let e = self.gatehouse(&self.embedded())?;
        let embedded_big = self.measure(&e, None, &session)?;
        let rss_100k = e.memory_kib("VmRSS")?;
        e.terminate()?;

        eprintln!("== embedded /auth, 10 users vs 100,000 users and sessions, in turns, pinned");
        let small_url = format!("surrealkv://{}", small_copy.display());
        let mut turns = Vec::new();
        for round in 0..3 {
            let big_url = self.embedded();
            let order = if round % 2 == 0 {
                [small_url.clone(), big_url]
            } else {
                [big_url, small_url.clone()]
            };
            let mut figures = std::collections::HashMap::new();
            for db in &order {
                figures.insert(db.clone(), self.pinned_auth(db, &session)?);
            }
            let (small, big) = (figures[&small_url], figures[&self.embedded()]);
            eprintln!(
                "   round {}: {:.0}/s vs {:.0}/s; CPU per answer {:.2} vs {:.2} µs",
                round + 1,
                big.0,
                small.0,
                big.1,
                small.1
            );
            turns.push((big, small));
        }
        let throughput = sorted(turns.iter().map(|(big, small)| big.0 / small.0));
        let cpu = sorted(turns.iter().map(|(big, small)| small.1 / big.1));
        let (turn_ratio, cpu_ratio) = (median(&throughput), median(&cpu));

        let ratio = |big: f64, small: f64| big / small;
        let rows = [
            row(
                "/auth, 10 users: ws:// vs embedded",
                format!(
                    "{:.0}/s vs {:.0}/s (p99 {:.2} vs {:.2} ms)",
                    ws_small.auth_rps,
                    embedded_small.auth_rps,
                    ws_small.auth_p99_ms,
                    embedded_small.auth_p99_ms
                ),
                format!(
                    "{:.0} %",
                    ratio(ws_small.auth_rps, embedded_small.auth_rps) * 100.0
                ),
                "-",
                true,
            ),
            row(
                "login, 10 users: ws:// vs embedded",
                format!(
                    "median of {LOGINS}: {:.1} vs {:.1} ms",
                    ws_small.login_ms, embedded_small.login_ms
                ),
                format!("{:.1} ms", ws_small.login_ms - embedded_small.login_ms),
                "-",
                true,
            ),
            row(
                "logout on A refused by B's cache",
                format!("{REVOCATIONS} logouts: p50 {rev_p50:.1} ms, max {rev_max:.1} ms"),
                format!("{rev_p99:.1} ms"),
                "p99 < 100 ms",
                rev_p99 < 100.0,
            ),
            row(
                "serving again after a restart",
                format!(
                    "kill -9, 1 s down (/readyz {down}), server up in {:.0} ms",
                    server_up.as_secs_f64() * 1000.0
                ),
                format!("{:.0} ms", back.as_secs_f64() * 1000.0),
                "-",
                true,
            ),
            row(
                "/auth, 100k users+sessions vs 10 users",
                format!(
                    "embedded, 3 pinned rounds in turns: throughput {:.0}–{:.0} %, CPU per answer {:.0} % (median)",
                    throughput[0] * 100.0,
                    throughput[throughput.len() - 1] * 100.0,
                    cpu_ratio * 100.0
                ),
                format!("{:.0} %", turn_ratio * 100.0),
                "≥ 95 %",
                turn_ratio >= 0.95,
            ),
            row(
                "/auth, 100k, one unpinned run each",
                format!(
                    "embedded {:.0}/s vs {:.0}/s; ws:// {:.0}/s vs {:.0}/s ({:.0} %); quiet after {:.0} s / {:.0} s",
                    embedded_big.auth_rps,
                    embedded_small.auth_rps,
                    ws_big.auth_rps,
                    ws_small.auth_rps,
                    ratio(ws_big.auth_rps, ws_small.auth_rps) * 100.0,
                    embedded_big.settled_s,
                    ws_big.settled_s
                ),
                format!(
                    "{:.0} %",
                    ratio(embedded_big.auth_rps, embedded_small.auth_rps) * 100.0
                ),
                "-",
                true,
            ),
            row(
                "login, 100,000 users vs 10",
                format!(
                    "embedded {:.1} vs {:.1} ms; ws:// {:.1} vs {:.1} ms",
                    embedded_big.login_ms,
                    embedded_small.login_ms,
                    ws_big.login_ms,
                    ws_small.login_ms
                ),
                format!(
                    "{:.0} %",
                    ratio(embedded_big.login_ms, embedded_small.login_ms) * 100.0
                ),
                "-",
                true,
            ),
            row(
                "RSS, 10k users + 50k sessions",
                format!(
                    "embedded: {} MiB at start, peak {} MiB; {} MiB at 100k/100k",
                    idle_rss / 1024,
                    hwm_10k / 1024,
                    rss_100k / 1024
                ),
                format!("{} MiB", rss_10k / 1024),
                "< 256 MiB",
                hwm_10k < 256 * 1024,
            ),
        ];
        println!();
        print_rows(&rows);
        let report = json!({
            "ws_small": ws_small.json(), "embedded_small": embedded_small.json(),
            "ws_big": ws_big.json(), "embedded_big": embedded_big.json(),
            "revocation_ms": { "p50": rev_p50, "p99": rev_p99, "max": rev_max, "count": REVOCATIONS },
            "restart_ms": { "server_up": server_up.as_secs_f64() * 1000.0, "serving": back.as_secs_f64() * 1000.0, "readyz_while_down": down },
            "auth_100k_in_turns": { "throughput_ratios": throughput, "cpu_ratios": cpu, "median": turn_ratio },
            "rss_kib": { "start_10k": idle_rss, "after_load_10k": rss_10k, "peak_10k": hwm_10k, "after_load_100k": rss_100k },
            "rows": rows,
        });
        std::fs::write(&self.out, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", self.out.display());
        Ok(())
    }
}

/// Users `filler{from}` … `filler{to - 1}` (from 1: the bench user is the first).
fn fill_users(
    surreal: &Surreal,
    from: usize,
    to: usize,
    hash: &str,
    now: u64,
) -> anyhow::Result<()> {
    for start in (from..to).step_by(CHUNK) {
        let end = (start + CHUNK).min(to);
        surreal.sql(&format!(
            "FOR $i IN {start}..{end} {{ \
               LET $name = 'filler' + <string>$i; \
               CREATE type::record('user', $name) SET username = $name, \
                 email = $name + '@example.com', name = NONE, password_hash = '{hash}', \
                 created_at = {now}, groups = [], disabled = false, email_verified = true; \
             }};"
        ))?;
    }
    Ok(())
}

/// Live sessions `filler{from}` … spread over the first `users` filler users.
fn fill_sessions(
    surreal: &Surreal,
    from: usize,
    to: usize,
    users: usize,
    now: u64,
) -> anyhow::Result<()> {
    let owners = users.saturating_sub(1).max(1);
    let expires = now + 7 * 86_400;
    for start in (from..to).step_by(CHUNK) {
        let end = (start + CHUNK).min(to);
        surreal.sql(&format!(
            "FOR $i IN {start}..{end} {{ \
               CREATE type::record('session', 'filler' + <string>$i) SET \
                 user = type::record('user', 'filler' + <string>(1 + $i % {owners})), \
                 created_at = {now}, last_seen = {now}, expires_at = {expires}, \
                 remember = false, user_agent = 'bench', address = '127.0.0.1', \
                 factors = ['pwd']; \
             }};"
        ))?;
    }
    Ok(())
}

/// One login of the bench user: its session cookie and how long it took.
fn login(addr: SocketAddr, session: &Session) -> anyhow::Result<(String, Duration)> {
    let body = format!(
        "email=bench%40example.com&password={}&csrf={}",
        PASSWORD.replace(' ', "+"),
        session.csrf
    );
    let cookie = format!("Cookie: {}", session.csrf_cookie);
    let started = Instant::now();
    let reply = http(
        addr,
        "POST",
        "/login",
        &[&cookie, "Content-Type: application/x-www-form-urlencoded"],
        &body,
    )?;
    let took = started.elapsed();
    if reply.status != 303 {
        bail!("login answered {}: {}", reply.status, reply.body);
    }
    let token = reply
        .cookie("gatehouse_session")
        .context("no session cookie")?;
    Ok((token, took))
}

/// Logs in on A, has B admit (and cache) the session, logs out on A, and times how
/// long B's `/auth` goes on admitting it.
fn revocation_delay(a: SocketAddr, b: SocketAddr, session: &Session) -> anyhow::Result<Duration> {
    let (token, _) = login(a, session)?;
    let cookie = format!("Cookie: {}; gatehouse_session={token}", session.csrf_cookie);
    for _ in 0..2 {
        let status = http(b, "GET", "/auth", &[&cookie], "")?.status;
        if status != 200 {
            bail!("node B did not admit a session made on A: {status}");
        }
    }
    let body = format!("csrf={}", session.csrf);
    let reply = http(
        a,
        "POST",
        "/logout",
        &[&cookie, "Content-Type: application/x-www-form-urlencoded"],
        &body,
    )?;
    let logged_out = Instant::now();
    if !(200..400).contains(&reply.status) {
        bail!("logout answered {}: {}", reply.status, reply.body);
    }
    loop {
        if http(b, "GET", "/auth", &[&cookie], "")?.status == 401 {
            return Ok(logged_out.elapsed());
        }
        if logged_out.elapsed() > Duration::from_secs(10) {
            bail!("node B still admitted a logged-out session after 10 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
