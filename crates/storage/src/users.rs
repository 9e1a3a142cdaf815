//! Users, keyed by username (`user:⟨alice⟩`), so the hot lookup is a select by
//! record id; login by email goes through the UNIQUE `user_email` index.

use domain::{DisplayName, Email, GroupName, PasswordHash, User, Username};
use surrealdb::types::{RecordId, SurrealValue};

use crate::record::{returned, user_id};
use crate::store::retry_conflicts;
use crate::{Refusal, StorageError, Store};

#[derive(Debug, SurrealValue)]
pub(crate) struct UserRecord {
    username: String,
    email: String,
    name: Option<String>,
    password_hash: String,
    created_at: i64,
    /// Absent on users stored before groups existed.
    groups: Option<Vec<String>>,
    disabled: Option<bool>,
    /// Absent on users stored before verification existed: not verified.
    email_verified: Option<bool>,
}

impl UserRecord {
    pub(crate) fn from_user(user: &User) -> Self {
        Self {
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: user.created_at,
            groups: Some(group_strings(&user.groups)),
            disabled: Some(user.disabled),
            email_verified: Some(user.email_verified),
        }
    }

    /// Stored data went through the same parsers on the way in; a record that no
    /// longer parses was written by something else and is reported, not trusted.
    fn into_user(self) -> Result<User, StorageError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            StorageError::Corrupt(format!("user {}: {e}", self.username))
        };
        Ok(User {
            username: Username::parse(&self.username).map_err(|e| corrupt(&e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt(&e))?,
            name: DisplayName::parse(self.name.as_deref().unwrap_or_default())
                .map_err(|e| corrupt(&e))?,
            password_hash: PasswordHash::parse(&self.password_hash).map_err(|e| corrupt(&e))?,
            created_at: self.created_at,
            groups: self
                .groups
                .iter()
                .flatten()
                .map(|g| GroupName::parse(g))
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt(&e))?,
            disabled: self.disabled.unwrap_or(false),
            email_verified: self.email_verified.unwrap_or(false),
        })
    }
}

pub(crate) fn group_strings(groups: &[GroupName]) -> Vec<String> {
    groups.iter().map(|g| g.as_str().to_owned()).collect()
}

#[derive(Debug, SurrealValue)]
struct Ended {
    sessions: i64,
    tokens: i64,
}

/// What [`Store::change_password`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessEnded {
    pub sessions: usize,
    pub tokens: usize,
}

/// Where a page of [`Store::list_users`] starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cursor {
    #[default]
    Start,
    /// The users after this username.
    After(String),
    /// The users before this username (the previous page).
    Before(String),
}

/// Which users [`Store::list_users`] reads.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// The start of a username or email address.
    pub search: Option<String>,
    pub from: Cursor,
    /// At most this many (1 to 1,000).
    pub limit: u64,
}

/// A page of users, and whether there are more on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    pub has_previous: bool,
    pub has_next: bool,
}

/// Whether [`Store::upsert_user`] made a new user or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

impl Store {
    /// Creates `user`. When two signups race for the same username or email, exactly
    /// one succeeds; the other gets [`Refusal::UsernameTaken`] or
    /// [`Refusal::EmailTaken`].
    pub async fn create_user(&self, user: &User) -> Result<(), StorageError> {
        // A transaction conflict with a racing signup that then failed leaves nothing
        // taken: try again, a bounded number of times.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .db
                .query("CREATE $id CONTENT $content RETURN NONE")
                .bind(("id", user_id(&user.username)))
                .bind(("content", UserRecord::from_user(user)))
                .await
                .and_then(|r| r.check());
            let Err(err) = result else {
                return Ok(());
            };
            if let Some(taken) = taken_from_message(err.message()) {
                return Err(taken);
            }
            // Not recognisable from the message (a conflict): ask the store which
            // value is taken now.
            if self.user_by_username(&user.username).await?.is_some() {
                return Err(StorageError::Refused(Refusal::UsernameTaken));
            }
            if self.user_by_email(&user.email).await?.is_some() {
                return Err(StorageError::Refused(Refusal::EmailTaken));
            }
            if attempts >= 3 {
                return Err(err.into());
            }
        }
    }

    /// Creates `user`, or updates the user of that username (email, name, password;
    /// `created_at` is kept). Used by seeding, which must be idempotent.
    pub async fn upsert_user(&self, user: &User) -> Result<Upserted, StorageError> {
        let existed = self.user_by_username(&user.username).await?.is_some();
        let record = UserRecord::from_user(user);
        self.db
            .query(
                "UPSERT $id SET username = $username, email = $email, name = $name, \
                 password_hash = $password_hash, created_at = created_at ?? $created_at, \
                 groups = $groups, disabled = disabled ?? false, \
                 email_verified = $email_verified \
                 RETURN NONE",
            )
            .bind(("id", user_id(&user.username)))
            .bind(record)
            .await
            .and_then(|r| r.check())
            .map_err(|e| taken_from_message(e.message()).unwrap_or(e.into()))?;
        Ok(if existed {
            Upserted::Updated
        } else {
            Upserted::Created
        })
    }

    pub async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<User>, StorageError> {
        let record: Option<UserRecord> = self.db.select(user_id(username)).await?;
        record.map(UserRecord::into_user).transpose()
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StorageError> {
        let mut response = self
            .db
            .query("SELECT * FROM user WHERE email = $email LIMIT 1")
            .bind(("email", email.as_str().to_owned()))
            .await?
            .check()?;
        let records: Vec<UserRecord> = response.take(0)?;
        records
            .into_iter()
            .next()
            .map(UserRecord::into_user)
            .transpose()
    }

    pub async fn set_password_hash(
        &self,
        username: &Username,
        hash: &PasswordHash,
    ) -> Result<(), StorageError> {
        retry_conflicts!(
            self.db
                .query("UPDATE $id SET password_hash = $hash RETURN NONE")
                .bind(("id", user_id(username)))
                .bind(("hash", hash.as_str().to_owned()))
        )?;
        Ok(())
    }

    /// Sets `username`'s password hash and, in the same transaction, ends every
    /// session of theirs but `keep`, revokes every API token of theirs, and voids
    /// their pending logins (a password given, the second factor not yet) and
    /// reset links: whoever held a copied cookie, a token minted with one, a
    /// half-done login or a mailed link loses it with the old password. Returns
    /// how many sessions and tokens ended.
    pub async fn change_password(
        &self,
        username: &Username,
        hash: &PasswordHash,
        keep: Option<&str>,
    ) -> Result<AccessEnded, StorageError> {
        let mut response = retry_conflicts!(
            self.db
                .query(
                    "BEGIN TRANSACTION; \
                     UPDATE $user SET password_hash = $hash RETURN NONE; \
                     LET $sessions = (DELETE session WHERE user = $user AND id != $keep \
                         RETURN BEFORE); \
                     LET $tokens = (DELETE api_token WHERE user = $user RETURN BEFORE); \
                     DELETE pending_login WHERE user = $user; \
                     DELETE password_reset WHERE user = $user; \
                     RETURN { sessions: count($sessions), tokens: count($tokens) }; \
                     COMMIT TRANSACTION;",
                )
                .bind(("user", user_id(username)))
                .bind(("hash", hash.as_str().to_owned()))
                .bind(("keep", keep.map(crate::record::session_record_id)))
        )?;
        // The RETURN's result: the last statement's, or the one before it when the
        // COMMIT counts as a statement.
        for index in (0..response.num_statements()).rev() {
            if let Ok(Some(ended)) = response.take::<Option<Ended>>(index) {
                return Ok(AccessEnded {
                    sessions: usize::try_from(ended.sessions).unwrap_or_default(),
                    tokens: usize::try_from(ended.tokens).unwrap_or_default(),
                });
            }
        }
        Err(StorageError::Corrupt(format!(
            "the password change of {username} did not report what it ended"
        )))
    }

    /// One page of users in username order, read along the `user_username` index
    /// from a cursor (keyset paging: the cost of a page does not grow with how far
    /// into the list it is); with a search, only those whose username or email
    /// starts with it (lowercase), read along both unique indexes.
    pub async fn list_users(&self, query: &UserQuery) -> Result<UserPage, StorageError> {
        let search = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let (after, order, cursor) = match &query.from {
            Cursor::Start => (None, "ASC", String::new()),
            Cursor::After(name) => (Some("username > $cursor"), "ASC", name.clone()),
            Cursor::Before(name) => (Some("username < $cursor"), "DESC", name.clone()),
        };
        // With a search, each branch is a range on one unique index, the cursor
        // repeated in both so the planner still reads the indexes; without one, the
        // username index alone from the cursor. (Measured: an `AND username >= ''`
        // beside the cursor, or the cursor outside the branches, makes it scan.)
        let condition = match (&search, after) {
            (Some(_), after) => {
                let after = after.map(|a| format!(" AND {a}")).unwrap_or_default();
                format!(
                    "(username >= $search AND username < $search_end{after}) \
                     OR (email >= $search AND email < $search_end{after})"
                )
            }
            (None, Some(after)) => after.to_owned(),
            (None, None) => "username >= ''".to_owned(),
        };
        let limit = query.limit.clamp(1, 1000);
        let mut response = self
            .db
            .query(format!(
                "SELECT * FROM user WHERE {condition} ORDER BY username {order} LIMIT $limit"
            ))
            .bind(("cursor", cursor))
            .bind((
                "search_end",
                format!("{}\u{10FFFF}", search.as_deref().unwrap_or("")),
            ))
            .bind(("search", search.unwrap_or_default()))
            .bind(("limit", i64::try_from(limit + 1).unwrap_or(i64::MAX)))
            .await?
            .check()?;
        let records: Vec<UserRecord> = response.take(0)?;
        let more = records.len() as u64 > limit;
        let mut users = records
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(UserRecord::into_user)
            .collect::<Result<Vec<_>, _>>()?;
        let (has_previous, has_next) = match query.from {
            Cursor::Start => (false, more),
            Cursor::After(_) => (true, more),
            Cursor::Before(_) => {
                users.reverse();
                (more, true)
            }
        };
        Ok(UserPage {
            users,
            has_previous,
            has_next,
        })
    }

    /// Sets `username`'s groups. Refused with [`Refusal::LastAdmin`] when it
    /// would leave `guarded` (the admins' group) without an enabled member. `None`
    /// when there is no such user.
    pub async fn set_groups(
        &self,
        username: &Username,
        groups: &[GroupName],
        guarded: &GroupName,
    ) -> Result<Option<()>, StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(guarded_change(&format!(
                    "IF $guarded NOT IN $groups AND {LAST_ADMIN} {{ THROW 'last_admin' }}; \
                     UPDATE $user SET groups = $groups RETURN NONE; \
                     RETURN $before != NONE;"
                )))
                .bind(("user", user_id(username)))
                .bind(("groups", group_strings(groups)))
                .bind(("guarded", guarded.as_str().to_owned()))
        );
        found(last_admin(result)?)
    }

    /// Disables `username` and, in the same transaction, ends every session and
    /// pending login and revokes every API token of theirs; or enables them again. Disabling the last
    /// enabled member of `guarded` is refused ([`Refusal::LastAdmin`]). `None`
    /// when there is no such user.
    pub async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        guarded: &GroupName,
    ) -> Result<Option<AccessEnded>, StorageError> {
        // Enabling again ends nothing.
        let ends = if disabled {
            END_ACCESS
        } else {
            "LET $sessions = []; LET $tokens = [];"
        };
        let result = retry_conflicts!(
            self.db
                .query(guarded_change(&format!(
                    "IF $disabled AND {LAST_ADMIN} {{ THROW 'last_admin' }}; \
                     UPDATE $user SET disabled = $disabled RETURN NONE; \
                     {ends} \
                     {ACCESS_ENDED}"
                )))
                .bind(("user", user_id(username)))
                .bind(("disabled", disabled))
                .bind(("guarded", guarded.as_str().to_owned()))
        );
        ended(last_admin(result)?)
    }

    /// Deletes `username` with every session and API token of theirs, in one
    /// transaction. Deleting the last enabled member of `guarded` is refused
    /// ([`Refusal::LastAdmin`]). `None` when there is no such user.
    pub async fn delete_user(
        &self,
        username: &Username,
        guarded: &GroupName,
    ) -> Result<Option<AccessEnded>, StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(guarded_change(&format!(
                    "IF {LAST_ADMIN} {{ THROW 'last_admin' }}; \
                     {END_ACCESS} \
                     DELETE password_reset WHERE user = $user; \
                     DELETE email_verification WHERE user = $user; \
                     DELETE passkey WHERE user = $user; \
                     DELETE passkey_challenge WHERE user = $user; \
                     DELETE $factor; \
                     DELETE $user; \
                     {ACCESS_ENDED}"
                )))
                .bind(("user", user_id(username)))
                .bind(("factor", RecordId::new("factor", username.as_str())))
                .bind(("guarded", guarded.as_str().to_owned()))
        );
        ended(last_admin(result)?)
    }

    /// Ends every session and pending login and revokes every API token of
    /// `username`, in one transaction. `None` when there is no such user.
    pub async fn end_access(
        &self,
        username: &Username,
    ) -> Result<Option<AccessEnded>, StorageError> {
        let result = retry_conflicts!(
            self.db
                .query(format!(
                    "BEGIN TRANSACTION; \
                     LET $before = (SELECT * FROM ONLY $user); \
                     {END_ACCESS} \
                     {ACCESS_ENDED} \
                     COMMIT TRANSACTION;"
                ))
                .bind(("user", user_id(username)))
        );
        ended(result?)
    }

    /// How many enabled users belong to `group`.
    pub async fn count_members(&self, group: &GroupName) -> Result<u64, StorageError> {
        let mut response = self
            .db
            .query(
                "RETURN count(SELECT VALUE id FROM user WHERE $group IN (groups ?? []) \
                 AND (disabled ?? false) = false)",
            )
            .bind(("group", group.as_str().to_owned()))
            .await?
            .check()?;
        let count: Option<i64> = response.take(0)?;
        Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    pub async fn count_users(&self) -> Result<u64, StorageError> {
        let mut response = self
            .db
            .query("RETURN (SELECT count() FROM user GROUP ALL)[0].count ?? 0")
            .await?
            .check()?;
        let count: Option<i64> = response.take(0)?;
        Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }
}

/// The first statement of every guarded change: a write to one record per
/// guarded group. Two changes that each count the admins and then write a
/// different user would both pass under snapshot isolation (two admins
/// disabling each other at once: no admin left); writing one shared record makes
/// the store's conflict check abort one of them, and its retry counts again.
///
/// The change's own statements (`body`) run after it, with the user as it was in
/// `$before`, in one transaction.
fn guarded_change(body: &str) -> String {
    format!(
        "BEGIN TRANSACTION; \
         UPSERT type::record('admin_guard', $guarded) SET changes = (changes ?? 0) + 1 \
             RETURN NONE; \
         LET $before = (SELECT * FROM ONLY $user); \
         {body} \
         COMMIT TRANSACTION;"
    )
}

/// Ends `$user`'s access inside a change's transaction: every session and API
/// token (kept in `$sessions` and `$tokens` for [`ACCESS_ENDED`]) and every login
/// waiting for its second step.
const END_ACCESS: &str = "LET $sessions = (DELETE session WHERE user = $user RETURN BEFORE); \
     LET $tokens = (DELETE api_token WHERE user = $user RETURN BEFORE); \
     DELETE pending_login WHERE user = $user;";

/// What a change that ends access returns: `NONE` when `$before` (the user) did
/// not exist, else how many sessions and tokens it ended ([`AccessEnded`]).
const ACCESS_ENDED: &str = "RETURN IF $before = NONE { NONE } ELSE \
     { { sessions: count($sessions), tokens: count($tokens) } };";

/// Whether `$before` (the user as it was) is the last enabled member of `$guarded`:
/// the condition under which a guarded change throws `last_admin`, checked inside
/// the change's own transaction.
const LAST_ADMIN: &str = "($before != NONE AND $guarded IN ($before.groups ?? []) \
     AND ($before.disabled ?? false) = false \
     AND count(SELECT VALUE id FROM user WHERE $guarded IN (groups ?? []) \
         AND (disabled ?? false) = false) <= 1)";

/// A `THROW 'last_admin'` of a guarded change, as its own error.
fn last_admin(
    result: Result<surrealdb::IndexedResults, StorageError>,
) -> Result<surrealdb::IndexedResults, StorageError> {
    match result {
        Err(StorageError::Database(err)) if err.to_string().contains("last_admin") => {
            Err(StorageError::Refused(Refusal::LastAdmin))
        }
        other => other,
    }
}

fn found(response: surrealdb::IndexedResults) -> Result<Option<()>, StorageError> {
    Ok(returned::<bool>(response).unwrap_or(false).then_some(()))
}

fn ended(response: surrealdb::IndexedResults) -> Result<Option<AccessEnded>, StorageError> {
    Ok(returned::<Ended>(response).map(|ended| AccessEnded {
        sessions: usize::try_from(ended.sessions).unwrap_or_default(),
        tokens: usize::try_from(ended.tokens).unwrap_or_default(),
    }))
}

/// Reads which unique value a failed write collided with from SurrealDB's message.
pub(crate) fn taken_from_message(message: &str) -> Option<StorageError> {
    if message.contains("user_email") {
        Some(StorageError::Refused(Refusal::EmailTaken))
    } else if message.contains("user_username")
        || (message.contains("already exists") && message.contains("user:"))
    {
        Some(StorageError::Refused(Refusal::UsernameTaken))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use domain::{HashParams, Password, PasswordHasher};

    use super::*;

    fn user(name: &str, email: &str) -> User {
        let hasher = PasswordHasher::new(HashParams {
            log_n: 4,
            r: 8,
            p: 1,
        })
        .unwrap();
        User {
            username: Username::parse(name).unwrap(),
            email: Email::parse(email).unwrap(),
            name: DisplayName::parse("Test User").unwrap(),
            password_hash: hasher.hash(&Password::parse("password1").unwrap()).unwrap(),
            created_at: 1_700_000_000,
            groups: Vec::new(),
            disabled: false,
            email_verified: false,
        }
    }

    fn query(search: Option<&str>, from: Cursor) -> UserQuery {
        UserQuery {
            search: search.map(str::to_owned),
            from,
            limit: 10,
        }
    }

    #[tokio::test]
    async fn users_page_forward_and_back_along_the_username_and_email_indexes() {
        let store = Store::memory().await.unwrap();
        for i in 0..25 {
            store
                .create_user(&user(
                    &format!("user{i:02}"),
                    &format!("u{i:02}@example.com"),
                ))
                .await
                .unwrap();
        }
        store
            .create_user(&user("zed", "user-mail@example.com"))
            .await
            .unwrap();
        let names = |page: &UserPage| {
            page.users
                .iter()
                .map(|u| u.username.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        let first = store.list_users(&query(None, Cursor::Start)).await.unwrap();
        assert_eq!(names(&first).first().map(String::as_str), Some("user00"));
        assert_eq!((first.has_previous, first.has_next), (false, true));
        let second = store
            .list_users(&query(None, Cursor::After("user09".into())))
            .await
            .unwrap();
        assert_eq!(names(&second)[0], "user10");
        assert_eq!(names(&second)[9], "user19");
        let last = store
            .list_users(&query(None, Cursor::After("user19".into())))
            .await
            .unwrap();
        assert_eq!(names(&last).len(), 6);
        assert_eq!((last.has_previous, last.has_next), (true, false));
        let back = store
            .list_users(&query(None, Cursor::Before("user10".into())))
            .await
            .unwrap();
        assert_eq!(names(&back), names(&first));
        assert_eq!((back.has_previous, back.has_next), (false, true));
        // A search matches the start of a username or of an email, in any case.
        let found = store
            .list_users(&query(Some(" USER2"), Cursor::Start))
            .await
            .unwrap();
        assert_eq!(
            names(&found),
            ["user20", "user21", "user22", "user23", "user24"]
        );
        let by_mail = store
            .list_users(&query(Some("user-"), Cursor::Start))
            .await
            .unwrap();
        assert_eq!(names(&by_mail), ["zed"]);
        assert_eq!(store.count_users().await.unwrap(), 26);
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_removed_disabled_or_deleted() {
        let store = Store::memory().await.unwrap();
        let admins = GroupName::parse("admins").unwrap();
        let mut root = user("root", "root@example.com");
        root.groups = vec![admins.clone()];
        store.create_user(&root).await.unwrap();
        let page = store.list_users(&query(None, Cursor::Start)).await.unwrap();
        assert_eq!(page.users, vec![root.clone()]);
        for refused in [
            store.set_groups(&root.username, &[], &admins).await.err(),
            store
                .set_disabled(&root.username, true, &admins)
                .await
                .err(),
            store.delete_user(&root.username, &admins).await.err(),
        ] {
            assert!(
                matches!(refused, Some(StorageError::Refused(Refusal::LastAdmin))),
                "{refused:?}"
            );
        }
        // With a second admin, the first may go; then the second is the last.
        let mut other = user("other", "other@example.com");
        other.groups = vec![admins.clone()];
        store.create_user(&other).await.unwrap();
        assert_eq!(store.count_members(&admins).await.unwrap(), 2);
        let ended = store
            .set_disabled(&root.username, true, &admins)
            .await
            .unwrap();
        assert_eq!(
            ended,
            Some(AccessEnded {
                sessions: 0,
                tokens: 0
            })
        );
        assert!(
            store
                .user_by_username(&root.username)
                .await
                .unwrap()
                .unwrap()
                .disabled
        );
        assert!(matches!(
            store.set_groups(&other.username, &[], &admins).await,
            Err(StorageError::Refused(Refusal::LastAdmin))
        ));
        store
            .set_disabled(&root.username, false, &admins)
            .await
            .unwrap();
        store
            .set_groups(&other.username, &[], &admins)
            .await
            .unwrap();
        assert_eq!(store.count_members(&admins).await.unwrap(), 1);
        assert_eq!(
            store
                .set_groups(&Username::parse("nobody").unwrap(), &[], &admins)
                .await
                .unwrap(),
            None
        );
        assert!(
            store
                .delete_user(&other.username, &admins)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .user_by_username(&other.username)
                .await
                .unwrap()
                .is_none()
        );
        let found = store
            .list_users(&query(Some("ROO"), Cursor::Start))
            .await
            .unwrap();
        assert_eq!(found.users.len(), 1);
    }

    /// Two admins removing each other at the same moment (disable/disable,
    /// demote/demote, disable/demote): without a shared write both transactions
    /// count two admins and each writes only the other's record, so both commit
    /// and no enabled admin is left. Raced for many rounds on a multi-threaded
    /// runtime, on the in-memory and the surrealkv engines.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_admins_removing_each_other_at_once_leave_one() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}", dir.path().join("db").display());
        for store in [
            Store::memory().await.unwrap(),
            Store::open(&url, None).await.unwrap(),
        ] {
            let admins = GroupName::parse("admins").unwrap();
            let (a, b) = (
                Username::parse("ann").unwrap(),
                Username::parse("ben").unwrap(),
            );
            for (name, email) in [(&a, "ann@example.com"), (&b, "ben@example.com")] {
                let mut admin = user(name.as_str(), email);
                admin.groups = vec![admins.clone()];
                store.create_user(&admin).await.unwrap();
            }
            let mut both_passed = 0;
            for round in 0..60 {
                let remove = |store: Store, who: Username, how: usize| {
                    let admins = admins.clone();
                    tokio::spawn(async move {
                        match how {
                            0 => store.set_disabled(&who, true, &admins).await.map(|_| ()),
                            _ => store.set_groups(&who, &[], &admins).await.map(|_| ()),
                        }
                    })
                };
                let (first, second) = (round % 3 == 1, round % 3 != 0);
                let one = remove(store.clone(), a.clone(), usize::from(first));
                let two = remove(store.clone(), b.clone(), usize::from(second));
                let (one, two) = (one.await.unwrap(), two.await.unwrap());
                for result in [&one, &two] {
                    assert!(
                        matches!(
                            result,
                            Ok(()) | Err(StorageError::Refused(Refusal::LastAdmin))
                        ),
                        "{result:?}"
                    );
                }
                both_passed += usize::from(one.is_ok() && two.is_ok());
                assert_eq!(
                    store.count_members(&admins).await.unwrap(),
                    1,
                    "round {round}: {one:?} {two:?}"
                );
                // Both admins again for the next round.
                for who in [&a, &b] {
                    store.set_disabled(who, false, &admins).await.unwrap();
                    store
                        .set_groups(who, std::slice::from_ref(&admins), &admins)
                        .await
                        .unwrap();
                }
            }
            assert_eq!(both_passed, 0);
        }
    }

    #[tokio::test]
    async fn users_round_trip_and_are_unique() {
        let store = Store::memory().await.unwrap();
        let alice = user("alice", "alice@example.com");
        store.create_user(&alice).await.unwrap();
        assert_eq!(
            store.user_by_username(&alice.username).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.user_by_email(&alice.email).await.unwrap(),
            Some(alice.clone())
        );
        let same_name = user("alice", "other@example.com");
        assert!(matches!(
            store.create_user(&same_name).await,
            Err(StorageError::Refused(Refusal::UsernameTaken))
        ));
        let same_email = user("alice2", "alice@example.com");
        assert!(matches!(
            store.create_user(&same_email).await,
            Err(StorageError::Refused(Refusal::EmailTaken))
        ));
        assert_eq!(store.count_users().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn upsert_updates_in_place() {
        let store = Store::memory().await.unwrap();
        let alice = user("alice", "alice@example.com");
        assert_eq!(store.upsert_user(&alice).await.unwrap(), Upserted::Created);
        let mut changed = user("alice", "new@example.com");
        changed.created_at = 1;
        assert_eq!(
            store.upsert_user(&changed).await.unwrap(),
            Upserted::Updated
        );
        let stored = store
            .user_by_username(&alice.username)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.email.as_str(), "new@example.com");
        assert_eq!(stored.created_at, alice.created_at, "created_at is kept");
        assert_eq!(store.count_users().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn racing_signups_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}", dir.path().join("db").display());
        let store = Store::open(&url, None).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            // Half race for the username, half for the email.
            let candidate = if i % 2 == 0 {
                user("racer", &format!("racer{i}@example.com"))
            } else {
                user(&format!("racer{i}"), "racer@example.com")
            };
            tasks.push(tokio::spawn(
                async move { store.create_user(&candidate).await },
            ));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => wins += 1,
                Err(
                    StorageError::Refused(Refusal::UsernameTaken)
                    | StorageError::Refused(Refusal::EmailTaken),
                ) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        let users = store.count_users().await.unwrap();
        // One winner for the username, one for the email.
        assert_eq!(wins, 2);
        assert_eq!(users, 2);
    }
}
