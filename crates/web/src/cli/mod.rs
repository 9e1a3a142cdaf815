//! The `gatehouse` command line: the argument tree ([`args`]), the settings of
//! `serve` ([`settings`]), and one module of command bodies per subject. Every
//! command is a thin wrapper around a `core` use case — the same code, audit
//! line and notice as the admin page and the API — run with the CLI's own
//! [`Services`] (see [`Services::for_cli`]). Errors leave as `anyhow` messages:
//! this is the binary's top, where they become a line on stderr and an exit code.

pub mod args;
pub mod check_proxy;
pub mod settings;

mod factors;
mod invite;
mod seed;
mod serve;
mod token;
mod user;

use std::future::Future;

use anyhow::Context;
use domain::{GroupName, HashParams, Username};

pub use args::{Cli, Command};
pub use seed::{SeedError, SeedReport};
pub use settings::{ConfigError, SETTINGS, ServeArgs, Settings, secret_key_from};

use crate::core::Services;
use args::DbArgs;

/// Runs one command line; `shutdown` ends `serve`.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match cli.command {
        // `gatehouse` alone is `gatehouse serve`: defaults, file and environment.
        None => serve::serve(ServeArgs::default(), shutdown).await,
        Some(Command::Serve(args)) => serve::serve(*args, shutdown).await,
        Some(Command::Seed(args)) => seed::run(args).await,
        Some(Command::Token(command)) => token::run(command).await,
        Some(Command::User(command)) => user::run(command).await,
        Some(Command::Invite(command)) => invite::run(command).await,
        Some(Command::Factors(command)) => factors::run(command).await,
        Some(Command::Health { url }) => check_proxy::health(url).await,
        Some(Command::CheckProxy(args)) => check_proxy::run(args).await,
        Some(Command::Openapi) => {
            println!("{}", crate::app::api_spec());
            Ok(())
        }
    }
}

/// The store `db` names, with the CLI's services around it: `admins` is the
/// admins' group, `log_n` the scrypt cost of the hashes a command makes.
async fn services(db: DbArgs, admins: GroupName, log_n: Option<u8>) -> anyhow::Result<Services> {
    let (url, credentials) = db.resolve();
    let params = HashParams {
        log_n: log_n.unwrap_or(HashParams::DEFAULT.log_n),
        ..HashParams::DEFAULT
    };
    Ok(Services::open_for_cli(&url, credentials.as_ref(), admins, params).await?)
}

/// `services` with the default admins' group and hashing cost.
async fn default_services(db: DbArgs) -> anyhow::Result<Services> {
    services(db, crate::config::default_admin_group(), None).await
}

/// `name` as a username, or an error saying what is wrong with it.
fn username(name: &str) -> anyhow::Result<Username> {
    Ok(Username::parse(name)?)
}

/// A command's answer about a user that does not exist.
fn no_user(username: &Username) -> String {
    format!("there is no user {username}")
}

/// One line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<domain::Password> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(domain::Password::parse(line)?)
}
