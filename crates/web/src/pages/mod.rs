//! The hypermedia site: one module per page, each with its view functions and its
//! `get`/`post` handlers. This file holds what they share: the layout, form pieces,
//! redirects and the stylesheet.

pub mod home;
pub mod login;
pub mod logout;
pub mod password;
pub mod signup;
pub mod user;

use maud::{DOCTYPE, Markup, Render, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Request, Response, handler};

use domain::{User, ValidationError};
use serde::Deserialize;

/// The stylesheet's path carries the version, so it can be cached forever.
pub const STYLE_PATH: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/style.css");
const STYLE: &str = include_str!("../../assets/style.css");

/// Whether the request came from htmx and wants a fragment. History restores ask
/// with `HX-Request` too, but need the whole page.
pub fn is_htmx(req: &Request) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    header("hx-request") == Some("true") && header("hx-history-restore-request") != Some("true")
}

/// Wraps `content` in the page shell. `user` is who is logged in, for the header;
/// `csrf` the token its logout form carries.
pub fn layout(title: &str, user: Option<&User>, csrf: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gatehouse" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header.site {
                    a.brand href="/" { "gatehouse" }
                    nav {
                        @if let Some(user) = user {
                            a href=(profile_path(user)) { (user.display_name()) }
                            form.inline method="post" action="/logout" {
                                (CsrfField(csrf))
                                button.link type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                            a href="/signup" { "Sign up" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

pub fn profile_path(user: &User) -> String {
    format!("/user/{}", user.username)
}

/// A full page with `status`, for the request's user.
pub fn page(req: &Request, status: StatusCode, title: &str, content: Markup) -> Response {
    let user = crate::auth::current(req).map(|a| &a.user);
    (
        status,
        layout(title, user, crate::csrf::token(req), content),
    )
        .into_response()
}

/// The hidden field that carries the CSRF token in every state-changing form.
pub struct CsrfField<'a>(pub &'a str);

impl Render for CsrfField<'_> {
    fn render(&self) -> Markup {
        html! { input type="hidden" name=(crate::csrf::FIELD) value=(self.0); }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = layout(
        title,
        None,
        "",
        html! {
            section.card {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the start page" } }
            }
        },
    );
    (status, body).into_response()
}

/// `303 See Other` to `location`: after a form, the browser loads the next page
/// with GET.
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// Adds a `Set-Cookie` header to `resp`.
pub fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    resp
}

/// The messages of a failed form, by field.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<ValidationError>);

impl FieldErrors {
    pub fn push(&mut self, err: ValidationError) {
        self.0.push(err);
    }

    pub fn add(&mut self, field: &'static str, message: &str) {
        self.0.push(ValidationError::new(field, message));
    }

    /// Keeps the value of `result`, recording its error.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// `?next=…` on the login and signup pages: where to go after.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

impl NextQuery {
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }
}

/// A labelled input with its error message, if any.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub required: bool,
    pub error: Option<&'a str>,
}

impl Render for Field<'_> {
    fn render(&self) -> Markup {
        let id = format!("field-{}", self.name);
        let error_id = format!("{id}-error");
        html! {
            div.field {
                label for=(id) { (self.label) }
                input id=(id) name=(self.name) type=(self.kind) value=(self.value)
                    autocomplete=(self.autocomplete) required[self.required]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[self.error.map(|_| error_id.as_str())];
                @if let Some(error) = self.error {
                    p.error id=(error_id) { (error) }
                }
            }
        }
    }
}

/// A form-wide message (for example "Invalid email or password.").
pub fn form_alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error.alert role="alert" { (message) }
        }
    }
}

/// The embedded stylesheet, cached for a year: its path changes with each release.
#[handler]
pub fn style() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .body(STYLE)
}
