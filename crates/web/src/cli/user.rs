//! `gatehouse user …`: accounts, through [`Admin`] — the admin page's and the
//! API's code, with the same audit lines and notices.

use anyhow::Context;
use domain::{DisplayName, Email, GroupName};

use super::args::{GroupChange, UserCommand, UserTarget};
use super::control::{note, say};
use super::{no_user, password_from_stdin, services, username};
use crate::core::Services;
use crate::core::admin::{Admin, GroupEdit, NewUser, Taken, group_list};
use crate::core::records::AccessEnded;

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Passwd {
            user,
            scrypt_log_n,
            db,
        } => {
            let password = password_from_stdin()?;
            let username = username(&user)?;
            let services = services(db, None, scrypt_log_n).await?;
            let access = Admin::cli(&services)
                .set_password(&username, password)
                .await?
                .with_context(|| no_user(&username))?;
            say!("password of {username} changed; {}", ended(access));
        }
        UserCommand::Add {
            user,
            email,
            name,
            admin,
            groups,
            scrypt_log_n,
            admin_group,
            db,
        } => {
            let mut groups = GroupName::parse_list(&groups)?;
            let username = username(&user)?;
            let email = Email::parse(&email)?;
            let name = DisplayName::parse(&name)?;
            let password = password_from_stdin()?;
            let services = services(db, admin_group.admin_group, scrypt_log_n).await?;
            if admin {
                groups.push(services.config.admin_group.clone());
                groups.sort();
                groups.dedup();
            }
            let new = NewUser {
                username,
                email,
                name,
                groups,
                password,
            };
            let user = match Admin::cli(&services).add_user(new).await? {
                Ok(user) => user,
                Err(Taken::Username) => anyhow::bail!("the username {user} is taken"),
                Err(Taken::Email) => anyhow::bail!("that address is taken"),
            };
            say!(
                "added {} ({}) in groups [{}]",
                user.username,
                user.email,
                group_list(&user.groups)
            );
        }
        UserCommand::List { search, db } => {
            let services = super::default_services(db).await?;
            let admin = Admin::cli(&services);
            let mut query = crate::core::records::UserQuery {
                search,
                from: crate::core::records::Cursor::Start,
                limit: 500,
            };
            let mut shown = 0;
            loop {
                let page = admin.users(&query).await?;
                for user in &page.users {
                    say!(
                        "{}\t{}\t[{}]{}",
                        user.username,
                        user.email,
                        group_list(&user.groups),
                        if user.disabled { "\tdisabled" } else { "" }
                    );
                }
                shown += page.users.len();
                match page.users.last() {
                    Some(last) if page.has_next => {
                        query.from = crate::core::records::Cursor::After(last.username.to_string());
                    }
                    _ => break,
                }
            }
            note!("{shown} user(s)");
        }
        UserCommand::Show(target) => {
            let (services, username) = open(target).await?;
            let access = Admin::cli(&services)
                .access_of(&username)
                .await?
                .with_context(|| no_user(&username))?;
            let user = &access.user;
            say!("username\t{}", user.username);
            say!("email\t{}", user.email);
            say!("email_verified\t{}", user.email_verified);
            say!("name\t{}", user.name.as_ref().map_or("", |n| n.as_str()));
            say!("groups\t[{}]", group_list(&user.groups));
            say!("disabled\t{}", user.disabled);
            say!("created\t{}", user.created_at);
            say!("totp\t{}", access.totp);
            for passkey in &access.passkeys {
                say!(
                    "passkey\t{}\t{}\tadded {}\tlast used {}",
                    &passkey.id[..16],
                    passkey.name,
                    passkey.created_at,
                    passkey
                        .last_used_at
                        .map_or("never".to_owned(), |t| t.to_string())
                );
            }
            for session in &access.sessions {
                say!(
                    "session\t{}\t{}\t{}\tlast seen {}",
                    &session.id[..16],
                    session.address.as_deref().unwrap_or("-"),
                    crate::core::sessions::describe_browser(session.user_agent.as_deref()),
                    session.last_seen
                );
            }
            for token in &access.tokens {
                say!("token\t{}\t{}", token.id, token.name);
            }
        }
        UserCommand::Disable(target) => set_disabled(target, true).await?,
        UserCommand::Enable(target) => set_disabled(target, false).await?,
        UserCommand::Delete(target) => {
            let (services, username) = open(target).await?;
            let access = Admin::cli(&services)
                .delete(&username)
                .await?
                .with_context(|| no_user(&username))?;
            say!("deleted {username}; {}", ended(access));
        }
        UserCommand::ResetFactors(target) => {
            let (services, username) = open(target).await?;
            let access = Admin::cli(&services)
                .reset_factors(&username)
                .await?
                .with_context(|| no_user(&username))?;
            say!(
                "second factors of {username} removed (authenticator app, recovery codes, passkeys); {}",
                ended(access)
            );
        }
        UserCommand::Reset(target) => {
            let (services, username) = open(target).await?;
            Admin::cli(&services)
                .start_reset(&username)
                .await?
                .with_context(|| no_user(&username))?;
            say!("reset link for {username} queued: the server sends it if it has mail");
        }
        UserCommand::SendVerification(target) => {
            let (services, username) = open(target).await?;
            let queued = Admin::cli(&services)
                .send_verification(&username)
                .await?
                .with_context(|| no_user(&username))?;
            anyhow::ensure!(queued, "the address of {username} is verified already");
            say!("verification link for {username} queued: the server sends it if it has mail");
        }
        UserCommand::VerifyEmail {
            user: None,
            admin_group,
            db,
            ..
        } => {
            let services = services(db, admin_group.admin_group.clone(), None).await?;
            let count = Admin::cli(&services).verify_all_emails().await?;
            say!("{count} address(es) marked verified");
        }
        UserCommand::VerifyEmail {
            user: Some(user),
            no,
            admin_group,
            db,
            ..
        } => {
            let (services, username) = open(UserTarget {
                user,
                admin_group,
                db,
            })
            .await?;
            Admin::cli(&services)
                .set_email_verified(&username, !no)
                .await?
                .with_context(|| no_user(&username))?;
            let state = if no { "not verified" } else { "verified" };
            say!("the address of {username} is now {state}");
        }
        UserCommand::Groups {
            user,
            change,
            group,
            admin_group,
            db,
        } => {
            let group = GroupName::parse(&group)?;
            let (services, username) = open(UserTarget {
                user,
                admin_group,
                db,
            })
            .await?;
            let edit = match change {
                GroupChange::Add => GroupEdit::Add(group),
                GroupChange::Remove => GroupEdit::Remove(group),
            };
            let user = Admin::cli(&services)
                .edit_groups(&username, edit)
                .await?
                .with_context(|| no_user(&username))?;
            say!("{username} is in groups [{}]", group_list(&user.groups));
        }
    }
    Ok(())
}

/// The services and the user a `gatehouse user …` command acts on.
async fn open(target: UserTarget) -> anyhow::Result<(Services, domain::Username)> {
    let username = username(&target.user)?;
    let admins = target.admin_group.admin_group;
    Ok((services(target.db, admins, None).await?, username))
}

/// "N session(s) ended, M API token(s) revoked".
fn ended(ended: AccessEnded) -> String {
    format!(
        "{} session(s) ended, {} API token(s) revoked",
        ended.sessions, ended.tokens
    )
}

async fn set_disabled(target: UserTarget, disabled: bool) -> anyhow::Result<()> {
    let (services, username) = open(target).await?;
    let access = Admin::cli(&services)
        .set_disabled(&username, disabled)
        .await?
        .with_context(|| no_user(&username))?;
    if disabled {
        say!("disabled {username}; {}", ended(access));
    } else {
        say!("enabled {username}");
    }
    Ok(())
}
