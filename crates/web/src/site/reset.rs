//! `GET, POST /forgot`: ask for a reset link by email (the same answer for every
//! address). `GET, POST /reset?token=…`: choose a new password through the link.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;

use super::View;
use super::{Field, FieldErrors, SubmitButton, form_alert};
use crate::core::accounts::retry_in;
use crate::core::reset::{
    RESET_EXPIRED, RESET_SENT, RESET_UNAVAILABLE, ResetOutcome, ResetRequest, complete_reset,
    link_user, request_reset,
};
use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;
use crate::site::error::WebError;

pub const FORGOT_PATH: &str = "/forgot";
pub const RESET_PATH: &str = "/reset";

fn forgot_form(csrf: &str, email: &str, errors: &FieldErrors, note: Option<Markup>) -> Markup {
    super::CardForm::new("forgot-form", FORGOT_PATH, csrf).wrap(html! {
        @if let Some(note) = note { (note) }
        (Field { name: "email", label: "Email", kind: "email", value: email,
                 autocomplete: "username", required: true, error: errors.get("email"), validate: None })
        (SubmitButton("Send me a link"))
    })
}

fn page(view: &View<'_>, status: StatusCode, title: &str, content: Markup) -> Response {
    let footer = html! { p.muted { a href="/login" { "Back to the login page" } } };
    let card = super::Card {
        title,
        heading: title,
        intro: None,
        footer,
    };
    card.respond(view, status, content)
}

#[handler]
pub fn forgot_get(req: &Request, Data(state): Data<&AppState>) -> Response {
    let view = View::of(req);
    let csrf = view.csrf;
    let note = (!state.config.mail.enabled()).then(|| form_alert(Some(RESET_UNAVAILABLE)));
    page(
        &view,
        StatusCode::OK,
        "Forgot your password?",
        forgot_form(csrf, "", &FieldErrors::default(), note),
    )
}

#[handler]
pub async fn forgot_post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let form = read_form(req, body, &["email"]).await?;
    let email = form.required("email")?;
    let csrf = view.csrf;
    let title = "Forgot your password?";
    Ok(
        match request_reset(state, &client_info(req, state), email).await? {
            ResetRequest::Sent => {
                let note = html! { p.ok role="status" #reset-sent { (RESET_SENT) } };
                let content = forgot_form(csrf, "", &FieldErrors::default(), Some(note));
                page(&view, StatusCode::OK, title, content)
            }
            ResetRequest::Invalid(errors) => page(
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
                title,
                forgot_form(csrf, email, &errors, None),
            ),
            ResetRequest::Throttled { wait } => {
                let alert = format!("Too many requests. {}", retry_in(wait));
                let content = forgot_form(
                    csrf,
                    email,
                    &FieldErrors::default(),
                    Some(form_alert(Some(&alert))),
                );
                super::with_retry_after(
                    page(&view, StatusCode::TOO_MANY_REQUESTS, title, content),
                    wait,
                )
            }
            ResetRequest::Unavailable => page(
                &view,
                StatusCode::SERVICE_UNAVAILABLE,
                title,
                forgot_form(
                    csrf,
                    email,
                    &FieldErrors::default(),
                    Some(form_alert(Some(RESET_UNAVAILABLE))),
                ),
            ),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

fn reset_form(csrf: &str, token: &str, errors: &FieldErrors) -> Markup {
    super::CardForm::new("reset-form", RESET_PATH, csrf).hidden(&[("token", Some(token))]).wrap(html! {
        (Field { name: "password", label: "New password", kind: "password", value: "",
                 autocomplete: "new-password", required: true, error: errors.get("password"), validate: None })
        (Field { name: "confirm", label: "The same again", kind: "password", value: "",
                 autocomplete: "new-password", required: true, error: errors.get("confirm"), validate: None })
        (SubmitButton("Set the new password"))
    })
}

fn expired(view: &View<'_>) -> Response {
    page(
        view,
        StatusCode::GONE,
        "Link expired",
        html! {
            (form_alert(Some(RESET_EXPIRED)))
            p { a href=(FORGOT_PATH) { "Ask for a new link" } }
        },
    )
}

#[handler]
pub async fn reset_get(
    req: &Request,
    Query(query): Query<TokenQuery>,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let token = query.token.unwrap_or_default();
    let Some(username) = link_user(state, &token).await? else {
        return Ok(expired(&view));
    };
    let csrf = view.csrf;
    Ok(page(
        &view,
        StatusCode::OK,
        "Choose a new password",
        html! {
            p { "For " strong { (username.as_str()) } ". Every session and API token of the account will end." }
            (reset_form(csrf, &token, &FieldErrors::default()))
        },
    ))
}

#[handler]
pub async fn reset_post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let form = read_form(req, body, &["token", "password", "confirm"]).await?;
    let token = form.required("token")?;
    let outcome = complete_reset(
        state,
        &client_info(req, state),
        token,
        form.required("password")?,
        form.required("confirm")?,
    )
    .await?;
    Ok(match outcome {
        ResetOutcome::Done(..) => super::redirect_after_form(&view, "/login?reset=1"),
        ResetOutcome::Invalid(errors) => page(
            &view,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a new password",
            reset_form(view.csrf, token, &errors),
        ),
        ResetOutcome::Expired => expired(&view),
    })
}
