//! What the passkey pages share: the ceremonies' paths, the buttons and the list
//! the pages show, and the JSON the ceremonies speak. A ceremony is run by
//! `assets/passkey.js` (WebAuthn is a browser API: there is no passkey without
//! script) in two JSON requests, CSRF-checked like every form (the token in
//! `X-CSRF-Token`): `…/begin` answers `{ceremony, options}`, the second takes the
//! authenticator's answer and answers `{location}` — or `{error}` with a 4xx status.
//! Their handlers sit with their pages: adding and removing passkeys in
//! [`super::security`], the two logins in [`super::login`].

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::http::header;
use poem::{Body, FromRequest, Request, RequestBody, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::core::records::Session;

use super::user::date;
use super::{CsrfField, SubmitButton};
use crate::core::Authenticated;
use crate::core::accounts::retry_in;
use crate::core::passkeys::PasskeyRefusal;
use crate::http::AppState;

/// A logged-in user adds a passkey (`/begin`, then this).
pub const REGISTER_PATH: &str = "/account/security/passkeys";
/// The second step of a login, for the browser's pending login.
pub const SECOND_FACTOR_PATH: &str = "/login/code/passkey";
/// A login with a passkey alone.
pub const PASSWORDLESS_PATH: &str = "/login/passkey";

/// The largest ceremony body taken (a credential is a few kilobytes at most).
const MAX_JSON_BYTES: usize = 64 * 1024;

/// A button that runs a passkey login (`url`: its ceremony's path), shown by the
/// script when the browser has WebAuthn; `next` goes along, and the marked fields
/// of the form whose id is `also`.
pub fn passkey_button(
    url: &str,
    id: &str,
    label: &str,
    next: Option<&str>,
    also: Option<&str>,
) -> Markup {
    html! {
        form.passkey #(id) data-passkey="login" data-passkey-url=(url)
            data-passkey-also=[also] method="post" action=(url) hidden {
            @if let Some(next) = next {
                input type="hidden" name="next" value=(next) data-passkey-field;
            }
            p.error.alert role="alert" data-passkey-error hidden {}
            button type="submit" { (label) }
        }
    }
}

/// The security page's passkey section: the list, each with its removal form
/// (the password), and the form the script runs to add one — or why passkeys are
/// off here.
pub fn passkeys_view(
    state: &AppState,
    csrf: &str,
    passkeys: &[crate::core::records::StoredPasskey],
) -> Markup {
    html! {
        h2 { "Passkeys" }
        @if passkeys.is_empty() {
            p #passkeys-status { "None yet. A passkey logs you in with your device's screen lock, with or without your password." }
        } @else {
            ul.passkeys #passkeys {
                @for passkey in passkeys {
                    li data-passkey-id=(passkey.id) {
                        strong.passkey-name { (passkey.name) }
                        " · added " (date(passkey.created_at))
                        " · " @match passkey.last_used_at {
                            Some(at) => { "last used " (date(at)) },
                            None => { "never used" },
                        }
                        form.remove-passkey method="post"
                            action=(format!("{}/{}/remove", REGISTER_PATH, passkey.id)) {
                            (CsrfField(csrf))
                            div.field {
                                label for=(format!("remove-{}", passkey.id)) { "Your password, to remove it" }
                                input id=(format!("remove-{}", passkey.id)) name="password"
                                    type="password" autocomplete="current-password" required;
                            }
                            (SubmitButton("Remove"))
                        }
                    }
                }
            }
        }
        @match &state.passkeys {
            Ok(_) => {
                form #passkey-add data-passkey="register"
                    data-passkey-url=(REGISTER_PATH) method="post"
                    action=(REGISTER_PATH) hidden {
                    div.field {
                        label for="field-passkey-name" { "A name for the new passkey" }
                        input #field-passkey-name name="name" type="text" maxlength="64"
                            placeholder="This laptop" required data-passkey-field;
                    }
                    p.error.alert role="alert" data-passkey-error hidden {}
                    (SubmitButton("Add a passkey"))
                }
                noscript { p.muted #passkey-needs-script { "Adding a passkey needs JavaScript." } }
            }
            Err(why) => { p.muted #passkeys-unavailable { "Passkeys are off: " (why) "." } }
        }
    }
}

/// A JSON answer.
pub fn answer(status: StatusCode, value: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(value.to_string())
}

/// A refusal the script shows as it is.
pub fn error(status: StatusCode, message: &str) -> Response {
    answer(status, &json!({ "error": message }))
}

/// A ceremony refused, with the status that says why.
pub fn refusal(refusal: &PasskeyRefusal) -> Response {
    let status = match refusal {
        PasskeyRefusal::Unavailable(_) => StatusCode::NOT_FOUND,
        PasskeyRefusal::Expired => StatusCode::GONE,
        PasskeyRefusal::BadName(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PasskeyRefusal::NotAccepted => StatusCode::UNAUTHORIZED,
        PasskeyRefusal::NotAdded => StatusCode::CONFLICT,
        PasskeyRefusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
    };
    let resp = error(status, &refusal.message());
    if *refusal == PasskeyRefusal::Busy {
        super::with_retry_after(resp, 60)
    } else {
        resp
    }
}

/// Too many failures from this account or address.
pub fn throttled(wait: i64) -> Response {
    let message = format!("Too many failed attempts. {}", retry_in(wait));
    super::with_retry_after(error(StatusCode::TOO_MANY_REQUESTS, &message), wait)
}

/// Done: where the script sends the browser.
pub fn go_to(location: &str) -> Response {
    answer(StatusCode::OK, &json!({ "location": location }))
}

/// A ceremony's JSON body taken as a handler's argument: `T`, or the request is
/// answered with the 4xx [`read_json`] gives.
pub struct CeremonyJson<T>(pub T);

impl<'a, T: DeserializeOwned + Send> FromRequest<'a> for CeremonyJson<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        match read_json(req, body.take()?).await {
            Ok(input) => Ok(Self(input)),
            Err(resp) => Err(poem::Error::from_response(resp)),
        }
    }
}

/// The request's JSON body as `T`, or the 4xx that says why not.
pub async fn read_json<T: DeserializeOwned>(req: &Request, body: Body) -> Result<T, Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Passkeys work through the page's script: turn JavaScript on, or use another way to log in.",
        ));
    }
    let bytes = body.into_bytes_limit(MAX_JSON_BYTES).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That request is too large for a passkey.",
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("That is not a passkey answer this server understands: {e}"),
        )
    })
}

/// The answer to a ceremony's start: its id and the options for the browser.
pub fn begun<T: Serialize>(started: Result<(T, String), PasskeyRefusal>) -> Response {
    match started {
        Ok((options, ceremony)) => answer(
            StatusCode::OK,
            &json!({ "ceremony": ceremony, "options": options }),
        ),
        Err(why) => refusal(&why),
    }
}

/// Why a request is not from a logged-in browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotABrowser {
    LoggedOut,
    /// Authenticated by an API token.
    Token,
}

impl NotABrowser {
    pub fn answer(self) -> Response {
        match self {
            Self::LoggedOut => not_logged_in(),
            Self::Token => error(
                StatusCode::FORBIDDEN,
                "A passkey is added from a login on the site, not with an API token.",
            ),
        }
    }
}

/// The user of a browser's session: a passkey is added from a login on the site,
/// never with an API token (one would otherwise buy a login with no password).
pub fn logged_in_browser(req: &Request) -> Result<(&Authenticated, &Session), NotABrowser> {
    let me = crate::http::identity::current(req).ok_or(NotABrowser::LoggedOut)?;
    let session = me.session().ok_or(NotABrowser::Token)?;
    Ok((me, session))
}

pub fn not_logged_in() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "You are not logged in any more: reload the page.",
    )
}
