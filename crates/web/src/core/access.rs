//! Who may pass: one decision for every door (the gate, the site's login, the API,
//! and the OpenID Connect provider when it lands). Adapters render its outcome —
//! the gate a bare 403, the site a redirect, the API a problem document — and
//! never check a rule themselves (ARCHITECTURE.md states it as an invariant).
//!
//! Two questions, asked in this order of rules everywhere:
//! - [`admit`]: may this identity pass this door? `Ok(())` or a [`Refusal`].
//! - [`next_step`] / [`after_password`]: a login has proved some factors; what comes
//!   next — the second step, setting one up, verifying the address, or done?

use domain::User;

use super::error::CoreError;
use super::factors::{self, SecondFactors};
use super::services::Services;
use crate::config::Config;

/// An identity as the rules see it: the user (their groups, email state, whether
/// disabled), the factors the login used and when it happened.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub user: &'a User,
    pub factors: &'a [String],
    /// Unix seconds of the login (for a token: the login it was made from).
    pub authenticated_at: i64,
}

impl<'a> Principal<'a> {
    pub fn of(who: &'a super::Authenticated) -> Self {
        Self {
            user: &who.user,
            factors: who.factors(),
            authenticated_at: who.authenticated_at(),
        }
    }

    /// Whether the login used a second factor.
    pub fn used_second_factor(&self) -> bool {
        factors::has_second_factor(self.factors)
    }
}

/// What one `/auth` location asks beyond a login (its query: `users=`, `groups=`,
/// `max_age=`, `mfa=`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GateRules {
    /// Only these users pass (lowercase); `None` lets every logged-in user through.
    pub users: Option<Vec<String>>,
    /// Only members of one of these groups pass. With `users` too, either admits
    /// (like Authelia's subjects: the named users and the groups' members).
    pub groups: Option<Vec<String>>,
    /// The login must be at most this many seconds old.
    pub max_age: Option<i64>,
    /// `mfa=1`: the login must have used a second factor.
    pub mfa: bool,
}

/// The way in an identity asks to pass.
#[derive(Debug, Clone, Copy)]
pub enum Door<'a> {
    /// `/auth`, for an app behind the proxy, with that location's rules.
    Gate(&'a GateRules),
    /// The JSON API's operations. `--require-verified-email` and
    /// `--require-mfa-for-groups` hold here as at the gate: the API must not be
    /// the way around either.
    Api,
    /// The user's own account: the site's pages and the API's "who am I" and
    /// "log out", where an account that may not pass elsewhere yet is shown what
    /// to do (verify the address, set up a second factor). Only a disabled
    /// account is refused.
    Account,
}

/// Why an identity may not pass. Each adapter answers it its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The account is disabled.
    Disabled,
    /// `users=` names other users (and no `groups=` admits this one).
    NotListed,
    /// Not a member of any group `groups=` names.
    NotInGroup,
    /// The login is older than `max_age` seconds.
    StaleLogin { max_age: i64 },
    /// The door asks for a login that used a second factor, and this one did not.
    SecondFactorMissing,
    /// The user's group must use a second factor, and this login used none.
    SecondFactorToEnrol,
    /// `--require-verified-email`, and the address is not verified.
    EmailUnverified,
}

impl Refusal {
    /// The sentence a person is shown.
    pub fn message(&self, who: &Principal<'_>) -> String {
        match self {
            Self::Disabled => super::accounts::ACCOUNT_DISABLED.to_owned(),
            Self::NotListed | Self::NotInGroup => format!(
                "You are logged in as {}, but this app is not open to you.",
                who.user.username
            ),
            Self::StaleLogin { .. } => {
                "This app needs a recent login. Log in again to continue.".to_owned()
            }
            Self::SecondFactorMissing => "This app needs a login with a second factor: set one \
                 up on your account's security page, then log in again with its code."
                .to_owned(),
            Self::SecondFactorToEnrol => "Your account must use a second factor: set one up on \
                 your account's security page, then log in again with its code."
                .to_owned(),
            Self::EmailUnverified => super::verify::VERIFY_REQUIRED.to_owned(),
        }
    }
}

/// Whether `who` may pass `door` at `now` (Unix seconds). The order of the rules
/// is fixed: the account, then the door's own rules (who, how recent, which
/// factors), then the configuration's (a second factor for some groups, a
/// verified address).
pub fn admit(
    config: &Config,
    who: &Principal<'_>,
    door: Door<'_>,
    now: i64,
) -> Result<(), Refusal> {
    if who.user.disabled {
        return Err(Refusal::Disabled);
    }
    match door {
        Door::Account => return Ok(()),
        Door::Api => {}
        Door::Gate(rules) => gate_rules(rules, who, now)?,
    }
    if in_group_that_must_use_second_factor(config, who.user) && !who.used_second_factor() {
        return Err(Refusal::SecondFactorToEnrol);
    }
    if must_verify_email(config, who.user) {
        return Err(Refusal::EmailUnverified);
    }
    Ok(())
}

/// Whether `user` may not pass yet for want of a verified address
/// (`--require-verified-email`).
pub fn must_verify_email(config: &Config, user: &User) -> bool {
    config.require_verified_email && !user.email_verified
}

/// Whether `user`, who has the second factors `has`, must set one up before any
/// door but the account's lets them pass (`--require-mfa-for-groups`).
pub fn must_enrol(config: &Config, user: &User, has: &SecondFactors) -> bool {
    in_group_that_must_use_second_factor(config, user) && !has.any()
}

fn in_group_that_must_use_second_factor(config: &Config, user: &User) -> bool {
    config
        .require_mfa_groups
        .iter()
        .any(|g| user.groups.contains(g))
}

fn gate_rules(rules: &GateRules, who: &Principal<'_>, now: i64) -> Result<(), Refusal> {
    let name = who.user.username.as_str();
    let named = rules
        .users
        .as_ref()
        .map(|users| users.iter().any(|u| u == name));
    let member = rules
        .groups
        .as_ref()
        .map(|groups| groups.iter().any(|g| who.user.in_group(g)));
    match (named, member) {
        (Some(false), None) => return Err(Refusal::NotListed),
        (_, Some(false)) if named != Some(true) => return Err(Refusal::NotInGroup),
        _ => {}
    }
    if let Some(max_age) = rules.max_age
        && now.saturating_sub(who.authenticated_at) > max_age
    {
        return Err(Refusal::StaleLogin { max_age });
    }
    if rules.mfa && !who.used_second_factor() {
        return Err(Refusal::SecondFactorMissing);
    }
    Ok(())
}

/// What follows a login that proved some factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The user has a second factor this login has not used: not a session yet,
    /// but the second step (with the factors they can use).
    SecondStep(SecondFactors),
    /// A member of a group that must use a second factor, with none yet: a
    /// session, sent to set one up first (every door but the account refuses it
    /// meanwhile).
    EnrolFactor,
    /// A session, sent to verify the address first (`--require-verified-email`).
    VerifyEmail,
    /// A session, and on to where the user was going.
    Done,
}

/// What follows for `who`, who has the second factors `has`. Only the first
/// step's outcome can be [`NextStep::SecondStep`]: a login that used a second
/// factor goes on.
pub fn next_step(config: &Config, who: &Principal<'_>, has: &SecondFactors) -> NextStep {
    if has.any() && !who.used_second_factor() {
        return NextStep::SecondStep(*has);
    }
    match admit(config, who, Door::Api, i64::MAX) {
        Err(Refusal::SecondFactorToEnrol) => NextStep::EnrolFactor,
        Err(Refusal::EmailUnverified) => NextStep::VerifyEmail,
        _ => NextStep::Done,
    }
}

/// What follows a right password for `user` (already checked, enabled): reads the
/// second factors they have.
pub async fn after_password(services: &Services, user: &User) -> Result<NextStep, CoreError> {
    let has = factors::second_factors(services, &user.username).await?;
    let used = [factors::PASSWORD.to_owned()];
    let who = Principal {
        user,
        factors: &used,
        authenticated_at: storage::now(),
    };
    Ok(next_step(&services.config, &who, &has))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Email, GroupName, Username};

    fn user(name: &str, groups: &[&str], verified: bool, disabled: bool) -> User {
        let hasher = domain::PasswordHasher::new(domain::HashParams {
            log_n: 1,
            r: 8,
            p: 1,
        })
        .unwrap();
        User {
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.test")).unwrap(),
            name: None,
            password_hash: hasher
                .hash(&domain::Password::parse("a long enough password").unwrap())
                .unwrap(),
            created_at: 0,
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g).unwrap())
                .collect(),
            disabled,
            email_verified: verified,
        }
    }

    fn strict() -> Config {
        Config {
            require_verified_email: true,
            require_mfa_groups: vec![GroupName::parse("ops").unwrap()],
            ..Config::default()
        }
    }

    const NOW: i64 = 1_000_000;

    fn who<'a>(user: &'a User, factors: &'a [String], at: i64) -> Principal<'a> {
        Principal {
            user,
            factors,
            authenticated_at: at,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The factor lists and users both tables are written over.
    struct Cast {
        pwd: Vec<String>,
        otp: Vec<String>,
        passkey: Vec<String>,
        alice: User,
        olga: User,
        una: User,
        olga_unverified: User,
    }

    impl Cast {
        fn new() -> Self {
            Self {
                pwd: strings(&["pwd"]),
                otp: strings(&["pwd", "otp"]),
                passkey: strings(&["passkey"]),
                alice: user("alice", &[], true, false),
                olga: user("olga", &["ops"], true, false),
                una: user("una", &[], false, false),
                olga_unverified: user("olga", &["ops"], false, false),
            }
        }
    }

    #[test]
    fn admit_answers_every_refusal_in_its_order() {
        let config = strict();
        let c = Cast::new();
        let gone = user("gone", &["ops"], false, true);
        let open = GateRules::default();
        let only_bob = GateRules {
            users: Some(strings(&["bob"])),
            ..GateRules::default()
        };
        let ops = GateRules {
            groups: Some(strings(&["ops"])),
            ..GateRules::default()
        };
        let alice_or_ops = GateRules {
            users: Some(strings(&["alice"])),
            groups: Some(strings(&["ops"])),
            ..GateRules::default()
        };
        let bob_or_ops = GateRules {
            users: Some(strings(&["bob"])),
            groups: Some(strings(&["ops"])),
            ..GateRules::default()
        };
        let fresh = GateRules {
            max_age: Some(600),
            ..GateRules::default()
        };
        let mfa = GateRules {
            mfa: true,
            ..GateRules::default()
        };
        use Refusal::*;
        let table: Vec<(Principal<'_>, Door<'_>, Result<(), Refusal>)> = vec![
            (who(&c.alice, &c.pwd, NOW), Door::Gate(&open), Ok(())),
            (who(&c.alice, &c.pwd, NOW), Door::Api, Ok(())),
            (who(&c.alice, &c.pwd, NOW), Door::Account, Ok(())),
            (who(&gone, &c.otp, NOW), Door::Account, Err(Disabled)),
            (who(&gone, &c.otp, NOW), Door::Gate(&open), Err(Disabled)),
            (who(&gone, &c.otp, NOW), Door::Api, Err(Disabled)),
            (
                who(&c.alice, &c.pwd, NOW),
                Door::Gate(&only_bob),
                Err(NotListed),
            ),
            (
                who(&c.alice, &c.pwd, NOW),
                Door::Gate(&ops),
                Err(NotInGroup),
            ),
            (
                who(&c.alice, &c.pwd, NOW),
                Door::Gate(&alice_or_ops),
                Ok(()),
            ),
            (
                who(&c.alice, &c.pwd, NOW),
                Door::Gate(&bob_or_ops),
                Err(NotInGroup),
            ),
            (who(&c.olga, &c.otp, NOW), Door::Gate(&bob_or_ops), Ok(())),
            (who(&c.olga, &c.otp, NOW), Door::Gate(&ops), Ok(())),
            (who(&c.alice, &c.pwd, NOW - 600), Door::Gate(&fresh), Ok(())),
            (
                who(&c.alice, &c.pwd, NOW - 601),
                Door::Gate(&fresh),
                Err(StaleLogin { max_age: 600 }),
            ),
            (
                who(&c.alice, &c.pwd, NOW),
                Door::Gate(&mfa),
                Err(SecondFactorMissing),
            ),
            (who(&c.alice, &c.otp, NOW), Door::Gate(&mfa), Ok(())),
            // The door's own rules come before the configuration's.
            (
                who(&c.olga, &c.pwd, NOW),
                Door::Gate(&mfa),
                Err(SecondFactorMissing),
            ),
            (
                who(&c.olga, &c.pwd, NOW),
                Door::Gate(&open),
                Err(SecondFactorToEnrol),
            ),
            (
                who(&c.olga, &c.pwd, NOW),
                Door::Api,
                Err(SecondFactorToEnrol),
            ),
            (who(&c.olga, &c.pwd, NOW), Door::Account, Ok(())),
            (who(&c.olga, &c.passkey, NOW), Door::Gate(&open), Ok(())),
            (
                who(&c.una, &c.otp, NOW),
                Door::Gate(&open),
                Err(EmailUnverified),
            ),
            (who(&c.una, &c.otp, NOW), Door::Api, Err(EmailUnverified)),
            (who(&c.una, &c.otp, NOW), Door::Account, Ok(())),
            // A second factor to set up is said before the address.
            (
                who(&c.olga_unverified, &c.pwd, NOW),
                Door::Api,
                Err(SecondFactorToEnrol),
            ),
            (
                who(&c.olga_unverified, &c.otp, NOW),
                Door::Api,
                Err(EmailUnverified),
            ),
        ];
        for (principal, door, expected) in &table {
            assert_eq!(
                admit(&config, principal, *door, NOW),
                *expected,
                "{} with {:?} at {door:?}",
                principal.user.username,
                principal.factors
            );
        }
        // Without the configuration's rules, only the door's own apply.
        let lax = Config::default();
        for principal in [who(&c.olga, &c.pwd, NOW), who(&c.una, &c.pwd, NOW)] {
            assert_eq!(admit(&lax, &principal, Door::Api, NOW), Ok(()));
            assert_eq!(admit(&lax, &principal, Door::Gate(&open), NOW), Ok(()));
        }
    }

    #[test]
    fn what_follows_a_login_is_decided_once() {
        let config = strict();
        let none = SecondFactors::default();
        let app = SecondFactors {
            totp: true,
            passkeys: 0,
        };
        let key = SecondFactors {
            totp: false,
            passkeys: 2,
        };
        let c = Cast::new();
        use NextStep::*;
        let table = [
            (who(&c.alice, &c.pwd, NOW), none, Done),
            (who(&c.alice, &c.pwd, NOW), app, SecondStep(app)),
            (who(&c.alice, &c.pwd, NOW), key, SecondStep(key)),
            (who(&c.alice, &c.otp, NOW), app, Done),
            (who(&c.alice, &c.passkey, NOW), key, Done),
            (who(&c.olga, &c.pwd, NOW), none, EnrolFactor),
            (who(&c.olga, &c.pwd, NOW), app, SecondStep(app)),
            (who(&c.olga, &c.otp, NOW), app, Done),
            (who(&c.una, &c.pwd, NOW), none, VerifyEmail),
            (who(&c.una, &c.pwd, NOW), app, SecondStep(app)),
            (who(&c.una, &c.otp, NOW), app, VerifyEmail),
            (who(&c.olga_unverified, &c.pwd, NOW), none, EnrolFactor),
            (who(&c.olga_unverified, &c.otp, NOW), app, VerifyEmail),
        ];
        for (principal, has, expected) in &table {
            assert_eq!(
                next_step(&config, principal, has),
                *expected,
                "{} with {:?}, having {has:?}",
                principal.user.username,
                principal.factors
            );
        }
        // A login long ago still goes on: the age is a door's rule, not the login's.
        assert_eq!(next_step(&config, &who(&c.alice, &c.pwd, 0), &none), Done);
        assert_eq!(
            next_step(&Config::default(), &who(&c.una, &c.pwd, NOW), &none),
            Done
        );
        assert_eq!(
            next_step(&Config::default(), &who(&c.olga, &c.pwd, NOW), &none),
            Done
        );
    }
}
