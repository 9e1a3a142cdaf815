use std::fmt;

/// Why a piece of user input was refused. The message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The form field the message is about (`username`, `email`, …).
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// 3–32 characters of `a-z 0-9 _ -`, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim().to_ascii_lowercase();
        let err = |m: &str| Err(ValidationError::new("username", m));
        if name.is_empty() {
            return err("Choose a username.");
        }
        let len = name.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return err("A username is 3 to 32 characters long.");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return err("A username may only contain letters a–z, digits, '_' and '-'.");
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group of users (`admins`, `ops`, `qa`): 2–32 characters of `a-z 0-9 _ -`,
/// stored lowercase — shaped like a username, so that it is safe in a header, a
/// comma-separated list and a URL query alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub const MIN: usize = 2;
    pub const MAX: usize = 32;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim().to_ascii_lowercase();
        let err = |m: &str| Err(ValidationError::new("groups", m));
        if !(Self::MIN..=Self::MAX).contains(&name.len()) {
            return err("A group name is 2 to 32 characters long.");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return err("A group name may only contain letters a–z, digits, '_' and '-'.");
        }
        Ok(Self(name))
    }

    /// A comma-separated list (`a, b,c`): each name parsed, duplicates dropped,
    /// sorted; empty entries are skipped.
    pub fn parse_list(input: &str) -> Result<Vec<Self>, ValidationError> {
        let mut groups = input
            .split(',')
            .filter(|g| !g.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, trimmed and lowercased, its domain in ASCII (IDNA: `bücher.de`
/// is kept as `xn--bcher-kva.de`). The check is deliberately modest (one `@`, a
/// plausible domain, no spaces): only a mail that arrives proves an address, and
/// refusing valid but unusual addresses helps nobody. What it never lets through is a
/// character that does not show: control, format (zero-width, soft hyphen) and bidi
/// characters would let `alice\u{200b}@example.com` pass for `alice@example.com` in
/// the headers gated apps read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().to_lowercase();
        let err = |m: &str| Err(ValidationError::new("email", m));
        if email.is_empty() {
            return err("Enter your email address.");
        }
        if email.chars().any(is_invisible) {
            return err("An email address may not contain invisible or control characters.");
        }
        if email.len() > Self::MAX {
            return err("An email address is at most 254 characters long.");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return err("An email address looks like name@example.com.");
        };
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !"@<>()[]\\,;:\"".contains(c));
        // UTS 46 maps and checks the domain; the result is what DNS and mail use.
        let domain = idna::domain_to_ascii_strict(domain).unwrap_or_default();
        let valid_domain = domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid_local || !valid_domain {
            return err("An email address looks like name@example.com.");
        }
        let email = format!("{local}@{domain}");
        if email.len() > Self::MAX {
            return err("An email address is at most 254 characters long.");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An optional human name: at most 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 64;

    /// An empty input means "no display name".
    pub fn parse(input: &str) -> Result<Option<Self>, ValidationError> {
        let name = input.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().count() > Self::MAX {
            return Err(ValidationError::new(
                "name",
                "A display name is at most 64 characters long.",
            ));
        }
        if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(ValidationError::new(
                "name",
                "A display name may not contain control or text-direction characters.",
            ));
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that change or hide what a reader sees: controls (Cc), format
/// characters (Cf: zero-width spaces and joiners, soft hyphen, bidi overrides),
/// line and paragraph separators, private-use, surrogates and unassigned code points.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned
    )
}

/// Unicode's Bidi_Control characters, which reorder the text around them (a name
/// with U+202E shows reversed).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A user as stored: identity plus the password hash that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: Username,
    pub email: Email,
    pub name: Option<DisplayName>,
    pub password_hash: crate::PasswordHash,
    /// Unix seconds.
    pub created_at: i64,
    /// The groups the user belongs to, sorted, without duplicates.
    pub groups: Vec<GroupName>,
    /// A disabled user keeps the account but can neither log in nor pass the gate.
    pub disabled: bool,
    /// Whether the user proved they read mail at `email` (a verification link), or
    /// an operator vouched for it. Only a verified address is passed on to apps.
    pub email_verified: bool,
}

impl User {
    /// Whether the user belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.as_str() == group)
    }

    /// The name to greet the user by.
    pub fn display_name(&self) -> &str {
        self.name
            .as_ref()
            .map_or(self.username.as_str(), DisplayName::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_shaped_like_usernames_and_lists_are_sets() {
        assert_eq!(GroupName::parse(" Ops ").map(|g| g.0), Ok("ops".into()));
        assert!(GroupName::parse("qa").is_ok());
        for bad in ["a", "a,b", "a b", "ädmins", "a\nb", &"g".repeat(33)] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?} accepted");
        }
        let list = GroupName::parse_list("ops, admins,,Ops ,qa").unwrap();
        let names: Vec<&str> = list.iter().map(GroupName::as_str).collect();
        assert_eq!(names, ["admins", "ops", "qa"]);
        assert_eq!(GroupName::parse_list(" , ").unwrap(), []);
        assert!(GroupName::parse_list("ops,a b").is_err());
    }

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(
            Username::parse(" Alice_1 ").map(|u| u.0),
            Ok("alice_1".into())
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        for bad in ["al ice", "al.ice", "alïce", "al/ice", "a\0bc", ""] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").map(|e| e.0),
            Ok("alice@example.com".into())
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "alice@exa mple.com",
            "alice@@example.com",
            "alice@.example.com",
            "a\u{0}@example.com",
            "a..b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn emails_with_invisible_characters_are_refused() {
        for bad in [
            "alice\u{200b}@example.com",
            "alice\u{00ad}@example.com",
            "alice@exam\u{00ad}ple.com",
            "\u{202e}alice@example.com",
            "alice\u{2066}@example.com",
            "alice\u{feff}@example.com",
            "alice\u{200d}@example.com",
            "alice\u{e000}@example.com",
            "alice\u{2028}@example.com",
            "alice\u{7f}@example.com",
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.field, "email");
        }
    }

    #[test]
    fn international_domains_are_kept_in_ascii() {
        assert_eq!(
            Email::parse("Jürgen@Bücher.DE").map(|e| e.0),
            Ok("jürgen@xn--bcher-kva.de".into())
        );
        assert_eq!(
            Email::parse("a@xn--bcher-kva.de").map(|e| e.0),
            Ok("a@xn--bcher-kva.de".into())
        );
        // Full-width letters map to ASCII (UTS 46), so one address has one spelling.
        assert_eq!(
            Email::parse("a@ｅxample.com").map(|e| e.0),
            Ok("a@example.com".into())
        );
        for bad in ["a@exa_mple.com", "a@xn--zz.com", "a@例.", "a@-x.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_names_are_optional() {
        assert_eq!(DisplayName::parse("  "), Ok(None));
        assert_eq!(
            DisplayName::parse(" Ada ").map(|n| n.map(|n| n.0)),
            Ok(Some("Ada".into()))
        );
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("evil\u{202e}gnp.exe").is_err());
        assert!(
            DisplayName::parse("Ada 👩\u{200d}💻").is_ok(),
            "emoji sequences stay"
        );
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
    }
}
