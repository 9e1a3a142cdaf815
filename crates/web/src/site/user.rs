use domain::Username;
use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use time::macros::format_description;

use super::View;
use crate::http::AppState;
use crate::site::error::WebError;

/// A user's profile. Login required; an unknown or invalid name is a 404 page.
#[handler]
pub async fn get(
    req: &Request,
    Path(name): Path<String>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let me = &super::error::require_login(req)?.user;
    let username = Username::parse(&name).map_err(|_| WebError::NotFound)?;
    // Addresses are case-insensitive; the canonical one is lowercase.
    if username.as_str() != name {
        return Ok(super::see_other(&format!("/user/{username}")));
    }
    let Some(user) = crate::core::accounts::user(state, &username).await? else {
        return Err(WebError::NotFound);
    };
    let own = user.username == me.username;
    let content = html! {
        section.card {
            h1 { (user.display_name()) }
            dl {
                dt { "Username" } dd { (user.username) }
                @if let Some(name) = &user.name { dt { "Name" } dd { (name.as_str()) } }
                @if own {
                    dt { "Email" }
                    dd #email {
                        (user.email)
                        @if !user.email_verified { " (" a href="/account/email" { "not verified" } ")" }
                    }
                }
                @if own {
                    dt { "Groups" }
                    dd #groups {
                        @if user.groups.is_empty() { "none" }
                        @else { (user.groups.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")) }
                    }
                }
                dt { "Member since" } dd { (date(user.created_at)) }
            }
            @if own {
                p.muted {
                    "This is you. " a href="/account/sessions" { "Your sessions" }
                    " · " a href="/account/password" { "Change your password" }
                    " · " a href="/account/security" { "Security" }
                    " · " a href="/account/email" { "Email" }
                }
            }
        }
    };
    Ok(super::page(
        &view,
        StatusCode::OK,
        user.display_name(),
        content,
    ))
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix timestamp.
pub fn date_time(unix: i64) -> String {
    format_unix(
        unix,
        format_description!("[year]-[month]-[day] [hour]:[minute] UTC"),
    )
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp.
pub fn date(unix: i64) -> String {
    format_unix(unix, format_description!("[year]-[month]-[day]"))
}

fn format_unix(unix: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(951_782_400), "2000-02-29");
        assert_eq!(super::date(1_795_000_000), "2026-11-18");
        assert_eq!(super::date_time(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
