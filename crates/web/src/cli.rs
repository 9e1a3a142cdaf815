//! The `gatehouse` command line. Settings come from flags, then `GATEHOUSE_*`
//! environment variables, then an optional TOML file, then defaults — in that order
//! of precedence. clap handles the first two; [`ServeArgs::resolve`] the rest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use domain::HashParams;
use serde::Deserialize;
use storage::DbCredentials;
use url::Url;

use crate::config::{
    Config, HashingPolicy, IdentityHeaders, SessionPolicy, default_public_url,
    default_trusted_proxies,
};

#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about = "Login and forward-auth server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the site, /auth and the API (the default command).
    Serve(Box<ServeArgs>),
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
    /// Exit 0 when a running gatehouse answers URL with 2xx (for container health
    /// checks, where there is no curl).
    Health {
        #[arg(default_value = "http://127.0.0.1:8080/readyz")]
        url: Url,
    },
    /// Check that a proxy in front of an app gates it the way gatehouse expects:
    /// spoofed identity headers refused or overwritten, the original URL forwarded.
    CheckProxy(crate::check_proxy::CheckProxyArgs),
    /// Print the JSON API's OpenAPI spec (the one served at /api/openapi.json and
    /// committed as crates/web/openapi.json).
    Openapi,
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

/// Where the store is. Shared by every command that opens it.
#[derive(Debug, Clone, Args, Default)]
pub struct DbArgs {
    /// Database URL: surrealkv://PATH (embedded, default surrealkv://./data/gatehouse),
    /// mem:// (nothing kept), ws://HOST:PORT or wss://… (a SurrealDB server or cluster).
    #[arg(long, env = "GATEHOUSE_DB", value_name = "URL")]
    pub db: Option<String>,
    /// Root user for a ws:// or wss:// database.
    #[arg(long, env = "GATEHOUSE_DB_USER", value_name = "NAME")]
    pub db_user: Option<String>,
    /// Password for --db-user (prefer the environment variable to the flag).
    #[arg(
        long,
        env = "GATEHOUSE_DB_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub db_password: Option<String>,
}

#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GATEHOUSE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address for operator-only routes (`/metrics`), e.g. 127.0.0.1:9090
    /// [default: none, not served]. Never routed by the public proxy.
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub db: DbArgs,
    /// The URL users reach gatehouse at; its host is where `next` may point
    /// [default: http://LISTEN/].
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<Url>,
    /// Plain-HTTP development only: session cookies without Secure or __Host-.
    #[arg(long, env = "GATEHOUSE_INSECURE_COOKIES")]
    pub insecure_cookies: bool,
    /// Cookie domain for single sign-on across subdomains (e.g. example.com).
    #[arg(long, env = "GATEHOUSE_COOKIE_DOMAIN", value_name = "DOMAIN")]
    pub cookie_domain: Option<String>,
    /// Domains whose hosts (and subdomains) may be return URLs after login, besides
    /// the public URL's host and the cookie domain (comma-separated).
    #[arg(
        long,
        env = "GATEHOUSE_ALLOWED_DOMAINS",
        value_name = "DOMAIN,...",
        value_delimiter = ','
    )]
    pub allowed_domains: Vec<String>,
    /// Addresses or CIDR ranges of proxies whose X-Forwarded-*/X-Original-* headers
    /// are believed (comma-separated) [default: 127.0.0.0/8,::1/128].
    #[arg(
        long,
        env = "GATEHOUSE_TRUSTED_PROXIES",
        value_name = "CIDR,...",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Headers naming the user on an allowed /auth answer
    /// [default: X-Auth-User,Remote-User]; X-Auth-User is always sent.
    #[arg(
        long,
        env = "GATEHOUSE_AUTH_USER_HEADERS",
        value_name = "NAME,...",
        value_delimiter = ','
    )]
    pub auth_user_headers: Vec<String>,
    /// Headers carrying the user's email on an allowed /auth answer
    /// [default: X-Auth-Email,Remote-Email].
    #[arg(
        long,
        env = "GATEHOUSE_AUTH_EMAIL_HEADERS",
        value_name = "NAME,...",
        value_delimiter = ','
    )]
    pub auth_email_headers: Vec<String>,
    /// Seconds of inactivity after which a session ends [default: 86400].
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub session_idle_timeout: Option<i64>,
    /// Seconds after login at which a session ends [default: 604800].
    #[arg(long, env = "GATEHOUSE_SESSION_LIFETIME", value_name = "SECONDS")]
    pub session_lifetime: Option<i64>,
    /// Lifetime of a "remember me" session, in seconds [default: 2592000].
    #[arg(long, env = "GATEHOUSE_REMEMBER_LIFETIME", value_name = "SECONDS")]
    pub remember_lifetime: Option<i64>,
    /// scrypt log2(N) for new password hashes [default: 15].
    #[arg(long, env = "GATEHOUSE_SCRYPT_LOG_N", value_name = "LN")]
    pub scrypt_log_n: Option<u8>,
    /// scrypt block size r [default: 8].
    #[arg(long, env = "GATEHOUSE_SCRYPT_R", value_name = "R")]
    pub scrypt_r: Option<u32>,
    /// scrypt parallelism p [default: 3].
    #[arg(long, env = "GATEHOUSE_SCRYPT_P", value_name = "P")]
    pub scrypt_p: Option<u32>,
    /// Password hashes computed at once [default: number of cores].
    #[arg(long, env = "GATEHOUSE_HASH_SLOTS", value_name = "N")]
    pub hash_slots: Option<usize>,
    /// File holding the secret that signs CSRF tokens (shared by every node)
    /// [default: generated once and kept in the store].
    #[arg(long, env = "GATEHOUSE_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// TOML file with any of these settings (flag names with '_' for '-').
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

/// The TOML configuration file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    db: Option<String>,
    db_user: Option<String>,
    db_password: Option<String>,
    public_url: Option<Url>,
    insecure_cookies: Option<bool>,
    cookie_domain: Option<String>,
    allowed_domains: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    auth_user_headers: Option<Vec<String>>,
    auth_email_headers: Option<Vec<String>>,
    session_idle_timeout: Option<i64>,
    session_lifetime: Option<i64>,
    remember_lifetime: Option<i64>,
    scrypt_log_n: Option<u8>,
    scrypt_r: Option<u32>,
    scrypt_p: Option<u32>,
    hash_slots: Option<usize>,
    secret_key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }
}

impl DbArgs {
    /// The database URL and credentials, falling back to `file` and then the default.
    pub fn resolve(self, file: &FileConfig) -> (String, Option<DbCredentials>) {
        let url = self
            .db
            .or_else(|| file.db.clone())
            .unwrap_or_else(|| storage::DEFAULT_DB_URL.to_owned());
        let username = self.db_user.or_else(|| file.db_user.clone());
        let password = self.db_password.or_else(|| file.db_password.clone());
        let credentials = username.map(|username| DbCredentials {
            username,
            password: password.unwrap_or_default(),
        });
        (url, credentials)
    }
}

impl ServeArgs {
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let defaults = Config::default();
        let listen = self.listen.or(file.listen).unwrap_or(defaults.listen);
        let public_url = self
            .public_url
            .or_else(|| file.public_url.clone())
            .unwrap_or_else(|| default_public_url(listen));
        if !matches!(public_url.scheme(), "http" | "https") || public_url.host_str().is_none() {
            return Err(ConfigError::Invalid(format!(
                "--public-url must be an http(s) URL with a host, not {public_url}"
            )));
        }
        let session_defaults = SessionPolicy::default();
        let sessions = SessionPolicy {
            idle_timeout: self
                .session_idle_timeout
                .or(file.session_idle_timeout)
                .unwrap_or(session_defaults.idle_timeout),
            lifetime: self
                .session_lifetime
                .or(file.session_lifetime)
                .unwrap_or(session_defaults.lifetime),
            remember_lifetime: self
                .remember_lifetime
                .or(file.remember_lifetime)
                .unwrap_or(session_defaults.remember_lifetime),
        };
        if sessions.idle_timeout <= 0 || sessions.lifetime <= 0 || sessions.remember_lifetime <= 0 {
            return Err(ConfigError::Invalid(
                "session timeouts and lifetimes must be positive numbers of seconds".into(),
            ));
        }
        let hashing_defaults = HashingPolicy::default();
        let params = HashParams {
            log_n: self
                .scrypt_log_n
                .or(file.scrypt_log_n)
                .unwrap_or(HashParams::DEFAULT.log_n),
            r: self
                .scrypt_r
                .or(file.scrypt_r)
                .unwrap_or(HashParams::DEFAULT.r),
            p: self
                .scrypt_p
                .or(file.scrypt_p)
                .unwrap_or(HashParams::DEFAULT.p),
        };
        domain::PasswordHasher::new(params).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let slots = self
            .hash_slots
            .or(file.hash_slots)
            .unwrap_or(hashing_defaults.slots)
            .max(1);
        let insecure_cookies = self.insecure_cookies || file.insecure_cookies.unwrap_or(false);
        let cookie_domain = self
            .cookie_domain
            .or_else(|| file.cookie_domain.clone())
            .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
        let allowed_domains = pick(self.allowed_domains, file.allowed_domains.clone())
            .unwrap_or_default()
            .iter()
            .map(|d| parse_domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_proxies = match pick(self.trusted_proxies, file.trusted_proxies.clone()) {
            Some(list) => list
                .iter()
                .map(|net| parse_network(net))
                .collect::<Result<Vec<_>, _>>()?,
            None => default_trusted_proxies(),
        };
        let header_defaults = IdentityHeaders::default();
        let mut user_headers = match pick(self.auth_user_headers, file.auth_user_headers.clone()) {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.user,
        };
        if !user_headers.iter().any(|h| h == crate::auth::X_AUTH_USER) {
            user_headers.insert(
                0,
                poem::http::HeaderName::from_static(crate::auth::X_AUTH_USER),
            );
        }
        let email_headers = match pick(self.auth_email_headers, file.auth_email_headers.clone()) {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.email,
        };
        let secret_key = match self
            .secret_key_file
            .or_else(|| file.secret_key_file.clone())
        {
            Some(path) => Some(read_secret(&path)?),
            // For containers that pass secrets in the environment.
            None => std::env::var("GATEHOUSE_SECRET_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
        };
        let (db_url, db_credentials) = self.db.resolve(&file);
        let metrics_listen = self.metrics_listen.or(file.metrics_listen);
        if metrics_listen.is_some_and(|m| m == listen) {
            return Err(ConfigError::Invalid(
                "--metrics-listen must differ from --listen: /metrics is never public".into(),
            ));
        }
        Ok(Config {
            listen,
            metrics_listen,
            db_url,
            db_credentials,
            public_url,
            insecure_cookies,
            cookie_domain,
            allowed_domains,
            trusted_proxies,
            identity_headers: IdentityHeaders {
                user: user_headers,
                email: email_headers,
            },
            sessions,
            hashing: HashingPolicy {
                params,
                slots,
                queue: slots * 16,
            },
            throttle: Default::default(),
            secret_key,
        })
    }
}

fn read_secret(path: &Path) -> Result<String, ConfigError> {
    let secret = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let secret = secret.trim().to_owned();
    if secret.len() < 32 {
        return Err(ConfigError::Invalid(format!(
            "the secret key in {} is shorter than 32 characters",
            path.display()
        )));
    }
    Ok(secret)
}

/// A list from the flag or environment if given there, else from the file.
fn pick(flag: Vec<String>, file: Option<Vec<String>>) -> Option<Vec<String>> {
    if flag.is_empty() { file } else { Some(flag) }
}

/// `example.com`, or `example.com:8443` for apps on another port.
fn parse_domain(raw: &str) -> Result<String, ConfigError> {
    let entry = raw.trim().trim_start_matches('.').to_ascii_lowercase();
    let (domain, port) = match entry.split_once(':') {
        Some((domain, port)) => (domain, Some(port)),
        None => (entry.as_str(), None),
    };
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if valid {
        Ok(entry)
    } else {
        Err(ConfigError::Invalid(format!(
            "allowed domain {raw:?} is not a domain name like example.com (or example.com:8443)"
        )))
    }
}

fn parse_network(raw: &str) -> Result<ipnet::IpNet, ConfigError> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "trusted proxy {raw:?} is not an address or CIDR range like 10.0.0.0/8"
            ))
        })
}

fn parse_header_names(list: &[String]) -> Result<Vec<poem::http::HeaderName>, ConfigError> {
    list.iter()
        .map(|raw| {
            poem::http::HeaderName::from_bytes(raw.trim().to_ascii_lowercase().as_bytes())
                .map_err(|_| ConfigError::Invalid(format!("{raw:?} is not a header name")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["gatehouse", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(args)) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndb = \"mem://\"\nscrypt_log_n = 12\ncookie_domain = \".Example.com\"\n",
        )
        .unwrap();
        let config = serve(&[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9100",
        ])
        .resolve()
        .unwrap();
        assert_eq!(config.listen.port(), 9100, "flag wins");
        assert_eq!(config.db_url, "mem://", "file beats default");
        assert_eq!(config.hashing.params.log_n, 12);
        assert_eq!(config.hashing.params.p, 3, "default");
        assert_eq!(config.cookie_domain.as_deref(), Some("example.com"));
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:9100/");
    }

    #[test]
    fn proxy_settings_are_parsed_and_checked() {
        let config = serve(&[
            "--trusted-proxies",
            "10.0.0.0/8,192.168.1.7",
            "--allowed-domains",
            ".Apps.Example.com",
            "--auth-user-headers",
            "Remote-User",
        ])
        .resolve()
        .unwrap();
        assert!(config.is_trusted_proxy("10.1.2.3".parse().unwrap()));
        assert!(config.is_trusted_proxy("192.168.1.7".parse().unwrap()));
        assert!(config.is_trusted_proxy("::ffff:10.0.0.1".parse().unwrap()));
        assert!(
            !config.is_trusted_proxy("127.0.0.1".parse().unwrap()),
            "replaced"
        );
        assert_eq!(config.allowed_domains, ["apps.example.com"]);
        let allowed = |url: &str| config.is_allowed_origin(&url.parse().unwrap());
        assert!(allowed("http://wiki.APPS.example.com/"));
        assert!(allowed("https://apps.example.com/"));
        assert!(!allowed("https://evilapps.example.com/"));
        assert!(!allowed("https://apps.example.com.evil.example/"));
        assert_eq!(config.identity_headers.user, ["x-auth-user", "remote-user"]);

        let defaults = serve(&[]).resolve().unwrap();
        assert!(defaults.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(defaults.is_trusted_proxy("::1".parse().unwrap()));
        assert!(!defaults.is_trusted_proxy("10.0.0.1".parse().unwrap()));

        for bad in [
            &["--trusted-proxies", "10.0.0.0/33"][..],
            &["--allowed-domains", "https://example.com"],
            &["--allowed-domains", "example.com:0"],
            &["--auth-user-headers", "bad header"],
        ] {
            let err = serve(bad).resolve().unwrap_err();
            assert!(
                err.to_string().contains(bad[1].split(',').next().unwrap()),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let err = serve(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        let err = serve(&["--scrypt-log-n", "40"]).resolve().unwrap_err();
        assert!(err.to_string().contains("scrypt"), "{err}");
        let err = serve(&["--public-url", "ftp://example.com"])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("public-url"), "{err}");
    }
}
