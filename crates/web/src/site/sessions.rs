//! `GET /account/sessions`: the user's sessions (browser, address, when started,
//! when last seen, "this device"), each revocable, and "log out everywhere else".
//! With htmx a revoked row disappears in place; without JavaScript the forms post
//! and come back here with `303`.

use crate::core::records::Session;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use super::CsrfField;
use super::View;
use super::user::date_time;
use crate::core::Authenticated;
use crate::core::sessions::{describe_browser, live_sessions};
use crate::http::AppState;
use crate::site::error::WebError;

pub const PATH: &str = "/account/sessions";

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

async fn render(req: &Request, state: &AppState, me: &Authenticated) -> Result<Response, WebError> {
    let view = View::of(req);
    let sessions = live_sessions(state, me).await?;
    let fragment = sessions_fragment(me, &sessions, view.csrf);
    Ok(super::respond(
        &view,
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
    let me = super::error::require_login(req)?;
    render(req, state, me).await
}

/// Revokes one of the user's own sessions; someone else's id is a 404.
#[handler]
pub async fn revoke(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = super::error::require_login(req)?;
    let client = crate::http::identity::client_info(req, state);
    crate::core::sessions::revoke_own_session(state, &client, me, &id)
        .await?
        .ok_or(WebError::NotFound)?;
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
    let me = super::error::require_login(req)?;
    let keep = me.session().map(|s| s.id.as_str());
    crate::core::sessions::end_other_sessions(state, &me.user.username, keep).await?;
    tracing::info!(
        event = "sessions_revoked",
        user = %me.user.username,
        address = crate::http::proxy::client_address(req, &state.config).as_deref().unwrap_or("-"),
    );
    if super::is_htmx(req) {
        return render(req, state, me).await;
    }
    Ok(super::see_other(PATH))
}
