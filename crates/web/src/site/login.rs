//! `GET /login` shows the form; `POST /login` checks the password and starts a
//! session, then sends the user to a safe `next` or their profile. For an account
//! with a second factor the password leads to `/login/code` instead, holding a
//! pending login (not a session) until a code is given.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};

use super::{CsrfField, Field, FieldErrors, NextQuery, form_alert};
use crate::core::accounts::{
    ACCOUNT_DISABLED, INVALID_CREDENTIALS, LoginOutcome, check_login, retry_in,
};

use crate::core::factors::{self, CodeOutcome};
use crate::http::AppState;
use crate::http::cookies::pending_cookie;
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
                p.muted {
                    "No account yet? " a href="/signup" { "Sign up" } ". "
                    a href=(super::reset::FORGOT_PATH) { "Forgot your password?" }
                }
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
    let form = form(&input, &FieldErrors::default(), None);
    let content = if query.reset() {
        html! { p.ok role="status" #reset-done { "Your password was changed: log in with the new one." } (form) }
    } else {
        form
    };
    page(req, StatusCode::OK, content)
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
    if factors::has_totp(&state.store, &user.username).await? {
        // Not a session yet: a pending login, in a cookie of its own, that only
        // the second step reads.
        let (token, _) = factors::begin_pending(state, &user, input.remember, next).await?;
        let resp = super::redirect_after_form(req, CODE_PATH);
        return Ok(super::with_cookie(
            resp,
            &pending_cookie(&state.config, Some(&token)),
        ));
    }
    let (cookie, _) = crate::http::identity::log_in(
        state,
        req,
        &user.username,
        input.remember,
        vec![factors::PASSWORD.to_owned()],
    )
    .await?;
    // A member of a group that must use a second factor, without one yet: set
    // it up first (the gate refuses their password-only session meanwhile).
    let target = if state.config.requires_mfa(&user) {
        super::security::PATH.to_owned()
    } else if state.config.lacks_verified_email(&user) {
        // The gate and the API refuse them until the address is verified.
        super::email::PATH.to_owned()
    } else {
        next.unwrap_or_else(|| super::profile_path(&user))
    };
    Ok(super::with_cookie(
        super::redirect_after_form(req, &target),
        &cookie,
    ))
}

/// The second step of a login.
pub const CODE_PATH: &str = "/login/code";

fn code_form(csrf: &str, alert: Option<&str>) -> Markup {
    html! {
        form #code-form method="post" action=(CODE_PATH) novalidate
            hx-post=(CODE_PATH) hx-target="this" hx-swap="outerHTML"
            hx-disabled-elt="find button[type=submit]" {
            (CsrfField(csrf))
            (form_alert(alert))
            div.field {
                label for="field-code" { "Code" }
                input #field-code name="code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" required autofocus
                    aria-describedby="field-code-help";
                p.hint #field-code-help {
                    "The 6-digit code from your authenticator app, or one of your recovery codes."
                }
            }
            (super::SubmitButton("Continue"))
        }
    }
}

fn code_page(req: &Request, status: StatusCode, content: Markup) -> Response {
    super::respond(req, status, "Second step", content, |content| {
        html! {
            section.card {
                h1 { "One more step" }
                (content)
                p.muted { a href="/login" { "Start again" } }
            }
        }
    })
}

/// The pending login this browser holds, if it is still live.
async fn pending(
    req: &Request,
    state: &AppState,
) -> Result<Option<storage::PendingLogin>, WebError> {
    let Some(token) = crate::http::cookies::cookie(req, state.config.pending_cookie_name())
        .and_then(storage::PendingToken::parse)
    else {
        return Ok(None);
    };
    Ok(state.store.pending_login(&token).await?)
}

/// Back to the first step, forgetting the pending login.
fn start_again(req: &Request, state: &AppState) -> Response {
    super::with_cookie(
        super::redirect_after_form(req, "/login"),
        &pending_cookie(&state.config, None),
    )
}

#[handler]
pub async fn code_get(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    if pending(req, state).await?.is_none() {
        return Ok(start_again(req, state));
    }
    let csrf = crate::http::csrf::token(req);
    Ok(code_page(req, StatusCode::OK, code_form(csrf, None)))
}

#[handler]
pub async fn code_post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let form_data = read_form(req, body, &["code"]).await?;
    let code = form_data.required("code")?;
    let Some(pending) = pending(req, state).await? else {
        return Ok(start_again(req, state));
    };
    let Some(user) = state
        .store
        .user_by_username(&pending.username)
        .await?
        .filter(|u| !u.disabled)
    else {
        state.store.delete_pending_login(&pending.id).await?;
        return Ok(start_again(req, state));
    };
    let client = client_info(req, state);
    let csrf = crate::http::csrf::token(req);
    let factor = match factors::check_code(state, &client, &user, code).await? {
        CodeOutcome::Accepted { factor, .. } => factor,
        CodeOutcome::Refused => {
            let content = code_form(csrf, Some(factors::OTP_WRONG));
            return Ok(code_page(req, StatusCode::UNAUTHORIZED, content));
        }
        CodeOutcome::Throttled { wait } => {
            let alert = format!("Too many wrong codes. {}", retry_in(wait));
            let resp = code_page(
                req,
                StatusCode::TOO_MANY_REQUESTS,
                code_form(csrf, Some(&alert)),
            );
            return Ok(super::with_retry_after(resp, wait));
        }
    };
    // Of two racing second steps with one pending login, one wins.
    if !state.store.delete_pending_login(&pending.id).await? {
        return Ok(start_again(req, state));
    }
    let (cookie, _) = crate::http::identity::log_in(
        state,
        req,
        &user.username,
        pending.remember,
        vec![factors::PASSWORD.to_owned(), factor.to_owned()],
    )
    .await?;
    tracing::info!(event = "login_second_factor", user = %user.username, factor, address = client.address());
    let target = if state.config.lacks_verified_email(&user) {
        super::email::PATH.to_owned()
    } else {
        pending.next.unwrap_or_else(|| super::profile_path(&user))
    };
    let resp = super::with_cookie(super::redirect_after_form(req, &target), &cookie);
    Ok(super::with_cookie(
        resp,
        &pending_cookie(&state.config, None),
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
