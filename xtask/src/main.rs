//! `cargo xtask <task>`: the project's scripts, in Rust.
//!
//! - `seed [ARGS…]`: loads `fixtures/users.toml` into the default store
//!   (`surrealkv://./data/gatehouse`) through `gatehouse seed`; extra arguments
//!   (`--db URL`, `--scrypt-log-n N`) are passed on.
//! - `bench [--seconds N]`: SPEC §10 in one run (see `bench.rs`), each load for N
//!   seconds (default 10); prints a table, writes `target/bench.json`.
//! - `fuzz [--seconds N] [TARGET…]`: runs each `cargo fuzz` target of `fuzz/` for N
//!   seconds (default 60) and prints executions per target; installs cargo-fuzz if
//!   missing. The stable toolchain is enough: `RUSTC_BOOTSTRAP=1` unlocks the
//!   sanitizer flags cargo-fuzz passes.

mod bench;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "seed" => seed(&rest),
        "fuzz" => fuzz(&rest),
        "bench" => {
            let seconds = match rest.as_slice() {
                [] => 10,
                [flag, value] if flag == "--seconds" => value.parse().context("--seconds N")?,
                _ => bail!("usage: cargo xtask bench [--seconds N]"),
            };
            bench::bench(&workspace_root(), seconds)
        }
        _ => {
            eprintln!("usage: cargo xtask seed [--db URL] [--scrypt-log-n N]");
            eprintln!("       cargo xtask fuzz [--seconds N] [TARGET...]");
            eprintln!("       cargo xtask bench [--seconds N]");
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

const FUZZ_TARGETS: [&str; 3] = ["next_url", "form_body", "forwarded_headers"];

fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let mut seconds = 60_u64;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value.parse().context("--seconds needs a number")?;
            }
            target if FUZZ_TARGETS.contains(&target) => targets.push(target.to_owned()),
            other => bail!("unknown fuzz target {other:?}; the targets are {FUZZ_TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let has_fuzz = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_fuzz {
        eprintln!("installing cargo-fuzz from crates.io");
        let status = Command::new(&cargo)
            .args(["install", "cargo-fuzz", "--locked"])
            .status()?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed");
        }
    }
    let mut report = Vec::new();
    for target in &targets {
        eprintln!("== fuzzing {target} for {seconds} s");
        let mut run = Command::new(&cargo);
        scrub_package_env(&mut run);
        let out = run
            .current_dir(workspace_root())
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            .output()
            .context("running cargo fuzz")?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("fuzz target {target} failed:\n{}", tail.join("\n"));
        }
        let stat = |name: &str| {
            log.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim_start_matches(':').trim().parse::<u64>().ok())
        };
        let runs = stat("stat::number_of_executed_units").unwrap_or(0);
        let time = stat("stat::average_exec_per_sec").unwrap_or(0);
        report.push((target.clone(), runs, time));
    }
    println!(
        "{:<20} {:>8} {:>14} {:>12}",
        "target", "seconds", "executions", "per second"
    );
    for (target, runs, per_second) in &report {
        println!("{target:<20} {seconds:>8} {runs:>14} {per_second:>12}");
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
