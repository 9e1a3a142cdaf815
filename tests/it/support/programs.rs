//! Outside programs the end-to-end tests run (nginx, Caddy, SurrealDB, an SMTP
//! server): where they are, or a skip that says why, and ports to give them.

use std::path::PathBuf;

/// `program`'s path, or `None` (with the reason printed) when it is not installed
/// and the end-to-end tests are not required.
pub fn require(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file());
    found_or_skip(
        found,
        &format!("{program} is not installed"),
        "apt-get install it, or run .ci/run",
    )
}

/// `found`, or — when a test's outside program is missing — a skip said on the
/// process's stderr (the harness captures `eprintln!` of a passing test, and a
/// skip must not be invisible); a failure under `GATEHOUSE_REQUIRE_E2E=1`.
pub fn found_or_skip(found: Option<PathBuf>, missing: &str, hint: &str) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            std::env::var("GATEHOUSE_REQUIRE_E2E").as_deref() != Ok("1"),
            "{missing} and GATEHOUSE_REQUIRE_E2E=1"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: {missing} ({hint})");
    }
    found
}

/// A loopback port nothing listens on now (for a program that must be told one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
