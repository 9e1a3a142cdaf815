//! `GET /signup` shows the form; `POST /signup` creates the user and logs them in.

use domain::{Email, Password, Username};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Body, IntoResponse, Request, Response, handler};

use super::View;
use super::{Field, FieldErrors, NextQuery};
use crate::core::accounts::{
    NewAccount, SignupAccess, SignupOutcome, USERNAME_TAKEN, sign_up, signup_access,
};

use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;
use crate::site::error::WebError;

const FIELDS: &[&str] = &[
    "username", "email", "name", "password", "confirm", "next", "invite",
];

#[derive(Debug, Default)]
pub struct SignupForm<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub next: Option<&'a str>,
    /// The invitation link's secret, carried by the form.
    pub invite: Option<&'a str>,
    /// The invitation names the email: shown, not editable.
    pub email_fixed: bool,
    /// The CSRF token the form carries.
    pub csrf: &'a str,
}

/// The signup form, with the user's input kept except the passwords.
pub fn form(input: &SignupForm<'_>, errors: &FieldErrors, alert: Option<&str>) -> Markup {
    super::CardForm::new("signup-form", "/signup", input.csrf).alert(alert).hidden(&[("next", input.next), ("invite", input.invite)]).wrap(html! {
        (Field { name: "username", label: "Username", kind: "text", value: input.username,
                 autocomplete: "username", required: true, error: errors.get("username"),
                 validate: Some("/signup/check/username") })
        @if input.email_fixed {
            input type="hidden" name="email" value=(input.email);
            p #invited-email { "Email: " strong { (input.email) } " (from your invitation)" }
            @if let Some(error) = errors.get("email") {
                p.error role="alert" { (error) }
            }
        } @else {
            (Field { name: "email", label: "Email", kind: "email", value: input.email,
                     autocomplete: "email", required: true, error: errors.get("email"),
                     validate: Some("/signup/check/email") })
        }
        (Field { name: "name", label: "Display name (optional)", kind: "text",
                 value: input.name, autocomplete: "name", required: false,
                 error: errors.get("name"), validate: None })
        (Field { name: "password", label: "Password (at least 8 characters)",
                 kind: "password", value: "", autocomplete: "new-password", required: true,
                 error: errors.get("password"), validate: Some("/signup/check/password") })
        (Field { name: "confirm", label: "Confirm password", kind: "password", value: "",
                 autocomplete: "new-password", required: true, error: errors.get("confirm"), validate: None })
        (super::SubmitButton("Create account"))
    })
}

fn page(view: &View<'_>, status: StatusCode, content: Markup) -> Response {
    let footer = html! { p.muted { "Already have one? " a href="/login" { "Log in" } "." } };
    let card = super::Card {
        title: "Sign up",
        heading: "Create an account",
        intro: None,
        footer,
    };
    card.respond(view, status, content)
}

/// `GET /signup/check/{field}?{field}=…`: the hint under a signup field while the
/// user types. The username's availability is checked; the email's is not, since
/// that would tell anyone which addresses have accounts (SPEC §7) — only its form.
#[handler]
pub async fn check(
    Path(field): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let value = query.get(&field).map_or("", String::as_str);
    let (error, ok) = match field.as_str() {
        "username" => match Username::parse(value) {
            Err(err) => (Some(err.message), None),
            // Whether a name is taken is said only to a visitor who may sign up
            // (under `invite`, one whose form carries a live invitation): a stranger
            // must not be able to list the accounts of a closed site.
            Ok(_) if !may_sign_up(state, query.get("invite")).await? => {
                (None, Some("Looks right."))
            }
            Ok(username) => match crate::core::accounts::user(state, &username).await? {
                Some(_) => (Some(USERNAME_TAKEN.to_owned()), None),
                None => (None, Some("Available.")),
            },
        },
        "email" => match Email::parse(value) {
            Err(err) => (Some(err.message), None),
            Ok(_) => (None, Some("Looks right.")),
        },
        "password" => match Password::parse(value) {
            Err(err) => (Some(err.message), None),
            Ok(_) => (None, Some("Long enough.")),
        },
        _ => return Err(WebError::NotFound),
    };
    let id = format!("field-{field}-error");
    let hint = super::Hint {
        id: &id,
        error: error.as_deref(),
        ok,
    };
    Ok(maud::Render::render(&hint).into_response())
}

async fn may_sign_up(state: &AppState, invite: Option<&String>) -> Result<bool, WebError> {
    let access = signup_access(state, invite.map(String::as_str)).await?;
    Ok(!matches!(access, SignupAccess::Refused(_)))
}

/// Sign-up is not open to this visitor: the page says why, with no form.
fn not_open(view: &View<'_>, message: &str) -> Response {
    let content = html! {
        p #signup-refused role="alert" { (message) }
    };
    page(view, StatusCode::FORBIDDEN, content)
}

#[handler]
pub async fn get(
    req: &Request,
    Query(query): Query<NextQuery>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let next = query
        .next()
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let invited_email;
    let mut input = SignupForm {
        next: next.as_deref(),
        csrf: view.csrf,
        ..SignupForm::default()
    };
    match signup_access(state, query.invite()).await? {
        SignupAccess::Refused(message) => return Ok(not_open(&view, message)),
        SignupAccess::Open => {}
        SignupAccess::Invited(_, invitation) => {
            input.invite = query.invite();
            invited_email = invitation.email.map(|e| e.as_str().to_owned());
            if let Some(email) = &invited_email {
                input.email = email;
                input.email_fixed = true;
            }
        }
    }
    Ok(page(
        &view,
        StatusCode::OK,
        form(&input, &FieldErrors::default(), None),
    ))
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let form_data = read_form(req, body, FIELDS).await?;
    let next = form_data
        .optional("next")
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let invite = form_data.optional("invite").filter(|i| !i.is_empty());
    let input = SignupForm {
        username: form_data.required("username")?,
        email: form_data.required("email")?,
        name: form_data.optional("name").unwrap_or_default(),
        next: next.as_deref(),
        invite,
        email_fixed: false,
        csrf: view.csrf,
    };
    let account = NewAccount {
        username: input.username,
        email: input.email,
        name: input.name,
        password: form_data.required("password")?,
        confirm: Some(form_data.required("confirm")?),
        invitation: invite,
    };
    let user = match sign_up(state, &client_info(req, state), &account).await? {
        SignupOutcome::Created(user) => user,
        SignupOutcome::Invalid(errors) => {
            let content = form(&input, &errors, None);
            return Ok(page(&view, StatusCode::UNPROCESSABLE_ENTITY, content));
        }
        SignupOutcome::Taken(errors) => {
            return Ok(page(
                &view,
                StatusCode::CONFLICT,
                form(&input, &errors, None),
            ));
        }
        SignupOutcome::Refused(message) => return Ok(not_open(&view, message)),
    };
    let factors = vec![crate::core::factors::PASSWORD.to_owned()];
    let (cookie, _) =
        crate::http::identity::log_in(state, req, &user.username, false, factors.clone()).await?;
    // A new account has no second factor yet: set up one its group must use, or
    // verify the address the gate and the API wait for, or go on.
    let target = super::login::landing(state, &user, &factors, next);
    Ok(super::with_cookie(
        super::redirect_after_form(&view, &target),
        &cookie,
    ))
}

/// The form again after a refused CSRF check, with the input kept (not the
/// passwords) and the request's fresh token.
pub fn refused(
    req: &Request,
    state: &AppState,
    field: impl Fn(&str) -> Option<String>,
) -> Response {
    let view = View::of(req);
    let (username, email, name) = (field("username"), field("email"), field("name"));
    let next = field("next").and_then(|n| crate::core::next::safe_next(&n, &state.config));
    let invite = field("invite").filter(|i| !i.is_empty());
    let input = SignupForm {
        username: username.as_deref().unwrap_or_default(),
        email: email.as_deref().unwrap_or_default(),
        name: name.as_deref().unwrap_or_default(),
        next: next.as_deref(),
        invite: invite.as_deref(),
        email_fixed: false,
        csrf: view.csrf,
    };
    let content = form(&input, &FieldErrors::default(), Some(super::FORM_EXPIRED));
    page(&view, StatusCode::FORBIDDEN, content)
}
