//! `/account/email`: the user's address — whether it is verified, a button to send
//! the link again (throttled), and a form to change it (with the password).
//! `GET, POST /verify?token=…`: the link from the mail shows a button that
//! verifies (a GET changes nothing, so a mail scanner that follows links cannot use
//! it up). Plain forms throughout: they work the same with JavaScript off.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};

use super::View;
use super::error::{WebError, require_login};
use super::reset::TokenQuery;
use super::{CsrfField, Field, FieldErrors, SubmitButton, form_alert};
use crate::core::Authenticated;
use crate::core::access;
use crate::core::accounts::{EmailChange, WRONG_CURRENT_PASSWORD, change_email, retry_in};
use crate::core::verify::{
    self, Resend, VERIFY_EXPIRED, VERIFY_REQUIRED, VERIFY_SENT, VERIFY_UNAVAILABLE, Verification,
};
use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;

pub const PATH: &str = "/account/email";
pub const SEND_PATH: &str = "/account/email/verify";
pub const VERIFY_PATH: &str = "/verify";

/// What the page says above its forms.
enum Note<'a> {
    None,
    Ok(&'a str),
    Alert(&'a str),
}

fn email_view(
    state: &AppState,
    me: &Authenticated,
    csrf: &str,
    note: Note<'_>,
    form: (&str, &FieldErrors),
) -> Markup {
    let user = &me.user;
    let mail = state.config.mail.enabled();
    html! {
        section.card.wide #email {
            h1 { "Email" }
            @match note {
                Note::Ok(text) => p.ok role="status" #email-note { (text) },
                Note::Alert(text) => (form_alert(Some(text))),
                Note::None => {},
            }
            p #email-status {
                "Your address is " strong { (user.email) } ": "
                @if user.email_verified { strong.ok { "verified" } "." }
                @else { strong { "not verified yet" } "." }
            }
            @if !user.email_verified {
                @if access::must_verify_email(&state.config, user) {
                    p { (VERIFY_REQUIRED) }
                }
                @if mail {
                    form #verify-send method="post" action=(SEND_PATH) {
                        (CsrfField(csrf))
                        p.muted { "Did the link not come, or did it expire?" }
                        (SubmitButton("Send the link again"))
                    }
                } @else {
                    p.muted { (VERIFY_UNAVAILABLE) }
                }
            }
            h2 { "Change your address" }
            form #email-change method="post" action=(PATH) novalidate {
                (CsrfField(csrf))
                (Field { name: "email", label: "New address", kind: "email", value: form.0,
                         autocomplete: "email", required: true, error: form.1.get("email"), validate: None })
                (Field { name: "password", label: "Your password", kind: "password", value: "",
                         autocomplete: "current-password", required: true, error: form.1.get("password"), validate: None })
                (SubmitButton("Change address"))
            }
            @if mail { p.muted { "We will mail a link to the new address to verify it." } }
            p.muted { a href=(super::profile_path(user)) { "Back to your profile" } }
        }
    }
}

/// The email page for one request: the logged-in user and what the page says.
struct Page<'a> {
    view: View<'a>,
    state: &'a AppState,
    me: &'a Authenticated,
}

impl Page<'_> {
    /// The page with `note` above its forms and the change form holding `form`.
    fn show(&self, status: StatusCode, note: Note<'_>, form: (&str, &FieldErrors)) -> Response {
        let csrf = self.view.csrf;
        let content = email_view(self.state, self.me, csrf, note, form);
        super::page(&self.view, status, "Email", content)
    }

    /// `429` with `alert` and `Retry-After: wait`.
    fn throttled(&self, alert: &str, wait: i64, form: (&str, &FieldErrors)) -> Response {
        let alert = format!("{alert} {}", retry_in(wait));
        let page = self.show(StatusCode::TOO_MANY_REQUESTS, Note::Alert(&alert), form);
        super::with_retry_after(page, wait)
    }
}

#[handler]
pub fn get(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let me = require_login(req)?;
    let note = if req.uri().query() == Some("changed=1") {
        Note::Ok("Your address was changed.")
    } else {
        Note::None
    };
    let page = Page {
        view: View::of(req),
        state,
        me,
    };
    Ok(page.show(StatusCode::OK, note, ("", &FieldErrors::default())))
}

/// "Send the link again".
#[handler]
pub async fn send(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let me = require_login(req)?;
    let page = Page {
        view: View::of(req),
        state,
        me,
    };
    let none = FieldErrors::default();
    Ok(
        match verify::resend(state, &client_info(req, state), &me.user).await? {
            Resend::Sent => page.show(StatusCode::OK, Note::Ok(VERIFY_SENT), ("", &none)),
            Resend::AlreadyVerified => super::see_other(PATH),
            Resend::Throttled { wait } => {
                page.throttled("A link was sent a moment ago.", wait, ("", &none))
            }
            Resend::Unavailable => page.show(
                StatusCode::SERVICE_UNAVAILABLE,
                Note::Alert(VERIFY_UNAVAILABLE),
                ("", &none),
            ),
        },
    )
}

/// "Change address".
#[handler]
pub async fn change(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = require_login(req)?;
    let form = read_form(req, body, &["email", "password"]).await?;
    let email = form.required("email")?;
    let password = form.required("password")?;
    let client = client_info(req, state);
    let page = Page {
        view: View::of(req),
        state,
        me,
    };
    let mut errors = FieldErrors::default();
    Ok(
        match change_email(state, &client, &me.user, email, password).await? {
            EmailChange::Changed => super::see_other(&format!("{PATH}?changed=1")),
            EmailChange::Invalid(invalid) => page.show(
                StatusCode::UNPROCESSABLE_ENTITY,
                Note::None,
                (email, &invalid),
            ),
            EmailChange::WrongPassword => {
                errors.add("password", WRONG_CURRENT_PASSWORD);
                page.show(StatusCode::FORBIDDEN, Note::None, (email, &errors))
            }
            EmailChange::Throttled { wait } => {
                page.throttled("Too many wrong passwords.", wait, (email, &errors))
            }
        },
    )
}

fn link_page(view: &View<'_>, status: StatusCode, title: &str, content: Markup) -> Response {
    super::page(
        view,
        status,
        title,
        html! { section.card #verify { h1 { (title) } (content) } },
    )
}

fn expired(view: &View<'_>) -> Response {
    link_page(
        view,
        StatusCode::GONE,
        "Link expired",
        html! {
            (form_alert(Some(VERIFY_EXPIRED)))
            p { a href=(PATH) { "Ask for a new link" } }
        },
    )
}

/// The link from the mail: a button, not the verification itself.
#[handler]
pub fn link_get(req: &Request, Query(query): Query<TokenQuery>) -> Response {
    let view = View::of(req);
    let token = query.token.unwrap_or_default();
    if !verify::looks_valid(&token) {
        return expired(&view);
    }
    let csrf = view.csrf;
    link_page(
        &view,
        StatusCode::OK,
        "Verify your address",
        html! {
            form #verify-form method="post" action=(VERIFY_PATH) {
                (CsrfField(csrf))
                input type="hidden" name="token" value=(token);
                p { "Confirm that this address is yours." }
                (SubmitButton("Verify my address"))
            }
        },
    )
}

#[handler]
pub async fn link_post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let form = read_form(req, body, &["token"]).await?;
    let token = form.required("token")?;
    Ok(
        match verify::complete(state, &client_info(req, state), token).await? {
            Verification::Verified(username) => link_page(
                &view,
                StatusCode::OK,
                "Address verified",
                html! {
                    p.ok role="status" #verified {
                        "The address of " strong { (username.as_str()) } " is verified."
                    }
                    p { a href="/" { "Go on" } }
                },
            ),
            Verification::Expired => expired(&view),
        },
    )
}
