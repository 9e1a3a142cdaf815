//! The mail settings: how mail leaves (`--smtp-url` and its companions, or
//! `--mail-dir`) and who it is from, each checked at start.

use secrecy::SecretString;
use url::Url;

use super::is_loopback_url;

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

    /// The URL as given less its password: what `--print-config` writes.
    pub fn url_without_password(&self) -> Result<Url, url::ParseError> {
        let scheme = if self.tls == SmtpTls::Implicit {
            "smtps"
        } else {
            "smtp"
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
        let mut url = Url::parse(&format!("{scheme}://{host}:{}{query}", self.port))?;
        if let Some(user) = &self.username {
            // Percent-encoded by `url` as the URL must carry it.
            let _ = url.set_username(user);
        }
        Ok(url)
    }

    /// The URL with the password shown as `***`, for logs.
    pub fn redacted_url(&self) -> String {
        let Ok(mut url) = self.url_without_password() else {
            return format!("{}:{}", self.host, self.port);
        };
        if self.password.is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
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
