use maud::html;
use poem::http::StatusCode;
use poem::{Request, Response, handler};

use super::View;

#[handler]
pub fn get(req: &Request) -> Response {
    let view = View::of(req);
    let user = crate::http::identity::current(req).map(|a| &a.user);
    let content = html! {
        section.card {
            @if let Some(user) = user {
                h1 { "Welcome back, " (user.display_name()) }
                p { "You are logged in as " strong { (user.username) } "." }
                p { a href=(super::profile_path(user)) { "Your profile" } }
            } @else {
                h1 { "gatehouse" }
                p { "The login for this site and the apps behind it." }
                p { "You are not logged in." }
                p { a href="/login" { "Log in" } " or " a href="/signup" { "create an account" } "." }
            }
        }
    };
    super::page(&view, StatusCode::OK, "Home", content)
}
