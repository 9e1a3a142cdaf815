//! `/account/security`: the user's second factors. Setting up an authenticator app
//! shows its QR code (SVG drawn on the server: no script, no third party) and the
//! secret in text; it counts only once a code from the app confirms it, and then
//! ten recovery codes are shown, once. Turning it off asks for the password. Plain
//! forms throughout: with JavaScript off they post and render the next page. Passkeys
//! (listed, named, removed with the password) are added through the script
//! ([`super::passkeys`]), which is the only way a browser makes one.

use maud::{Markup, PreEscaped, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::View;
use super::error::{WebError, require_login};
use super::user::date;
use super::{CsrfField, SubmitButton, form_alert, passkeys};
use crate::core::access;
use crate::core::accounts::{LoginOutcome, check_login, retry_in};
use crate::core::factors::{self, CodeOutcome, SecondFactors, TotpSetup};
use crate::core::passkeys::{self as core_passkeys, PASSKEY};
use crate::core::{Authenticated, ClientInfo};
use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;

pub const PATH: &str = "/account/security";
const BEGIN_PATH: &str = "/account/security/totp";
const CONFIRM_PATH: &str = "/account/security/totp/confirm";
const REMOVE_PATH: &str = "/account/security/totp/remove";

fn page(view: &View<'_>, status: StatusCode, content: Markup) -> Response {
    super::page(
        view,
        status,
        "Security",
        html! {
            section.card.wide #security {
                h1 { "Security" }
                (content)
                p.muted { a href=(PATH) { "Back to security" } }
            }
        },
    )
}

fn setup_view(setup: &TotpSetup, csrf: &str, alert: Option<&str>) -> Markup {
    html! {
        h2 { "Set up an authenticator app" }
        p { "Scan this code with your authenticator app, or type the key in by hand." }
        figure.qr { (PreEscaped(&setup.qr_svg)) }
        p { "Key: " code #totp-secret { (setup.secret) } }
        form #confirm-form method="post" action=(CONFIRM_PATH) {
            (CsrfField(csrf))
            (form_alert(alert))
            div.field {
                label for="field-code" { "A code from the app, to confirm" }
                input #field-code name="code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" required;
            }
            (SubmitButton("Confirm"))
        }
    }
}

async fn overview(req: &Request, state: &AppState, me: &Authenticated) -> Result<Markup, WebError> {
    let view = View::of(req);
    let csrf = view.csrf;
    let factors::FactorList { totp, passkeys } = factors::list(state, &me.user.username).await?;
    Ok(html! {
        h2 { "Authenticator app" }
        @match totp.filter(|t| t.confirmed) {
            Some(totp) => {
                p #totp-status {
                    "On since " (date(totp.created_at)) ". "
                    (totp.recovery_left) " recovery codes left."
                }
                p.muted { "Every login asks for a code from the app after the password." }
                form #remove-form method="post" action=(REMOVE_PATH) {
                    (CsrfField(csrf))
                    div.field {
                        label for="field-password" { "Your password, to turn it off" }
                        input #field-password name="password" type="password"
                            autocomplete="current-password" required;
                    }
                    (SubmitButton("Turn off"))
                }
            }
            None => {
                @if access::must_enrol(&state.config, &me.user, &SecondFactors { totp: false, passkeys: passkeys.len() }) {
                    p.error.alert role="alert" #mfa-required {
                        "Your account must use a second factor: the apps behind this gate "
                        "let you in once you have set one up — an authenticator app, "
                        "confirmed with a code, or a passkey."
                    }
                }
                p #totp-status { "Off. A second factor keeps your account safe even if your password leaks." }
                @match factors::totp_unavailable(state) {
                    Some(why) => p.muted #totp-unavailable { (why) },
                    None => form method="post" action=(BEGIN_PATH) {
                        (CsrfField(csrf))
                        (SubmitButton("Set up an authenticator app"))
                    },
                }
            }
        }
        (passkeys::passkeys_view(state, csrf, &passkeys))
        h2 { "This session" }
        p #session-factors {
            "Logged in with: " (me.factors().join(", "))
        }
    })
}

#[handler]
pub async fn get(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let view = View::of(req);
    let me = require_login(req)?;
    let content = overview(req, state, me).await?;
    Ok(page(&view, StatusCode::OK, content))
}

/// Starts an enrolment: a new secret, shown with its QR code.
#[handler]
pub async fn begin(req: &Request, Data(state): Data<&AppState>) -> Result<Response, WebError> {
    let view = View::of(req);
    let me = require_login(req)?;
    if factors_locked(state, me).await? {
        return second_factor_needed(req, state, me).await;
    }
    let Some(setup) = factors::begin_totp(state, &me.user).await? else {
        return Ok(super::see_other(PATH));
    };
    let csrf = view.csrf;
    Ok(page(&view, StatusCode::OK, setup_view(&setup, csrf, None)))
}

#[handler]
pub async fn confirm(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let me = require_login(req)?;
    if factors_locked(state, me).await? {
        return second_factor_needed(req, state, me).await;
    }
    let form = read_form(req, body, &["code"]).await?;
    let code = form.required("code")?;
    let client = client_info(req, state);
    match factors::confirm_totp(state, &client, &me.user, code).await? {
        CodeOutcome::Accepted { recovery_codes, .. } => {
            // The code proved the new factor: this browser's session starts again
            // as one that used it (a new token, as at any login).
            let (cookie, _) = crate::http::identity::restart_session(
                state,
                req,
                me,
                vec![factors::PASSWORD.to_owned(), factors::OTP.to_owned()],
            )
            .await?;
            let resp = page(
                &view,
                StatusCode::OK,
                html! {
                    h2 { "Your authenticator app is set up" }
                    p { "Keep these recovery codes somewhere safe. Each one logs you in once if you lose the app. They are shown only now." }
                    ul #recovery-codes {
                        @for code in &recovery_codes { li { code { (code) } } }
                    }
                },
            );
            Ok(super::with_cookie(resp, &cookie))
        }
        CodeOutcome::Refused => {
            setup_again(
                req,
                state,
                me,
                "That code is not right. Check the time on your phone and try the next one.",
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        CodeOutcome::Throttled { wait } => {
            let alert = format!("Too many wrong codes. {}", retry_in(wait));
            let resp = setup_again(req, state, me, &alert, StatusCode::TOO_MANY_REQUESTS).await?;
            Ok(super::with_retry_after(resp, wait))
        }
    }
}

/// The enrolment in progress again, with `alert`.
async fn setup_again(
    req: &Request,
    state: &AppState,
    me: &Authenticated,
    alert: &str,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let totp = factors::enrolment(state, &me.user.username).await?;
    let Some(totp) = totp.filter(|t| !t.confirmed) else {
        return Ok(super::see_other(PATH));
    };
    let setup = factors::setup_of(state, &me.user, &totp.secret);
    let csrf = view.csrf;
    Ok(page(&view, status, setup_view(&setup, csrf, Some(alert))))
}

/// Whether this login may not change `me`'s second factors (see
/// [`factors::may_change_factors`]).
async fn factors_locked(state: &AppState, me: &Authenticated) -> Result<bool, WebError> {
    let has = factors::second_factors(state, &me.user.username).await?;
    Ok(!factors::may_change_factors(&has, me.factors()))
}

/// The overview again, refused: this login did not use the second factor.
async fn second_factor_needed(
    req: &Request,
    state: &AppState,
    me: &Authenticated,
) -> Result<Response, WebError> {
    refused(
        req,
        state,
        me,
        factors::SECOND_FACTOR_NEEDED,
        StatusCode::FORBIDDEN,
    )
    .await
}

/// What turning a factor off asks for: a login that may change factors, and the
/// password (counted like a login). The client, or the overview again saying why
/// not.
async fn removal_allowed(
    req: &Request,
    body: Body,
    state: &AppState,
    me: &Authenticated,
) -> Result<Result<ClientInfo, Response>, WebError> {
    if factors_locked(state, me).await? {
        return Ok(Err(second_factor_needed(req, state, me).await?));
    }
    let form = read_form(req, body, &["password"]).await?;
    let password = form.required("password")?;
    let client = client_info(req, state);
    match check_login(state, &client, me.user.email.as_str(), password).await? {
        LoginOutcome::Valid(user) if user.username == me.user.username => Ok(Ok(client)),
        LoginOutcome::Throttled { wait } => {
            let alert = format!("Too many wrong passwords. {}", retry_in(wait));
            let resp = refused(req, state, me, &alert, StatusCode::TOO_MANY_REQUESTS).await?;
            Ok(Err(super::with_retry_after(resp, wait)))
        }
        _ => {
            let alert = "That password is not right.";
            Ok(Err(
                refused(req, state, me, alert, StatusCode::FORBIDDEN).await?
            ))
        }
    }
}

/// Turns the second factor off, after the password (checked like a login).
#[handler]
pub async fn remove(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = require_login(req)?;
    let client = match removal_allowed(req, body, state, me).await? {
        Ok(client) => client,
        Err(resp) => return Ok(resp),
    };
    factors::remove_totp(
        state,
        &me.user.username,
        me.user.username.as_str(),
        client.address(),
    )
    .await?;
    Ok(super::see_other(PATH))
}

/// The overview again, with `alert` above it.
pub async fn refused(
    req: &Request,
    state: &AppState,
    me: &Authenticated,
    alert: &str,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let content = overview(req, state, me).await?;
    Ok(page(
        &view,
        status,
        html! { (form_alert(Some(alert))) (content) },
    ))
}

/// The logged-in browser that may add a passkey now, or the ceremony's refusal:
/// not a browser session, or a login that did not use the second factor the
/// user has.
async fn may_change_passkeys<'r>(
    req: &'r Request,
    state: &AppState,
) -> Result<Result<&'r Authenticated, Response>, WebError> {
    // A browser session it must be (an API token adds no passkey).
    let (me, _) = match passkeys::logged_in_browser(req) {
        Ok(browser) => browser,
        Err(why) => return Ok(Err(why.answer())),
    };
    if factors_locked(state, me).await? {
        return Ok(Err(passkeys::error(
            StatusCode::FORBIDDEN,
            factors::SECOND_FACTOR_NEEDED,
        )));
    }
    Ok(Ok(me))
}

#[handler]
pub async fn passkey_begin(
    req: &Request,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = match may_change_passkeys(req, state).await? {
        Ok(browser) => browser,
        Err(refused) => return Ok(refused),
    };
    Ok(passkeys::begun(
        core_passkeys::begin_registration(state, &me.user).await?,
    ))
}

#[derive(Deserialize)]
struct Registration {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    name: String,
}

#[handler]
pub async fn passkey_finish(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = match may_change_passkeys(req, state).await? {
        Ok(browser) => browser,
        Err(refused) => return Ok(refused),
    };
    let input: Registration = match passkeys::read_json(req, body).await {
        Ok(input) => input,
        Err(resp) => return Ok(resp),
    };
    let client = client_info(req, state);
    match core_passkeys::finish_registration(
        state,
        &client,
        &me.user,
        &input.ceremony,
        &input.name,
        &input.credential,
    )
    .await?
    {
        Ok(_) => {}
        Err(why) => return Ok(passkeys::refusal(&why)),
    }
    // The authenticator just verified its user: this browser's session starts
    // again as one that used a passkey (a new token, as at any login), as an
    // authenticator app's first code does — what a group that must use a second
    // factor waits for.
    let mut used = me.factors().to_vec();
    if !used.iter().any(|f| f == PASSKEY) {
        used.push(PASSKEY.to_owned());
    }
    let (cookie, _) = crate::http::identity::restart_session(state, req, me, used).await?;
    Ok(super::with_cookie(passkeys::go_to(PATH), &cookie))
}

/// Removes one of the user's passkeys, after their password (checked like a login).
#[handler]
pub async fn passkey_remove(
    req: &Request,
    Path(key): Path<String>,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = require_login(req)?;
    let client = match removal_allowed(req, body, state, me).await? {
        Ok(client) => client,
        Err(resp) => return Ok(resp),
    };
    if !core_passkeys::remove(state, &client, &me.user.username, &key).await? {
        return Err(WebError::NotFound);
    }
    Ok(super::see_other(PATH))
}
