//! `GET /account/password` shows the form; `POST` checks the current password, sets
//! the new one, ends every other session of the user and revokes their API tokens
//! (a thief holding a copied cookie, or a token minted with it, loses it).

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::View;
use super::{Field, FieldErrors};
use crate::core::accounts::{PasswordChange, PasswordOutcome, change_password, retry_in};

use crate::http::AppState;
use crate::http::form::read_form;
use crate::http::identity::client_info;
use crate::site::error::WebError;

const FIELDS: &[&str] = &["current", "password", "confirm"];

/// The form; passwords are never put back into it.
pub fn form(csrf: &str, errors: &FieldErrors, alert: Option<&str>) -> Markup {
    super::CardForm::new("password-form", "/account/password", csrf)
        .alert(alert)
        .wrap(html! {
            (Field { name: "current", label: "Current password", kind: "password", value: "",
                     autocomplete: "current-password", required: true,
                     error: errors.get("current"), validate: None })
            (Field { name: "password", label: "New password (at least 8 characters)",
                     kind: "password", value: "", autocomplete: "new-password", required: true,
                     error: errors.get("password"), validate: None })
            (Field { name: "confirm", label: "Confirm new password", kind: "password",
                     value: "", autocomplete: "new-password", required: true,
                     error: errors.get("confirm"), validate: None })
            (super::SubmitButton("Change password"))
        })
}

fn page(view: &View<'_>, status: StatusCode, content: Markup) -> Response {
    let card = super::Card {
        title: "Change password",
        heading: "Change password",
        intro: Some(
            "When the password changes, every other session of yours ends and every API \
             token of yours is revoked.",
        ),
        footer: html! {},
    };
    card.respond(view, status, content)
}

#[handler]
pub fn get(req: &Request) -> Result<Response, WebError> {
    let view = View::of(req);
    super::error::require_login(req)?;
    let content = form(view.csrf, &FieldErrors::default(), None);
    Ok(page(&view, StatusCode::OK, content))
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let view = View::of(req);
    let me = super::error::require_login(req)?;
    let form_data = read_form(req, body, FIELDS).await?;
    let input = PasswordChange {
        current: form_data.required("current")?,
        new: form_data.required("password")?,
        confirm: Some(form_data.required("confirm")?),
    };
    let csrf = view.csrf;
    match change_password(state, &client_info(req, state), me, &input).await? {
        PasswordOutcome::Changed(_) => {}
        PasswordOutcome::Invalid(errors) | PasswordOutcome::WrongCurrent(errors) => {
            let content = form(csrf, &errors, None);
            return Ok(page(&view, StatusCode::UNPROCESSABLE_ENTITY, content));
        }
        PasswordOutcome::Throttled { wait } => {
            let alert = format!("Too many wrong passwords. {}", retry_in(wait));
            let content = form(csrf, &FieldErrors::default(), Some(&alert));
            let resp = page(&view, StatusCode::TOO_MANY_REQUESTS, content);
            return Ok(super::with_retry_after(resp, wait));
        }
    }
    Ok(super::redirect_after_form(
        &view,
        &super::profile_path(&me.user),
    ))
}

/// The form again after a refused CSRF check (passwords are never kept).
pub fn refused(req: &Request) -> Result<Response, WebError> {
    let view = View::of(req);
    super::error::require_login(req)?;
    let content = form(
        view.csrf,
        &FieldErrors::default(),
        Some(super::FORM_EXPIRED),
    );
    Ok(page(&view, StatusCode::FORBIDDEN, content))
}
