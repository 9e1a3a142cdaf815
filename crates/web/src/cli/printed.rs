//! `gatehouse serve --print-config`: the settings in effect written back as the
//! TOML file [`Settings`] reads — every key by its serde name, defaults filled
//! in — so the output can be kept as a configuration file and gives the same
//! [`Config`] (a test reads it back). Secrets are never printed: a comment says
//! which are set.

use super::Settings;
use crate::config::{Config, MailTransport};
use poem::http::HeaderName;

impl Settings {
    /// The settings that give `config`: [`Settings::check`] read backwards. The
    /// files it was read from are not in a `Config`; they are `given`'s (the merged
    /// sources), secrets are left out. Every field is written here, with no
    /// `..Default::default()`, so a new setting cannot be forgotten.
    pub fn of(config: &Config, given: &Settings) -> Result<Settings, url::ParseError> {
        let strings = |items: &[String]| Some(items.to_vec());
        let shown = |items: Vec<String>| Some(items);
        let headers =
            |names: &[HeaderName]| Some(names.iter().map(|h| h.as_str().to_owned()).collect());
        let (smtp_url, mail_dir) = match &config.mail.transport {
            MailTransport::Smtp(smtp) => (Some(smtp.url_without_password()?), None),
            MailTransport::Dir(dir) => (None, Some(dir.clone())),
            MailTransport::None | MailTransport::Outbox => (None, None),
        };
        Ok(Settings {
            listen: Some(config.listen),
            metrics_listen: config.metrics_listen,
            db: Some(config.db_url.clone()),
            db_user: config.db_credentials.as_ref().map(|c| c.username.clone()),
            db_password: None,
            public_url: Some(config.public_url.clone()),
            insecure_cookies: Some(config.insecure_cookies),
            cookie_domain: config.cookie_domain.clone(),
            allowed_domains: strings(&config.allowed_domains),
            trusted_proxies: shown(
                config
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            auth_user_headers: headers(&config.identity_headers.user),
            auth_email_headers: headers(&config.identity_headers.email),
            auth_groups_headers: headers(&config.identity_headers.groups),
            auth_factors_headers: headers(&config.identity_headers.factors),
            auth_email_verified_headers: headers(&config.identity_headers.email_verified),
            signup: Some(config.signup.as_str().to_owned()),
            admin_group: Some(config.admin_group.to_string()),
            require_mfa_for_groups: shown(
                config
                    .require_mfa_groups
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            require_verified_email: Some(config.require_verified_email),
            signup_domains: strings(&config.signup_domains),
            session_idle_timeout: Some(config.sessions.idle_timeout),
            session_lifetime: Some(config.sessions.lifetime),
            remember_lifetime: Some(config.sessions.remember_lifetime),
            scrypt_log_n: Some(config.hashing.params.log_n),
            scrypt_r: Some(config.hashing.params.r),
            scrypt_p: Some(config.hashing.params.p),
            hash_slots: Some(config.hashing.slots),
            secret_key_file: given.secret_key_file.clone(),
            smtp_url,
            smtp_password_file: given.smtp_password_file.clone(),
            smtp_ca_file: given.smtp_ca_file.clone(),
            mail_dir,
            mail_from: Some(config.mail.from.clone()),
            config: None,
            print_config: false,
            secret_key: None,
        })
    }
}

/// What `--print-config` prints for `config`, read from the sources `given`.
pub fn print_config(config: &Config, given: &Settings) -> anyhow::Result<String> {
    let mut out = String::from(
        "# gatehouse: the settings in effect (defaults filled in); usable as --config FILE\n",
    );
    let db_password = config
        .db_credentials
        .as_ref()
        .is_some_and(|c| !c.password.is_empty());
    let smtp_password = match &config.mail.transport {
        MailTransport::Smtp(smtp) => smtp.password.is_some() && given.smtp_password_file.is_none(),
        _ => false,
    };
    let key_given = given.secret_key_file.is_none() && config.secret_key.is_some();
    for (set, line) in [
        (db_password, "# db_password is set (not printed)"),
        (
            smtp_password,
            "# the SMTP password in smtp_url is set (not printed)",
        ),
        (key_given, "# secret_key is set (not printed)"),
    ] {
        if set {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&toml::to_string(&Settings::of(config, given)?)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use figment::Jail;

    use super::*;
    use crate::cli::setting_keys;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-printed";

    /// Every setting away from its default (the file names are checked at start,
    /// so they exist in the jail).
    const EVERY_KEY: &str = r#"
listen = "127.0.0.1:9100"
metrics_listen = "127.0.0.1:9101"
db = "mem://"
db_user = "root"
db_password = "hunter2-db"
public_url = "https://auth.example.test/"
insecure_cookies = true
cookie_domain = "example.test"
allowed_domains = ["apps.example.test"]
trusted_proxies = ["10.0.0.0/8", "192.168.1.1/32"]
auth_user_headers = ["X-Auth-User", "X-User"]
auth_email_headers = ["X-Email"]
auth_groups_headers = ["X-Groups"]
auth_factors_headers = ["X-Factors"]
auth_email_verified_headers = ["X-Verified"]
signup = "invite"
admin_group = "staff"
require_mfa_for_groups = ["ops", "root"]
require_verified_email = true
signup_domains = ["example.test"]
session_idle_timeout = 100
session_lifetime = 200
remember_lifetime = 300
scrypt_log_n = 4
scrypt_r = 2
scrypt_p = 1
hash_slots = 3
secret_key_file = "key.txt"
smtp_url = "smtp://me%40x.org:pw-smtp@mail.example.test:2525?tls=starttls"
mail_from = "Gate <gate@example.test>"
"#;

    fn printed(file: &str) -> String {
        let given = Settings {
            config: Some(file.into()),
            ..Settings::default()
        }
        .merged()
        .unwrap();
        let config = given.clone().check().unwrap();
        print_config(&config, &given).unwrap()
    }

    fn settings_lines(printed: &str) -> Vec<&str> {
        printed.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_printed_configuration_is_a_file_that_gives_the_same_settings() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("key.txt", SECRET)?;
            jail.create_file("every.toml", EVERY_KEY)?;
            let first = printed("every.toml");
            // Every key is written, by its name in the file, with the value given,
            // but for those that must not or cannot be: secrets, and the mail folder
            // that excludes SMTP (the second case below has it).
            for key in setting_keys() {
                let exempt = [
                    "db_password",
                    "secret_key",
                    "mail_dir",
                    "smtp_password_file",
                    "smtp_ca_file",
                ];
                assert!(
                    exempt.contains(key)
                        || first.lines().any(|l| l.starts_with(&format!("{key} = "))),
                    "{key} missing from\n{first}"
                );
            }
            for line in [
                "scrypt_log_n = 4",
                "signup = \"invite\"",
                "trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1/32\"]",
                "require_mfa_for_groups = [\"ops\", \"root\"]",
                "secret_key_file = \"key.txt\"",
                "smtp_url = \"smtp://me%40x.org@mail.example.test:2525?tls=starttls\"",
                "insecure_cookies = true",
            ] {
                assert!(first.lines().any(|l| l == line), "{line} not in\n{first}");
            }
            for secret in [SECRET, "hunter2-db", "pw-smtp"] {
                assert!(!first.contains(secret), "{secret} printed:\n{first}");
            }
            for comment in [
                "# db_password is set",
                "# the SMTP password in smtp_url is set",
            ] {
                assert!(first.contains(comment), "{comment} not in\n{first}");
            }
            // Read back as the file it claims to be: the same settings again.
            jail.create_file("printed.toml", &first)?;
            let second = printed("printed.toml");
            assert_eq!(settings_lines(&first), settings_lines(&second));

            jail.create_file("dir.toml", "mail_dir = \"outbox\"\n")?;
            let dir = printed("dir.toml");
            assert!(dir.lines().any(|l| l == "mail_dir = \"outbox\""), "{dir}");
            assert!(!dir.contains("smtp_url"), "{dir}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_secret_key_from_the_environment_is_said_to_be_set_not_printed() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GATEHOUSE_SECRET_KEY", SECRET);
            jail.create_file("empty.toml", "")?;
            let out = printed("empty.toml");
            assert!(!out.contains(SECRET), "{out}");
            assert!(out.contains("# secret_key is set (not printed)"), "{out}");
            assert!(!out.contains("secret_key ="), "{out}");
            Ok(())
        });
    }
}
