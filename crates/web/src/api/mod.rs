//! The JSON API, `/api/v1` (SPEC §8): sign up, log in (a session cookie or a new
//! API token), log out, `me`, your password, profiles, your sessions and your API
//! tokens —
//! Flask-Login's `request_loader` as `Authorization: Bearer`.
//!
//! - [`users`], [`sessions`], [`tokens`]: the operations (poem-openapi);
//! - [`models`]: the JSON shapes; [`problem`]: RFC 9457 errors, documented per
//!   operation;
//! - this file: the security schemes, [`guard`] (cross-site requests and body
//!   limits), the spec at `/api/openapi.json` and Swagger UI at `/api/docs`.
//!
//! The API shares everything that matters with the forms: `accounts` for
//! validation, throttling and timing, `auth` for sessions and cookies.
//!
//! Cross-site requests. A state-changing request (any method but GET, HEAD,
//! OPTIONS, TRACE) not authenticated by an API token — any other `Authorization`
//! scheme counts for nothing — is refused with 403 when its `Origin` names another
//! site or `Sec-Fetch-Site` says it is not same-origin (`csrf::cross_site`, as on
//! the site); when it carries the session cookie it must also prove it comes from
//! this site:
//! either an `Origin` equal to the public URL's origin (every current browser
//! sends one on such requests), or the site's `X-CSRF-Token` header. On top of
//! that, bodies must be `application/json`, which a cross-site form cannot send
//! without a CORS preflight that gatehouse never grants.

pub mod admin;
pub mod models;
pub mod problem;
pub mod responses;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::sync::{Arc, LazyLock};

use poem::http::header;
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, RequestBody, Response, handler};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, OpenApiService, Tags};

use crate::core::Authenticated;
use crate::core::access::{self, Door, Principal};
use crate::http::AppState;
use crate::http::form::MAX_FORM_BYTES;
use crate::http::response::Precompressed;
use problem::ApiError;

/// Where the operations live.
pub const PREFIX: &str = "/api/v1";
pub const SPEC_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

/// Request bodies are bounded like forms.
pub const MAX_BODY_BYTES: usize = MAX_FORM_BYTES;

#[derive(Tags)]
pub enum ApiTags {
    /// Accounts and profiles.
    Users,
    /// Logging in and out, and your sessions.
    Sessions,
    /// API tokens for scripts and `/auth`.
    Tokens,
    /// Users, groups and invitations: admins only.
    Admin,
}

type Operations = (
    users::Users,
    sessions::Sessions,
    tokens::Tokens,
    admin::AdminApi,
);

fn service() -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        (
            users::Users,
            sessions::Sessions,
            tokens::Tokens,
            admin::AdminApi,
        ),
        "gatehouse",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Sign up, log in, log out, your password, your sessions and API tokens.\n\n\
         Authenticate with the session cookie (`POST /sessions`) or with \
         `Authorization: Bearer <token>`. A state-changing request made with the \
         cookie needs an `Origin` header naming this site or the site's \
         `X-CSRF-Token` header. Errors are `application/problem+json` (RFC 9457). \
         Times are Unix seconds.",
    )
    .server(PREFIX)
}

/// The spec, as served and as committed in `crates/web/openapi.json`.
pub fn spec() -> &'static str {
    static SPEC: LazyLock<String> = LazyLock::new(|| {
        let generated = service().spec();
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&generated) else {
            return generated;
        };
        document_limits(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or(generated)
    });
    &SPEC
}

/// No control characters (C0, DEL, C1), at least one that is not blank: what
/// `core::tokens::TokenFields` accepts.
const TOKEN_NAME_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$";
/// No control or bidi characters: what `domain::DisplayName` accepts.
const DISPLAY_NAME_PATTERN: &str =
    "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$";

/// The methods the spec declares for `path` (under [`PREFIX`]), for the `Allow`
/// header of a `405`: `{name}` segments match any one segment.
pub fn allowed_methods(path: &str) -> Option<String> {
    static PATHS: LazyLock<Vec<(Vec<String>, String)>> = LazyLock::new(|| {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(spec()) else {
            return Vec::new();
        };
        doc["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, ops)| {
                        let segments = path.split('/').map(str::to_owned).collect();
                        let methods = ops
                            .as_object()
                            .map(|ops| {
                                ops.keys()
                                    .map(|m| m.to_ascii_uppercase())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let path = path.strip_prefix(PREFIX)?;
    let segments: Vec<&str> = path.split('/').collect();
    PATHS
        .iter()
        .find(|(pattern, _)| {
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(want, got)| want == got || want.starts_with('{'))
        })
        .map(|(_, methods)| methods.clone())
}

/// The limits the operations enforce, written into the request schemas so that
/// clients (and schemathesis) know them. They are documented, not enforced, by
/// the schema: the operations check them themselves, to answer with the forms'
/// messages (`422`) rather than a generic parse error.
fn document_limits(doc: &mut serde_json::Value) {
    use domain::{DisplayName, Email, Password, Username};
    use serde_json::json;
    let limits = [
        (
            "SignupRequest",
            "username",
            json!({ "minLength": Username::MIN, "maxLength": Username::MAX, "pattern": "^[A-Za-z0-9_-]+$" }),
        ),
        (
            "SignupRequest",
            "email",
            json!({ "format": "email", "maxLength": Email::MAX }),
        ),
        (
            "SignupRequest",
            "name",
            json!({ "maxLength": DisplayName::MAX, "pattern": DISPLAY_NAME_PATTERN }),
        ),
        (
            "SignupRequest",
            "password",
            json!({ "minLength": Password::MIN, "maxLength": Password::MAX }),
        ),
        (
            "LoginRequest",
            "email",
            json!({ "format": "email", "maxLength": Email::MAX }),
        ),
        (
            "LoginRequest",
            "password",
            json!({ "maxLength": Password::MAX }),
        ),
        ("LoginRequest", "otp", json!({ "maxLength": 64 })),
        (
            "PasswordRequest",
            "current",
            json!({ "maxLength": Password::MAX }),
        ),
        (
            "PasswordRequest",
            "password",
            json!({ "minLength": Password::MIN, "maxLength": Password::MAX }),
        ),
        (
            "TokenRequest",
            "name",
            json!({
                "minLength": 1,
                "maxLength": crate::core::tokens::MAX_NAME_CHARS,
                "pattern": TOKEN_NAME_PATTERN,
            }),
        ),
        (
            "TokenRequest",
            "expires_in",
            json!({ "minimum": crate::core::tokens::MIN_EXPIRES_IN, "maximum": crate::core::tokens::MAX_EXPIRES_IN }),
        ),
        (
            "InvitationRequest",
            "email",
            json!({ "format": "email", "maxLength": Email::MAX }),
        ),
        (
            "InvitationRequest",
            "expires_in",
            json!({
                "minimum": crate::core::admin::MIN_INVITATION_LIFETIME,
                "maximum": crate::core::admin::MAX_INVITATION_LIFETIME,
            }),
        ),
        (
            "InvitationRequest",
            "groups",
            json!({ "maxItems": crate::core::admin::MAX_GROUPS }),
        ),
        (
            "GroupsRequest",
            "groups",
            json!({ "maxItems": crate::core::admin::MAX_GROUPS }),
        ),
    ];
    for (schema, field, extra) in limits {
        let property = &mut doc["components"]["schemas"][schema]["properties"][field];
        if let (Some(property), Some(extra)) = (property.as_object_mut(), extra.as_object()) {
            property.extend(extra.clone());
        }
    }
    // A group name: what `domain::GroupName` accepts (stored lowercase).
    for schema in ["InvitationRequest", "GroupsRequest"] {
        if let Some(items) =
            doc["components"]["schemas"][schema]["properties"]["groups"]["items"].as_object_mut()
        {
            items.extend(
                json!({
                    "minLength": domain::GroupName::MIN,
                    "maxLength": domain::GroupName::MAX,
                    "pattern": "^[A-Za-z0-9_-]+$",
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            );
        }
    }
    // An optional field may also be sent as `null`, which means absent.
    for schema in [
        "SignupRequest",
        "LoginRequest",
        "TokenRequest",
        "InvitationRequest",
    ] {
        let schema = &mut doc["components"]["schemas"][schema];
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object_mut() {
            for (name, property) in properties.iter_mut() {
                if !required.contains(name)
                    && let Some(property) = property.as_object_mut()
                {
                    property.insert("nullable".to_owned(), json!(true));
                }
            }
        }
    }
    // Unknown fields are refused (400), as the forms refuse them.
    for schema in [
        "SignupRequest",
        "LoginRequest",
        "PasswordRequest",
        "TokenRequest",
        "GroupsRequest",
        "InvitationRequest",
    ] {
        if let Some(schema) = doc["components"]["schemas"][schema].as_object_mut() {
            schema.insert("additionalProperties".to_owned(), json!(false));
        }
    }
}

/// The operations, to nest at [`PREFIX`].
pub fn operations(state: AppState) -> impl Endpoint<Output = Response> {
    guard(poem::IntoEndpoint::into_endpoint(service()), state)
}

/// `GET /api/openapi.json`.
#[handler]
pub fn spec_json() -> Response {
    Response::builder()
        .content_type("application/json")
        .body(spec())
}

/// Swagger UI's files, from npm's `swagger-ui-dist` (pinned in `package.json`),
/// embedded compressed by `build.rs`; their paths carry the version.
pub const SWAGGER_JS_PATH: &str = "/assets/swagger-ui-5.35.0/swagger-ui-bundle.js";
pub const SWAGGER_CSS_PATH: &str = "/assets/swagger-ui-5.35.0/swagger-ui.css";
/// Our own start-up script for it (no inline script on the page).
pub const DOCS_JS_PATH: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/api-docs.js");

const SWAGGER_JS: Precompressed = Precompressed {
    plain: None,
    brotli: None,
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js.gz")),
    content_type: "text/javascript; charset=utf-8",
};
const SWAGGER_CSS: Precompressed = Precompressed {
    plain: None,
    brotli: None,
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css.gz")),
    content_type: "text/css; charset=utf-8",
};
const DOCS_JS: Precompressed = Precompressed {
    plain: Some(include_bytes!("../../assets/api-docs.js")),
    brotli: None,
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/api-docs.js.gz")),
    content_type: "text/javascript; charset=utf-8",
};

/// Swagger UI at `/api/docs`: a page of our own that loads Swagger UI's files and
/// the served spec (`/api/openapi.json`, limits included). No inline script or
/// style: it runs under the site's own CSP.
#[handler]
pub fn docs() -> maud::Markup {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "gatehouse API" }
                link rel="stylesheet" href=(SWAGGER_CSS_PATH);
            }
            body {
                div #swagger-ui {}
                script src=(SWAGGER_JS_PATH) {}
                script src=(DOCS_JS_PATH) {}
            }
        }
    }
}

#[handler]
pub fn swagger_js(req: &Request) -> Response {
    SWAGGER_JS.answer(req)
}

#[handler]
pub fn swagger_css(req: &Request) -> Response {
    SWAGGER_CSS.answer(req)
}

#[handler]
pub fn docs_js(req: &Request) -> Response {
    DOCS_JS.answer(req)
}

/// The logged-in user of an operation: the session cookie or an API token, as
/// loaded by the auth middleware. Missing → `401` problem. A caller
/// `core::access` refuses at the API's door gets `403` saying why (an address to
/// verify under `--require-verified-email`, a second factor to set up under
/// `--require-mfa-for-groups`), except where `API_DOOR` is false ([`AnyCaller`]:
/// who am I, log out — the account's own door).
pub struct CallerOf<const API_DOOR: bool>(pub Arc<Authenticated>);

/// Any operation's caller, admitted at the API's door.
pub type Caller = CallerOf<true>;
/// A caller of the account's own door (`GET /me`, logging out).
pub type AnyCaller = CallerOf<false>;

const COOKIE_SCHEME: &str = "session_cookie";
const TOKEN_SCHEME: &str = "api_token";

impl<'a, const API_DOOR: bool> ApiExtractor<'a> for CallerOf<API_DOOR> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            COOKIE_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The session cookie set by `POST /sessions` or the site's login form \
                     (`gatehouse_session` when the server runs with --insecure-cookies or a \
                     cookie domain).",
                ),
                name: Some("__Host-gatehouse_session"),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            TOKEN_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An API token from `POST /me/tokens` or `gatehouse token create`.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("gh_ and 64 hex digits"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![COOKIE_SCHEME, TOKEN_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let who = req
            .extensions()
            .get::<Arc<Authenticated>>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        // Who may pass is `core::access`'s to say; the API's "who am I" and "log
        // out" are the account's own door, which only a disabled account fails.
        if let Some(state) = req.data::<AppState>() {
            let door = if API_DOOR { Door::Api } else { Door::Account };
            let principal = Principal::of(&who);
            if let Err(refusal) =
                access::admit(&state.config, &principal, door, crate::core::records::now())
            {
                return Err(
                    ApiError::new(StatusCode::FORBIDDEN, refusal.message(&principal)).into(),
                );
            }
        }
        Ok(CallerOf(who))
    }
}

/// Refuses cross-site changes and oversized bodies before any operation runs (see
/// the module's documentation).
pub fn guard<E: Endpoint + 'static>(ep: E, state: AppState) -> impl Endpoint<Output = Response> {
    ep.around(move |ep, mut req| {
        let state = state.clone();
        async move {
            if !matches!(
                *req.method(),
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
            ) {
                if let Err(err) = same_site(&req, &state) {
                    return Ok(err.into_response());
                }
                if let Err(err) = limit_body(&mut req).await {
                    return Ok(err.into_response());
                }
            }
            ep.call(req).await.map(IntoResponse::into_response)
        }
    })
}

fn same_site(req: &Request, state: &AppState) -> Result<(), ApiError> {
    let who = crate::http::identity::current(req);
    if who.is_some_and(|who| matches!(who.via, crate::core::Credential::Token(_))) {
        // An API token, which the auth middleware read alone (never with the
        // cookie): a cross-site page cannot attach one. Any other Authorization
        // scheme exempts nothing — browsers attach Basic credentials by themselves.
        return Ok(());
    }
    if let Some(reason) = crate::http::csrf::cross_site(req, &state.config) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, reason));
    }
    let with_cookie = who.and_then(Authenticated::session).is_some();
    let has_origin = req.headers().contains_key(header::ORIGIN);
    if with_cookie && !has_origin && !crate::http::csrf::header_token_valid(req, state) {
        let ours = state.config.public_url.origin().ascii_serialization();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "A change made with the session cookie needs an Origin header ({ours}) \
                 or the X-CSRF-Token header."
            ),
        ));
    }
    Ok(())
}

async fn limit_body(req: &mut Request) -> Result<(), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The body is larger than 16 KiB.",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = req
        .take_body()
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Cannot read the body: {other}"),
            ),
        })?;
    req.set_body(body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed spec is what the code generates: a client generated from the
    /// file in the repository talks to this server. After a deliberate change, run
    /// `cargo run -- openapi > crates/web/openapi.json`.
    #[test]
    fn committed_spec_is_current() {
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        let committed = parse(include_str!("../../openapi.json"));
        let generated = parse(spec());
        assert!(
            committed == generated,
            "crates/web/openapi.json is out of date: run \
             `cargo run -- openapi > crates/web/openapi.json` and commit it"
        );
    }
}
