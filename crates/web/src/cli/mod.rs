//! The `gatehouse` command line: the argument tree ([`args`]), the settings of
//! `serve` ([`settings`]), and one module of command bodies per subject. Every
//! command is a thin wrapper around a `core` use case — the same code, audit
//! line and notice as the admin page and the API — run with the CLI's own
//! [`Services`] (see [`Services::for_cli`]). Errors leave as `anyhow` messages:
//! this is the binary's top, where they become a line on stderr and an exit code.

pub mod args;
mod backup;
pub mod check_proxy;
pub mod control;
pub mod settings;

mod checks;
mod factors;
mod invite;
mod printed;
mod seed;
mod serve;
mod token;
mod user;

use std::future::Future;

use domain::Username;

pub use args::{Cli, Command};
pub use checks::secret_key_from;
pub use seed::{SeedError, SeedReport};
pub use settings::{ConfigError, Settings, setting_keys};

use crate::core::Services;
use args::DbArgs;

/// Runs one command line; `shutdown` ends `serve`.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match cli.command {
        // `gatehouse` alone is `gatehouse serve`: defaults, file and environment.
        None => serve::serve(Settings::default(), shutdown).await,
        Some(Command::Serve(args)) => serve::serve(*args, shutdown).await,
        Some(command) => match run_command(command).await {
            // Run by the server that holds the store, which printed its answer.
            Err(err) => match err.downcast::<control::Forwarded>() {
                Ok(control::Forwarded(None)) => Ok(()),
                Ok(control::Forwarded(Some(error))) => Err(anyhow::anyhow!(error)),
                Err(err) => Err(err),
            },
            done => done,
        },
    }
}

/// Every command but `serve`.
async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => anyhow::bail!("`serve` runs from the command line only"),
        Command::Seed(args) => seed::run(args).await,
        Command::Token(command) => token::run(command).await,
        Command::User(command) => user::run(command).await,
        Command::Invite(command) => invite::run(command).await,
        Command::Factors(command) => factors::run(command).await,
        Command::Backup { file, db } => backup::backup(&file, db).await,
        Command::Restore { file, db } => backup::restore(&file, db).await,
        Command::Health { url } => check_proxy::health(url).await,
        Command::CheckProxy(args) => check_proxy::run(args).await,
        Command::Openapi => {
            println!("{}", crate::app::api_spec());
            Ok(())
        }
    }
}

/// The store `db` names — with the flags given over `GATEHOUSE_*` and the
/// configuration file, merged and checked as `serve` does — and the CLI's services
/// around it. `admins` overrides the admins' group, `log_n` the scrypt cost of the
/// hashes a command makes.
async fn services(
    db: DbArgs,
    admins: Option<String>,
    log_n: Option<u8>,
) -> anyhow::Result<Services> {
    let settings = Settings {
        admin_group: admins,
        scrypt_log_n: log_n,
        ..db.settings()
    };
    // Run for a peer of the control socket: the server's own services.
    if let Some(services) = control::served() {
        return Ok(services);
    }
    let config = settings.resolve()?;
    if let Some(folder) = control::data_folder(&config.db_url)
        && let Some(forwarded) = control::forward(&folder).await?
    {
        return Err(forwarded.into());
    }
    Ok(Services::open_for_cli(
        &config.db_url,
        config.db_credentials.as_ref(),
        config.admin_group.clone(),
        config.hashing.params,
    )
    .await?)
}

/// `services` with the configured admins' group and hashing cost.
async fn default_services(db: DbArgs) -> anyhow::Result<Services> {
    services(db, None, None).await
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
    let line = control::stdin_line()?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(domain::Password::parse(line)?)
}

/// Database URLs may carry credentials: never log them.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
