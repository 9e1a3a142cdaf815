//! [`Settings::check`]: the merged settings read into a [`Config`], every
//! mistake refused at start with the setting's name and why.

use std::path::Path;

use domain::HashParams;
use secrecy::{ExposeSecret, SecretString};

use super::settings::{ConfigError, Settings};
use crate::config::{
    Config, HashingPolicy, IdentityHeaders, SessionPolicy, SignupPolicy, default_public_url,
    default_trusted_proxies,
};
use crate::core::records::DbCredentials;

/// A secret key from `file`, else from the environment variable `var`; `None`
/// when neither is given. At least 32 characters, like `serve`'s.
pub fn secret_key_from(
    file: Option<&Path>,
    var: &str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(path) = file {
        return read_secret(path).map(Some);
    }
    match std::env::var(var) {
        Ok(secret) if !secret.is_empty() => checked_secret(&secret, var).map(Some),
        _ => Ok(None),
    }
}

impl Settings {
    /// Checks the merged settings and fills in the defaults.
    pub fn check(self) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let listen = self.listen.unwrap_or(defaults.listen);
        let public_url = self
            .public_url
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
                .unwrap_or(session_defaults.idle_timeout),
            lifetime: self.session_lifetime.unwrap_or(session_defaults.lifetime),
            remember_lifetime: self
                .remember_lifetime
                .unwrap_or(session_defaults.remember_lifetime),
        };
        if sessions.idle_timeout <= 0 || sessions.lifetime <= 0 || sessions.remember_lifetime <= 0 {
            return Err(ConfigError::Invalid(
                "session timeouts and lifetimes must be positive numbers of seconds".into(),
            ));
        }
        let params = HashParams {
            log_n: self.scrypt_log_n.unwrap_or(HashParams::DEFAULT.log_n),
            r: self.scrypt_r.unwrap_or(HashParams::DEFAULT.r),
            p: self.scrypt_p.unwrap_or(HashParams::DEFAULT.p),
        };
        domain::PasswordHasher::new(params).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let slots = self
            .hash_slots
            .unwrap_or(HashingPolicy::default().slots)
            .max(1);
        let cookie_domain = self
            .cookie_domain
            .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
        let allowed_domains = self
            .allowed_domains
            .unwrap_or_default()
            .iter()
            .map(|d| parse_domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_proxies = match self.trusted_proxies {
            Some(list) => list
                .iter()
                .map(|net| parse_network(net))
                .collect::<Result<Vec<_>, _>>()?,
            None => default_trusted_proxies(),
        };
        let header_defaults = IdentityHeaders::default();
        let mut user_headers = match self.auth_user_headers {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.user,
        };
        if !user_headers
            .iter()
            .any(|h| h == crate::http::identity::X_AUTH_USER)
        {
            user_headers.insert(
                0,
                poem::http::HeaderName::from_static(crate::http::identity::X_AUTH_USER),
            );
        }
        let email_headers = match self.auth_email_headers {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.email,
        };
        let groups_headers = match self.auth_groups_headers {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.groups,
        };
        let factors_headers = match self.auth_factors_headers {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.factors,
        };
        let email_verified_headers = match self.auth_email_verified_headers {
            Some(list) => parse_header_names(&list)?,
            None => header_defaults.email_verified,
        };
        let signup = match self.signup.as_deref() {
            Some(raw) => SignupPolicy::parse(raw).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "--signup must be open, invite or closed, not {raw:?}"
                ))
            })?,
            None if crate::config::is_loopback_url(&public_url) => SignupPolicy::Open,
            None => {
                return Err(ConfigError::Invalid(format!(
                    "gatehouse serves {public_url} beyond this machine: choose who may sign up \
                     with --signup open|invite|closed (GATEHOUSE_SIGNUP, or signup = \"…\" in \
                     the file). `invite` lets in only holders of `gatehouse invite create` links."
                )));
            }
        };
        let admin_group = match self.admin_group.as_deref() {
            Some(raw) => domain::GroupName::parse(raw)
                .map_err(|e| ConfigError::Invalid(format!("--admin-group {raw:?}: {e}")))?,
            None => crate::config::default_admin_group(),
        };
        let require_mfa_groups = self
            .require_mfa_for_groups
            .unwrap_or_default()
            .iter()
            .map(|g| {
                domain::GroupName::parse(g).map_err(|e| {
                    ConfigError::Invalid(format!("--require-mfa-for-groups {g:?}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mail = crate::config::MailSettings::check(
            &crate::config::MailSources {
                smtp_url: self.smtp_url.as_ref(),
                smtp_password_file: self.smtp_password_file.as_deref(),
                smtp_ca_file: self.smtp_ca_file.as_deref(),
                mail_dir: self.mail_dir.as_deref(),
                from: self.mail_from.as_deref(),
            },
            &public_url,
        )
        .map_err(ConfigError::Invalid)?;
        let require_verified_email = self.require_verified_email.unwrap_or(false);
        if require_verified_email && !mail.enabled() {
            return Err(ConfigError::Invalid(
                "--require-verified-email needs mail to send the links: add --smtp-url (or \
                 --mail-dir)"
                    .into(),
            ));
        }
        let signup_domains = self
            .signup_domains
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let domain = d.trim().trim_start_matches('@').to_ascii_lowercase();
                let valid = !domain.is_empty()
                    && domain.contains('.')
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                valid.then_some(domain).ok_or_else(|| {
                    ConfigError::Invalid(format!("--signup-domains {d:?}: not a domain"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !signup_domains.is_empty() && !require_verified_email {
            return Err(ConfigError::Invalid(
                "--signup-domains limits sign-up by address, which means something only once \
                 the address is proven: add --require-verified-email"
                    .into(),
            ));
        }
        let secret_key = match (self.secret_key_file, self.secret_key) {
            (Some(path), _) => Some(read_secret(&path)?),
            (None, Some(secret)) if !secret.expose_secret().is_empty() => Some(checked_secret(
                secret.expose_secret(),
                "GATEHOUSE_SECRET_KEY or secret_key",
            )?),
            (None, _) => None,
        };
        if self.metrics_listen.is_some_and(|m| m == listen) {
            return Err(ConfigError::Invalid(
                "--metrics-listen must differ from --listen: /metrics is never public".into(),
            ));
        }
        let db_credentials = self.db_user.map(|username| DbCredentials {
            username,
            password: self
                .db_password
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
        });
        Ok(Config {
            listen,
            metrics_listen: self.metrics_listen,
            db_url: self
                .db
                .unwrap_or_else(|| crate::core::records::DEFAULT_DB_URL.to_owned()),
            db_credentials,
            public_url,
            insecure_cookies: self.insecure_cookies.unwrap_or(false),
            cookie_domain,
            allowed_domains,
            trusted_proxies,
            identity_headers: IdentityHeaders {
                user: user_headers,
                email: email_headers,
                groups: groups_headers,
                factors: factors_headers,
                email_verified: email_verified_headers,
            },
            signup,
            admin_group,
            require_mfa_groups,
            require_verified_email,
            signup_domains,
            mail,
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

fn read_secret(path: &Path) -> Result<SecretString, ConfigError> {
    let secret = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    checked_secret(secret.trim(), &path.display().to_string())
}

/// The secret key, whatever its source (`source` names it in the refusal): at
/// least 32 characters, since it signs CSRF tokens and seals second factors.
fn checked_secret(secret: &str, source: &str) -> Result<SecretString, ConfigError> {
    if secret.chars().count() < 32 {
        return Err(ConfigError::Invalid(format!(
            "the secret key in {source} is shorter than 32 characters"
        )));
    }
    Ok(SecretString::from(secret))
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
