//! `cargo xtask bench`: SPEC §10 measured in one run, as ratios against baselines
//! taken in the same run on the same machine.
//!
//! 1. `/auth` with a valid session vs `bench_bare` (a bare poem handler sending the
//!    same headers): peak throughput ratio, then p50/p99 at half the peak rate. With
//!    two cores or more, the load generator runs on CPU 0 and the server under test
//!    on CPU 1 (`taskset`), in alternating rounds; the median ratio and its spread
//!    are reported, so that neither steals the other's core;
//! 2. logins per second vs cores ÷ the time of one scrypt at the server's parameters;
//! 3. `/auth` p99 during a login flood at twice the hashing capacity, and peak RSS
//!    against base + slots × scrypt memory;
//! 4. idle RSS, time from start to the first served request, binary size.
//!
//! Load comes from `oha` (crates.io; installed if missing). Prints a table and
//! writes `target/bench.json`. With `--db ws`, the scale phase follows
//! ([`crate::scale`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::{HashParams, Password, PasswordHasher};
use serde_json::json;

use crate::load::{
    Load, PASSWORD, Server, median, oha_post, oha_run, print_rows, row, signup, sorted,
    wait_until_served,
};

pub fn bench(
    root: &Path,
    seconds: u64,
    rounds: usize,
    profile: &str,
    surreal: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("== building {profile} binaries");
    let mut build = Command::new(&cargo);
    crate::scrub_package_env(&mut build);
    let status = build
        .current_dir(root)
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "web",
            "--bin",
            "gatehouse",
            "--bin",
            "bench_bare",
        ])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let oha = ensure_oha(&cargo)?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    // Cargo's `dev` profile builds into `debug`.
    let release = target_dir.join(if profile == "dev" { "debug" } else { profile });
    let binary = release.join("gatehouse");
    let binary_bytes = stripped_size(&binary)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let pinned = cores >= 2 && Command::new("taskset").arg("-V").output().is_ok();
    let all_cpus = format!("0-{}", cores - 1);
    let (load_cpu, server_cpu) = if pinned {
        (Some("0"), "1")
    } else {
        eprintln!("(not pinned: needs two cores and taskset)");
        (None, all_cpus.as_str())
    };
    let dir = tempfile_dir()?;
    // With `--db ws`: the scale phase, after the main bench (or alone, to measure it
    // again: GATEHOUSE_BENCH_SCALE_ONLY=1).
    let scale = surreal.map(|surreal| crate::scale::Scale {
        oha: &oha,
        binary: &binary,
        surreal,
        dir: dir.join("scale"),
        out: target_dir.join("bench-ws.json"),
        seconds,
    });
    if let Some(scale) = scale
        .as_ref()
        .filter(|_| std::env::var_os("GATEHOUSE_BENCH_SCALE_ONLY").is_some())
    {
        scale.run()?;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }

    eprintln!("== starting gatehouse on an empty surrealkv store");
    let started = Instant::now();
    let gatehouse = Server::start(
        Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--insecure-cookies"])
            .arg("--db")
            .arg(format!("surrealkv://{}", dir.join("db").display())),
    )?;
    let first_request = wait_until_served(gatehouse.addr, started)?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = gatehouse.memory_kib("VmRSS")?;

    let session = signup(gatehouse.addr)?;
    let auth_url = format!("http://{}/auth", gatehouse.addr);
    let cookie = format!("Cookie: {}", session.cookie);
    let original = "X-Original-URL: http://app.example.com/";

    eprintln!(
        "== /auth and the bare handler at full speed, {rounds} rounds of {seconds} s each, \
         server on CPU {server_cpu}, load on CPU {}",
        load_cpu.unwrap_or("any")
    );
    let bare = Server::start(&mut Command::new(release.join("bench_bare")))?;
    let bare_url = format!("http://{}/auth", bare.addr);
    // Both servers started with the same number of workers, then pinned alike.
    for server in [&bare, &gatehouse] {
        server.pin(server_cpu)?;
    }
    let headers = [cookie.as_str(), original];
    let load = |url: &str, extra: &[&str]| oha_run(&oha, load_cpu, url, seconds, extra, &headers);
    // Each server's CPU time per answer, besides the throughput: with one core for
    // the load generator, a fast server may wait for it (throughput then flatters
    // it), while CPU time per answer does not depend on who waits.
    let measured = |server: &Server, url: &str| -> anyhow::Result<(Load, f64)> {
        let before = server.cpu_seconds()?;
        let load = load(url, &["-c", "16"])?;
        let per_answer = (server.cpu_seconds()? - before) / load.total().max(1.0);
        Ok((load, per_answer * 1e6))
    };
    let mut peaks = Vec::new();
    let mut cpu = Vec::new();
    for round in 0..rounds.max(1) {
        // Alternate which goes first, so a drift in the machine favours neither.
        let ((bare_peak, bare_us), (auth_peak, auth_us)) = if round % 2 == 0 {
            let bare = measured(&bare, &bare_url)?;
            (bare, measured(&gatehouse, &auth_url)?)
        } else {
            let auth = measured(&gatehouse, &auth_url)?;
            (measured(&bare, &bare_url)?, auth)
        };
        cpu.push((auth_us, bare_us));
        if auth_peak.status("200") < auth_peak.total() {
            bail!(
                "/auth did not admit every request: {:?}",
                auth_peak.statuses
            );
        }
        eprintln!(
            "   round {}: /auth {:.0}/s, bare {:.0}/s, ratio {:.3}; CPU per answer {auth_us:.2} vs \
             {bare_us:.2} µs, ratio {:.3}",
            round + 1,
            auth_peak.rps,
            bare_peak.rps,
            auth_peak.rps / bare_peak.rps,
            bare_us / auth_us
        );
        peaks.push((auth_peak, bare_peak));
    }
    let mut ratios: Vec<f64> = peaks.iter().map(|(a, b)| a.rps / b.rps).collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = median(&ratios);
    let (ratio_low, ratio_high) = (ratios[0], ratios[ratios.len() - 1]);
    let cpu_ratios = sorted(cpu.iter().map(|(auth, bare)| bare / auth));
    let cpu_ratio = median(&cpu_ratios);
    let auth_us = median(&sorted(cpu.iter().map(|(auth, _)| *auth)));
    let bare_us = median(&sorted(cpu.iter().map(|(_, bare)| *bare)));
    let auth_rps = median(&sorted(peaks.iter().map(|(a, _)| a.rps)));
    let bare_rps = median(&sorted(peaks.iter().map(|(_, b)| b.rps)));
    let half = format!("{}", (auth_rps / 2.0).max(1.0) as u64);
    eprintln!("== /auth at half the peak rate ({half}/s)");
    let auth_half = load(&auth_url, &["-c", "16", "-q", &half])?;
    drop(bare);
    gatehouse.pin(&all_cpus)?;

    eprintln!("== logins");
    let params = HashParams::DEFAULT;
    let scrypt = time_scrypt(params, 1, 5)?;
    let capacity = cores as f64 / scrypt.as_secs_f64();
    // What the machine really does with every core hashing at once (scrypt is
    // memory-bound: parallel runs share the memory bus), for the record.
    let parallel = time_scrypt(params, cores, 3)?;
    let parallel_capacity = cores as f64 / parallel.as_secs_f64();
    let login_body = format!(
        "email=bench%40example.com&password={}&csrf={}",
        PASSWORD.replace(' ', "+"),
        session.csrf
    );
    let login_url = format!("http://{}/login", gatehouse.addr);
    // Without the session cookie: a login ends the session it was sent with (no
    // fixation), and the /auth loads below must keep theirs.
    let csrf_cookie = format!("Cookie: {}", session.csrf_cookie);
    let login_headers = [
        csrf_cookie.as_str(),
        "Content-Type: application/x-www-form-urlencoded",
    ];
    let logins = oha_post(
        &oha,
        None,
        &login_url,
        seconds,
        &["-c", &(cores * 2).to_string()],
        &login_headers,
        &login_body,
    )?;
    let logins_per_second = logins.status("303") / logins.seconds;

    eprintln!("== /auth during a login flood at twice the hashing capacity");
    let base_rss = gatehouse.memory_kib("VmRSS")?;
    let flood_rate = format!("{}", (capacity * 2.0).ceil() as u64);
    let flood = {
        let oha = oha.clone();
        let url = login_url.clone();
        let headers: Vec<String> = login_headers.iter().map(|h| (*h).to_owned()).collect();
        let body = login_body.clone();
        let rate = flood_rate.clone();
        std::thread::spawn(move || {
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            oha_post(
                &oha,
                None,
                &url,
                seconds + 2,
                &["-c", "64", "-q", &rate],
                &headers,
                &body,
            )
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let auth_flood = oha_run(
        &oha,
        None,
        &auth_url,
        seconds,
        &["-c", "4", "-q", &half],
        &headers,
    )?;
    let flood = flood
        .join()
        .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??;
    let peak_rss = gatehouse.memory_kib("VmHWM")?;
    let slots = cores as u64;
    let scrypt_kib = 128 * u64::from(params.r) * (1u64 << params.log_n) / 1024;
    let memory_bound = base_rss + slots * scrypt_kib;
    drop(gatehouse);

    let rows = [
        row(
            "/auth throughput vs bare handler",
            format!(
                "{auth_rps:.0}/s vs {bare_rps:.0}/s, median of {} rounds{} ({:.0}–{:.0} %)",
                ratios.len(),
                if pinned { " pinned" } else { "" },
                ratio_low * 100.0,
                ratio_high * 100.0
            ),
            format!("{:.0} %", ratio * 100.0),
            "≥ 90 %",
            ratio >= 0.9,
        ),
        row(
            "/auth CPU per answer vs bare handler",
            format!(
                "{auth_us:.2} µs vs {bare_us:.2} µs, median of {} rounds ({:.0}–{:.0} %)",
                cpu_ratios.len(),
                cpu_ratios[0] * 100.0,
                cpu_ratios[cpu_ratios.len() - 1] * 100.0
            ),
            format!("{:.0} %", cpu_ratio * 100.0),
            "≥ 90 %",
            cpu_ratio >= 0.9,
        ),
        row(
            "/auth p50 / p99 at half peak",
            format!("{:.3} / {:.3} ms", auth_half.p50_ms, auth_half.p99_ms),
            format!("{:.3} ms", auth_half.p99_ms),
            "p99 < 2 ms",
            auth_half.p99_ms < 2.0,
        ),
        row(
            "logins per second",
            format!(
                "{logins_per_second:.1}/s vs {capacity:.1}/s ({cores} cores, scrypt {:.0} ms; \
                 {cores} at once: {:.0} ms each, {parallel_capacity:.1}/s)",
                scrypt.as_secs_f64() * 1000.0,
                parallel.as_secs_f64() * 1000.0
            ),
            format!("{:.0} %", logins_per_second / capacity * 100.0),
            "≥ 90 %",
            logins_per_second >= 0.9 * capacity,
        ),
        row(
            "/auth p99 during login flood",
            format!(
                "flood {flood_rate}/s: {:.0} logged in, {:.0} got 503; /auth {:.0} of {:.0} admitted",
                flood.status("303"),
                flood.status("503"),
                auth_flood.status("200"),
                auth_flood.total()
            ),
            format!("{:.3} ms", auth_flood.p99_ms),
            "< 5 ms",
            auth_flood.p99_ms < 5.0,
        ),
        row(
            "peak RSS during flood",
            format!(
                "base {} MiB + {slots} × {} MiB",
                base_rss / 1024,
                scrypt_kib / 1024
            ),
            format!("{} MiB", peak_rss / 1024),
            &format!("< {} MiB", memory_bound / 1024),
            peak_rss < memory_bound,
        ),
        row(
            "idle RSS",
            String::new(),
            format!("{:.1} MiB", idle_rss as f64 / 1024.0),
            "< 30 MiB",
            idle_rss < 30 * 1024,
        ),
        row(
            "start to first served request",
            String::new(),
            format!("{:.0} ms", first_request.as_secs_f64() * 1000.0),
            "< 300 ms",
            first_request < Duration::from_millis(300),
        ),
        row(
            "stripped release binary",
            String::new(),
            format!("{:.1} MiB", binary_bytes as f64 / 1048576.0),
            "< 30 MiB",
            binary_bytes < 30 * 1024 * 1024,
        ),
    ];
    print_rows(&rows);
    let report = json!({
        "cores": cores,
        "seconds_per_run": seconds,
        "pinned": pinned,
        "rounds": peaks.iter().map(|(a, b)| json!({ "auth": a.json(), "bare": b.json() })).collect::<Vec<_>>(),
        "auth_peak_rps": auth_rps, "bare_peak_rps": bare_rps,
        "ratio": ratio, "ratio_low": ratio_low, "ratio_high": ratio_high,
        "cpu_us_per_answer": { "auth": auth_us, "bare": bare_us, "ratio": cpu_ratio },
        "auth_half_peak": auth_half.json(),
        "scrypt_ms": scrypt.as_secs_f64() * 1000.0, "login_capacity_per_s": capacity,
        "parallel_scrypt_ms": parallel.as_secs_f64() * 1000.0,
        "parallel_login_capacity_per_s": parallel_capacity,
        "logins_per_s": logins_per_second,
        "auth_during_flood": auth_flood.json(), "flood_rate": flood_rate,
        "rss_kib": { "idle": idle_rss, "before_flood": base_rss, "peak": peak_rss, "bound": memory_bound },
        "first_request_ms": first_request.as_secs_f64() * 1000.0,
        "binary_bytes": binary_bytes,
        "rows": rows,
    });
    let out = target_dir.join("bench.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    if let Some(scale) = &scale {
        scale.run()?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The size of `binary` once stripped: itself for the release profile (which
/// strips), a stripped copy's for a profile that keeps symbols.
fn stripped_size(binary: &Path) -> anyhow::Result<u64> {
    let copy = std::env::temp_dir().join(format!("gatehouse-stripped-{}", std::process::id()));
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    let size = if stripped {
        std::fs::metadata(&copy)?.len()
    } else {
        std::fs::metadata(binary)?.len()
    };
    let _ = std::fs::remove_file(&copy);
    Ok(size)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn ensure_oha(cargo: &str) -> anyhow::Result<PathBuf> {
    let installed = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("no CARGO_HOME or HOME")?;
    let oha = home.join("bin/oha");
    if !installed(&oha) {
        eprintln!("== installing oha from crates.io");
        let status = Command::new(cargo)
            .args(["install", "oha", "--locked"])
            .status()?;
        if !status.success() || !installed(&oha) {
            bail!("cargo install oha failed");
        }
    }
    Ok(oha)
}

/// Time of one scrypt while `threads` run at once, best of `rounds` (each round's
/// slowest thread counts).
fn time_scrypt(params: HashParams, threads: usize, rounds: usize) -> anyhow::Result<Duration> {
    let hasher = PasswordHasher::new(params)?;
    let password = Password::parse(PASSWORD)?;
    let hash = hasher.hash(&password)?;
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| hasher.verify(&password, &hash));
            }
        });
        best = best.min(started.elapsed());
    }
    Ok(best)
}
