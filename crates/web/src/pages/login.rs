//! `GET /login` shows the form; `POST /login` checks the password and starts a
//! session, then sends the user to a safe `next` or their profile.

use domain::{Email, Password, Verdict};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};

use super::{CsrfField, Field, FieldErrors, NextQuery, form_alert};
use crate::auth;
use crate::error::WebError;
use crate::form::Form;
use crate::state::AppState;

const FIELDS: &[&str] = &["email", "password", "remember", "next"];

/// The one message for an unknown email and a wrong password alike.
pub const INVALID_CREDENTIALS: &str = "Invalid email or password.";

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

/// The throttle counter of failed passwords for the account `email` names (known
/// or not); the password page counts against it too.
pub fn account_throttle_key(email: &Email) -> String {
    format!("account:{email}")
}

#[handler]
pub fn get(
    req: &Request,
    Query(query): Query<NextQuery>,
    Data(state): Data<&AppState>,
) -> Response {
    let next = query.next().and_then(|n| auth::safe_next(n, &state.config));
    let input = LoginForm {
        next: next.as_deref(),
        csrf: crate::csrf::token(req),
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
    let form_data = Form::read(req, body, FIELDS).await?;
    let email_input = form_data.required("email")?;
    let password_input = form_data.required("password")?;
    let next = form_data
        .optional("next")
        .and_then(|n| auth::safe_next(n, &state.config));
    let input = LoginForm {
        email: email_input,
        remember: form_data.checked("remember"),
        next: next.as_deref(),
        csrf: crate::csrf::token(req),
    };
    let address = auth::client_address(req, &state.config);
    let address = address.as_deref().unwrap_or("-");

    let mut errors = FieldErrors::default();
    let email = errors.check(Email::parse(email_input));
    if password_input.chars().count() > Password::MAX {
        // Refused before hashing: nobody gets to make us hash megabytes.
        errors.add("password", "A password is at most 1024 characters long.");
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Ok(page(
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form(&input, &errors, None),
        ));
    };

    // Throttled before any hashing, the same way for known and unknown emails.
    let now = storage::now();
    let account_key = account_throttle_key(&email);
    let address_key = format!("address:{address}");
    let account_status = state.store.throttle_status(&account_key, now).await?;
    let wait = account_status
        .unwrap_or(0)
        .max(state.store.throttle_wait(&address_key, now).await?);
    if wait > 0 {
        tracing::warn!(event = "login_throttled", email = %email, address, wait);
        let alert = format!(
            "Too many failed logins. Try again in {wait} second{}.",
            if wait == 1 { "" } else { "s" }
        );
        let content = form(&input, &FieldErrors::default(), Some(&alert));
        let resp = page(req, StatusCode::TOO_MANY_REQUESTS, content);
        return Ok(super::with_retry_after(resp, wait));
    }

    let user = state.store.user_by_email(&email).await?;
    // A password too short to be anyone's still costs a full verification, so the
    // answer's timing says nothing about the account.
    let candidate = Password::parse(password_input).ok();
    let verdict = match (&user, &candidate) {
        (Some(user), Some(password)) => {
            state
                .hashing
                .verify(password.clone(), user.password_hash.clone())
                .await?
        }
        _ => state.hashing.verify_unknown_user().await?,
    };
    let (Some(user), Verdict::Valid { needs_rehash }, Some(password)) = (user, verdict, candidate)
    else {
        tracing::info!(event = "login_failed", email = %email, address);
        let throttle = state.config.throttle;
        state
            .store
            .record_failure(&account_key, now, &throttle.account)
            .await?;
        state
            .store
            .record_failure(&address_key, now, &throttle.address)
            .await?;
        let alert = Some(INVALID_CREDENTIALS);
        let content = form(&input, &FieldErrors::default(), alert);
        return Ok(page(req, StatusCode::UNAUTHORIZED, content));
    };

    if needs_rehash {
        // The configured parameters changed since this hash was made: upgrade it now
        // that we hold the password.
        let hash = state.hashing.hash(password).await?;
        state.store.set_password_hash(&user.username, &hash).await?;
        tracing::info!(event = "password_rehashed", user = %user.username);
    }
    // The account's count starts again; the address's does not, or one account of
    // the attacker's own would reset it between guesses at others.
    if account_status.is_some() {
        state.store.clear_failures(&account_key).await?;
    }
    let cookie = auth::login_user(state, req, &user.username, input.remember).await?;
    tracing::info!(event = "login", user = %user.username, address);
    let target = next.unwrap_or_else(|| super::profile_path(&user));
    Ok(super::with_cookie(
        super::redirect_after_form(req, &target),
        &cookie,
    ))
}
