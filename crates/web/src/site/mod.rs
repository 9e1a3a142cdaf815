//! The hypermedia site: one module per page, each with its view functions and its
//! `get`/`post` handlers. This file holds what they share: the layout, form pieces,
//! redirects and the stylesheet.

pub mod admin;
pub mod email;
pub mod error;
pub mod home;
pub mod login;
pub mod logout;
pub mod passkeys;
pub mod password;
pub mod reset;
pub mod security;
pub mod sessions;
pub mod signup;
pub mod user;

use maud::{DOCTYPE, Markup, Render, html};
use poem::http::StatusCode;
use poem::{IntoResponse, Request, Response, handler};

pub use crate::http::htmx::is_htmx;
use crate::http::response::Precompressed;
pub use crate::http::response::{see_other, with_cookie, with_retry_after};
pub use error::error_page;

use domain::User;
use serde::Deserialize;

/// The stylesheet's path carries the version, so it can be cached forever.
pub const STYLE_PATH: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/style.css");
const STYLE: Precompressed = Precompressed {
    plain: Some(include_bytes!("../../assets/style.css")),
    brotli: Some(include_bytes!(concat!(env!("OUT_DIR"), "/style.css.br"))),
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/style.css.gz")),
    content_type: "text/css; charset=utf-8",
};
/// htmx 2.0.11, installed from npm by `build.rs` and embedded; its path carries the
/// version too.
pub const HTMX_PATH: &str = "/assets/htmx-2.0.11/htmx.min.js";
const HTMX: Precompressed = Precompressed {
    plain: Some(include_bytes!(env!("GATEHOUSE_HTMX_JS"))),
    brotli: Some(include_bytes!(concat!(env!("OUT_DIR"), "/htmx.min.js.br"))),
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/htmx.min.js.gz")),
    content_type: "text/javascript; charset=utf-8",
};
/// Our passkey script ([`passkeys`]); its path carries the version.
pub const PASSKEY_JS_PATH: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/passkey.js");
const PASSKEY_JS: Precompressed = Precompressed {
    plain: Some(include_bytes!("../../assets/passkey.js")),
    brotli: Some(include_bytes!(concat!(env!("OUT_DIR"), "/passkey.js.br"))),
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/passkey.js.gz")),
    content_type: "text/javascript; charset=utf-8",
};
/// htmx without eval (the CSP forbids it) or injected styles, and swapping every
/// answer: the server decides what to swap where (`HX-Retarget`, `HX-Reswap`),
/// errors included, so a 422 form or a 429 alert appears in place.
const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0,"responseHandling":[{"code":"204","swap":false},{"code":".*","swap":true}]}"#;

/// Where error fragments go on an htmx request.
pub const ALERTS_ID: &str = "alerts";

/// Who the page shell greets: the logged-in user, and whether to link the admin
/// page.
#[derive(Clone, Copy)]
pub struct Visitor<'a> {
    pub user: &'a User,
    pub admin: bool,
}

/// Wraps `content` in the page shell. `visitor` is who is logged in, for the
/// header; `csrf` the token its logout form carries.
pub fn layout(title: &str, visitor: Option<Visitor<'_>>, csrf: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gatehouse" }
                meta name="htmx-config" content=(HTMX_CONFIG);
                link rel="stylesheet" href=(STYLE_PATH);
                script src=(HTMX_PATH) defer {}
                script src=(PASSKEY_JS_PATH) defer {}
            }
            body hx-headers=[csrf_headers(csrf)] {
                header.site {
                    a.brand href="/" { "gatehouse" }
                    nav {
                        @if let Some(Visitor { user, admin }) = visitor {
                            @if admin { a href=(admin::PATH) { "Users" } }
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
                main {
                    div id=(ALERTS_ID) aria-live="polite" {}
                    (content)
                }
            }
        }
    }
}

pub fn profile_path(user: &User) -> String {
    format!("/user/{}", user.username)
}

/// `hx-headers` for the body: htmx sends the CSRF token with every request.
fn csrf_headers(csrf: &str) -> Option<String> {
    (!csrf.is_empty()).then(|| format!(r#"{{"{}": "{csrf}"}}"#, crate::http::csrf::HEADER))
}

/// The one place that decides between a fragment and a whole page: an htmx request
/// (not a history restore) gets `fragment` alone, anything else the page `wrap`
/// builds around it.
pub fn respond(
    view: &View<'_>,
    status: StatusCode,
    title: &str,
    fragment: Markup,
    wrap: impl FnOnce(Markup) -> Markup,
) -> Response {
    if view.htmx {
        (status, fragment).into_response()
    } else {
        page(view, status, title, wrap(fragment))
    }
}

/// A page of one card — its heading, an optional line before the form, the
/// form, a footer line — or the form alone for htmx (see [`respond`]).
pub struct Card<'a> {
    pub title: &'a str,
    pub heading: &'a str,
    pub intro: Option<&'a str>,
    pub footer: Markup,
}

impl Card<'_> {
    pub fn respond(self, view: &View<'_>, status: StatusCode, content: Markup) -> Response {
        respond(view, status, self.title, content, |content| {
            html! {
                section.card {
                    h1 { (self.heading) }
                    @if let Some(intro) = self.intro { p.muted { (intro) } }
                    (content)
                    (self.footer)
                }
            }
        })
    }
}

/// After a successful form: htmx is told to navigate (`HX-Redirect`: a 303 would be
/// followed by the browser and swapped into the form), a plain form gets `303`.
pub fn redirect_after_form(view: &View<'_>, location: &str) -> Response {
    if view.htmx {
        Response::builder()
            .status(StatusCode::OK)
            .header(crate::http::htmx::HX_REDIRECT, location)
            .finish()
    } else {
        see_other(location)
    }
}

/// What the views take from a request, read once when a handler starts: whether
/// it is an htmx request (not a history restore), the CSRF token its forms carry,
/// and who is logged in (for the header). Rendering never goes back to the
/// request.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub htmx: bool,
    pub csrf: &'a str,
    pub visitor: Option<Visitor<'a>>,
}

impl<'a> View<'a> {
    pub fn of(req: &'a Request) -> Self {
        let visitor = crate::http::identity::current(req).map(|who| Visitor {
            user: &who.user,
            admin: req
                .data::<crate::http::AppState>()
                .is_some_and(|state| who.user.groups.contains(&state.config.admin_group)),
        });
        Self {
            htmx: is_htmx(req),
            csrf: crate::http::csrf::token(req),
            visitor,
        }
    }
}

/// A full page with `status`, for the request's user.
pub fn page(view: &View<'_>, status: StatusCode, title: &str, content: Markup) -> Response {
    (status, layout(title, view.visitor, view.csrf, content)).into_response()
}

/// The hidden field that carries the CSRF token in every state-changing form.
pub struct CsrfField<'a>(pub &'a str);

impl Render for CsrfField<'_> {
    fn render(&self) -> Markup {
        html! { input type="hidden" name=(crate::http::csrf::FIELD) value=(self.0); }
    }
}

pub use crate::core::accounts::FieldErrors;

/// Shown above a form whose CSRF check failed (an old tab, an expired cookie).
pub const FORM_EXPIRED: &str =
    "This form had expired. Check it and send it again: it is ready now.";

/// The site's answer to a request the CSRF check refused ([`crate::http::csrf::OnRefused`]):
/// a request from another site gets a plain 403 page; a form that is merely old comes
/// back as the same form with the user's input and a fresh token, never a dead end.
pub fn csrf_refused(
    req: &Request,
    state: &crate::http::AppState,
    refusal: &crate::http::csrf::Refusal,
    fields: &[(String, String)],
) -> Response {
    use crate::http::csrf::Refusal;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    };
    match refusal {
        Refusal::CrossSite(reason) => {
            error_page(StatusCode::FORBIDDEN, "Cross-site request refused", reason)
        }
        Refusal::TooLarge => error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form is larger than 16 KiB.",
        ),
        Refusal::Forged => match req.uri().path() {
            "/login" => login::refused(req, state, field),
            "/signup" => signup::refused(req, state, field),
            "/logout" => logout::refused(req),
            "/account/password" => {
                password::refused(req).unwrap_or_else(poem::IntoResponse::into_response)
            }
            _ => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the \
                 page and try again.",
            ),
        },
    }
}

/// `?next=…` on the login and signup pages: where to go after.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// The secret of an invitation link (`/signup?invite=…`).
    invite: Option<String>,
    /// `?reset=1`: back from a password reset.
    reset: Option<String>,
}

impl NextQuery {
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }

    pub fn invite(&self) -> Option<&str> {
        self.invite.as_deref()
    }

    pub fn reset(&self) -> bool {
        self.reset.is_some()
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
    /// Where htmx checks the value while the user types (debounced); the answer
    /// replaces the field's hint.
    pub validate: Option<&'a str>,
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
                    aria-describedby=(error_id)
                    hx-get=[self.validate]
                    hx-trigger=[self.validate.map(|_| "input changed delay:400ms")]
                    hx-target=[self.validate.map(|_| format!("#{error_id}"))]
                    hx-swap=[self.validate.map(|_| "outerHTML")]
                    hx-sync=[self.validate.map(|_| "this:replace")]
                    hx-include=[self.validate.map(|_| "[name='invite']")];
                (Hint { id: &error_id, error: self.error, ok: None })
            }
        }
    }
}

/// The message under a field: an error, a confirmation, or an empty placeholder
/// that inline validation can fill.
pub struct Hint<'a> {
    pub id: &'a str,
    pub error: Option<&'a str>,
    pub ok: Option<&'a str>,
}

impl Render for Hint<'_> {
    fn render(&self) -> Markup {
        html! {
            @if let Some(error) = self.error {
                p.error.hint id=(self.id) { (error) }
            } @else if let Some(ok) = self.ok {
                p.ok.hint id=(self.id) { (ok) }
            } @else {
                p.hint id=(self.id) {}
            }
        }
    }
}

/// A form's submit button, with the indicator htmx shows while the request is in
/// flight (the button itself is disabled meanwhile: `hx-disabled-elt`).
pub struct SubmitButton<'a>(pub &'a str);

impl Render for SubmitButton<'_> {
    fn render(&self) -> Markup {
        html! {
            button type="submit" {
                (self.0)
                span.htmx-indicator aria-hidden="true" { " …" }
            }
        }
    }
}

/// The form of a one-card page (log in, sign up, the second step, the passwords):
/// a plain POST without JavaScript; under htmx it posts itself and is replaced by
/// the answer (the form again with its errors, or a redirect). It carries the CSRF
/// token, the form-wide alert and hidden fields (`next`, an invitation, a reset
/// link's token) before its own fields.
pub struct CardForm<'a> {
    id: &'a str,
    action: &'a str,
    csrf: &'a str,
    alert: Option<&'a str>,
    hidden: &'a [(&'a str, Option<&'a str>)],
}

impl<'a> CardForm<'a> {
    pub fn new(id: &'a str, action: &'a str, csrf: &'a str) -> Self {
        Self {
            id,
            action,
            csrf,
            alert: None,
            hidden: &[],
        }
    }

    /// A form-wide message above the fields ([`form_alert`]).
    pub fn alert(self, alert: Option<&'a str>) -> Self {
        Self { alert, ..self }
    }

    /// Hidden fields, by name; a `None` value is left out.
    pub fn hidden(self, hidden: &'a [(&'a str, Option<&'a str>)]) -> Self {
        Self { hidden, ..self }
    }

    pub fn wrap(&self, fields: Markup) -> Markup {
        html! {
            form id=(self.id) method="post" action=(self.action) novalidate
                hx-post=(self.action) hx-target="this" hx-swap="outerHTML"
                hx-disabled-elt="find button[type=submit]" {
                (CsrfField(self.csrf))
                (form_alert(self.alert))
                @for (name, value) in self.hidden {
                    @if let Some(value) = value {
                        input type="hidden" name=(name) value=(value);
                    }
                }
                (fields)
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

/// The embedded htmx, precompressed, cached for a year: its path changes with its
/// version.
#[handler]
pub fn htmx(req: &Request) -> Response {
    HTMX.answer(req)
}

#[handler]
pub fn passkey_js(req: &Request) -> Response {
    PASSKEY_JS.answer(req)
}

/// The embedded stylesheet, precompressed, cached for a year: its path changes with
/// each release.
#[handler]
pub fn style(req: &Request) -> Response {
    STYLE.answer(req)
}
