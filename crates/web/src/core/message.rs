//! The messages gatehouse sends, composed once with an HTML and a plain-text part
//! saying the same.

use storage::Mail;

/// A message from plain text paragraphs and one link: the HTML part and the text
/// part say the same. (`core` renders no pages, so the HTML part is this one
/// escaped template rather than maud.)
pub fn compose(to: &str, subject: &str, paragraphs: &[&str], link: Option<(&str, &str)>) -> Mail {
    let mut body = String::new();
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>", escape(p)));
    }
    if let Some((label, url)) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p><p>Or copy this address into your browser: {}</p>",
            escape(url),
            escape(label),
            escape(url)
        ));
    }
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        escape(subject)
    );
    let mut text = paragraphs.join("\n\n");
    if let Some((label, url)) = link {
        text.push_str(&format!("\n\n{label}: {url}"));
    }
    text.push('\n');
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A notice about the account to its owner, queued in the outbox when this
/// gatehouse sends mail (`mail_enabled`); a failure to queue is logged, never
/// the caller's problem.
pub async fn notify(
    store: &storage::Store,
    mail_enabled: bool,
    user: &domain::User,
    subject: &str,
    what: &str,
) {
    if !mail_enabled {
        return;
    }
    let mail = compose(
        user.email.as_str(),
        subject,
        &[
            &format!("{what} (account {}).", user.username),
            "If this was not you, change your password and tell an administrator.",
        ],
        None,
    );
    if let Err(err) = store.enqueue_mail(&mail).await {
        tracing::warn!(error = %err, user = %user.username, "cannot queue a notice");
    }
}
