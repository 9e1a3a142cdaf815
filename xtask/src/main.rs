//! `cargo xtask <task>`: the project's scripts, in Rust.
//!
//! - `seed [ARGS…]`: loads `fixtures/users.toml` into the default store
//!   (`surrealkv://./data/gatehouse`) through `gatehouse seed`; extra arguments
//!   (`--db URL`, `--scrypt-log-n N`) are passed on.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "seed" => seed(&rest),
        _ => {
            eprintln!("usage: cargo xtask seed [--db URL] [--scrypt-log-n N]");
            bail!("unknown task {task:?}")
        }
    }
}

/// The workspace root: xtask's manifest sits one folder below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn seed(extra: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Same profile as the README's run command, so nothing is built twice.
    let mut run = Command::new(cargo);
    scrub_package_env(&mut run);
    let status = run
        .current_dir(workspace_root())
        .args(["run", "--quiet", "-p", "web", "--bin", "gatehouse", "--"])
        .args(["seed", "fixtures/users.toml"])
        .args(extra)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("gatehouse seed failed ({status})");
    }
    Ok(())
}

/// Cargo gives xtask the variables of the xtask package; some build scripts (ring's)
/// fingerprint them, so passing them on to a nested cargo would rebuild half the
/// dependency tree, and the README's own `cargo run` would rebuild it back.
fn scrub_package_env(command: &mut Command) {
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
            command.env_remove(name.as_ref());
        }
    }
}
