//! `GET /login` shows the form; `POST /login` checks the password and starts a
//! session, then sends the user to a safe `next` or their profile.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};

use super::{CsrfField, Field, FieldErrors, NextQuery, form_alert};
use crate::core::accounts::{
    ACCOUNT_DISABLED, INVALID_CREDENTIALS, LoginOutcome, check_login, retry_in,
};

use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;
use crate::site::error::WebError;

const FIELDS: &[&str] = &["email", "password", "remember", "next"];

#[derive(Debug, Default)]
pub struct LoginForm<'a> {
    pub email: &'a str,
    pub remember: bool,
    pub next: Option<&'a str>,
    /// The CSRF token the form carries.
    pub csrf: &'a str,
}

/// The login form. The password is never put back into it.
pub fn form(input: &LoginForm<'_>, errors: &FieldErrors, alert: Option<&str>) -> Markup {
    html! {
        form #login-form method="post" action="/login" novalidate
            hx-post="/login" hx-target="this" hx-swap="outerHTML"
            hx-disabled-elt="find button[type=submit]" {
            (CsrfField(input.csrf))
            (form_alert(alert))
            @if let Some(next) = input.next {
                input type="hidden" name="next" value=(next);
            }
            (Field { name: "email", label: "Email", kind: "email", value: input.email,
                     autocomplete: "username", required: true, error: errors.get("email"), validate: None })
            (Field { name: "password", label: "Password", kind: "password", value: "",
                     autocomplete: "current-password", required: true,
                     error: errors.get("password"), validate: None })
            label.checkbox {
                input type="checkbox" name="remember" value="on" checked[input.remember];
                "Remember me"
            }
            (super::SubmitButton("Log in"))
        }
    }
}

fn page(req: &Request, status: StatusCode, content: Markup) -> Response {
    super::respond(req, status, "Log in", content, |content| {
        html! {
            section.card {
                h1 { "Log in" }
                (content)
                p.muted { "No account yet? " a href="/signup" { "Sign up" } "." }
            }
        }
    })
}

#[handler]
pub fn get(
    req: &Request,
    Query(query): Query<NextQuery>,
    Data(state): Data<&AppState>,
) -> Response {
    let next = query
        .next()
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let input = LoginForm {
        next: next.as_deref(),
        csrf: crate::http::csrf::token(req),
        ..LoginForm::default()
    };
    page(
        req,
        StatusCode::OK,
        form(&input, &FieldErrors::default(), None),
    )
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let form_data = read_form(req, body, FIELDS).await?;
    let email_input = form_data.required("email")?;
    let password_input = form_data.required("password")?;
    let next = form_data
        .optional("next")
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let input = LoginForm {
        email: email_input,
        remember: form_data.checked("remember"),
        next: next.as_deref(),
        csrf: crate::http::csrf::token(req),
    };
    let user =
        match check_login(state, &client_info(req, state), email_input, password_input).await? {
            LoginOutcome::Valid(user) => user,
            LoginOutcome::Invalid(errors) => {
                let content = form(&input, &errors, None);
                return Ok(page(req, StatusCode::UNPROCESSABLE_ENTITY, content));
            }
            LoginOutcome::Throttled { wait } => {
                let alert = format!("Too many failed logins. {}", retry_in(wait));
                let content = form(&input, &FieldErrors::default(), Some(&alert));
                let resp = page(req, StatusCode::TOO_MANY_REQUESTS, content);
                return Ok(super::with_retry_after(resp, wait));
            }
            LoginOutcome::Refused => {
                let content = form(&input, &FieldErrors::default(), Some(INVALID_CREDENTIALS));
                return Ok(page(req, StatusCode::UNAUTHORIZED, content));
            }
            LoginOutcome::Disabled => {
                let content = form(&input, &FieldErrors::default(), Some(ACCOUNT_DISABLED));
                return Ok(page(req, StatusCode::FORBIDDEN, content));
            }
        };
    let (cookie, _) =
        crate::http::identity::log_in(state, req, &user.username, input.remember).await?;
    let target = next.unwrap_or_else(|| super::profile_path(&user));
    Ok(super::with_cookie(
        super::redirect_after_form(req, &target),
        &cookie,
    ))
}

/// The form again after a refused CSRF check, with the input kept (not the
/// password) and the request's fresh token.
pub fn refused(
    req: &Request,
    state: &AppState,
    field: impl Fn(&str) -> Option<String>,
) -> Response {
    let email = field("email");
    let next = field("next").and_then(|n| crate::core::next::safe_next(&n, &state.config));
    let input = LoginForm {
        email: email.as_deref().unwrap_or_default(),
        remember: field("remember").is_some(),
        next: next.as_deref(),
        csrf: crate::http::csrf::token(req),
    };
    let content = form(&input, &FieldErrors::default(), Some(super::FORM_EXPIRED));
    page(req, StatusCode::FORBIDDEN, content)
}
