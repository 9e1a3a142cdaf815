//! Sessions and API tokens as a request meets them: load one (through the cache),
//! start one at login, end one, end the others, list them. No HTTP here: the
//! identity middleware and the adapters bring the token and the client.

use std::sync::Arc;

use domain::Username;
use storage::{ApiToken, NewSession, Session, SessionToken, StorageError};

use super::client::ClientInfo;
use super::error::CoreError;
use super::principal::{Authenticated, Credential};
use super::services::Services;

/// How often at most a session's `last_seen` is written: a write per request would
/// cost more than the whole lookup.
const TOUCH_INTERVAL: i64 = 60;

/// The live session `token` names, with its user, from the cache or the store
/// (Flask-Login's `user_loader`). An ended or idle session is deleted.
pub async fn load_session(
    services: &Services,
    token: Option<SessionToken>,
) -> Result<Option<Arc<Authenticated>>, StorageError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let cache = &services.sessions;
    let found = match cache.get(&token.session_digest()) {
        Some(hit) => hit,
        None => {
            let id = token.session_id();
            let generation = cache.generation();
            let Some(session) = services.store.session_by_id(&id).await? else {
                return Ok(None);
            };
            let Some(user) = services.store.user_by_username(&session.username).await? else {
                return Ok(None);
            };
            let found = Arc::new(Authenticated::new(user, Credential::Session(session)));
            cache.insert(generation, Arc::clone(&found));
            found
        }
    };
    let Some(session) = found.session() else {
        return Ok(None);
    };
    // Disabling ends every session too; this covers a session read just before.
    if found.user.disabled {
        return Ok(None);
    }
    let id = &session.id;
    let now = storage::now();
    if !session.is_live(now, services.config.sessions.idle_timeout) {
        cache.evict(id);
        services.store.delete_session(id).await?;
        return Ok(None);
    }
    if now - session.last_seen >= TOUCH_INTERVAL {
        // The cached copy's last_seen is stale now: the next request reloads it.
        cache.evict(id);
        services.store.touch_session(id, now).await?;
    }
    Ok(Some(found))
}

/// The live API token `token` names, with its user (Flask-Login's
/// `request_loader`); its last use is written at most once a minute.
pub async fn load_token(
    services: &Services,
    token: Option<ApiToken>,
) -> Result<Option<Arc<Authenticated>>, StorageError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let Some(info) = services.store.api_token(&token).await? else {
        return Ok(None);
    };
    let now = storage::now();
    if !info.is_live(now) {
        return Ok(None);
    }
    let Some(user) = services
        .store
        .user_by_username(&info.username)
        .await?
        .filter(|user| !user.disabled)
    else {
        return Ok(None);
    };
    if info.last_used.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
        services.store.touch_api_token(&info.id, now).await?;
    }
    Ok(Some(Arc::new(Authenticated::new(
        user,
        Credential::Token(info),
    ))))
}

/// Ends one session: in the store, and at once in this node's cache (other nodes
/// hear of it through the change feed).
pub async fn end_session(services: &Services, id: &str) -> Result<(), CoreError> {
    services.store.delete_session(id).await?;
    services.sessions.evict(id);
    Ok(())
}

/// Ends every session of `username` but `keep`.
pub async fn end_other_sessions(
    services: &Services,
    username: &Username,
    keep: Option<&str>,
) -> Result<(), CoreError> {
    services.store.delete_other_sessions(username, keep).await?;
    services.sessions.evict_user(username);
    Ok(())
}

/// Sets a new password, ends every session of `username` but `keep` and revokes
/// their API tokens, in one transaction; this node's cache forgets the sessions at
/// once (other nodes hear of it through the change feed). The owner gets a notice
/// by mail.
pub async fn change_password(
    services: &Services,
    username: &Username,
    hash: &domain::PasswordHash,
    keep: Option<&str>,
) -> Result<storage::AccessEnded, CoreError> {
    let ended = services.store.change_password(username, hash, keep).await?;
    services.sessions.evict_user(username);
    if services.config.mail.enabled()
        && let Some(user) = services.store.user_by_username(username).await?
    {
        super::message::notify(
            &services.store,
            true,
            &user,
            "Your password was changed",
            &format!(
                "The password of your account was changed; {} other session(s) ended and {}                  API token(s) were revoked",
                ended.sessions, ended.tokens
            ),
        )
        .await;
    }
    Ok(ended)
}

/// A new session for `username` (Flask-Login's `login_user`), its token, and the
/// cookie lifetime to give it ("remember me": as long as the session; otherwise a
/// browser-session cookie). The session the browser came with, if any, is ended:
/// the token it held before login is worthless after it (no session fixation).
/// What a new session records of the login behind it.
#[derive(Debug, Clone)]
pub struct Login {
    pub remember: bool,
    /// How the user proved who they are (`pwd`, `otp`, …).
    pub factors: Vec<String>,
    /// When, if earlier than now (a session started again after a set-up).
    pub authenticated_at: Option<i64>,
}

pub async fn start_session(
    services: &Services,
    client: &ClientInfo,
    username: &Username,
    login: Login,
    previous: Option<&Session>,
) -> Result<(SessionToken, Session, Option<i64>), CoreError> {
    if let Some(old) = previous {
        end_session(services, &old.id).await?;
    }
    let policy = services.config.sessions;
    let lifetime = if login.remember {
        policy.remember_lifetime
    } else {
        policy.lifetime
    };
    let new = NewSession {
        lifetime,
        remember: login.remember,
        user_agent: client.user_agent.clone(),
        address: client.address.clone(),
        factors: login.factors,
        authenticated_at: login.authenticated_at,
    };
    let (token, session) = services.store.create_session(username, new).await?;
    Ok((token, session, login.remember.then_some(lifetime)))
}

/// "Firefox on Linux", from a User-Agent header; good enough to tell devices apart.
pub fn describe_browser(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map_or("Other browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

/// Ends `me`'s session `id` (from their list of sessions), with an audit line.
/// `None` when they have no session of that id (someone else's included);
/// `Some(true)` when it was the session of this request.
pub async fn revoke_own_session(
    services: &Services,
    client: &ClientInfo,
    me: &Authenticated,
    id: &str,
) -> Result<Option<bool>, CoreError> {
    let Some(session) = services
        .store
        .session_by_id(id)
        .await?
        .filter(|s| s.username == me.user.username)
    else {
        return Ok(None);
    };
    end_session(services, &session.id).await?;
    tracing::info!(
        event = "session_revoked",
        user = %me.user.username,
        address = client.address(),
        session = &session.id[..16.min(session.id.len())],
    );
    Ok(Some(me.session().is_some_and(|s| s.id == session.id)))
}

/// The user's sessions that are still live, newest first.
pub async fn live_sessions(
    services: &Services,
    me: &Authenticated,
) -> Result<Vec<Session>, CoreError> {
    let now = storage::now();
    let idle = services.config.sessions.idle_timeout;
    Ok(services
        .store
        .sessions_of(&me.user.username)
        .await?
        .into_iter()
        .filter(|s| s.is_live(now, idle))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe_browser(Some(ua)), expected);
        }
        assert_eq!(describe_browser(None), "Unknown browser");
    }
}
