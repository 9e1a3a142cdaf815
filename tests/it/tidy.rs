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

/// The modules of a crate that `text` (a file of module `module`) refers to:
/// every path of its `use` trees (grouped and nested ones expanded:
/// `use crate::http::{cookies, identity::current}` names `http/cookies` and
/// `http/identity`), and `crate::a::b` / `super::` paths written inline, each
/// resolved to the longest module that exists. Comment lines are skipped.
fn references(module: &str, text: &str, modules: &[String]) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let resolve = |segments: &[String]| -> Option<String> {
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("/"))
            .find(|candidate| modules.contains(candidate))
    };
    // `crate::…`, `super::…` (any number), `self::…` as module paths.
    let absolute = |path: &[String]| -> Option<Vec<String>> {
        let mut segments: Vec<String> = match path.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") | Some("self") => module.split('/').map(str::to_owned).collect(),
            _ => return None,
        };
        let mut rest = path;
        if rest.first().is_some_and(|s| s == "crate") {
            rest = &rest[1..];
        }
        for segment in rest {
            match segment.as_str() {
                "super" => {
                    segments.pop();
                }
                "self" => {}
                other => segments.push(other.to_owned()),
            }
        }
        Some(segments)
    };
    let mut found = Vec::new();
    for tree in use_trees(&code) {
        for path in use_paths(&tree, &[]) {
            if let Some(resolved) = absolute(&path).and_then(|p| resolve(&p)) {
                found.push(resolved);
            }
        }
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    for line in code.lines() {
        for keyword in ["crate::", "super::"] {
            for (at, _) in line.match_indices(keyword) {
                if at > 0 && line[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                    continue;
                }
                let path: Vec<String> = std::iter::once(keyword.trim_end_matches(':'))
                    .chain(
                        line[at + keyword.len()..]
                            .split("::")
                            .map(|s| s.split(|c: char| !is_ident(c)).next().unwrap_or(""))
                            .take_while(|s| !s.is_empty()),
                    )
                    .map(str::to_owned)
                    .collect();
                found.extend(absolute(&path).and_then(|p| resolve(&p)));
            }
        }
    }
    found.retain(|m| m != module);
    found.sort();
    found.dedup();
    found
}

/// The trees of `code`'s `use` items (`crate::a::{b, c}`), without `use` and `;`.
fn use_trees(code: &str) -> Vec<String> {
    let mut trees = Vec::new();
    for (at, _) in code.match_indices("use ") {
        let before = code[..at].trim_end_matches(' ');
        let starts_item = before.is_empty()
            || before.ends_with(['\n', ';', '{', '}'])
            || before.ends_with("pub")
            || before.ends_with(')');
        if !starts_item {
            continue;
        }
        let rest = &code[at + 4..];
        if let Some(end) = rest.find(';') {
            trees.push(rest[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    trees
}

/// The paths a `use` tree names, as segments: `crate::http::{cookies, identity::X}`
/// gives `crate http cookies` and `crate http identity X`; groups nest, `self`
/// names the group's own path, and `as` renames are dropped.
fn use_paths(tree: &str, prefix: &[String]) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        let mut segments = prefix.to_vec();
        for segment in path.split("::").map(str::trim).filter(|s| !s.is_empty()) {
            if segment != "self" || segments.is_empty() {
                segments.push(segment.to_owned());
            }
        }
        return vec![segments];
    };
    let mut head = prefix.to_vec();
    head.extend(
        tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut paths, mut depth, mut item) = (Vec::new(), 0, String::new());
    for c in body.chars().chain([',']) {
        match c {
            ',' if depth == 0 => {
                if !item.trim().is_empty() {
                    paths.extend(use_paths(&item, &head));
                }
                item.clear();
                continue;
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        item.push(c);
    }
    if paths.is_empty() {
        paths.push(head);
    }
    paths
}

/// A module's file path relative to its crate's `src` as a module path.
fn crate_files(src: &Path) -> Vec<(String, String)> {
    rust_files(src)
        .into_iter()
        .map(|(path, text)| (module_of(src, &path), text))
        .collect()
}

/// A cycle of imports between the modules of `files` (module path, text), if
/// any. A module's own submodules (`mod x;` in `a/mod.rs`) are not imports of it,
/// and the crate root (`lib`, `main`), which only declares modules, is left out.
fn import_cycle(files: &[(String, String)]) -> Option<Vec<String>> {
    let files: Vec<&(String, String)> = files
        .iter()
        .filter(|(m, _)| m != "main" && m != "lib" && !m.starts_with("bin/"))
        .collect();
    let modules: Vec<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let edges: Vec<Vec<usize>> = files
        .iter()
        .map(|(module, text)| {
            references(module, text, &modules)
                .iter()
                .filter(|target| !target.starts_with(&format!("{module}/")))
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
            return Some(cycle.iter().map(|&n| modules[n].clone()).collect());
        }
    }
    None
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
        // Adapters reach the store only through core's use cases and records.
        if matches!(from, "site" | "api" | "gate" | "cli") {
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            let names_field = |l: &str| {
                l.match_indices(".store").any(|(at, m)| {
                    !l[at + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            };
            if code.iter().any(|l| l.contains("storage::")) {
                wrong.push(format!("{module} ({from}) imports storage"));
            }
            if code.iter().any(|l| names_field(l)) {
                wrong.push(format!("{module} ({from}) reaches for the store"));
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

/// No cycle of imports between the modules (file by file) of `web`, `storage`,
/// `xtask` and this test binary, with grouped and nested `use` trees read whole.
#[test]
fn modules_import_each_other_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for src in [
        "crates/web/src",
        "crates/storage/src",
        "xtask/src",
        "tests/it",
    ] {
        if let Some(cycle) = import_cycle(&crate_files(&root.join(src))) {
            panic!("import cycle in {src}: {}", cycle.join(" -> "));
        }
    }
}

/// The test modules share helpers through `app` and `support/` only: no feature
/// module imports another (house style), and `support` imports no feature module.
#[test]
fn feature_test_modules_import_only_the_support_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("it");
    let files = crate_files(&src);
    let modules: Vec<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let shared = |m: &str| m == "app" || m == "support" || m.starts_with("support/");
    let mut wrong = Vec::new();
    for (module, text) in &files {
        if module == "main" {
            continue;
        }
        for target in references(module, text, &modules) {
            if !shared(&target) && !target.starts_with(&format!("{module}/")) {
                wrong.push(format!("{module} uses {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "feature modules sharing code:\n{}",
        wrong.join("\n")
    );
}

/// The check sees a cycle written only through grouped, nested and renamed
/// imports (what it once missed: `use crate::http::{cookies, identity}` read as
/// an import of `http` alone), and none where the same names stay one way.
#[test]
fn the_cycle_check_reads_grouped_imports() {
    let file = |module: &str, text: &str| (module.to_owned(), text.to_owned());
    let planted = [
        file(
            "http/mod",
            "pub mod csrf;\npub mod identity;\npub mod state;",
        ),
        file("http/csrf", "use crate::http::{cookies, identity};"),
        file(
            "http/identity",
            "use super::{\n    deadline::bounded,\n    state::{self, AppState as State},\n};",
        ),
        file("http/state", "pub use crate::http::{csrf::CsrfKey};"),
        file("http/cookies", ""),
        file("http/deadline", ""),
    ];
    let planted: Vec<(String, String)> = planted
        .into_iter()
        .map(|(m, t)| (m.trim_end_matches("/mod").to_owned(), t))
        .collect();
    let cycle = import_cycle(&planted).expect("the planted cycle was not seen");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    for module in ["http/csrf", "http/identity", "http/state"] {
        assert!(cycle.iter().any(|m| m == module), "{cycle:?}");
    }
    let mut fixed = planted.clone();
    fixed[3].1 = "pub use crate::http::{csrf_key::CsrfKey};".to_owned();
    fixed.push(file("http/csrf_key", ""));
    assert_eq!(import_cycle(&fixed), None);
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
