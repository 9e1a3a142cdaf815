//! The success answers operations share: `200` with a body, `201` with a
//! `Location`, `204` (clearing the session cookie when the request's own session
//! ended).

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaHeader, MetaResponse, MetaResponses};
use poem_openapi::types::Type;

use super::models::Account;
use crate::http::identity::SessionEnded;

#[derive(ApiResponse)]
pub enum Created {
    /// The account exists; log in with `POST /sessions`.
    #[oai(status = 201)]
    Created(Json<Account>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Found<T: poem_openapi::types::ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
}

/// `204 No Content`, maybe clearing the session cookie.
#[derive(Default)]
pub struct Done {
    pub clear_cookie: Option<String>,
}

impl ApiResponse for Done {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Done.",
                status: Some(204),
                status_range: None,
                content: Vec::new(),
                headers: vec![MetaHeader {
                    name: "Set-Cookie".to_owned(),
                    description: Some(
                        "Clears the session cookie when the request's own session ended."
                            .to_owned(),
                    ),
                    required: false,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(_registry: &mut poem_openapi::registry::Registry) {}
}

impl IntoResponse for Done {
    fn into_response(self) -> Response {
        let resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
        match self.clear_cookie {
            Some(cookie) => {
                let mut resp = crate::http::response::with_cookie(resp, &cookie);
                // The response must not announce the user who just left.
                resp.extensions_mut().insert(SessionEnded);
                resp
            }
            None => resp,
        }
    }
}
