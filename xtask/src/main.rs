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
    let status = Command::new(cargo)
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
