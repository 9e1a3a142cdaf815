//! `GET /account/password` shows the form; `POST` checks the current password, sets
//! the new one, ends every other session of the user and revokes their API tokens
//! (a thief holding a copied cookie, or a token minted with it, loses it).

use domain::{Password, Verdict};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::{CsrfField, Field, FieldErrors, form_alert};
use crate::auth;
use crate::error::WebError;
use crate::form::Form;
use crate::state::AppState;

const FIELDS: &[&str] = &["current", "password", "confirm"];

/// The form; passwords are never put back into it.
pub fn form(csrf: &str, errors: &FieldErrors, alert: Option<&str>) -> Markup {
    html! {
        form #password-form method="post" action="/account/password" novalidate
            hx-post="/account/password" hx-target="this" hx-swap="outerHTML"
            hx-disabled-elt="find button[type=submit]" {
            (CsrfField(csrf))
            (form_alert(alert))
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
        }
    }
}

fn page(req: &Request, status: StatusCode, content: Markup) -> Response {
    super::respond(req, status, "Change password", content, |content| {
        html! {
            section.card {
                h1 { "Change password" }
                p.muted { "When the password changes, every other session of yours ends and every API token of yours is revoked." }
                (content)
            }
        }
    })
}

#[handler]
pub fn get(req: &Request) -> Result<Response, WebError> {
    auth::require_login(req)?;
    let content = form(crate::csrf::token(req), &FieldErrors::default(), None);
    Ok(page(req, StatusCode::OK, content))
}

#[handler]
pub async fn post(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
) -> Result<Response, WebError> {
    let me = auth::require_login(req)?;
    let form_data = Form::read(req, body, FIELDS).await?;
    let current = form_data.required("current")?;
    let new_input = form_data.required("password")?;
    let confirm = form_data.required("confirm")?;
    let csrf = crate::csrf::token(req);

    let mut errors = FieldErrors::default();
    let new = errors.check(Password::parse(new_input));
    if new.is_some() && confirm != new_input {
        errors.add("confirm", crate::accounts::PASSWORDS_DIFFER);
    }
    if current.chars().count() > Password::MAX {
        errors.add("current", crate::accounts::PASSWORD_TOO_LONG);
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return Ok(page(
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form(csrf, &errors, None),
        ));
    };

    // Guessing the current password here is throttled like a login.
    let now = storage::now();
    let account_key = crate::accounts::account_throttle_key(&me.user.email);
    let wait = state.store.throttle_wait(&account_key, now).await?;
    if wait > 0 {
        let alert = format!("Too many wrong passwords. Try again in {wait} seconds.");
        let content = form(csrf, &errors, Some(&alert));
        let resp = page(req, StatusCode::TOO_MANY_REQUESTS, content);
        return Ok(super::with_retry_after(resp, wait));
    }
    let verdict = match Password::parse(current) {
        Ok(current) => {
            state
                .hashing
                .verify(current, me.user.password_hash.clone())
                .await?
        }
        Err(_) => state.hashing.verify_unknown_user().await?,
    };
    if !matches!(verdict, Verdict::Valid { .. }) {
        state
            .store
            .record_failure(&account_key, now, &state.config.throttle.account)
            .await?;
        errors.add("current", "That is not your current password.");
        return Ok(page(
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form(csrf, &errors, None),
        ));
    }

    let hash = state.hashing.hash(new).await?;
    let keep = me.session().map(|s| s.id.as_str());
    let ended = auth::change_password(state, &me.user.username, &hash, keep).await?;
    tracing::info!(
        event = "password_changed",
        user = %me.user.username,
        address = auth::client_address(req, &state.config).as_deref().unwrap_or("-"),
        sessions_revoked = ended.sessions,
        tokens_revoked = ended.tokens,
    );
    Ok(super::redirect_after_form(
        req,
        &super::profile_path(&me.user),
    ))
}

/// The form again after a refused CSRF check (passwords are never kept).
pub fn refused(req: &Request) -> Result<Response, WebError> {
    auth::require_login(req)?;
    let content = form(
        crate::csrf::token(req),
        &FieldErrors::default(),
        Some(super::FORM_EXPIRED),
    );
    Ok(page(req, StatusCode::FORBIDDEN, content))
}
