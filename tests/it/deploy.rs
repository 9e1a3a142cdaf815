//! The deploy files that can be checked here without running them: the systemd
//! unit, with systemd's own tools (`systemd-analyze verify`, and `security
//! --offline=yes` for its exposure score, kept at or under 1.4).

use std::process::Command;

use crate::support::process::gatehouse_bin;
use crate::support::programs::require;

#[test]
fn the_systemd_unit_verifies_and_keeps_its_exposure_score() {
    let Some(analyze) = require("systemd-analyze") else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let unit = std::fs::read_to_string(root.join("gatehouse.service")).unwrap();
    // The unit names the installed binary; verify checks that it exists.
    let installed = "/usr/local/bin/gatehouse ";
    assert!(unit.contains(installed), "ExecStart moved: {unit}");
    let unit = unit.replace(installed, &format!("{} ", gatehouse_bin().display()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.service");
    std::fs::write(&path, unit).unwrap();

    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert!(
        said.lines().all(|l| !l.contains("gatehouse.service")),
        "systemd-analyze verify warns: {said}"
    );

    let security = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for gatehouse.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 1.4, "exposure {score} > 1.4:\n{text}");
}

/// The scale-out Caddyfile (two nodes; Docker cannot run here) is valid Caddy
/// configuration, and both its `/auth` and its login pages fail over between the
/// nodes: a dead node must not fail half of the `/auth` questions.
#[test]
fn the_scale_out_caddyfile_adapts_and_fails_over_between_the_nodes() {
    let Some(caddy) = require("caddy") else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scale-out");
    let adapted = Command::new(caddy)
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(root.join("Caddyfile"))
        .output()
        .unwrap();
    assert!(
        adapted.status.success(),
        "{}",
        String::from_utf8_lossy(&adapted.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&adapted.stdout).unwrap();
    // Every reverse_proxy handler (forward_auth is one) names both nodes, retries
    // on the other and health-checks /readyz.
    let mut proxies = Vec::new();
    collect_proxies(&config, &mut proxies);
    let auth = proxies
        .iter()
        .filter(|p| {
            p["rewrite"]["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("/auth"))
        })
        .count();
    assert_eq!(auth, 1, "one forward_auth: {proxies:?}");
    for proxy in proxies.iter().filter(|p| {
        p["upstreams"].as_array().is_some_and(|u| {
            u.iter()
                .any(|u| u["dial"].as_str().unwrap_or("").starts_with("gatehouse"))
        })
    }) {
        let dials: Vec<&str> = proxy["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["dial"].as_str())
            .collect();
        assert_eq!(dials, ["gatehouse-1:8080", "gatehouse-2:8080"]);
        assert!(
            proxy["load_balancing"]["try_duration"].is_number(),
            "{proxy}"
        );
        assert_eq!(
            proxy["health_checks"]["active"]["uri"], "/readyz",
            "{proxy}"
        );
    }
}

fn collect_proxies<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("handler").and_then(|h| h.as_str()) == Some("reverse_proxy") {
                found.push(value);
            }
            map.values().for_each(|v| collect_proxies(v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_proxies(v, found)),
        _ => {}
    }
}
