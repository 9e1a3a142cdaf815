//! The server's settings, once resolved from flags, environment and file
//! (see [`crate::cli`]). Everything here has a safe default.

use std::net::SocketAddr;

use domain::{GroupName, HashParams};
use ipnet::IpNet;
use poem::http::HeaderName;
use secrecy::SecretString;
use storage::{DbCredentials, ThrottlePolicy};
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where operator-only routes (`/metrics`) are served; off when `None`. Never on
    /// `listen`: behind a proxy on the same host every request comes from loopback.
    pub metrics_listen: Option<SocketAddr>,
    pub db_url: String,
    pub db_credentials: Option<DbCredentials>,
    /// Where users reach gatehouse; its host is the one `next` URLs may point at.
    pub public_url: Url,
    /// Plain-HTTP development only: drops `Secure` and the `__Host-` prefix.
    pub insecure_cookies: bool,
    /// Set for single sign-on across subdomains (`example.com` covers `*.example.com`).
    pub cookie_domain: Option<String>,
    /// Domains (with their subdomains) that return URLs may point at, besides the
    /// public URL's host and the cookie domain. Lowercase, no leading dot; an entry
    /// may name a port (`example.com:8443`) for apps served on another one.
    pub allowed_domains: Vec<String>,
    /// Peers whose `X-Forwarded-*` / `X-Original-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// What `/auth` answers with when a request is allowed.
    pub identity_headers: IdentityHeaders,
    /// Who may create an account.
    pub signup: SignupPolicy,
    /// Members of this group administer users (`admins` by default).
    pub admin_group: GroupName,
    /// Members of these groups must use a second factor.
    pub require_mfa_groups: Vec<GroupName>,
    /// Users whose address is not verified pass neither `/auth` nor the API.
    pub require_verified_email: bool,
    /// When not empty, only addresses at these domains may sign up (lowercase).
    pub signup_domains: Vec<String>,
    /// Where mail goes, if anywhere.
    pub mail: MailSettings,
    pub sessions: SessionPolicy,
    pub hashing: HashingPolicy,
    pub throttle: ThrottleSettings,
    /// Signs CSRF tokens; `None`: generated once and kept in the store.
    pub secret_key: Option<SecretString>,
}

/// Who may sign up: anyone, holders of an invitation, or nobody (accounts then come
/// from an administrator or the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    Open,
    Invite,
    Closed,
}

impl SignupPolicy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Self::Open),
            "invite" => Some(Self::Invite),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }
}

/// The admins' group when none is configured.
pub fn default_admin_group() -> GroupName {
    GroupName::parse("admins").unwrap_or_else(|_| unreachable!("a valid group name"))
}

/// Failed-login throttling, per account (the email tried) and per client address,
/// and wrong second factors per user.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    pub account: ThrottlePolicy,
    pub address: ThrottlePolicy,
    /// Wrong codes and refused passkeys at the second step, per user. A right
    /// password does not clear it (whoever is guessing knows the password).
    pub factor: ThrottlePolicy,
}

impl Default for ThrottleSettings {
    /// An account gets 5 free failures, then waits 2, 4, 8 … s, at most a minute: a
    /// stranger can slow a victim's logins, never lock them out. An address gets 20,
    /// then up to 5 minutes: guessing across many accounts from one place is slow.
    /// Counts are forgotten after 15 minutes without a failure. A user's second
    /// factor gets 5 free wrong answers, then waits 2, 4, 8 … s up to 15 minutes,
    /// counted for a day: at most about a hundred guesses a day at a 6-digit code,
    /// however many addresses and logins the guesser uses.
    fn default() -> Self {
        Self {
            account: ThrottlePolicy {
                free_failures: 5,
                max_delay: 60,
                forget_after: 900,
            },
            address: ThrottlePolicy {
                free_failures: 20,
                max_delay: 300,
                forget_after: 900,
            },
            factor: ThrottlePolicy {
                free_failures: 5,
                max_delay: 900,
                forget_after: 86_400,
            },
        }
    }
}

/// Response headers of an allowed `/auth`, by what they carry (parsed once, as
/// `/auth` sends them on every request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: Vec<HeaderName>,
    pub email: Vec<HeaderName>,
    /// The user's groups, comma-separated (sent even when empty, so an app never
    /// reads a client's value through a proxy that failed to strip it).
    pub groups: Vec<HeaderName>,
    /// How the user logged in: `pwd`, `pwd,otp`, `pwd,recovery`.
    pub factors: Vec<HeaderName>,
    /// `true` or `false`: whether the address was verified. The email headers are
    /// sent empty until it is.
    pub email_verified: Vec<HeaderName>,
}

impl Default for IdentityHeaders {
    /// gatehouse's own names and Authelia's, which many apps already read.
    fn default() -> Self {
        Self {
            user: vec![
                HeaderName::from_static("x-auth-user"),
                HeaderName::from_static("remote-user"),
            ],
            email: vec![
                HeaderName::from_static("x-auth-email"),
                HeaderName::from_static("remote-email"),
            ],
            groups: vec![
                HeaderName::from_static("x-auth-groups"),
                HeaderName::from_static("remote-groups"),
            ],
            factors: vec![HeaderName::from_static("x-auth-factors")],
            email_verified: vec![HeaderName::from_static("x-auth-email-verified")],
        }
    }
}

/// How mail leaves: not at all, into a folder of `.eml` files, or to an SMTP server;
/// or, for the command line, into the store's outbox for the server to send (the
/// CLI sends nothing itself, and a server without mail leaves it there).
#[derive(Debug, Clone, Default)]
pub enum MailTransport {
    #[default]
    None,
    Dir(std::path::PathBuf),
    Smtp(SmtpSettings),
    Outbox,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://HOST:PORT`: plain, for a relay on this host or a private network.
    None,
    /// `smtp://HOST:PORT?tls=starttls`: plain, then upgraded; refused if the server
    /// does not offer STARTTLS.
    StartTls,
    /// `smtps://HOST:PORT`: TLS from the first byte.
    Implicit,
}

/// `--smtp-url` (with its credentials), `--smtp-password-file`, `--smtp-ca-file`.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Extra trusted roots (PEM) beside the system's, for a private CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl SmtpSettings {
    /// A plain relay at `host:port`.
    pub fn relay(host: &str, port: u16) -> Self {
        Self {
            host: host.to_owned(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            ca_pem: None,
        }
    }

    /// The URL with the password left out, for `--print-config` and logs.
    pub fn redacted_url(&self) -> String {
        let scheme = if self.tls == SmtpTls::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        let user = match (&self.username, &self.password) {
            (Some(user), Some(_)) => format!("{user}:***@"),
            (Some(user), None) => format!("{user}@"),
            _ => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let query = if self.tls == SmtpTls::StartTls {
            "?tls=starttls"
        } else {
            ""
        };
        format!("{scheme}://{user}{host}:{}{query}", self.port)
    }

    /// Reads `--smtp-url` and its companions; every mistake is reported at start.
    pub fn check(
        url: &Url,
        password_file: Option<&std::path::Path>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let shown = {
            let mut shown = url.clone();
            if shown.password().is_some() {
                let _ = shown.set_password(Some("***"));
            }
            shown
        };
        let mut starttls = false;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "starttls") => starttls = true,
                ("tls", "none") => {}
                _ => {
                    return Err(format!(
                        "--smtp-url {shown}: unknown option {key}={value} (only tls=starttls)"
                    ));
                }
            }
        }
        let tls = match (url.scheme(), starttls) {
            ("smtp", false) => SmtpTls::None,
            ("smtp", true) => SmtpTls::StartTls,
            ("smtps", false) => SmtpTls::Implicit,
            ("smtps", true) => {
                return Err(format!(
                    "--smtp-url {shown}: smtps:// is TLS from the start; tls=starttls is for smtp://"
                ));
            }
            (other, _) => {
                return Err(format!(
                    "--smtp-url {shown}: {other}:// is not a mail URL: use smtp://HOST:PORT \
                     (plain), smtp://HOST:PORT?tls=starttls or smtps://HOST:PORT"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("--smtp-url {shown}: no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port().unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        });
        let decode = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("--smtp-url {shown}: the credentials are not UTF-8"))
        };
        let username = match url.username() {
            "" => None,
            user => Some(decode(user)?),
        };
        let mut password = match url.password() {
            Some(raw) => Some(SecretString::from(decode(raw)?)),
            None => None,
        };
        if let Some(path) = password_file {
            if password.is_some() {
                return Err(
                    "--smtp-password-file and a password in --smtp-url: give one".to_owned(),
                );
            }
            let secret = std::fs::read_to_string(path)
                .map_err(|e| format!("--smtp-password-file {}: {e}", path.display()))?;
            password = Some(SecretString::from(secret.trim_end_matches(['\r', '\n'])));
        }
        if password.is_some() && username.is_none() {
            return Err(format!(
                "--smtp-url {shown}: a password needs a user (smtp://USER@HOST)"
            ));
        }
        if password.is_some() && tls == SmtpTls::None && !is_loopback_url(url) {
            return Err(format!(
                "--smtp-url {shown}: credentials would cross the network in clear text; \
                 use ?tls=starttls or smtps://"
            ));
        }
        let ca_pem = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--smtp-ca-file {}: {e}", path.display()))?;
                let found = String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----");
                if !found || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
                    return Err(format!(
                        "--smtp-ca-file {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                if tls == SmtpTls::None {
                    return Err("--smtp-ca-file is for a TLS connection: add ?tls=starttls \
                                or use smtps://"
                        .to_owned());
                }
                Some(pem)
            }
            None => None,
        };
        Ok(Self {
            host,
            port,
            tls,
            username,
            password,
            ca_pem,
        })
    }
}

/// Whether `url`'s host is this machine: a development run (where open signup is
/// a safe default), or a mail relay a plain connection never leaves it for.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // A URL of a scheme the URL standard does not know (`smtp://`) keeps its host
        // opaque: an address comes back as a domain.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// `--smtp-url`, `--mail-dir`, `--mail-from`.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// `Name <address>` or an address.
    pub from: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransport::None,
            from: "gatehouse@localhost".into(),
        }
    }
}

/// Where mail settings come from (the flags of `serve`).
#[derive(Debug, Default)]
pub struct MailSources<'a> {
    pub smtp_url: Option<&'a Url>,
    pub smtp_password_file: Option<&'a std::path::Path>,
    pub smtp_ca_file: Option<&'a std::path::Path>,
    pub mail_dir: Option<&'a std::path::Path>,
    pub from: Option<&'a str>,
}

impl MailSettings {
    pub fn enabled(&self) -> bool {
        !matches!(self.transport, MailTransport::None)
    }

    pub fn check(sources: &MailSources<'_>, public_url: &Url) -> Result<Self, String> {
        let transport = match (sources.smtp_url, sources.mail_dir) {
            (Some(_), Some(_)) => {
                return Err(
                    "--smtp-url and --mail-dir are two ways to send mail: choose one".into(),
                );
            }
            (Some(url), None) => MailTransport::Smtp(SmtpSettings::check(
                url,
                sources.smtp_password_file,
                sources.smtp_ca_file,
            )?),
            (None, Some(dir)) => MailTransport::Dir(dir.to_owned()),
            (None, None) => MailTransport::None,
        };
        if !matches!(transport, MailTransport::Smtp(_))
            && (sources.smtp_password_file.is_some() || sources.smtp_ca_file.is_some())
        {
            return Err("--smtp-password-file and --smtp-ca-file go with --smtp-url".into());
        }
        let from = match sources.from {
            Some(from) => from.trim().to_owned(),
            None => format!("gatehouse@{}", public_url.host_str().unwrap_or("localhost")),
        };
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "--mail-from {from:?} is not an address (or `Name <address>`)"
            ));
        }
        Ok(Self { transport, from })
    }
}

/// Loopback only: a proxy on the same machine.
pub fn default_trusted_proxies() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// How long sessions last, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: i64,
    /// A session ends this long after login, however active.
    pub lifetime: i64,
    /// The lifetime of a "remember me" session.
    pub remember_lifetime: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: 24 * 3600,
            lifetime: 7 * 24 * 3600,
            remember_lifetime: 30 * 24 * 3600,
        }
    }
}

/// Password hashing: scrypt parameters and how many hashes may run and wait at once.
#[derive(Debug, Clone, Copy)]
pub struct HashingPolicy {
    pub params: HashParams,
    /// Hashes computed at once (each takes 128·r·2^ln bytes of memory).
    pub slots: usize,
    /// Logins allowed to wait for a slot; past that they get 503.
    pub queue: usize,
}

impl Default for HashingPolicy {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            params: HashParams::DEFAULT,
            slots: cores,
            queue: cores * 16,
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Default for Config {
    fn default() -> Self {
        let listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        Self {
            listen,
            metrics_listen: None,
            db_url: storage::DEFAULT_DB_URL.to_owned(),
            db_credentials: None,
            public_url: default_public_url(listen),
            insecure_cookies: false,
            cookie_domain: None,
            allowed_domains: Vec::new(),
            trusted_proxies: default_trusted_proxies(),
            identity_headers: IdentityHeaders::default(),
            signup: SignupPolicy::Open,
            admin_group: default_admin_group(),
            require_mfa_groups: Vec::new(),
            require_verified_email: false,
            signup_domains: Vec::new(),
            mail: MailSettings::default(),
            sessions: SessionPolicy::default(),
            hashing: HashingPolicy::default(),
            throttle: ThrottleSettings::default(),
            secret_key: None,
        }
    }
}

pub fn default_public_url(listen: SocketAddr) -> Url {
    Url::parse(&format!("http://{listen}/"))
        .unwrap_or_else(|_| Url::parse("http://localhost/").unwrap_or_else(|_| unreachable!()))
}

impl Config {
    /// Cookies carry `Secure` (and, without a domain, the `__Host-` prefix).
    pub fn secure_cookies(&self) -> bool {
        !self.insecure_cookies
    }

    /// Whether `addr` is a proxy whose forwarded headers are believed.
    pub fn is_trusted_proxy(&self, addr: std::net::IpAddr) -> bool {
        let addr = match addr {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&addr))
    }

    /// The origins a return URL may point at: the public URL's, the cookie domain's
    /// and the allowed domains' ([`wire::next::Origins::allow`]).
    pub fn origins(&self) -> wire::next::Origins<'_> {
        wire::next::Origins {
            public_url: &self.public_url,
            cookie_domain: self.cookie_domain.as_deref(),
            allowed_domains: &self.allowed_domains,
        }
    }

    /// The settings in effect, by their names in the TOML file, for
    /// `gatehouse serve --print-config`. Secrets show only whether they are set.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let list = |items: Vec<String>| format!("[{}]", items.join(", "));
        let names =
            |headers: &[HeaderName]| list(headers.iter().map(|h| h.as_str().to_owned()).collect());
        let set = |is_set: bool| if is_set { "<set>" } else { "-" }.to_owned();
        let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        vec![
            ("listen", self.listen.to_string()),
            (
                "metrics_listen",
                optional(self.metrics_listen.map(|a| a.to_string())),
            ),
            ("db", self.db_url.clone()),
            (
                "db_user",
                optional(self.db_credentials.as_ref().map(|c| c.username.clone())),
            ),
            (
                "db_password",
                set(self
                    .db_credentials
                    .as_ref()
                    .is_some_and(|c| !c.password.is_empty())),
            ),
            ("public_url", self.public_url.to_string()),
            ("insecure_cookies", self.insecure_cookies.to_string()),
            ("cookie_domain", optional(self.cookie_domain.clone())),
            ("allowed_domains", list(self.allowed_domains.clone())),
            (
                "trusted_proxies",
                list(
                    self.trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
            ),
            ("auth_user_headers", names(&self.identity_headers.user)),
            ("auth_email_headers", names(&self.identity_headers.email)),
            ("auth_groups_headers", names(&self.identity_headers.groups)),
            (
                "auth_factors_headers",
                names(&self.identity_headers.factors),
            ),
            (
                "auth_email_verified_headers",
                names(&self.identity_headers.email_verified),
            ),
            ("signup", self.signup.as_str().to_owned()),
            ("admin_group", self.admin_group.to_string()),
            (
                "require_verified_email",
                self.require_verified_email.to_string(),
            ),
            ("signup_domains", list(self.signup_domains.clone())),
            (
                "require_mfa_for_groups",
                list(
                    self.require_mfa_groups
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
            ),
            (
                "session_idle_timeout",
                self.sessions.idle_timeout.to_string(),
            ),
            ("session_lifetime", self.sessions.lifetime.to_string()),
            (
                "remember_lifetime",
                self.sessions.remember_lifetime.to_string(),
            ),
            ("scrypt_log_n", self.hashing.params.log_n.to_string()),
            ("scrypt_r", self.hashing.params.r.to_string()),
            ("scrypt_p", self.hashing.params.p.to_string()),
            ("hash_slots", self.hashing.slots.to_string()),
            ("secret_key", set(self.secret_key.is_some())),
            (
                "smtp_url",
                optional(match &self.mail.transport {
                    MailTransport::Smtp(smtp) => Some(smtp.redacted_url()),
                    _ => None,
                }),
            ),
            (
                "mail_dir",
                optional(match &self.mail.transport {
                    MailTransport::Dir(dir) => Some(dir.display().to_string()),
                    _ => None,
                }),
            ),
            ("mail_from", self.mail.from.clone()),
        ]
    }

    /// Whether `email` may sign up under `--signup-domains`.
    pub fn signup_domain_allowed(&self, email: &domain::Email) -> bool {
        self.signup_domains.is_empty()
            || email.as_str().rsplit_once('@').is_some_and(|(_, domain)| {
                self.signup_domains
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(domain))
            })
    }

    /// The cookie of a login waiting for its second factor: always host-only.
    pub fn pending_cookie_name(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-gatehouse_pending"
        } else {
            "gatehouse_pending"
        }
    }

    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies() && self.cookie_domain.is_none() {
            "__Host-gatehouse_session"
        } else {
            "gatehouse_session"
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn smtp(url: &str) -> Result<SmtpSettings, String> {
        SmtpSettings::check(&url.parse().unwrap(), None, None)
    }

    #[test]
    fn smtp_urls_choose_tls_and_default_ports_and_refuse_what_would_leak() {
        let plain = smtp("smtp://relay.internal").unwrap();
        assert_eq!((plain.tls, plain.port), (SmtpTls::None, 25));
        let starttls = smtp("smtp://me%40x.org:p%20w@mail.example.org?tls=starttls").unwrap();
        assert_eq!((starttls.tls, starttls.port), (SmtpTls::StartTls, 587));
        assert_eq!(starttls.username.as_deref(), Some("me@x.org"));
        assert_eq!(starttls.password.unwrap().expose_secret(), "p w");
        let smtps = smtp("smtps://me:pw@[::1]:2465").unwrap();
        assert_eq!(
            (smtps.tls, smtps.port, smtps.host.as_str()),
            (SmtpTls::Implicit, 2465, "::1")
        );
        assert_eq!(smtps.redacted_url(), "smtps://me:***@[::1]:2465");
        // A password on a plain connection only to this machine.
        assert!(smtp("smtp://me:pw@127.0.0.1:25").is_ok());
        assert!(smtp("smtp://me:pw@[::1]:25").is_ok());
        assert!(smtp("smtp://me:pw@localhost:25").is_ok());
        for (url, says) in [
            ("smtp://me:pw@mail.example.org", "clear text"),
            (
                "smtps://mail.example.org?tls=starttls",
                "TLS from the start",
            ),
            ("http://mail.example.org", "not a mail URL"),
            ("smtp://:pw@mail.example.org?tls=starttls", "needs a user"),
            ("smtp://mail.example.org?tls=maybe", "unknown option"),
        ] {
            let err = smtp(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains(":pw@"), "{url}: the password shown: {err}");
        }
    }
}
