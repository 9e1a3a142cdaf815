//! What `bench` and `scale` share: a server process with its CPU time, sessions
//! made over HTTP, `oha` loads, and the table both print.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub(crate) fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

pub(crate) fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values
}

/// The table of `rows` (see [`row`]) on stdout.
pub(crate) fn print_rows(rows: &[Value]) {
    println!(
        "{:<36} {:<66} {:>12} {:>12}  met",
        "measure", "detail", "figure", "target"
    );
    for r in rows {
        println!(
            "{:<36} {:<66} {:>12} {:>12}  {}",
            r["measure"].as_str().unwrap_or(""),
            r["detail"].as_str().unwrap_or(""),
            r["figure"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
            if r["met"] == json!(true) { "yes" } else { "NO" }
        );
    }
}

pub(crate) fn row(measure: &str, detail: String, figure: String, target: &str, met: bool) -> Value {
    json!({ "measure": measure, "detail": detail, "figure": figure, "target": target, "met": met })
}

/// A process that prints `listening on http://ADDR/` on stderr; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(command: &mut Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("the server exited before listening");
            };
            if let Some(rest) = line?.split("listening on http://").nth(1) {
                let addr = rest.split(['/', ' ']).next().unwrap_or_default();
                break addr.parse()?;
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, addr })
    }

    /// Stops the server with SIGTERM (a clean shutdown: the store flushed), waiting
    /// up to 30 s before killing it.
    pub(crate) fn terminate(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child)
    }

    /// Waits until the server's CPU use over one second falls under 5 % of a core
    /// (background work after a start, such as a store's compaction, is over);
    /// how long that took. At most `limit`.
    pub(crate) fn settle(&self, limit: Duration) -> anyhow::Result<Duration> {
        settle(|| self.cpu_seconds(), limit)
    }

    /// CPU time (user and system) the server used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        process_cpu_seconds(self.child.id())
    }

    /// Pins every thread of the server to `cpus` (a `taskset` list such as `1`).
    pub(crate) fn pin(&self, cpus: &str) -> anyhow::Result<()> {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus])
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Ok(()),
            // No taskset: `bench` said it runs unpinned.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => bail!("taskset -p {cpus} failed: {other:?}"),
        }
    }

    pub(crate) fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {field} in /proc status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM, then up to 30 s for the process to end (SIGKILL after).
pub(crate) fn terminate(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the process did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// See [`Server::settle`]: `cpu` gives a process's CPU seconds so far.
pub(crate) fn settle(
    cpu: impl Fn() -> anyhow::Result<f64>,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let before = cpu()?;
        std::thread::sleep(Duration::from_secs(1));
        if cpu()? - before < 0.05 || started.elapsed() > limit {
            return Ok(started.elapsed());
        }
    }
}

/// CPU seconds a process used so far, from `/proc/PID/stat`.
pub(crate) fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        bail!("no CPU times in /proc/{pid}/stat");
    };
    Ok((user + system) / clock_ticks_per_second())
}

/// From spawning to the first `/healthz` answered.
pub(crate) fn wait_until_served(addr: SocketAddr, started: Instant) -> anyhow::Result<Duration> {
    loop {
        if let Ok(reply) = http(addr, "GET", "/healthz", &[], "")
            && reply.status == 200
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("gatehouse did not answer within 30 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) struct Session {
    /// The CSRF cookie and the session cookie, as one `Cookie` value.
    pub(crate) cookie: String,
    /// The CSRF cookie alone (`name=value`).
    pub(crate) csrf_cookie: String,
    pub(crate) csrf: String,
}

/// Signs the bench user up (default scrypt parameters) and returns its cookies and
/// CSRF token.
pub(crate) fn signup(addr: SocketAddr) -> anyhow::Result<Session> {
    let page = http(addr, "GET", "/login", &[], "")?;
    let csrf_cookie = page.cookie("gatehouse_csrf").context("no CSRF cookie")?;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no CSRF token on /login")?
        .to_owned();
    let body = format!(
        "username=bench&email=bench%40example.com&password={p}&confirm={p}&csrf={csrf}",
        p = PASSWORD.replace(' ', "+")
    );
    let cookie_header = format!("Cookie: gatehouse_csrf={csrf_cookie}");
    let reply = http(
        addr,
        "POST",
        "/signup",
        &[
            &cookie_header,
            "Content-Type: application/x-www-form-urlencoded",
        ],
        &body,
    )?;
    if reply.status != 303 {
        bail!("signup answered {}: {}", reply.status, reply.body);
    }
    let session = reply
        .cookie("gatehouse_session")
        .context("no session cookie")?;
    Ok(Session {
        cookie: format!("gatehouse_csrf={csrf_cookie}; gatehouse_session={session}"),
        csrf_cookie: format!("gatehouse_csrf={csrf_cookie}"),
        csrf,
    })
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// Just enough HTTP/1.1 for the set-up requests (one request per connection).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> anyhow::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// One oha run's figures.
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) seconds: f64,
    pub(crate) statuses: serde_json::Map<String, Value>,
}

impl Load {
    /// Every answer, whatever its status.
    pub(crate) fn total(&self) -> f64 {
        self.statuses.values().filter_map(Value::as_f64).sum()
    }

    pub(crate) fn status(&self, code: &str) -> f64 {
        self.statuses
            .get(code)
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }

    pub(crate) fn json(&self) -> Value {
        json!({ "rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "statuses": self.statuses })
    }
}

/// oha's load on `url`, pinned to `cpu` when given.
pub(crate) fn oha_run(
    oha: &Path,
    cpu: Option<&str>,
    url: &str,
    seconds: u64,
    extra: &[&str],
    headers: &[&str],
) -> anyhow::Result<Load> {
    oha_command(oha, cpu, url, seconds, extra, headers, None)
}

pub(crate) fn oha_post(
    oha: &Path,
    cpu: Option<&str>,
    url: &str,
    seconds: u64,
    extra: &[&str],
    headers: &[&str],
    body: &str,
) -> anyhow::Result<Load> {
    oha_command(oha, cpu, url, seconds, extra, headers, Some(body))
}

fn oha_command(
    oha: &Path,
    cpu: Option<&str>,
    url: &str,
    seconds: u64,
    extra: &[&str],
    headers: &[&str],
    body: Option<&str>,
) -> anyhow::Result<Load> {
    let mut command = match cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpu]).arg(oha);
            taskset
        }
        None => Command::new(oha),
    };
    command
        .args(["--no-tui", "--output-format", "json"])
        .args(["-z", &format!("{seconds}s")])
        .args(extra);
    for header in headers {
        command.args(["-H", header]);
    }
    if let Some(body) = body {
        command.args(["-m", "POST", "-d", body]);
    }
    let out = command.arg(url).output().context("running oha")?;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("oha's JSON")?;
    let summary = &report["summary"];
    let ms = |v: &Value| v.as_f64().unwrap_or(f64::NAN) * 1000.0;
    Ok(Load {
        rps: summary["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: ms(&report["latencyPercentiles"]["p50"]),
        p99_ms: ms(&report["latencyPercentiles"]["p99"]),
        seconds: summary["total"].as_f64().unwrap_or(seconds as f64),
        statuses: report["statusCodeDistribution"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    })
}
