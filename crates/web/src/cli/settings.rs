//! The settings of `gatehouse serve`, declared once in [`Settings`]: they come
//! from flags, then `GATEHOUSE_*` environment variables, then an optional TOML
//! file, then defaults — in that order of precedence, merged by figment in
//! [`Settings::merged`], then checked into a [`Config`] by [`Settings::check`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Config;

/// Every setting of `gatehouse serve`, declared once: its flag (clap), its
/// `GATEHOUSE_*` variable and its key in the TOML file (`--config`, the flag's name
/// with `_` for `-`) are this struct's fields. [`Settings::resolve`] merges the
/// sources in one place — flags over environment over file over defaults (a flag
/// left out is not serialized, so it hides nothing below it) — and
/// [`Settings::check`] turns the result into a [`Config`]. Unknown keys in the
/// file are refused by name.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Address for operator-only routes (`/metrics`), e.g. 127.0.0.1:9090
    /// [default: none, not served]. Never routed by the public proxy.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Database URL: surrealkv://PATH (embedded, default surrealkv://./data/gatehouse),
    /// mem:// (nothing kept), ws://HOST:PORT or wss://… (a SurrealDB server or cluster).
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Root user for a ws:// or wss:// database.
    #[arg(long, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_user: Option<String>,
    /// Password for --db-user (prefer GATEHOUSE_DB_PASSWORD to the flag: flags show
    /// in the process list).
    #[arg(long, value_name = "PASSWORD", value_parser = secret_arg)]
    #[serde(serialize_with = "expose", skip_serializing_if = "Option::is_none")]
    pub db_password: Option<SecretString>,
    /// The URL users reach gatehouse at; its host is where `next` may point
    /// [default: http://LISTEN/].
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<Url>,
    /// Plain-HTTP development only: session cookies without Secure or __Host-.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(
        default,
        deserialize_with = "flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_cookies: Option<bool>,
    /// Cookie domain for single sign-on across subdomains (e.g. example.com).
    #[arg(long, value_name = "DOMAIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    /// Domains whose hosts (and subdomains) may be return URLs after login, besides
    /// the public URL's host and the cookie domain (comma-separated; `d:PORT` for
    /// apps on another port).
    #[arg(long, value_name = "DOMAIN,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_domains: Option<Vec<String>>,
    /// Addresses or CIDR ranges of proxies whose X-Forwarded-*/X-Original-* headers
    /// are believed (comma-separated) [default: 127.0.0.0/8,::1/128].
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Headers naming the user on an allowed /auth answer
    /// [default: X-Auth-User,Remote-User]; X-Auth-User is always sent.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_user_headers: Option<Vec<String>>,
    /// Headers carrying the user's email on an allowed /auth answer
    /// [default: X-Auth-Email,Remote-Email].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_email_headers: Option<Vec<String>>,
    /// Headers carrying the user's groups (comma-separated) on an allowed /auth
    /// answer [default: X-Auth-Groups,Remote-Groups].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_groups_headers: Option<Vec<String>>,
    /// Headers carrying how the user logged in (`pwd`, `pwd,otp`, …) on an allowed
    /// /auth answer [default: X-Auth-Factors].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_factors_headers: Option<Vec<String>>,
    /// Headers saying `true` or `false`: whether the user's email is verified (the
    /// email headers are empty until it is) [default: X-Auth-Email-Verified].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_email_verified_headers: Option<Vec<String>>,
    /// Who may sign up: open, invite (holders of an invitation link) or closed
    /// [default: open when the public URL is a loopback address; required otherwise].
    #[arg(long, value_name = "POLICY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signup: Option<String>,
    /// The group whose members administer users [default: admins].
    #[arg(long, value_name = "GROUP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_group: Option<String>,
    /// Members of these groups must use a second factor: /auth refuses their
    /// password-only sessions and the login sends them to set one up
    /// (comma-separated) [default: none].
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub require_mfa_for_groups: Option<Vec<String>>,
    /// Users must verify their email (a link by mail) before /auth and the API let
    /// them through; needs mail (--smtp-url or --mail-dir).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    #[serde(
        default,
        deserialize_with = "flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub require_verified_email: Option<bool>,
    /// Only addresses at these domains may sign up (comma-separated, exact
    /// domains); needs --require-verified-email [default: any].
    #[arg(long, value_name = "DOMAIN,...", value_delimiter = ',')]
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub signup_domains: Option<Vec<String>>,
    /// Seconds of inactivity after which a session ends [default: 86400].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_idle_timeout: Option<i64>,
    /// Seconds after login at which a session ends [default: 604800].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_lifetime: Option<i64>,
    /// Lifetime of a "remember me" session, in seconds [default: 2592000].
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remember_lifetime: Option<i64>,
    /// scrypt log2(N) for new password hashes [default: 15].
    #[arg(long, value_name = "LN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_log_n: Option<u8>,
    /// scrypt block size r [default: 8].
    #[arg(long, value_name = "R")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_r: Option<u32>,
    /// scrypt parallelism p [default: 3].
    #[arg(long, value_name = "P")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_p: Option<u32>,
    /// Password hashes computed at once [default: number of cores].
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_slots: Option<usize>,
    /// File holding the secret that signs CSRF tokens (shared by every node); or
    /// the secret itself in GATEHOUSE_SECRET_KEY or the file's `secret_key`, never
    /// a flag [default: generated once and kept in the store].
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    /// Where to send mail (verification and reset links, notices):
    /// smtp://HOST:PORT (a relay on this host or network, plain),
    /// smtp://USER@HOST:587?tls=starttls, or smtps://USER@HOST:465 (TLS from the
    /// start) [default: no mail; users are told to ask an administrator].
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<Url>,
    /// File holding the SMTP password for --smtp-url's user (rather than putting
    /// it in the URL).
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    /// PEM certificates to trust for the SMTP server besides the system's (a
    /// private CA).
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Write each message as an .eml file into this folder instead of sending it
    /// (development and tests).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_dir: Option<PathBuf>,
    /// The sender's address [default: gatehouse@ the public URL's host].
    #[arg(long, value_name = "EMAIL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    /// TOML file with any of these settings (flag names with '_' for '-').
    #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Print the settings in effect (secrets redacted) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,
    /// The secret key itself (environment or file only: a flag would show it in
    /// the process list); prefer --secret-key-file.
    #[arg(skip)]
    #[serde(serialize_with = "expose", skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretString>,
}

/// The keys of [`Settings`], read from its serde shape (never typed again): the
/// `GATEHOUSE_*` variables read are exactly these (others, such as
/// `GATEHOUSE_LOG_FORMAT`, belong to something else) and the file may hold only
/// these.
pub fn setting_keys() -> &'static [&'static str] {
    static KEYS: LazyLock<&'static [&'static str]> = LazyLock::new(|| {
        let mut names = FieldNames(&[]);
        let _ = Settings::deserialize(&mut names);
        names.0
    });
    &KEYS
}

/// A deserializer that only notes the field names a struct asks for.
struct FieldNames(&'static [&'static str]);

impl<'de> serde::Deserializer<'de> for &mut FieldNames {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("only the field names are read"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(serde::de::Error::custom("only the field names are read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// A secret flag's value (`--db-password`).
fn secret_arg(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw))
}

/// A secret as the flags hand it to figment (in memory only: never printed).
fn expose<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// A list from a TOML array, or from a comma-separated string (the environment).
fn list<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Items(Vec<String>),
        Text(String),
    }
    Ok(Option::<List>::deserialize(de)?.map(|list| match list {
        List::Items(items) => items,
        List::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }))
}

/// A switch: a boolean, or from the environment `1`/`0`, `yes`/`no`, `on`/`off`.
fn flag<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    let Some(flag) = Option::<Flag>::deserialize(de)? else {
        return Ok(None);
    };
    let on = match flag {
        Flag::Bool(on) => on,
        Flag::Number(n) => n != 0,
        Flag::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{other:?} is not true or false"
                )));
            }
        },
    };
    Ok(Some(on))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Settings(Box<figment::Error>),
    #[error("{0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        Self::Settings(Box::new(err))
    }
}

impl Settings {
    /// The settings from every source, merged: defaults < TOML file < environment
    /// < these flags.
    pub fn merged(&self) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = &self.config {
            // A file named but missing is an error, not an empty file.
            std::fs::metadata(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            .merge(Env::prefixed("GATEHOUSE_").only(setting_keys()))
            .merge(Serialized::defaults(self));
        Ok(figment.extract()?)
    }

    /// Every source merged, then checked.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        self.merged()?.check()
    }
}

#[cfg(test)]
// figment's Jail takes closures returning its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;
    use clap::Parser;

    /// `gatehouse serve`'s flags alone.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: Settings,
    }

    fn serve(args: &[&str]) -> Settings {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Serve::try_parse_from(argv).unwrap().args
    }

    /// A setting's value as each source writes it.
    #[derive(Debug, Clone, Copy)]
    enum Value {
        Text(&'static str),
        Number(&'static str),
        On,
        List(&'static [&'static str]),
    }

    impl Value {
        fn flag(self, name: &str) -> Vec<String> {
            let flag = format!("--{}", name.replace('_', "-"));
            match self {
                Value::Text(v) | Value::Number(v) => vec![flag, v.to_owned()],
                Value::On => vec![flag],
                Value::List(items) => vec![flag, items.join(",")],
            }
        }

        fn env(self) -> String {
            match self {
                Value::Text(v) | Value::Number(v) => v.to_owned(),
                Value::On => "true".to_owned(),
                Value::List(items) => items.join(","),
            }
        }

        fn toml(self) -> String {
            match self {
                Value::Text(v) => format!("{v:?}"),
                Value::Number(v) => v.to_owned(),
                Value::On => "true".to_owned(),
                Value::List(items) => format!("{items:?}"),
            }
        }
    }

    struct Row {
        /// The setting and the values it is given (some need a companion setting).
        set: &'static [(&'static str, Value)],
        /// Whether it has a flag (secrets do not).
        flag: bool,
        holds: fn(&Config) -> bool,
    }

    const SECRET: &str = "a secret of more than thirty-two characters";

    fn rows() -> Vec<Row> {
        use Value::{List, Number, On, Text};
        let row = |set, holds| Row {
            set,
            flag: true,
            holds,
        };
        vec![
            row(&[("listen", Text("127.0.0.1:9101"))], |c| {
                c.listen.port() == 9101
            }),
            row(&[("metrics_listen", Text("127.0.0.1:9102"))], |c| {
                c.metrics_listen.is_some_and(|a| a.port() == 9102)
            }),
            row(&[("db", Text("mem://"))], |c| c.db_url == "mem://"),
            row(&[("db_user", Text("root"))], |c| {
                c.db_credentials
                    .as_ref()
                    .is_some_and(|d| d.username == "root")
            }),
            row(
                &[("db_user", Text("root")), ("db_password", Text("pw"))],
                |c| {
                    c.db_credentials
                        .as_ref()
                        .is_some_and(|d| d.password == "pw")
                },
            ),
            // A public URL beyond this machine needs a signup choice.
            row(
                &[
                    ("public_url", Text("https://auth.example.org/")),
                    ("signup", Text("invite")),
                ],
                |c| c.public_url.as_str() == "https://auth.example.org/",
            ),
            row(&[("insecure_cookies", On)], |c| c.insecure_cookies),
            row(&[("cookie_domain", Text("Example.org"))], |c| {
                c.cookie_domain.as_deref() == Some("example.org")
            }),
            row(
                &[("allowed_domains", List(&["a.example", "b.example:8443"]))],
                |c| c.allowed_domains == ["a.example", "b.example:8443"],
            ),
            row(
                &[("trusted_proxies", List(&["10.0.0.0/8", "192.0.2.1"]))],
                |c| c.trusted_proxies.len() == 2 && c.is_trusted_proxy("10.9.9.9".parse().unwrap()),
            ),
            row(
                &[("auth_user_headers", List(&["Remote-User", "X-User"]))],
                |c| c.identity_headers.user == ["x-auth-user", "remote-user", "x-user"],
            ),
            row(&[("auth_email_headers", List(&["X-Mail"]))], |c| {
                c.identity_headers.email == ["x-mail"]
            }),
            row(&[("auth_groups_headers", List(&["X-Groups"]))], |c| {
                c.identity_headers.groups == ["x-groups"]
            }),
            row(&[("auth_factors_headers", List(&["X-Factors"]))], |c| {
                c.identity_headers.factors == ["x-factors"]
            }),
            row(
                &[("auth_email_verified_headers", List(&["X-Verified"]))],
                |c| c.identity_headers.email_verified == ["x-verified"],
            ),
            row(
                &[("require_verified_email", On), ("mail_dir", Text("outbox"))],
                |c| c.require_verified_email,
            ),
            row(
                &[
                    ("signup_domains", List(&["Example.org", "@b.example"])),
                    ("require_verified_email", On),
                    ("mail_dir", Text("outbox")),
                ],
                |c| c.signup_domains == ["example.org", "b.example"],
            ),
            row(&[("signup", Text("closed"))], |c| {
                c.signup == crate::config::SignupPolicy::Closed
            }),
            row(&[("admin_group", Text("Ops"))], |c| {
                c.admin_group.as_str() == "ops"
            }),
            row(
                &[("require_mfa_for_groups", List(&["admins", "Ops"]))],
                |c| {
                    c.require_mfa_groups
                        .iter()
                        .map(domain::GroupName::as_str)
                        .eq(["admins", "ops"])
                },
            ),
            row(&[("session_idle_timeout", Number("61"))], |c| {
                c.sessions.idle_timeout == 61
            }),
            row(&[("session_lifetime", Number("62"))], |c| {
                c.sessions.lifetime == 62
            }),
            row(&[("remember_lifetime", Number("63"))], |c| {
                c.sessions.remember_lifetime == 63
            }),
            row(&[("scrypt_log_n", Number("11"))], |c| {
                c.hashing.params.log_n == 11
            }),
            row(&[("scrypt_r", Number("4"))], |c| c.hashing.params.r == 4),
            row(&[("scrypt_p", Number("2"))], |c| c.hashing.params.p == 2),
            row(&[("hash_slots", Number("3"))], |c| {
                c.hashing.slots == 3 && c.hashing.queue == 48
            }),
            row(&[("smtp_url", Text("smtp://127.0.0.1:2525"))], |c| {
                matches!(&c.mail.transport, crate::config::MailTransport::Smtp(s)
                    if s.host == "127.0.0.1" && s.port == 2525)
            }),
            row(
                &[
                    ("smtp_url", Text("smtps://mailer@mail.example.org")),
                    ("smtp_password_file", Text("secret.txt")),
                ],
                |c| {
                    matches!(&c.mail.transport, crate::config::MailTransport::Smtp(s)
                        if s.port == 465
                            && s.username.as_deref() == Some("mailer")
                            && s.password.as_ref().is_some_and(|p| p.expose_secret() == SECRET))
                },
            ),
            row(
                &[
                    ("smtp_url", Text("smtp://mail.example.org?tls=starttls")),
                    ("smtp_ca_file", Text("ca.pem")),
                ],
                |c| {
                    matches!(&c.mail.transport, crate::config::MailTransport::Smtp(s)
                        if s.port == 587
                            && s.tls == crate::config::SmtpTls::StartTls
                            && s.ca_pem.is_some())
                },
            ),
            row(&[("mail_dir", Text("outbox"))], |c| {
                matches!(&c.mail.transport, crate::config::MailTransport::Dir(d)
                    if d.as_path() == std::path::Path::new("outbox"))
            }),
            row(&[("mail_from", Text("Gate <gate@example.org>"))], |c| {
                c.mail.from == "Gate <gate@example.org>"
            }),
            row(&[("secret_key_file", Text("secret.txt"))], |c| {
                c.secret_key
                    .as_ref()
                    .is_some_and(|k| k.expose_secret() == SECRET)
            }),
            Row {
                set: &[("secret_key", Text(SECRET))],
                flag: false,
                holds: |c| {
                    c.secret_key
                        .as_ref()
                        .is_some_and(|k| k.expose_secret() == SECRET)
                },
            },
        ]
    }

    /// The field names of [`Settings`], from serde's own list (the error for an
    /// unknown field names every known one).
    fn settings_fields() -> Vec<String> {
        let err = toml::from_str::<Settings>("not_a_setting = 1").unwrap_err();
        let message = err.to_string();
        let expected = message.split("expected one of").nth(1).unwrap();
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_setting_is_read_from_its_flag_its_variable_and_the_file() {
        let rows = rows();
        let mut covered: Vec<&str> = rows
            .iter()
            .flat_map(|r| r.set.iter().map(|s| s.0))
            .collect();
        covered.sort_unstable();
        covered.dedup();
        let mut known = setting_keys().to_vec();
        known.sort_unstable();
        assert_eq!(
            covered, known,
            "a setting without a row, or a row without a setting"
        );
        let mut fields = settings_fields();
        fields.sort_unstable();
        assert_eq!(fields, known, "the keys and the Settings struct disagree");

        for row in &rows {
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.create_file("secret.txt", SECRET)?;
                jail.create_file(
                    "ca.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                )?;
                let defaults = serve(&[]).resolve().unwrap();
                assert!(
                    !(row.holds)(&defaults),
                    "{:?} holds by default",
                    row.set[0].0
                );
                if row.flag {
                    let args: Vec<String> = row.set.iter().flat_map(|(n, v)| v.flag(n)).collect();
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let config = serve(&args).resolve().unwrap();
                    assert!((row.holds)(&config), "flag {args:?} not read");
                }
                for (name, value) in row.set {
                    jail.set_env(format!("GATEHOUSE_{}", name.to_uppercase()), value.env());
                }
                let config = serve(&[]).resolve().unwrap();
                assert!(
                    (row.holds)(&config),
                    "environment for {:?} not read",
                    row.set
                );
                jail.clear_env();
                let file: String = row
                    .set
                    .iter()
                    .map(|(n, v)| format!("{n} = {}\n", v.toml()))
                    .collect();
                jail.create_file("gatehouse.toml", &file)?;
                let config = serve(&["--config", "gatehouse.toml"]).resolve().unwrap();
                assert!((row.holds)(&config), "file {file:?} not read");
                Ok(())
            });
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "gatehouse.toml",
                "listen = \"127.0.0.1:9000\"\ndb = \"mem://\"\nscrypt_log_n = 12\n\
                 cookie_domain = \".Example.com\"\nscrypt_r = 4\n",
            )?;
            jail.set_env("GATEHOUSE_SCRYPT_LOG_N", "11");
            jail.set_env("GATEHOUSE_LISTEN", "127.0.0.1:9050");
            jail.set_env("GATEHOUSE_CONFIG", "gatehouse.toml");
            // Not settings of serve: ignored, not refused.
            jail.set_env("GATEHOUSE_LOG_FORMAT", "json");
            let config = serve(&["--listen", "127.0.0.1:9100"]).resolve().unwrap();
            assert_eq!(config.listen.port(), 9100, "flag over environment");
            assert_eq!(config.hashing.params.log_n, 11, "environment over file");
            assert_eq!(config.hashing.params.r, 4, "file over default");
            assert_eq!(config.db_url, "mem://");
            assert_eq!(config.hashing.params.p, 3, "default");
            assert_eq!(config.cookie_domain.as_deref(), Some("example.com"));
            assert_eq!(config.public_url.as_str(), "http://127.0.0.1:9100/");
            // `gatehouse` alone: the same, without flags.
            let config = Settings::default().resolve().unwrap();
            assert_eq!(config.listen.port(), 9050);
            // The flag that motivated all this: --insecure-cookies is never dropped.
            jail.clear_env();
            let config = serve(&["--insecure-cookies"]).resolve().unwrap();
            assert!(config.insecure_cookies && !config.secure_cookies());
            Ok(())
        });
    }

    #[test]
    fn proxy_settings_are_parsed_and_checked() {
        Jail::expect_with(|jail| {
            jail.clear_env();
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
            let allowed = |url: &str| config.origins().allow(&url.parse().unwrap());
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
            Ok(())
        });
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("bad.toml", "listne = \"x\"\n")?;
            let err = serve(&["--config", "bad.toml"]).resolve().unwrap_err();
            assert!(err.to_string().contains("listne"), "{err}");
            let err = serve(&["--config", "missing.toml"]).resolve().unwrap_err();
            assert!(err.to_string().contains("missing.toml"), "{err}");
            let err = serve(&["--scrypt-log-n", "40"]).resolve().unwrap_err();
            assert!(err.to_string().contains("scrypt"), "{err}");
            let err = serve(&["--public-url", "ftp://example.com"])
                .resolve()
                .unwrap_err();
            assert!(err.to_string().contains("public-url"), "{err}");
            jail.set_env("GATEHOUSE_INSECURE_COOKIES", "maybe");
            let err = serve(&[]).resolve().unwrap_err();
            assert!(err.to_string().contains("maybe"), "{err}");
            jail.set_env("GATEHOUSE_INSECURE_COOKIES", "0");
            assert!(!serve(&[]).resolve().unwrap().insecure_cookies);
            let err = serve(&[
                "--listen",
                "127.0.0.1:9000",
                "--metrics-listen",
                "127.0.0.1:9000",
            ])
            .resolve()
            .unwrap_err();
            assert!(err.to_string().contains("metrics-listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_never_printed() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GATEHOUSE_SECRET_KEY", SECRET);
            jail.set_env("GATEHOUSE_DB_PASSWORD", "hunter2-db");
            jail.set_env("GATEHOUSE_DB_USER", "root");
            let settings = serve(&[]).merged().unwrap();
            let config = settings_debug_and_check(settings);
            let printed = crate::cli::printed::print_config(&config, &settings_of_env())
                .expect("the settings print");
            for shown in [format!("{config:?}"), printed.clone()] {
                assert!(
                    !shown.contains(SECRET) && !shown.contains("hunter2-db"),
                    "{shown}"
                );
            }
            assert!(printed.contains("# secret_key is set"), "{printed}");
            assert!(printed.contains("# db_password is set"), "{printed}");
            Ok(())
        });
    }

    #[test]
    fn a_short_secret_key_is_refused_whatever_its_source() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GATEHOUSE_SECRET_KEY", "short");
            let err = serve(&[]).resolve().unwrap_err();
            assert!(err.to_string().contains("shorter than 32"), "{err}");
            jail.clear_env();
            jail.create_file(
                "gatehouse.toml",
                "secret_key = \"0123456789abcdef0123456789abcde\"",
            )?;
            let err = serve(&["--config", "gatehouse.toml"])
                .resolve()
                .unwrap_err();
            assert!(err.to_string().contains("shorter than 32"), "{err}");
            jail.create_file("key.txt", "short\n")?;
            let err = serve(&["--secret-key-file", "key.txt"])
                .resolve()
                .unwrap_err();
            assert!(err.to_string().contains("shorter than 32"), "{err}");
            jail.set_env("GATEHOUSE_SECRET_KEY", SECRET);
            assert!(serve(&[]).resolve().unwrap().secret_key.is_some());
            Ok(())
        });
    }

    fn settings_of_env() -> Settings {
        serve(&[]).merged().unwrap()
    }

    fn settings_debug_and_check(settings: Settings) -> Config {
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("hunter2-db"),
            "{shown}"
        );
        settings.check().unwrap()
    }
}
