//! Loading users from a TOML file (`gatehouse seed`, `cargo xtask seed`). Every
//! entry is checked before anything is written, and an existing user is updated
//! rather than duplicated, so seeding twice gives the same store as seeding once.

use std::path::Path;

use domain::{DisplayName, Email, Password, PasswordHasher, User, Username};
use serde::Deserialize;
use storage::Store;
use storage::users::Upserted;

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
    Password(#[from] domain::PasswordError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// How many users a seed run created and updated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    pub updated: usize,
}

pub async fn seed_file(
    store: &Store,
    hasher: &PasswordHasher,
    path: &Path,
) -> Result<SeedReport, SeedError> {
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
        parsed.push((username, email, name, password, groups));
    }

    let mut report = SeedReport::default();
    for (username, email, name, password, groups) in parsed {
        // Keep the stored hash when the password is unchanged, so reseeding does not
        // churn hashes (or sessions' idea of them).
        let existing = store.user_by_username(&username).await?;
        let password_hash = match existing {
            Some(user)
                if matches!(
                    hasher.verify(&password, &user.password_hash),
                    domain::Verdict::Valid {
                        needs_rehash: false
                    }
                ) =>
            {
                user.password_hash
            }
            _ => hasher.hash(&password)?,
        };
        let user = User {
            username,
            email,
            name,
            password_hash,
            created_at: storage::now(),
            groups,
            disabled: false,
            email_verified: true,
        };
        match store.upsert_user(&user).await? {
            Upserted::Created => report.created += 1,
            Upserted::Updated => report.updated += 1,
        }
    }
    Ok(report)
}
