//! The argument tree of `gatehouse`: its commands and their flags. The settings
//! of `serve` are [`super::settings::Settings`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use url::Url;

use super::settings::Settings;

#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about = "Login and forward-auth server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the site, /auth and the API (the default command).
    #[command(
        after_help = "Every setting is also read from the environment as GATEHOUSE_ and \
        its name in capitals (GATEHOUSE_LISTEN, GATEHOUSE_ALLOWED_DOMAINS=a,b) and from the \
        --config TOML file as its name with '_' (listen, allowed_domains = [\"a\", \"b\"]). \
        Flags win over the environment, the environment over the file. The CSRF secret \
        itself is read only from GATEHOUSE_SECRET_KEY or the file's secret_key."
    )]
    Serve(Box<Settings>),
    /// Load users from a TOML file (`[[users]]` with username, email, password,
    /// name); an existing user is updated, not duplicated.
    Seed(SeedArgs),
    /// Create, list and revoke API tokens (`Authorization: Bearer` for /auth and
    /// the site).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list and revoke invitation links (for `--signup invite`).
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Second-factor secrets at rest (sealed under the secret key).
    #[command(subcommand)]
    Factors(FactorsCommand),
    /// Write a consistent copy of the whole store to FILE (SurrealQL), also while
    /// the server runs. It holds the password hashes, the sealed second factors
    /// and the secret key: it is written owner-only; keep it like the store.
    Backup {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Load a backup FILE into a store that holds nothing yet (a new --db folder,
    /// or an empty ws:// database), with the server stopped.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Exit 0 when a running gatehouse answers URL with 2xx (for container health
    /// checks, where there is no curl).
    Health {
        #[arg(default_value = "http://127.0.0.1:8080/readyz")]
        url: Url,
    },
    /// Check that a proxy in front of an app gates it the way gatehouse expects:
    /// spoofed identity headers refused or overwritten, the original URL forwarded.
    CheckProxy(super::check_proxy::CheckProxyArgs),
    /// Print the JSON API's OpenAPI spec (the one served at /api/openapi.json and
    /// committed as crates/web/openapi.json).
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum FactorsCommand {
    /// Seal every authenticator-app secret under the secret key now configured
    /// (GATEHOUSE_SECRET_KEY or --secret-key-file), opening those sealed under the
    /// old one: run it after changing the secret key, before `serve` (which refuses
    /// to start while they are sealed under another key).
    Reseal {
        /// File holding the new secret key (or GATEHOUSE_SECRET_KEY).
        #[arg(long, value_name = "FILE")]
        secret_key_file: Option<PathBuf>,
        /// File holding the key they were sealed under (or GATEHOUSE_OLD_SECRET_KEY);
        /// without either, the key a development gatehouse kept in its store.
        #[arg(long, value_name = "FILE")]
        old_secret_key_file: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set USER's password, read as one line from standard input
    /// (`printf %s "$NEW" | gatehouse user passwd alice`), and end all their sessions.
    Passwd {
        user: String,
        /// scrypt log2(N) for the new hash [default: 15].
        #[arg(long, env = "GATEHOUSE_SCRYPT_LOG_N", value_name = "LN")]
        scrypt_log_n: Option<u8>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create USER with the password read as one line from standard input.
    Add {
        user: String,
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The name to greet the user by.
        #[arg(long, value_name = "NAME", default_value = "")]
        name: String,
        /// Make the user an administrator (a member of the admins' group).
        #[arg(long)]
        admin: bool,
        /// Groups the user belongs to (comma-separated).
        #[arg(long, value_name = "GROUP,...", default_value = "")]
        groups: String,
        /// scrypt log2(N) for the hash [default: 15].
        #[arg(long, env = "GATEHOUSE_SCRYPT_LOG_N", value_name = "LN")]
        scrypt_log_n: Option<u8>,
        #[command(flatten)]
        admin_group: AdminGroupArg,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List users (name, email, groups, disabled) in username order, those whose
    /// username or email starts with --search.
    List {
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show USER: email, groups, whether disabled, their sessions and API tokens.
    Show(UserTarget),
    /// Disable USER: every session and API token of theirs ends at once, and they
    /// can no longer log in.
    Disable(UserTarget),
    /// Enable USER again.
    Enable(UserTarget),
    /// Delete USER with their sessions and API tokens.
    Delete(UserTarget),
    /// Remove USER's second factor (a lost authenticator) and end every session and
    /// API token of theirs.
    ResetFactors(UserTarget),
    /// Queue a password-reset link for USER: the server sends it when it has mail
    /// (--smtp-url or --mail-dir).
    Reset(UserTarget),
    /// Queue a new email verification link for USER (sent like `user reset`).
    SendVerification(UserTarget),
    /// Vouch for USER's email address (mark it verified), or with --no take that
    /// back; --all vouches for every account (after upgrading from a version
    /// without verification, whose accounts start unverified).
    VerifyEmail {
        #[arg(required_unless_present = "all")]
        user: Option<String>,
        /// Mark the address not verified instead.
        #[arg(long, conflicts_with = "all")]
        no: bool,
        /// Every account not verified yet.
        #[arg(long, conflicts_with = "user")]
        all: bool,
        #[command(flatten)]
        admin_group: AdminGroupArg,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Add USER to GROUP or remove them from it.
    Groups {
        user: String,
        change: GroupChange,
        group: String,
        #[command(flatten)]
        admin_group: AdminGroupArg,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The user a `gatehouse user …` command acts on, and where.
#[derive(Debug, Args)]
pub struct UserTarget {
    pub user: String,
    #[command(flatten)]
    pub admin_group: AdminGroupArg,
    #[command(flatten)]
    pub db: DbArgs,
}

/// The admins' group, for the commands that must never leave it empty.
#[derive(Debug, Args)]
pub struct AdminGroupArg {
    /// The group whose members administer users [default: admins].
    #[arg(long, value_name = "GROUP")]
    pub admin_group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupChange {
    Add,
    Remove,
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create a single-use invitation and print its sign-up link (shown only this
    /// once; the store keeps its hash).
    Create {
        /// The email the account must use [default: any].
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Groups the new user joins (comma-separated).
        #[arg(long, value_name = "GROUP,...", default_value = "")]
        groups: String,
        /// Seconds the link stays valid [default: 7 days].
        #[arg(long, value_name = "SECONDS", default_value_t = 604_800)]
        expires_in: i64,
        /// The URL users reach gatehouse at, for the link.
        #[arg(
            long,
            env = "GATEHOUSE_PUBLIC_URL",
            value_name = "URL",
            default_value = "http://127.0.0.1:8080/"
        )]
        public_url: Url,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List invitations not used yet (ids, emails, groups, expiry; never links).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke invitation ID (as shown by `list`).
    Revoke {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for USER and print it (it is shown only this once).
    Create {
        /// The user the token acts as.
        user: String,
        /// A label to recognise the token by in lists.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Seconds until the token stops working [default: never].
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List USER's tokens (ids, names, dates; never the secrets).
    List {
        user: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke USER's token ID (as shown by `list`); it stops working at once.
    Revoke {
        user: String,
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Where the store is, for the commands other than `serve`. These flags go into
/// the same [`super::Settings`] as `serve`'s, over the same `GATEHOUSE_*` variables
/// and configuration file: a command acts on the store the server uses.
#[derive(Debug, Clone, Args, Default)]
pub struct DbArgs {
    /// Database URL: surrealkv://PATH (embedded, default surrealkv://./data/gatehouse),
    /// mem:// (nothing kept), ws://HOST:PORT or wss://… (a SurrealDB server or cluster).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Root user for a ws:// or wss:// database.
    #[arg(long, value_name = "NAME")]
    pub db_user: Option<String>,
    /// Password for --db-user (prefer GATEHOUSE_DB_PASSWORD to the flag).
    #[arg(long, value_name = "PASSWORD")]
    pub db_password: Option<String>,
    /// The server's TOML configuration file, read like `serve` reads it.
    #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The TOML file of users.
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// scrypt log2(N) for the seeded hashes [default: 15].
    #[arg(long, env = "GATEHOUSE_SCRYPT_LOG_N", value_name = "LN")]
    pub scrypt_log_n: Option<u8>,
}

impl DbArgs {
    /// These flags as settings, for [`super::Settings::resolve`] to merge.
    pub fn settings(self) -> super::Settings {
        super::Settings {
            db: self.db,
            db_user: self.db_user,
            db_password: self.db_password.map(secrecy::SecretString::from),
            config: self.config,
            ..super::Settings::default()
        }
    }
}
