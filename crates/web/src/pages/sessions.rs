//! `GET /account/sessions`: the user's sessions (browser, address, when started,
//! when last seen, "this device"), each revocable, and "log out everywhere else".
//! With htmx a revoked row disappears in place; without JavaScript the forms post
//! and come back here with `303`.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use storage::Session;

use super::CsrfField;
use super::user::date_time;
use crate::auth::{self, Authenticated};
use crate::error::WebError;
use crate::state::AppState;

pub const PATH: &str = "/account/sessions";

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

fn row(session: &Session, current: bool, csrf: &str) -> Markup {
    let revoke_url = format!("{PATH}/{}/revoke", session.id);
    html! {
        tr id={ "session-" (session.id[..16]) } {
            td {
                (describe_browser(session.user_agent.as_deref()))
                @if current { " " span.badge { "this device" } }
                @if session.remember { br; small.muted { "remembered" } }
            }
            td { (session.address.as_deref().unwrap_or("—")) }
            td { (date_time(session.created_at)) }
            td { (date_time(session.last_seen)) }
            td {
                @if !current {
                    form.inline method="post" action=(revoke_url)
                        hx-post=(revoke_url) hx-target="closest tr" hx-swap="outerHTML"
                        hx-disabled-elt="find button" {
                        (CsrfField(csrf))
                        button.link type="submit" { "Revoke" }
                    }
                }
            }
        }
    }
}

/// The table and its "everywhere else" form: the fragment htmx swaps.
fn sessions_fragment(me: &Authenticated, sessions: &[Session], csrf: &str) -> Markup {
    let current = me.session().map(|s| s.id.as_str());
    let others = sessions
        .iter()
        .filter(|s| Some(s.id.as_str()) != current)
        .count();
    let revoke_others_url = format!("{PATH}/revoke-others");
    html! {
        div #sessions {
            table.sessions {
                thead { tr { th { "Browser" } th { "Address" } th { "Started" } th { "Last seen" } th {} } }
                tbody {
                    @for session in sessions {
                        (row(session, Some(session.id.as_str()) == current, csrf))
                    }
                }
            }
            @if others > 0 {
                form method="post" action=(revoke_others_url)
                    hx-post=(revoke_others_url) hx-target="#sessions" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    (CsrfField(csrf))
                    (super::SubmitButton("Log out everywhere else"))
                }
            } @else {
                p.muted { "No other sessions." }
            }
        }
    }
}

pub async fn live_sessions(state: &AppState, me: &Authenticated) -> Result<Vec<Session>, WebError> {
    let now = storage::now();
    let idle = state.config.sessions.idle_timeout;
    Ok(state
        .store
        .sessions_of(&me.user.username)
        .await?
        .into_iter()
        .filter(|s| s.is_live(now, idle))
        .collect())
}

async fn render(req: &Request, state: &AppState, me: &Authenticated) -> Result<Response, WebError> {
    let sessions = live_sessions(state, me).await?;
    let fragment = sessions_fragment(me, &sessions, crate::csrf::token(req));
    Ok(super::respond(
        req,
        StatusCode::OK,
        "Your sessions",
        fragment,
        |fragment| {
            html! {
                section.card.wide {
                    h1 { "Your sessions" }
                    p.muted { "Every browser logged in as you. Revoke any you do not recognise." }
                    (fragment)
                }
            }
        },
    ))
}

#[handler]
pub async fn get(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let me = auth::require_login(req)?;
    render(req, state, me).await
}

/// Revokes one of the user's own sessions; someone else's id is a 404.
#[handler]
pub async fn revoke(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = auth::require_login(req)?;
    let session = state
        .store
        .session_by_id(&id)
        .await?
        .filter(|s| s.username == me.user.username)
        .ok_or(WebError::NotFound)?;
    auth::end_session(state, &session.id).await?;
    tracing::info!(
        event = "session_revoked",
        user = %me.user.username,
        address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
        session = &session.id[..16],
    );
    if super::is_htmx(req) {
        // The row is replaced by nothing.
        return Ok(Response::builder().status(StatusCode::OK).body(""));
    }
    Ok(super::see_other(PATH))
}

/// Ends every session of the user but this one.
#[handler]
pub async fn revoke_others(
    req: &Request,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = auth::require_login(req)?;
    let keep = me.session().map(|s| s.id.as_str());
    auth::end_other_sessions(state, &me.user.username, keep).await?;
    tracing::info!(
        event = "sessions_revoked",
        user = %me.user.username,
        address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
    );
    if super::is_htmx(req) {
        return render(req, state, me).await;
    }
    Ok(super::see_other(PATH))
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
