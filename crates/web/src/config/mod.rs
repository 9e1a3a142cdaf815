//! The server's settings, once resolved from flags, environment and file
//! (see [`crate::cli`]). Everything here has a safe default.

use std::net::SocketAddr;

use domain::{GroupName, HashParams};
use ipnet::IpNet;
use poem::http::HeaderName;
use secrecy::SecretString;
use storage::{DbCredentials, ThrottlePolicy};
use url::Url;

mod mail;

pub use mail::{MailSettings, MailSources, MailTransport, SmtpSettings, SmtpTls};

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
