//! The server's settings, once resolved from flags, environment and file
//! (see [`crate::cli`]). Everything here has a safe default.

use std::net::SocketAddr;

use domain::HashParams;
use storage::DbCredentials;
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db_url: String,
    pub db_credentials: Option<DbCredentials>,
    /// Where users reach gatehouse; its host is the one `next` URLs may point at.
    pub public_url: Url,
    /// Plain-HTTP development only: drops `Secure` and the `__Host-` prefix.
    pub insecure_cookies: bool,
    /// Set for single sign-on across subdomains (`example.com` covers `*.example.com`).
    pub cookie_domain: Option<String>,
    pub sessions: SessionPolicy,
    pub hashing: HashingPolicy,
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
            db_url: storage::DEFAULT_DB_URL.to_owned(),
            db_credentials: None,
            public_url: default_public_url(listen),
            insecure_cookies: false,
            cookie_domain: None,
            sessions: SessionPolicy::default(),
            hashing: HashingPolicy::default(),
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

    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies() && self.cookie_domain.is_none() {
            "__Host-gatehouse_session"
        } else {
            "gatehouse_session"
        }
    }
}
