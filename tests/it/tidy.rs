//! Checks on the shape of the code base, written as tests so CI runs them.

use std::path::Path;
use std::process::Command;

/// `domain` is the core that does no IO: it must not depend, even indirectly, on
/// the database, the web framework or the async runtime.
#[test]
fn domain_depends_on_neither_surrealdb_nor_poem_nor_tokio() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["tree", "-p", "domain", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("scrypt ")),
        "unexpected tree:\n{tree}"
    );
    for forbidden in ["surrealdb", "poem", "tokio", "storage", "web"] {
        let found: Vec<&str> = tree
            .lines()
            .filter(|line| line.split(' ').next() == Some(forbidden))
            .collect();
        assert!(found.is_empty(), "domain depends on {forbidden}: {found:?}");
    }
}

/// The README says `cargo run -- serve …`: with more than one binary in `web`,
/// that only works while `default-run` names the server.
#[test]
fn cargo_run_starts_the_server() {
    let manifest =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/web/Cargo.toml");
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    assert_eq!(
        manifest["package"]
            .get("default-run")
            .and_then(|v| v.as_str()),
        Some("gatehouse")
    );
}
