//! Mail, off the request path. A use case puts a message in the store's outbox
//! and answers at once; a sender task on every node claims due messages (one node
//! per message), hands each to the transport, and on failure tries again later
//! (2, 4, 8 … seconds, at most 5 minutes apart). So a slow or dead mail server
//! never delays a page, and a message waiting for it survives a restart.
//!
//! Messages have an HTML and a plain-text part; links are built from
//! `--public-url` only, never from a request's `Host`.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use storage::{Mail, Outgoing};

#[cfg(test)]
use super::message::compose;

use super::services::Services;
use crate::config::{MailSettings, MailTransport, SmtpSettings, SmtpTls};

/// How often the sender looks at the outbox.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two tries of one message.
const MAX_BACKOFF: i64 = 300;

/// Starts the sender (nothing to do without a transport).
pub fn spawn_sender(services: Services) {
    let settings = services.config.mail.clone();
    if matches!(
        settings.transport,
        MailTransport::None | MailTransport::Outbox
    ) {
        return;
    }
    let store = services.store.clone();
    tokio::spawn(async move {
        let smtp = match &settings.transport {
            MailTransport::Smtp(smtp) => match smtp_transport(smtp) {
                Ok(transport) => Some(transport),
                Err(err) => {
                    // Checked at start; a failure here leaves every message queued.
                    tracing::error!(error = %err, "cannot set up the SMTP transport");
                    return;
                }
            },
            _ => None,
        };
        let mut interval = tokio::time::interval(POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = storage::now();
            let due = match store.claim_mail(now, 20).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the outbox");
                    continue;
                }
            };
            for mut outgoing in due {
                let request = match outgoing.kind.as_deref() {
                    Some("reset") => {
                        Some(super::reset::link_mail(&services, &outgoing.mail.to).await)
                    }
                    Some("verify") => {
                        Some(super::verify::link_mail(&services, &outgoing.mail.to).await)
                    }
                    _ => None,
                };
                if let Some(made) = request {
                    match made {
                        Ok(Some(mail)) => outgoing.mail = mail,
                        Ok(None) => {
                            // No account for the link: nothing to send.
                            if let Err(err) = store.mail_sent(&outgoing.id).await {
                                tracing::warn!(error = %err, "cannot update the outbox");
                            }
                            continue;
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot make a link");
                            let _ = store
                                .mail_failed(
                                    &outgoing.id,
                                    now + backoff(outgoing.attempts),
                                    &err.to_string(),
                                )
                                .await;
                            continue;
                        }
                    }
                }
                let result = send(&settings, smtp.as_ref(), &outgoing).await;
                let stored = match result {
                    Ok(()) => {
                        tracing::info!(event = "mail_sent", id = %outgoing.id, attempts = outgoing.attempts + 1);
                        store.mail_sent(&outgoing.id).await
                    }
                    Err(err) => {
                        let wait = backoff(outgoing.attempts);
                        tracing::warn!(event = "mail_failed", id = %outgoing.id, attempts = outgoing.attempts + 1, retry_in = wait, error = %err);
                        store.mail_failed(&outgoing.id, now + wait, &err).await
                    }
                };
                if let Err(err) = stored {
                    tracing::warn!(error = %err, "cannot update the outbox");
                }
            }
        }
    });
}

/// The SMTP client `settings` describe: TLS (STARTTLS required, or from the first
/// byte) verified against the system's roots and `--smtp-ca-file`'s, and AUTH when
/// a user is given.
pub fn smtp_transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(Duration::from_secs(10)));
    if settings.tls != SmtpTls::None {
        let mut tls = TlsParameters::builder(settings.host.clone());
        if let Some(pem) = &settings.ca_pem {
            tls = tls.add_root_certificate(Certificate::from_pem(pem).map_err(|e| e.to_string())?);
        }
        let tls = tls.build_rustls().map_err(|e| e.to_string())?;
        builder = builder.tls(match settings.tls {
            SmtpTls::Implicit => Tls::Wrapper(tls),
            _ => Tls::Required(tls),
        });
    }
    if let Some(user) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// Seconds before try number `attempts + 2`.
fn backoff(attempts: i64) -> i64 {
    2i64.saturating_pow(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16) + 1)
        .min(MAX_BACKOFF)
}

async fn send(
    settings: &MailSettings,
    smtp: Option<&AsyncSmtpTransport<Tokio1Executor>>,
    outgoing: &Outgoing,
) -> Result<(), String> {
    let message = message(settings, &outgoing.mail)?;
    match (&settings.transport, smtp) {
        (MailTransport::Smtp(_), Some(smtp)) => smtp
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (MailTransport::Dir(dir), _) => {
            let path = dir.join(format!("{}.eml", outgoing.id));
            let partial = dir.join(format!(".{}.eml.part", outgoing.id));
            // Written aside, then renamed: a reader never sees half a message.
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| e.to_string())?;
            tokio::fs::write(&partial, message.formatted())
                .await
                .map_err(|e| e.to_string())?;
            tokio::fs::rename(&partial, &path)
                .await
                .map_err(|e| e.to_string())
        }
        _ => Err("no mail transport".to_owned()),
    }
}

fn message(settings: &MailSettings, mail: &Mail) -> Result<Message, String> {
    let from: Mailbox = settings.from.parse().map_err(|e| format!("from: {e}"))?;
    let to: Mailbox = mail.to.parse().map_err(|e| format!("to: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert_eq!(
            (0..10).map(backoff).collect::<Vec<_>>(),
            [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        );
    }

    #[test]
    fn a_message_has_a_text_part_saying_what_the_html_says() {
        let mail = compose(
            "ann@example.com",
            "Hello",
            &["One <b>two</b>."],
            Some(("Open", "https://auth.example.com/x?a=1&b=2")),
        );
        assert!(mail.text.contains("One <b>two</b>."));
        assert!(
            mail.text
                .contains("Open: https://auth.example.com/x?a=1&b=2")
        );
        assert!(mail.html.contains("One &lt;b&gt;two&lt;/b&gt;."));
        assert!(
            mail.html
                .contains("href=\"https://auth.example.com/x?a=1&amp;b=2\"")
        );
        let settings = MailSettings::default();
        let formatted = String::from_utf8(message(&settings, &mail).unwrap().formatted()).unwrap();
        assert!(formatted.contains("text/plain") && formatted.contains("text/html"));
    }
}
