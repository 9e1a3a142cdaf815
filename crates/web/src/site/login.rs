//! `GET /login` shows the form; `POST /login` checks the password and starts a
//! session, then sends the user to a safe `next` or their profile. For an account
//! with a second factor the password leads to `/login/code` instead, holding a
//! pending login (not a session) until a code or a passkey is given. The two
//! passkey logins — the second step, and a passkey alone from the login page —
//! are here too, as the JSON requests `assets/passkey.js` makes.

use domain::User;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};

use super::View;
use super::passkeys::CeremonyJson;
use super::{Field, FieldErrors, NextQuery, form_alert, passkeys};
use crate::core::accounts::{
    ACCOUNT_DISABLED, INVALID_CREDENTIALS, LoginOutcome, check_login, retry_in,
};

use crate::core::access::{self, NextStep};
use crate::core::factors::{self, CodeOutcome};
use crate::core::passkeys::{self as core_passkeys, PASSKEY, PasskeyRefusal, PasswordlessOutcome};
use crate::core::records::{self, PendingLogin};
use crate::http::AppState;
use crate::http::cookies::pending_cookie;
use crate::http::form::read_form;
use crate::http::identity::client_info;
use crate::site::error::WebError;
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

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
    super::CardForm::new("login-form", "/login", input.csrf).alert(alert).hidden(&[("next", input.next)]).wrap(html! {
        (Field { name: "email", label: "Email", kind: "email", value: input.email,
                 autocomplete: "username", required: true, error: errors.get("email"), validate: None })
        (Field { name: "password", label: "Password", kind: "password", value: "",
                 autocomplete: "current-password", required: true,
                 error: errors.get("password"), validate: None })
        label.checkbox {
            input type="checkbox" name="remember" value="on" checked[input.remember]
                data-passkey-field;
            "Remember me"
        }
        (super::SubmitButton("Log in"))
    })
}

fn page(view: &View<'_>, status: StatusCode, content: Markup) -> Response {
    let footer = html! {
        p.muted {
            "No account yet? " a href="/signup" { "Sign up" } ". "
            a href=(super::reset::FORGOT_PATH) { "Forgot your password?" }
        }
    };
    let card = super::Card {
        title: "Log in",
        heading: "Log in",
        intro: None,
        footer,
    };
    card.respond(view, status, content)
}

#[handler]
pub fn get(
    req: &Request,
    Query(query): Query<NextQuery>,
    Data(state): Data<&AppState>,
) -> Response {
    let view = View::of(req);
    let next = query
        .next()
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let input = LoginForm {
        next: next.as_deref(),
        csrf: view.csrf,
        ..LoginForm::default()
    };
    let form = form(&input, &FieldErrors::default(), None);
    let content = html! {
        @if query.reset() {
            p.ok role="status" #reset-done { "Your password was changed: log in with the new one." }
        }
        (form)
        @if state.passkeys.is_ok() {
            (passkeys::passkey_button(
                passkeys::PASSWORDLESS_PATH, "passkey-login", "Sign in with a passkey",
                next.as_deref(), Some("login-form")))
        }
    };
    page(&view, StatusCode::OK, content)
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
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
        csrf: view.csrf,
    };
    let user =
        match check_login(state, &client_info(req, state), email_input, password_input).await? {
            LoginOutcome::Valid(user) => user,
            LoginOutcome::Invalid(errors) => {
                let content = form(&input, &errors, None);
                return Ok(page(&view, StatusCode::UNPROCESSABLE_ENTITY, content));
            }
            LoginOutcome::Throttled { wait } => {
                let alert = format!("Too many failed logins. {}", retry_in(wait));
                let content = form(&input, &FieldErrors::default(), Some(&alert));
                let resp = page(&view, StatusCode::TOO_MANY_REQUESTS, content);
                return Ok(super::with_retry_after(resp, wait));
            }
            LoginOutcome::Refused => {
                let content = form(&input, &FieldErrors::default(), Some(INVALID_CREDENTIALS));
                return Ok(page(&view, StatusCode::UNAUTHORIZED, content));
            }
            LoginOutcome::Disabled => {
                let content = form(&input, &FieldErrors::default(), Some(ACCOUNT_DISABLED));
                return Ok(page(&view, StatusCode::FORBIDDEN, content));
            }
        };
    let step = access::after_password(state, &user).await?;
    if let NextStep::SecondStep(_) = step {
        // Not a session yet: a pending login, in a cookie of its own, that only
        // the second step reads.
        let (token, _) = factors::begin_pending(state, &user, input.remember, next).await?;
        let resp = super::redirect_after_form(&view, CODE_PATH);
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
    Ok(super::with_cookie(
        super::redirect_after_form(&view, &target(step, &user, next)),
        &cookie,
    ))
}

/// Where a session that [`access::next_step`] led to lands: the security page
/// to set up a second factor the user's group must use (every other door refuses
/// the session meanwhile), the address page while the address must be verified,
/// else a safe `next` or the profile.
pub fn target(step: NextStep, user: &User, next: Option<String>) -> String {
    match step {
        NextStep::EnrolFactor => super::security::PATH.to_owned(),
        NextStep::VerifyEmail => super::email::PATH.to_owned(),
        // A second step is never a landing: its callers start one instead.
        NextStep::SecondStep(_) | NextStep::Done => {
            next.unwrap_or_else(|| super::profile_path(user))
        }
    }
}

/// Where a login that used `factors` lands.
pub fn landing(state: &AppState, user: &User, factors: &[String], next: Option<String>) -> String {
    let who = access::Principal {
        user,
        factors,
        authenticated_at: records::now(),
    };
    // The factors are those the login used, so what it has is no longer asked.
    let step = access::next_step(&state.config, &who, &Default::default());
    target(step, user, next)
}

/// The second step of a login.
pub const CODE_PATH: &str = "/login/code";
/// The answer when the pending login is gone (expired, used, or never there).
pub const PENDING_GONE: &str = "This login took too long or was finished elsewhere: start again.";

/// The second step's choices: the code form when the user has an authenticator
/// app, the passkey button when they have passkeys (shown by the script).
fn second_step(csrf: &str, has: &factors::SecondFactors, alert: Option<&str>) -> Markup {
    html! {
        @if has.passkeys > 0 {
            (passkeys::passkey_button(
                passkeys::SECOND_FACTOR_PATH, "passkey-second", "Use a passkey", None, None))
            @if !has.totp {
                noscript {
                    p.error.alert role="alert" #passkey-needs-script {
                        "Your second factor is a passkey, and passkeys need JavaScript: "
                        "turn it on to log in."
                    }
                }
            }
        }
        @if has.totp {
            (code_form(csrf, alert))
        } @else if let Some(alert) = alert {
            (form_alert(Some(alert)))
        }
    }
}

fn code_form(csrf: &str, alert: Option<&str>) -> Markup {
    super::CardForm::new("code-form", CODE_PATH, csrf)
        .alert(alert)
        .wrap(html! {
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
        })
}

fn code_page(view: &View<'_>, status: StatusCode, content: Markup) -> Response {
    let footer = html! { p.muted { a href="/login" { "Start again" } } };
    let card = super::Card {
        title: "Second step",
        heading: "One more step",
        intro: None,
        footer,
    };
    card.respond(view, status, content)
}

/// The pending login this browser holds, if it is still live.
pub async fn pending(req: &Request, state: &AppState) -> Result<Option<PendingLogin>, WebError> {
    let Some(token) = crate::http::cookies::cookie(req, state.config.pending_cookie_name()) else {
        return Ok(None);
    };
    Ok(factors::pending_login(state, token).await?)
}

/// Back to the first step, forgetting the pending login.
fn start_again(view: &View<'_>, state: &AppState) -> Response {
    super::with_cookie(
        super::redirect_after_form(view, "/login"),
        &pending_cookie(&state.config, None),
    )
}

/// The enabled user of `pending` (see [`factors::pending_user`]).
pub async fn pending_user(
    state: &AppState,
    pending: &PendingLogin,
) -> Result<Option<User>, WebError> {
    Ok(factors::pending_user(state, pending).await?)
}

/// A second step done: where to go, and the cookies that start the session and
/// forget the pending login.
pub struct SecondStepDone {
    pub target: String,
    cookies: [String; 2],
}

impl SecondStepDone {
    /// `resp` (a redirect, or the script's `{location}`) with both cookies.
    pub fn with_cookies(&self, resp: Response) -> Response {
        self.cookies
            .iter()
            .fold(resp, |resp, cookie| super::with_cookie(resp, cookie))
    }
}

/// Ends `pending` and starts the session its second step earned. `None` when a
/// racing second step ended it first.
pub async fn complete_second_step(
    state: &AppState,
    req: &Request,
    user: &User,
    pending: &PendingLogin,
    second_factor: &str,
) -> Result<Option<SecondStepDone>, WebError> {
    let factors = vec![factors::PASSWORD.to_owned(), second_factor.to_owned()];
    if !factors::end_pending(state, pending).await? {
        return Ok(None);
    }
    let (cookie, _) = crate::http::identity::log_in(
        state,
        req,
        &user.username,
        pending.remember,
        factors.clone(),
    )
    .await?;
    tracing::info!(event = "login_second_factor", user = %user.username, factor = second_factor, address = client_info(req, state).address());
    Ok(Some(SecondStepDone {
        target: landing(state, user, &factors, pending.next.clone()),
        cookies: [cookie, pending_cookie(&state.config, None)],
    }))
}

#[handler]
pub async fn code_get(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let view = View::of(req);
    let Some(pending) = pending(req, state).await? else {
        return Ok(start_again(&view, state));
    };
    let has = factors::second_factors(state, &pending.username).await?;
    let csrf = view.csrf;
    Ok(code_page(
        &view,
        StatusCode::OK,
        second_step(csrf, &has, None),
    ))
}

#[handler]
pub async fn code_post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let form_data = read_form(req, body, &["code"]).await?;
    let code = form_data.required("code")?;
    let Some(pending) = pending(req, state).await? else {
        return Ok(start_again(&view, state));
    };
    let Some(user) = pending_user(state, &pending).await? else {
        return Ok(start_again(&view, state));
    };
    let client = client_info(req, state);
    let csrf = view.csrf;
    let factor = match factors::check_code(state, &client, &user, code).await? {
        CodeOutcome::Accepted { factor, .. } => factor,
        CodeOutcome::Refused => {
            let content = code_form(csrf, Some(factors::OTP_WRONG));
            return Ok(code_page(&view, StatusCode::UNAUTHORIZED, content));
        }
        CodeOutcome::Throttled { wait } => {
            let alert = format!("Too many wrong codes. {}", retry_in(wait));
            let resp = code_page(
                &view,
                StatusCode::TOO_MANY_REQUESTS,
                code_form(csrf, Some(&alert)),
            );
            return Ok(super::with_retry_after(resp, wait));
        }
    };
    // Of two racing second steps with one pending login, one wins.
    let Some(done) = complete_second_step(state, req, &user, &pending, factor).await? else {
        return Ok(start_again(&view, state));
    };
    Ok(done.with_cookies(super::redirect_after_form(&view, &done.target)))
}

#[derive(Deserialize)]
struct Assertion {
    ceremony: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    next: Option<String>,
    /// "Remember me", from the login form (a passkey login alone).
    #[serde(default)]
    remember: bool,
}

#[handler]
pub async fn passkey_second_begin(
    req: &Request,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let Some(pending) = pending(req, state).await? else {
        return Ok(passkeys::error(StatusCode::GONE, PENDING_GONE));
    };
    Ok(passkeys::begun(
        core_passkeys::begin_second_factor(state, &pending).await?,
    ))
}

#[handler]
pub async fn passkey_second_finish(
    req: &Request,
    CeremonyJson(input): CeremonyJson<Assertion>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let Some(pending) = pending(req, state).await? else {
        return Ok(passkeys::error(StatusCode::GONE, PENDING_GONE));
    };
    let Some(user) = pending_user(state, &pending).await? else {
        return Ok(passkeys::error(StatusCode::GONE, PENDING_GONE));
    };
    let client = client_info(req, state);
    let outcome = core_passkeys::finish_second_factor(
        state,
        &client,
        &user,
        &pending,
        &input.ceremony,
        &input.credential,
    )
    .await?;
    match outcome {
        CodeOutcome::Accepted { .. } => {}
        CodeOutcome::Refused => return Ok(passkeys::refusal(&PasskeyRefusal::NotAccepted)),
        CodeOutcome::Throttled { wait } => return Ok(passkeys::throttled(wait)),
    }
    let Some(done) = complete_second_step(state, req, &user, &pending, PASSKEY).await? else {
        return Ok(passkeys::error(StatusCode::GONE, PENDING_GONE));
    };
    Ok(done.with_cookies(passkeys::go_to(&done.target)))
}

#[handler]
pub async fn passkey_begin(Data(state): Data<&AppState>) -> Result<Response, WebError> {
    Ok(passkeys::begun(
        core_passkeys::begin_passwordless(state).await?,
    ))
}

#[handler]
pub async fn passkey_finish(
    req: &Request,
    CeremonyJson(input): CeremonyJson<Assertion>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let client = client_info(req, state);
    let user = match core_passkeys::finish_passwordless(
        state,
        &client,
        &input.ceremony,
        &input.credential,
    )
    .await?
    {
        PasswordlessOutcome::LoggedIn(user) => user,
        PasswordlessOutcome::Refused => return Ok(passkeys::refusal(&PasskeyRefusal::NotAccepted)),
        PasswordlessOutcome::Throttled { wait } => return Ok(passkeys::throttled(wait)),
    };
    let factors = vec![PASSKEY.to_owned()];
    let (cookie, _) =
        crate::http::identity::log_in(state, req, &user.username, input.remember, factors.clone())
            .await?;
    let next = input
        .next
        .as_deref()
        .and_then(|n| crate::core::next::safe_next(n, &state.config));
    let target = landing(state, &user, &factors, next);
    Ok(super::with_cookie(passkeys::go_to(&target), &cookie))
}

/// The form again after a refused CSRF check, with the input kept (not the
/// password) and the request's fresh token.
pub fn refused(
    req: &Request,
    state: &AppState,
    field: impl Fn(&str) -> Option<String>,
) -> Response {
    let view = View::of(req);
    let email = field("email");
    let next = field("next").and_then(|n| crate::core::next::safe_next(&n, &state.config));
    let input = LoginForm {
        email: email.as_deref().unwrap_or_default(),
        remember: field("remember").is_some(),
        next: next.as_deref(),
        csrf: view.csrf,
    };
    let content = form(&input, &FieldErrors::default(), Some(super::FORM_EXPIRED));
    page(&view, StatusCode::FORBIDDEN, content)
}
