//! The poem plumbing every adapter uses — and that renders no page and no JSON:
//! who a request comes from ([`identity`], [`cookies`], [`proxy`]), the CSRF
//! check ([`csrf`]), the strict form reader ([`form`]), htmx's headers ([`htmx`]),
//! small answers and the neutral [`response::Failure`] ([`response`]), request
//! metrics ([`metrics`]), and the state adapters hold ([`state`]).

pub mod cookies;
pub mod csrf;
pub mod csrf_key;
pub mod deadline;
pub mod form;
pub mod htmx;
pub mod identity;
pub mod metrics;
pub mod proxy;
pub mod response;
pub mod state;

pub use state::AppState;
