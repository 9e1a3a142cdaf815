//! `gatehouse backup FILE` and `gatehouse restore FILE`: the whole store as
//! SurrealQL, through [`Admin::backup`] and [`Admin::restore`]. Beside a running
//! server the copy is taken by the server (over the control socket), the
//! process that holds the embedded store.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use super::args::DbArgs;
use super::control::{self, say};
use crate::core::admin::Admin;

pub async fn backup(file: &Path, db: DbArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = db.clone().settings().resolve()?;
    let served = match control::data_folder(&config.db_url) {
        Some(folder) => control::backup(&folder).await?,
        None => None,
    };
    let dump = match served {
        Some(dump) => dump,
        None => {
            Admin::cli(&super::default_services(db).await?)
                .backup()
                .await?
        }
    };
    write_owner_only(file, &dump)?;
    say!(
        "backup of {} written to {} ({} bytes, {} ms)",
        super::redact_url(&config.db_url),
        file.display(),
        dump.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}

pub async fn restore(file: &Path, db: DbArgs) -> anyhow::Result<()> {
    // Read first: a missing or unreadable file creates no store.
    std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    let services = super::default_services(db).await?;
    anyhow::ensure!(
        Admin::cli(&services).restore(file).await?,
        "the store holds records already: restore only into a new --db folder or an empty \
         database (nothing was changed)"
    );
    say!("restored {}", file.display());
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, mode 0600, so that
/// a copy is whole or absent and never readable by others.
fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot move the backup to {}", path.display()))?;
    Ok(())
}
