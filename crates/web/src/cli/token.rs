//! `gatehouse token create|list|revoke`: API tokens, through the same use cases
//! as the API (the same rules, audit lines and notice to the owner).

use anyhow::Context;

use super::args::TokenCommand;
use super::control::{note, say};
use super::{default_services, no_user, username};
use crate::core::admin::Admin;
use crate::core::tokens::TokenFields;

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            name,
            expires_in,
            db,
        } => {
            // The API's rules for names and lifetimes, not looser ones.
            let fields = TokenFields::check(&name, expires_in, "--name", "--expires-in").map_err(
                |errors| {
                    let messages: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect();
                    anyhow::anyhow!(messages.join("; "))
                },
            )?;
            let username = username(&user)?;
            let services = default_services(db).await?;
            let (token, info) = Admin::cli(&services)
                .issue_token(&username, &fields)
                .await?
                .with_context(|| no_user(&username))?;
            note!(
                "token {} for {username} (shown once; keep it secret):",
                info.id
            );
            say!("{}", token.expose());
        }
        TokenCommand::List { user, db } => {
            let username = username(&user)?;
            let services = default_services(db).await?;
            let tokens = Admin::cli(&services)
                .tokens_of(&username)
                .await?
                .with_context(|| no_user(&username))?;
            for info in tokens {
                let expires = info
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                let used = info
                    .last_used
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                say!(
                    "{}  name={}  created={}  expires={expires}  last_used={used}",
                    info.id,
                    info.name,
                    info.created_at
                );
            }
        }
        TokenCommand::Revoke { user, id, db } => {
            let username = username(&user)?;
            let services = default_services(db).await?;
            let admin = Admin::cli(&services);
            if admin.user(&username).await?.is_none() {
                anyhow::bail!(no_user(&username));
            }
            if !admin.revoke_token(&username, &id).await? {
                anyhow::bail!("{username} has no token {id}");
            }
            say!("revoked token {id}");
        }
    }
    Ok(())
}
