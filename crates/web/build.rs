//! Installs the front-end dependencies pinned in `package.json` / `package-lock.json`
//! (htmx, and Swagger UI for `/api/docs`) with `npm ci --ignore-scripts` into
//! `OUT_DIR`, so the binary embeds them: nothing third-party is committed, nothing
//! is fetched from a CDN at run time, and no package's install script runs.
//!
//! `GATEHOUSE_HTMX_JS=/path/to/htmx.min.js` together with
//! `GATEHOUSE_SWAGGER_UI_DIR=/path/to/swagger-ui-dist` skips npm (offline builds,
//! packagers).
//!
//! The assets served to browsers (htmx and the stylesheet) are also compressed here,
//! once, with brotli and gzip at their strongest: the server picks the one a browser
//! accepts and spends no CPU on it per request.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=package.json");
    println!("cargo:rerun-if-changed=package-lock.json");
    println!("cargo:rerun-if-env-changed=GATEHOUSE_HTMX_JS");
    println!("cargo:rerun-if-env-changed=GATEHOUSE_SWAGGER_UI_DIR");
    let (htmx, swagger) = match (
        std::env::var_os("GATEHOUSE_HTMX_JS"),
        std::env::var_os("GATEHOUSE_SWAGGER_UI_DIR"),
    ) {
        (Some(htmx), Some(swagger)) => (PathBuf::from(htmx), PathBuf::from(swagger)),
        _ => {
            let modules = npm_ci();
            (
                modules.join("htmx.org/dist/htmx.min.js"),
                modules.join("swagger-ui-dist"),
            )
        }
    };
    let swagger_js = swagger.join("swagger-ui-bundle.js");
    let swagger_css = swagger.join("swagger-ui.css");
    for file in [&htmx, &swagger_js, &swagger_css] {
        if !file.is_file() {
            fail(&format!("{} is missing after npm ci", file.display()));
        }
    }
    println!("cargo:rustc-env=GATEHOUSE_HTMX_JS={}", htmx.display());
    println!("cargo:rerun-if-changed=assets/style.css");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    compress(&htmx, "htmx.min.js", true);
    compress(&manifest.join("assets/style.css"), "style.css", true);
    // Swagger UI is 1.5 MB of text: only its gzip form is embedded (every client
    // takes gzip; its brotli form would cost the binary another 0.36 MiB for a
    // page operators open now and then).
    compress(&swagger_js, "swagger-ui-bundle.js", false);
    compress(&swagger_css, "swagger-ui.css", false);
    println!("cargo:rerun-if-changed=assets/passkey.js");
    compress(&manifest.join("assets/passkey.js"), "passkey.js", true);
    println!("cargo:rerun-if-changed=assets/api-docs.js");
    compress(&manifest.join("assets/api-docs.js"), "api-docs.js", true);
}

/// Writes `OUT_DIR/NAME.gz`, and `OUT_DIR/NAME.br` when `with_brotli`.
fn compress(source: &Path, name: &str, with_brotli: bool) {
    use std::io::Write;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let bytes = std::fs::read(source)
        .unwrap_or_else(|err| fail(&format!("cannot read {}: {err}", source.display())));
    let mut brotli = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    if with_brotli
        && let Err(err) = brotli::BrotliCompress(&mut bytes.as_slice(), &mut brotli, &params)
    {
        fail(&format!("brotli {name}: {err}"));
    }
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzip = gzip
        .write_all(&bytes)
        .and_then(|()| gzip.finish())
        .unwrap_or_else(|err| fail(&format!("gzip {name}: {err}")));
    let forms = [("br", &brotli), ("gz", &gzip)];
    for (ext, data) in forms.iter().filter(|(ext, _)| with_brotli || *ext == "gz") {
        let path = out.join(format!("{name}.{ext}"));
        if let Err(err) = std::fs::write(&path, data) {
            fail(&format!("cannot write {}: {err}", path.display()));
        }
    }
}

/// `npm ci` into `OUT_DIR/npm`; returns its `node_modules`.
fn npm_ci() -> PathBuf {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("npm");
    let installed = out.join("node_modules");
    let lock = manifest.join("package-lock.json");
    let stamp = out.join("package-lock.json");
    if installed.is_dir() && same_file_contents(&lock, &stamp) {
        return installed;
    }
    if let Err(err) = std::fs::create_dir_all(&out) {
        fail(&format!("cannot create {}: {err}", out.display()));
    }
    for file in ["package.json", "package-lock.json"] {
        if let Err(err) = std::fs::copy(manifest.join(file), out.join(file)) {
            fail(&format!("cannot copy {file}: {err}"));
        }
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&out)
        .status();
    match status {
        Ok(status) if status.success() => installed,
        Ok(status) => fail(&format!("`npm ci` failed ({status}) in {}", out.display())),
        Err(err) => fail(&format!(
            "cannot run npm ({err}): install Node.js and npm (Debian: apt-get install npm), \
             or set GATEHOUSE_HTMX_JS and GATEHOUSE_SWAGGER_UI_DIR to copies of htmx 2.0.11 \
             and swagger-ui-dist 5.35.0"
        )),
    }
}

fn same_file_contents(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(a), Ok(b)) if a == b)
}

fn fail(message: &str) -> ! {
    println!("cargo:warning={message}");
    eprintln!("error: {message}");
    std::process::exit(1)
}
