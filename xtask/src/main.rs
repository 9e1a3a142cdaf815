//! `cargo xtask <task>`: the project's scripts, in Rust.
//!
//! - `seed [ARGS…]`: loads `fixtures/users.toml` into the default store
//!   (`surrealkv://./data/gatehouse`) through `gatehouse seed`; extra arguments
//!   (`--db URL`, `--scrypt-log-n N`) are passed on.
//! - `bench [--seconds N] [--rounds R] [--profile P]`: SPEC §10 in one run (see
//!   `bench.rs`), each load for N seconds (default 10), `/auth` against the bare
//!   handler in R pinned rounds (default 5); prints a table, writes
//!   `target/bench.json`.
//! - `fuzz [--seconds N] [TARGET…]`: runs each `cargo fuzz` target of `fuzz/` for N
//!   seconds (default 60) from the committed seeds in `fuzz/seeds/TARGET` and prints
//!   executions per target; installs cargo-fuzz (pinned) if missing. The targets
//!   depend only on the IO-free `wire` crate, so the build takes seconds. The stable
//!   toolchain is enough: `RUSTC_BOOTSTRAP=1` unlocks the sanitizer flags cargo-fuzz
//!   passes.
//! - `surrealdb`: builds the official SurrealDB server (`tools/surreal`, crates.io's
//!   `surrealdb-server` 3.3.5, memory and surrealkv engines) into
//!   `~/.cache/gatehouse-surreal` and prints the binary's path, for the multi-node
//!   tests (`GATEHOUSE_SURREAL_BIN`). Never part of the shipped binary.

mod bench;
mod load;
mod scale;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// The project's scripts.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "gatehouse's scripts, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Load fixtures/users.toml into the default store through `gatehouse seed`
    /// (stop the server first: the embedded store allows one process).
    Seed {
        /// Passed on to `gatehouse seed` (`--db URL`, `--scrypt-log-n N`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra: Vec<String>,
    },
    /// SPEC §10 in one run: a release build, loads with oha, a table and
    /// target/bench.json.
    Bench {
        /// Seconds per load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rounds of /auth against the bare handler, alternating, each pinned.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Cargo profile to build and measure: `release` (what ships) or
        /// `profiling` (the same code with symbols, for perf).
        #[arg(long, default_value = "release")]
        profile: String,
        /// `ws`: then the same measures on the SurrealDB server (two nodes) beside
        /// the embedded store, and how they grow to 100,000 users and sessions
        /// (builds the server in release first, or takes GATEHOUSE_SURREAL_BIN).
        #[arg(long, value_parser = ["embedded", "ws"], default_value = "embedded")]
        db: String,
    },
    /// Run each cargo-fuzz target of fuzz/ from its committed seeds (installing
    /// cargo-fuzz if missing) and print executions per target.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run [default: all].
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(FUZZ_TARGETS))]
        targets: Vec<String>,
    },
    /// Build the official SurrealDB server for the multi-node tests into
    /// ~/.cache/gatehouse-surreal and print its path.
    Surrealdb {
        /// An optimised build (what `bench --db ws` measures against; about 20
        /// minutes cold on two cores) instead of the tests' debug one.
        #[arg(long)]
        release: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Seed { extra } => seed(&extra),
        Task::Bench {
            seconds,
            rounds,
            profile,
            db,
        } => {
            let surreal = if db == "ws" {
                Some(match std::env::var_os("GATEHOUSE_SURREAL_BIN") {
                    Some(bin) => PathBuf::from(bin),
                    None => {
                        eprintln!("== building the SurrealDB server (release)");
                        surrealdb(true)?
                    }
                })
            } else {
                None
            };
            bench::bench(&workspace_root(), seconds, rounds, &profile, surreal)
        }
        Task::Fuzz { seconds, targets } => fuzz(seconds, targets),
        Task::Surrealdb { release } => {
            surrealdb(release).map(|path| println!("{}", path.display()))
        }
    }
}

/// Where `cargo xtask surrealdb` builds the server: outside the clone, so that CI
/// runs reuse it.
fn surreal_target_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/gatehouse-surreal/target")
}

/// Builds the SurrealDB server (debug, or `release`) and returns the binary's path.
fn surrealdb(release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = surreal_target_dir();
    let mut build = Command::new(cargo);
    scrub_package_env(&mut build);
    // Its own workspace and lock file: the gatehouse build's target folder and
    // settings stay out of it.
    build.env_remove("CARGO_TARGET_DIR");
    let status = build
        .current_dir(workspace_root().join("tools/surreal"))
        .args(["build", "--locked", "--quiet", "--target-dir"])
        .arg(&target)
        .args(release.then_some("--release"))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the SurrealDB server failed");
    }
    let profile = if release { "release" } else { "debug" };
    Ok(target.join(profile).join("surreal-for-tests"))
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

const FUZZ_TARGETS: [&str; 4] = ["next_url", "form_body", "forwarded_headers", "cookies"];

/// The cargo-fuzz release `cargo xtask fuzz` installs when none is on the PATH.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

fn fuzz(seconds: u64, mut targets: Vec<String>) -> anyhow::Result<()> {
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
            .args([
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                CARGO_FUZZ_VERSION,
            ])
            .status()?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed");
        }
    }
    // Sanitizer builds get a folder of their own beside the usual target folder, so
    // that neither invalidates the other's compiled dependencies.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("fuzz");
    let mut report = Vec::new();
    for target in &targets {
        eprintln!("== fuzzing {target} for {seconds} s");
        // What a run learns goes to a scratch corpus; the committed seeds are only read.
        let corpus = target_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = workspace_root().join("fuzz/seeds").join(target);
        let mut run = Command::new(&cargo);
        scrub_package_env(&mut run);
        let out = run
            .current_dir(workspace_root())
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--target-dir"])
            .arg(&target_dir)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
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
