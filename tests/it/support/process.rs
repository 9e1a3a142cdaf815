//! The real `gatehouse` binary for tests: built once, run as a command or as a
//! `serve` process on an ephemeral port (killed by PID when dropped).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::app::Browser;

/// Builds the binary once per test run (a no-op when it is up to date) and returns
/// its path, next to this test executable's target directory.
pub(crate) fn gatehouse_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/it-<hash>
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "web", "--bin", "gatehouse"])
            .arg("--target-dir")
            .arg(target_dir);
        // Cargo gives this test process the variables of the `tests` package; build
        // scripts (ring's) fingerprint some of them, so passing them on would
        // rebuild half the dependency tree for nothing.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_package = ["CARGO_PKG_", "CARGO_CFG_", "CARGO_MANIFEST_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&name.as_ref());
            if per_package {
                build.env_remove(name.as_ref());
            }
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "building gatehouse failed");
        profile_dir.join("gatehouse")
    })
}

pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(gatehouse_bin())
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

/// `gatehouse ARGS` with `input` on its standard input (a password).
pub(crate) fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(gatehouse_bin())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// What a command printed, both streams.
pub(crate) fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether `out` printed `text` (`shown`) or not, with all it printed if not so.
pub(crate) fn assert_printed(out: &Output, text: &str, shown: bool) {
    let all = printed(out);
    assert_eq!(all.contains(text), shown, "{text:?} shown: {shown}?\n{all}");
}

/// A `gatehouse serve` process on an ephemeral port, killed by PID when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Copies stderr into `log`; done once the process has exited and the pipe
    /// is drained.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(db_url: &str) -> Self {
        Self::start_with(db_url, &["--scrypt-log-n", "10"])
    }

    pub(crate) fn start_with(db_url: &str, args: &[&str]) -> Self {
        Self::start_with_env(db_url, args, &[])
    }

    pub(crate) fn start_with_env(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--insecure-cookies"];
        all.extend_from_slice(&["--db", db_url]);
        all.extend_from_slice(args);
        Self::spawn_with_env(&all, None, env)
    }

    /// `gatehouse ARGS` in `cwd`, with none of serve's settings in its environment.
    pub(crate) fn spawn(args: &[&str], cwd: Option<&Path>) -> Self {
        Self::spawn_with_env(args, cwd, &[])
    }

    pub(crate) fn spawn_with_env(args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(gatehouse_bin());
        command
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for setting in web::cli::setting_keys() {
            command.env_remove(format!("GATEHOUSE_{}", setting.to_uppercase()));
        }
        command.env_remove("GATEHOUSE_CONFIG");
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.trim_end_matches('/').to_owned());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).ok();
        let Some(addr) = addr.and_then(|a| a.parse().ok()) else {
            // Killed by PID here: no `Server` exists yet to do it on drop.
            let _ = child.kill();
            let _ = child.wait();
            panic!("gatehouse did not start:\n{}", log.lock().unwrap());
        };
        Self {
            child,
            addr,
            log,
            reader: Some(reader),
        }
    }

    pub(crate) fn browser(&self) -> Browser {
        crate::app::browser_for(&format!("http://{}", self.addr))
    }

    /// SIGTERM, then wait for a graceful exit.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// SIGKILL: no chance to flush or clean up.
    /// SIGTERM, a graceful exit, and everything the server logged (the log read
    /// while it runs may lag behind its last lines).
    pub(crate) fn terminate_with_log(mut self) -> (ExitStatus, String) {
        let reader = self.reader.take();
        let log = Arc::clone(&self.log);
        let status = self.terminate();
        if let Some(reader) = reader {
            let _ = reader.join();
        }
        let log = log.lock().unwrap().clone();
        (status, log)
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A line of /proc/PID/status, in KiB (VmRSS, VmHWM).
    pub(crate) fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
