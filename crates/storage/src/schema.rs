//! The schema, applied at every start. Every statement is `IF NOT EXISTS`, so running
//! it again changes nothing; a change to an existing definition needs `OVERWRITE`.

/// The tables [`SCHEMA`] defines.
pub(crate) const TABLES: &[&str] = &[
    "user",
    "session",
    "api_token",
    "factor",
    "passkey",
    "passkey_challenge",
    "pending_login",
    "admin_guard",
    "throttle",
    "invitation",
    "outbox",
    "password_reset",
    "email_verification",
    "setting",
];

pub(crate) const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS user SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS username ON user TYPE string;
DEFINE FIELD IF NOT EXISTS email ON user TYPE string;
DEFINE FIELD IF NOT EXISTS name ON user TYPE option<string>;
DEFINE FIELD IF NOT EXISTS password_hash ON user TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON user TYPE int;
DEFINE FIELD IF NOT EXISTS groups ON user TYPE option<array<string>>;
DEFINE FIELD IF NOT EXISTS disabled ON user TYPE option<bool>;
DEFINE FIELD IF NOT EXISTS email_verified ON user TYPE option<bool>;
DEFINE INDEX IF NOT EXISTS user_username ON user FIELDS username UNIQUE;
DEFINE INDEX IF NOT EXISTS user_email ON user FIELDS email UNIQUE;

DEFINE TABLE IF NOT EXISTS session SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON session TYPE record<user>;
DEFINE FIELD IF NOT EXISTS created_at ON session TYPE int;
DEFINE FIELD IF NOT EXISTS last_seen ON session TYPE int;
DEFINE FIELD IF NOT EXISTS expires_at ON session TYPE int;
DEFINE FIELD IF NOT EXISTS remember ON session TYPE bool;
DEFINE FIELD IF NOT EXISTS user_agent ON session TYPE option<string>;
DEFINE FIELD IF NOT EXISTS address ON session TYPE option<string>;
DEFINE FIELD IF NOT EXISTS factors ON session TYPE option<array<string>>;
DEFINE FIELD IF NOT EXISTS authenticated_at ON session TYPE option<int>;
DEFINE INDEX IF NOT EXISTS session_user ON session FIELDS user;

DEFINE TABLE IF NOT EXISTS api_token SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON api_token TYPE record<user>;
DEFINE FIELD IF NOT EXISTS name ON api_token TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON api_token TYPE int;
DEFINE FIELD IF NOT EXISTS expires_at ON api_token TYPE option<int>;
DEFINE FIELD IF NOT EXISTS last_used ON api_token TYPE option<int>;
DEFINE FIELD IF NOT EXISTS factors ON api_token TYPE option<array<string>>;
DEFINE FIELD IF NOT EXISTS authenticated_at ON api_token TYPE option<int>;
DEFINE INDEX IF NOT EXISTS api_token_user ON api_token FIELDS user;

DEFINE TABLE IF NOT EXISTS factor SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS totp_secret ON factor TYPE string;
DEFINE FIELD IF NOT EXISTS confirmed ON factor TYPE bool;
DEFINE FIELD IF NOT EXISTS last_step ON factor TYPE int;
DEFINE FIELD IF NOT EXISTS recovery ON factor TYPE array<string>;
DEFINE FIELD IF NOT EXISTS created_at ON factor TYPE int;

DEFINE TABLE IF NOT EXISTS passkey SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON passkey TYPE record<user>;
DEFINE FIELD IF NOT EXISTS handle ON passkey TYPE string;
DEFINE FIELD IF NOT EXISTS name ON passkey TYPE string;
DEFINE FIELD IF NOT EXISTS credential ON passkey TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON passkey TYPE int;
DEFINE FIELD IF NOT EXISTS last_used_at ON passkey TYPE option<int>;
DEFINE INDEX IF NOT EXISTS passkey_user ON passkey FIELDS user;

DEFINE TABLE IF NOT EXISTS passkey_challenge SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS kind ON passkey_challenge TYPE string;
DEFINE FIELD IF NOT EXISTS user ON passkey_challenge TYPE option<record<user>>;
DEFINE FIELD IF NOT EXISTS pending ON passkey_challenge TYPE option<string>;
DEFINE FIELD IF NOT EXISTS state ON passkey_challenge TYPE string;
DEFINE FIELD IF NOT EXISTS extra ON passkey_challenge TYPE option<string>;
DEFINE FIELD IF NOT EXISTS expires_at ON passkey_challenge TYPE int;
DEFINE INDEX IF NOT EXISTS passkey_challenge_expiry ON passkey_challenge FIELDS expires_at;

DEFINE TABLE IF NOT EXISTS pending_login SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON pending_login TYPE record<user>;
DEFINE FIELD IF NOT EXISTS remember ON pending_login TYPE bool;
DEFINE FIELD IF NOT EXISTS next ON pending_login TYPE option<string>;
DEFINE FIELD IF NOT EXISTS expires_at ON pending_login TYPE int;
DEFINE INDEX IF NOT EXISTS pending_login_user ON pending_login FIELDS user;

DEFINE TABLE IF NOT EXISTS admin_guard SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS changes ON admin_guard TYPE int;

DEFINE TABLE IF NOT EXISTS throttle SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS failures ON throttle TYPE int;
DEFINE FIELD IF NOT EXISTS last_failure ON throttle TYPE int;
DEFINE FIELD IF NOT EXISTS blocked_until ON throttle TYPE int DEFAULT 0;

DEFINE TABLE IF NOT EXISTS invitation SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS email ON invitation TYPE option<string>;
DEFINE FIELD IF NOT EXISTS groups ON invitation TYPE array<string>;
DEFINE FIELD IF NOT EXISTS created_at ON invitation TYPE int;
DEFINE FIELD IF NOT EXISTS expires_at ON invitation TYPE int;
DEFINE FIELD IF NOT EXISTS created_by ON invitation TYPE option<string>;

DEFINE TABLE IF NOT EXISTS outbox SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS to ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS subject ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS text ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS html ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS attempts ON outbox TYPE int;
DEFINE FIELD IF NOT EXISTS next_attempt_at ON outbox TYPE int;
DEFINE FIELD IF NOT EXISTS created_at ON outbox TYPE int;
DEFINE FIELD IF NOT EXISTS last_error ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS kind ON outbox TYPE option<string>;
DEFINE INDEX IF NOT EXISTS outbox_due ON outbox FIELDS next_attempt_at;

DEFINE TABLE IF NOT EXISTS password_reset SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON password_reset TYPE record<user>;
DEFINE FIELD IF NOT EXISTS expires_at ON password_reset TYPE int;
DEFINE INDEX IF NOT EXISTS password_reset_user ON password_reset FIELDS user;

DEFINE TABLE IF NOT EXISTS email_verification SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON email_verification TYPE record<user>;
DEFINE FIELD IF NOT EXISTS email ON email_verification TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON email_verification TYPE int;
DEFINE FIELD IF NOT EXISTS expires_at ON email_verification TYPE int;
DEFINE INDEX IF NOT EXISTS email_verification_user ON email_verification FIELDS user;

DEFINE TABLE IF NOT EXISTS setting SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS value ON setting TYPE string;
"#;
