//! Loading users from a TOML file (`gatehouse seed`, `cargo xtask seed`). Every
//! entry is checked before anything is written, and an existing user is updated
//! rather than duplicated, so seeding twice gives the same store as seeding once.

use std::path::Path;

use domain::{DisplayName, Email, Password, Username};
use serde::Deserialize;

use super::args::SeedArgs;
use crate::core::CoreError;
use crate::core::admin::{Admin, NewUser};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    users: Vec<SeedUser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    username: String,
    email: String,
    password: String,
    name: Option<String>,
    /// Groups the user belongs to (`admins` makes an administrator).
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("user #{index} ({username}): {message}")]
    Invalid {
        index: usize,
        username: String,
        message: String,
    },
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// How many users a seed run created and updated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    pub updated: usize,
}

/// `gatehouse seed FILE`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let services = super::services(args.db.clone(), None, args.scrypt_log_n).await?;
    let report = seed_file(&Admin::cli(&services), &args.file).await?;
    println!(
        "seeded {}: {} created, {} updated",
        args.file.display(),
        report.created,
        report.updated
    );
    Ok(())
}

/// Checks every entry of the file at `path`, then creates or updates each user
/// through `admin` (an unchanged password keeps its hash, so reseeding does not
/// churn hashes).
pub async fn seed_file(admin: &Admin<'_>, path: &Path) -> Result<SeedReport, SeedError> {
    let read_error = |message: String| SeedError::Read {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let file: SeedFile = toml::from_str(&text).map_err(|e| read_error(e.to_string()))?;

    let mut parsed = Vec::with_capacity(file.users.len());
    for (i, entry) in file.users.iter().enumerate() {
        let invalid = |message: String| SeedError::Invalid {
            index: i + 1,
            username: entry.username.clone(),
            message,
        };
        let username = Username::parse(&entry.username).map_err(|e| invalid(e.to_string()))?;
        let email = Email::parse(&entry.email).map_err(|e| invalid(e.to_string()))?;
        let name = DisplayName::parse(entry.name.as_deref().unwrap_or_default())
            .map_err(|e| invalid(e.to_string()))?;
        let password = Password::parse(&entry.password).map_err(|e| invalid(e.to_string()))?;
        let groups = domain::GroupName::parse_list(&entry.groups.join(","))
            .map_err(|e| invalid(e.to_string()))?;
        parsed.push(NewUser {
            username,
            email,
            name,
            groups,
            password,
        });
    }

    let mut report = SeedReport::default();
    for new in parsed {
        if admin.put_user(new).await? {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    Ok(report)
}
