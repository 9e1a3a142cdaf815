//! gatehouse's core: who a user is and how a password is checked. No IO.
//!
//! - [`Username`], [`Email`], [`Password`], [`DisplayName`], [`GroupName`]: parsed
//!   once at the edge
//!   (SPEC §3); holding one means it is valid.
//! - [`User`]: a stored user as the rest of the program sees it.
//! - [`PasswordHasher`] and [`PasswordHash`]: scrypt PHC strings, verification,
//!   "needs rehash" when the stored parameters differ from the configured ones.
//!
//! Nothing here knows about the database, HTTP or the async runtime; `storage` and
//! `web` depend on this crate, never the other way round.

mod password;
mod user;

pub use password::{HashParams, Password, PasswordError, PasswordHash, PasswordHasher, Verdict};
pub use user::{DisplayName, Email, GroupName, User, Username, ValidationError};
