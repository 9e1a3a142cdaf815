//! `/metrics` in Prometheus text format: requests by route and status, an `/auth`
//! latency histogram, login outcomes, and the hashing queue. `/auth`'s answers
//! touch two atomics (its status, its latency bucket) and no lock; other routes
//! count in one small map.
//!
//! Served only on the operator listener (`--metrics-listen`), never the public one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response, handler};

use super::AppState;
use crate::core::Services;

/// Upper bounds of the `/auth` latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1.0,
];

/// The statuses `/auth` answers with, counted without a lock.
const AUTH_STATUSES: [u16; 6] = [200, 302, 400, 401, 403, 503];

#[derive(Default, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// `/auth` answers by status, for [`AUTH_STATUSES`] (others go to `requests`).
    auth_statuses: [AtomicU64; AUTH_STATUSES.len()],
    /// Not cumulative: each answer counts in the first bucket it fits; `render`
    /// adds them up as Prometheus wants.
    auth_buckets: [AtomicU64; BUCKETS.len()],
    auth_count: AtomicU64,
    auth_sum_nanos: AtomicU64,
    logins: [AtomicU64; 4],
}

impl Metrics {
    fn record(&self, route: &'static str, login: bool, status: StatusCode, started: Instant) {
        if login {
            // A login's outcome shows in its status: success (303, or 200 with
            // HX-Redirect, or 201 from the API), wrong credentials or bad input,
            // throttled, busy.
            let outcome = match status.as_u16() {
                200 | 201 | 303 => Some(0),
                401 | 422 => Some(1),
                429 => Some(2),
                503 => Some(3),
                _ => None,
            };
            if let Some(outcome) = outcome {
                self.inner.logins[outcome].fetch_add(1, Ordering::Relaxed);
            }
        }
        let code = status.as_u16();
        let fast = (route == "/auth")
            .then(|| AUTH_STATUSES.iter().position(|s| *s == code))
            .flatten();
        match fast {
            Some(index) => {
                self.inner.auth_statuses[index].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *self
                    .inner
                    .requests
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry((route, code))
                    .or_default() += 1;
            }
        }
        if route == "/auth" {
            let elapsed = started.elapsed();
            let seconds = elapsed.as_secs_f64();
            if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
                self.inner.auth_buckets[bucket].fetch_add(1, Ordering::Relaxed);
            }
            self.inner.auth_count.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            self.inner
                .auth_sum_nanos
                .fetch_add(nanos, Ordering::Relaxed);
        }
    }

    fn render(&self, services: &Services) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP gatehouse_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE gatehouse_requests_total counter");
        let mut requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (status, counter) in AUTH_STATUSES.iter().zip(&self.inner.auth_statuses) {
            let count = counter.load(Ordering::Relaxed);
            if count > 0 {
                *requests.entry(("/auth", *status)).or_default() += count;
            }
        }
        for ((route, status), count) in &requests {
            let _ = writeln!(
                out,
                "gatehouse_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP gatehouse_auth_duration_seconds Time to answer /auth."
        );
        let _ = writeln!(out, "# TYPE gatehouse_auth_duration_seconds histogram");
        let mut cumulative = 0;
        for (bucket, bound) in self.inner.auth_buckets.iter().zip(BUCKETS) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gatehouse_auth_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.inner.auth_count.load(Ordering::Relaxed);
        let sum = self.inner.auth_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "gatehouse_auth_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "gatehouse_auth_duration_seconds_sum {sum}");
        let _ = writeln!(out, "gatehouse_auth_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP gatehouse_logins_total Login attempts by outcome."
        );
        let _ = writeln!(out, "# TYPE gatehouse_logins_total counter");
        for (outcome, counter) in ["success", "failure", "throttled", "busy"]
            .iter()
            .zip(&self.inner.logins)
        {
            let _ = writeln!(
                out,
                "gatehouse_logins_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        gauge(
            &mut out,
            "gatehouse_hashing_in_flight",
            "Password hashes running or queued.",
            services.hashing.in_flight(),
        );
        gauge(
            &mut out,
            "gatehouse_session_cache_entries",
            "Sessions held in memory for /auth.",
            services.sessions.len(),
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: usize) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Names a request's route for the labels (few values) and says whether it is a
/// login attempt: the composition root knows the routes.
pub type Classify = fn(&str, &Method) -> (&'static str, bool);

/// Counts every request by route and status, and times `/auth`.
pub fn middleware<E: Endpoint>(ep: E, metrics: Metrics, classify: Classify) -> Measured<E> {
    Measured {
        inner: ep,
        metrics,
        classify,
    }
}

/// The metrics middleware as an endpoint of its own (no boxed future per request:
/// it runs before every `/auth`).
pub struct Measured<E> {
    inner: E,
    metrics: Metrics,
    classify: Classify,
}

impl<E: Endpoint> Endpoint for Measured<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let (route, login) = (self.classify)(req.uri().path(), req.method());
        let resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        self.metrics.record(route, login, resp.status(), started);
        Ok(resp)
    }
}

/// `GET /metrics`, served only on the operator listener (`--metrics-listen`).
#[handler]
pub fn get(Data(state): Data<&AppState>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics().render(state))
}
