//! Mail for tests: messages read from a `--mail-dir` folder, the links in them,
//! and a real SMTP server (`aiosmtpd`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::TestApp;

/// A message's text, quoted-printable soft breaks and `=3D` undone.
pub fn decoded(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// Waits for the `count`th message in `dir` and returns all of them, decoded.
pub async fn wait_for_messages(dir: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = messages(dir);
        if found.len() >= count {
            return found
                .iter()
                .map(|p| decoded(&std::fs::read_to_string(p).unwrap()))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{count} message(s) never came: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reset link in a message.
pub fn reset_link(message: &str) -> String {
    let start = message.find("http").expect("a link");
    let link: String = message[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    assert!(link.contains("/reset?token=pr_"), "{link}");
    link
}

/// The Python that has aiosmtpd (`.ci/run` installs it from PyPI, pinned, into
/// the virtual environment it keeps): `$GATEHOUSE_SMTPD_PYTHON`.
pub(crate) fn smtpd_python() -> Option<PathBuf> {
    super::programs::found_or_skip(
        std::env::var_os("GATEHOUSE_SMTPD_PYTHON").map(PathBuf::from),
        "GATEHOUSE_SMTPD_PYTHON is not set",
        "point it at a python with aiosmtpd 1.4.6, or run .ci/run",
    )
}

/// `tests/smtpd.py` (aiosmtpd) on `port`, delivering into the maildir `dir`, with
/// `extra` flags (TLS, AUTH, refusals); its event lines go to a file the test
/// reads. Killed when dropped.
pub(crate) struct Smtpd {
    child: std::process::Child,
    events: PathBuf,
    maildir: PathBuf,
}

impl Smtpd {
    pub(crate) fn start(python: &Path, port: u16, dir: &Path) -> Self {
        Self::start_with(python, port, dir, &[])
    }

    pub(crate) fn start_with(python: &Path, port: u16, dir: &Path, extra: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtpd.py");
        let events = dir.with_extension("events");
        let child = std::process::Command::new(python)
            .arg(script)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--maildir")
            .arg(dir)
            .args(extra)
            .stdout(std::fs::File::create(&events).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            events,
            maildir: dir.to_owned(),
        }
    }

    /// What the server logged so far.
    pub(crate) fn events(&self) -> String {
        std::fs::read_to_string(&self.events).unwrap_or_default()
    }

    /// Waits for the first delivered message, decoded.
    pub(crate) async fn delivered(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(file) = std::fs::read_dir(self.maildir.join("new"))
                .ok()
                .and_then(|mut d| d.next())
                .and_then(Result::ok)
            {
                return decoded(&std::fs::read_to_string(file.path()).unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "never delivered; the server saw:\n{}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The verification link in a message, as a path on the app.
pub(crate) fn verify_path(app: &TestApp, message: &str) -> String {
    let start = message.find("/verify?token=ev_").expect(message);
    let link: String = message[..start]
        .rsplit(|c: char| c.is_whitespace() || c == '"')
        .next()
        .map(|head| format!("{head}{}", &message[start..]))
        .unwrap()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    assert!(link.starts_with(&app.url("/verify")), "{link}");
    link.strip_prefix(&app.url("")).unwrap().to_owned()
}

/// The `.eml` files in `dir`.
pub fn messages(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}
