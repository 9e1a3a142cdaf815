//! A strict reader for `application/x-www-form-urlencoded` bodies.
//!
//! Stricter than serde forms on purpose: each form names the fields it accepts, and
//! anything else — an unknown or repeated field, invalid percent-encoding, bytes that
//! are not UTF-8, a NUL, a body over 16 KiB — is refused with a message saying what
//! was wrong, before any handler logic runs.

use http::StatusCode;
use percent_encoding::percent_decode;

/// Form bodies larger than this are refused (SPEC §7).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// The hidden field carrying the CSRF token: the CSRF check reads it, every form
/// may hold it, and no handler sees it as one of its fields.
pub const CSRF_FIELD: &str = "csrf";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("Send the form as application/x-www-form-urlencoded.")]
    ContentType,
    #[error("The form is larger than 16 KiB.")]
    TooLarge,
    #[error("The form could not be read: {0}.")]
    Malformed(String),
    #[error("The form has a field '{0}' this page does not take.")]
    UnknownField(String),
    #[error("The form has the field '{0}' more than once.")]
    DuplicateField(String),
    #[error("The form is missing the field '{0}'.")]
    MissingField(&'static str),
}

impl FormError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The decoded fields of one form submission.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(&'static str, String)>,
}

impl Form {
    /// Parses a form body that may hold only `allowed` fields (and the CSRF field,
    /// which is checked before the handler runs and skipped here).
    pub fn parse(body: &[u8], allowed: &[&'static str]) -> Result<Self, FormError> {
        if body.len() > MAX_FORM_BYTES {
            return Err(FormError::TooLarge);
        }
        let mut form = Self::default();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(raw_name)?;
            if name == CSRF_FIELD {
                // Checked (exactly one, and valid) by the CSRF middleware already.
                continue;
            }
            let Some(&known) = allowed.iter().find(|&&a| a == name) else {
                return Err(FormError::UnknownField(truncate(&name)));
            };
            if form.fields.iter().any(|(n, _)| *n == known) {
                return Err(FormError::DuplicateField(known.to_owned()));
            }
            form.fields.push((known, decode(raw_value)?));
        }
        Ok(form)
    }

    /// The field's value; a missing field is an error.
    pub fn required(&self, name: &'static str) -> Result<&str, FormError> {
        self.optional(name).ok_or(FormError::MissingField(name))
    }

    pub fn optional(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A checkbox: present and not empty means checked.
    pub fn checked(&self, name: &str) -> bool {
        self.optional(name).is_some_and(|v| !v.is_empty())
    }
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    // `+` means space in this encoding; percent-escapes are checked by hand because
    // percent_decode passes malformed ones through silently.
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(hex) = hex else {
                    return Err(FormError::Malformed("invalid percent-encoding".into()));
                };
                bytes.extend(percent_decode(&[b'%', hex[0], hex[1]]));
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| FormError::Malformed("the text is not valid UTF-8".into()))?;
    if text.contains('\0') {
        return Err(FormError::Malformed(
            "a field contains a NUL character".into(),
        ));
    }
    Ok(text)
}

/// Field names are echoed in messages: keep what an attacker sends short.
fn truncate(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["email", "password", "remember"];

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let form = Form::parse(
            b"email=a%40b.example&password=p+w%C3%A9&remember=on",
            FIELDS,
        )
        .unwrap();
        assert_eq!(form.required("email"), Ok("a@b.example"));
        assert_eq!(form.required("password"), Ok("p wé"));
        assert!(form.checked("remember"));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let cases: &[(&[u8], FormError)] = &[
            (b"email=a&admin=1", FormError::UnknownField("admin".into())),
            (
                b"email=a&email=b",
                FormError::DuplicateField("email".into()),
            ),
            (
                b"email=%ZZ",
                FormError::Malformed("invalid percent-encoding".into()),
            ),
            (
                b"email=%4",
                FormError::Malformed("invalid percent-encoding".into()),
            ),
            (
                b"email=%FF%FE",
                FormError::Malformed("the text is not valid UTF-8".into()),
            ),
            (
                b"email=\xff",
                FormError::Malformed("the text is not valid UTF-8".into()),
            ),
            (
                b"email=a%00b",
                FormError::Malformed("a field contains a NUL character".into()),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                Form::parse(body, FIELDS).unwrap_err(),
                *expected,
                "{body:?}"
            );
        }
        let form = Form::parse(b"email=a", FIELDS).unwrap();
        assert_eq!(
            form.required("password"),
            Err(FormError::MissingField("password"))
        );
        assert!(!form.checked("remember"));
        let big = vec![b'a'; MAX_FORM_BYTES + 1];
        assert_eq!(Form::parse(&big, FIELDS).unwrap_err(), FormError::TooLarge);
    }
}
