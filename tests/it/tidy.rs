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

/// The dependencies named in the manifest at `path` (relative to the workspace).
fn dependencies(path: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let mut deps: Vec<String> = manifest["dependencies"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    deps.sort_unstable();
    deps
}

/// `domain` does no IO, and neither does `wire` (the parsers the fuzz targets
/// run): only the dependencies each is known to need, and no file, network,
/// process or environment calls of the standard library.
#[test]
fn pure_crates_allow_only_their_dependencies_and_no_io() {
    for (krate, allowed) in [
        (
            "domain",
            &["idna", "scrypt", "thiserror", "unicode-properties"][..],
        ),
        ("wire", &["http", "percent-encoding", "thiserror", "url"]),
    ] {
        assert_eq!(
            dependencies(&format!("crates/{krate}/Cargo.toml")),
            allowed,
            "{krate}'s dependencies changed: is the new one pure computation?"
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates")
            .join(krate);
        for (path, text) in rust_files(&root.join("src")) {
            // Address types are pure; sockets and name lookups are not.
            let io = [
                "std::fs",
                "TcpStream",
                "TcpListener",
                "UdpSocket",
                "ToSocketAddrs",
                "std::process",
                "std::env",
                "tokio",
            ];
            for io in io {
                assert!(!text.contains(io), "{} uses {io}", path.display());
            }
        }
    }
}

/// The fuzz targets build in seconds only while they stay off the server's
/// dependency tree: `wire` and the fuzzing harness, nothing else of ours.
#[test]
fn fuzz_targets_depend_only_on_the_pure_parsers() {
    assert_eq!(
        dependencies("fuzz/Cargo.toml"),
        ["http", "libfuzzer-sys", "url", "wire"]
    );
}

/// Every `.rs` file under `dir`, with its text.
fn rust_files(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// The module of a file of `web`'s library, as a path (`http/csrf`, `gate`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let module = relative.to_string_lossy().replace('\\', "/");
    module.strip_suffix("/mod").unwrap_or(&module).to_owned()
}

/// The layer a module belongs to.
fn layer_of(module: &str) -> &'static str {
    match module.split('/').next().unwrap() {
        "core" => "core",
        "http" => "http",
        "site" => "site",
        "api" => "api",
        "gate" => "gate",
        "cli" | "seed" | "check_proxy" => "cli",
        "config" => "config",
        "app" | "lib" => "root",
        other => panic!("{other}: which layer is it in? Add it to the tidy test"),
    }
}

/// The modules of `web` that `text` (a file of module `module`) refers to:
/// `crate::a::b` paths and `super::` paths, resolved to the longest module that
/// exists. Comment lines are skipped.
fn references(module: &str, text: &str, modules: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let resolve = |segments: Vec<&str>| -> Option<String> {
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("/"))
            .find(|candidate| modules.contains(candidate))
    };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            if at > 0 && line[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                continue;
            }
            let path: Vec<&str> = line[at + 7..]
                .split("::")
                .map(|s| s.split(|c: char| !is_ident(c)).next().unwrap_or(""))
                .take_while(|s| !s.is_empty())
                .collect();
            found.extend(resolve(path));
        }
        for (at, _) in line.match_indices("super::") {
            if at > 0 && line[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                continue;
            }
            // `super` of `a/b` (file a/b.rs) is `a`; of `a` (a/mod.rs or a.rs), the root.
            let mut parent: Vec<&str> = module.split('/').collect();
            parent.pop();
            let rest: Vec<&str> = line[at + 7..]
                .split("::")
                .map(|s| s.split(|c: char| !is_ident(c)).next().unwrap_or(""))
                .take_while(|s| !s.is_empty())
                .collect();
            parent.extend(rest);
            found.extend(resolve(parent));
        }
    }
    found.retain(|m| m != module);
    found.sort();
    found.dedup();
    found
}

/// `web`'s layers point one way (ARCHITECTURE.md): `core` uses no poem, maud or
/// adapter; `http` no adapter; the adapters (`site`, `api`, `gate`, the CLI) not
/// each other; only the composition root (`app`) sees them all.
#[test]
fn web_layers_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/web/src");
    let files: Vec<_> = rust_files(&src)
        .into_iter()
        .filter(|(path, _)| {
            let module = module_of(&src, path);
            module != "main" && !module.starts_with("bin/")
        })
        .collect();
    let modules: Vec<String> = files.iter().map(|(p, _)| module_of(&src, p)).collect();
    let allowed = |from: &str, to: &str| match from {
        "core" => matches!(to, "core" | "config"),
        "http" => matches!(to, "http" | "core" | "config"),
        "site" | "api" | "gate" => to == from || matches!(to, "http" | "core" | "config"),
        // The CLI starts the server through the composition root, like `main`.
        "cli" => matches!(to, "cli" | "http" | "core" | "config" | "root"),
        "config" => to == "config",
        _ => true,
    };
    let mut wrong = Vec::new();
    for (path, text) in &files {
        let module = module_of(&src, path);
        let from = layer_of(&module);
        for target in references(&module, text, &modules) {
            let to = layer_of(&target);
            if !allowed(from, to) {
                wrong.push(format!("{module} ({from}) uses {target} ({to})"));
            }
        }
        if from == "core" {
            for framework in ["poem", "maud", "StatusCode"] {
                let uses = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .any(|l| l.contains(framework));
                if uses {
                    wrong.push(format!("{module} (core) uses {framework}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows pointing the wrong way:\n{}",
        wrong.join("\n")
    );
}

/// No cycle of imports between `web`'s modules (file by file).
#[test]
fn web_modules_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/web/src");
    let files: Vec<_> = rust_files(&src)
        .into_iter()
        .filter(|(path, _)| {
            let module = module_of(&src, path);
            module != "main" && module != "lib" && !module.starts_with("bin/")
        })
        .collect();
    let modules: Vec<String> = files.iter().map(|(p, _)| module_of(&src, p)).collect();
    let edges: Vec<Vec<usize>> = files
        .iter()
        .map(|(path, text)| {
            references(&module_of(&src, path), text, &modules)
                .iter()
                // A module that declares submodules (`mod x;`) is not an import.
                .filter(|target| !target.starts_with(&format!("{}/", module_of(&src, path))))
                .filter_map(|target| modules.iter().position(|m| m == target))
                .collect()
        })
        .collect();
    // Depth-first search; a node met again while on the stack closes a cycle.
    fn visit(
        node: usize,
        edges: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[node] = 1;
        stack.push(node);
        for &next in &edges[node] {
            if state[next] == 1 {
                let start = stack.iter().position(|&n| n == next).unwrap();
                return Some(stack[start..].to_vec());
            }
            if state[next] == 0
                && let Some(cycle) = visit(next, edges, state, stack)
            {
                return Some(cycle);
            }
        }
        stack.pop();
        state[node] = 2;
        None
    }
    let mut state = vec![0u8; modules.len()];
    for node in 0..modules.len() {
        if state[node] == 0
            && let Some(cycle) = visit(node, &edges, &mut state, &mut Vec::new())
        {
            let names: Vec<&str> = cycle.iter().map(|&n| modules[n].as_str()).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
}

/// `cargo xtask` parses its arguments like the binary does: every task answers
/// `--help`, and a wrong argument is refused with a message.
#[test]
fn every_xtask_answers_help() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let xtask = |args: &[&str]| {
        Command::new(&cargo)
            .current_dir(workspace)
            .args(["run", "--quiet", "-p", "xtask", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    for task in ["seed", "bench", "fuzz"] {
        let out = xtask(&[task, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{task} --help failed");
        assert!(help.contains(&format!("cargo xtask {task}")), "{help}");
    }
    let out = xtask(&["bench", "--seconds", "ten"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ten"));
}
