//! Reading a request's body as a strict form: the content type and the size limit
//! here, the parsing in [`wire::form`].

use poem::http::header;
use poem::{Body, Request};
pub use wire::form::{CSRF_FIELD, Form, FormError, MAX_FORM_BYTES};

/// Reads the request's body as a form that may hold only `allowed` fields.
pub async fn read_form(
    req: &Request,
    body: Body,
    allowed: &[&'static str],
) -> Result<Form, FormError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(FormError::ContentType);
    }
    let body = body
        .into_bytes_limit(MAX_FORM_BYTES)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => FormError::TooLarge,
            other => FormError::Malformed(other.to_string()),
        })?;
    Form::parse(&body, allowed)
}
