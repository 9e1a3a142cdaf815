//! The defences that are a matter of time: an unknown email answered as slowly as
//! a wrong password (the dummy hash), a reset request for an unknown address as
//! slowly as for a known one (nothing on the request reads the users).
//!
//! Built not to flake on a busy two-core machine and still catch a real
//! difference: the two kinds of request are timed back to back, in alternating
//! order (A B, then B A), many times; each pair gives a ratio, and the test reads
//! the median of those ratios — a slow moment of the machine falls on both halves
//! of a pair, and a few bad pairs move the median little. `.ci/run` runs this group
//! on its own (`--test-threads=1`) after the rest; a plain `cargo test` runs it
//! with the others, where the same statistic holds up.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use storage::{Store, ThrottlePolicy};
use web::config::{Config, MailSettings, MailTransport, ThrottleSettings};

use crate::app::{spawn_app_with, test_config};

/// Throttling out of the way: every request of these tests fails on purpose.
const LENIENT: ThrottlePolicy = ThrottlePolicy {
    free_failures: 1000,
    max_delay: 1,
    forget_after: 900,
};

fn lenient() -> ThrottleSettings {
    ThrottleSettings {
        account: LENIENT,
        address: LENIENT,
        factor: LENIENT,
    }
}

/// Pairs timed per test.
const PAIRS: usize = 30;

async fn timed<F: Future>(work: F) -> (Duration, F::Output) {
    let started = Instant::now();
    let out = work.await;
    (started.elapsed(), out)
}

/// The median of `b / a` over the pairs.
fn median_ratio(pairs: &[(Duration, Duration)]) -> f64 {
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    if ratios.len().is_multiple_of(2) {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    } else {
        ratios[mid]
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Prints what was measured (`.ci/run` shows the line) and checks that the
/// median per-pair ratio is within 0.8 to 1.25.
fn assert_same_time(what: &str, (a, b): (&str, &str), pairs: &[(Duration, Duration)]) {
    use std::io::Write;
    let ratio = median_ratio(pairs);
    // Past the test harness's capture, so that `.ci/run`'s summary shows it.
    let _ = writeln!(
        std::io::stderr(),
        "{what}: {a} {:?}, {b} {:?} (medians), median of {} per-pair ratios {ratio:.3}",
        median(pairs.iter().map(|p| p.0).collect()),
        median(pairs.iter().map(|p| p.1).collect()),
        pairs.len(),
    );
    assert!((0.8..1.25).contains(&ratio), "{what}: ratio {ratio:.3}");
}

#[test]
fn the_median_ratio_reads_pairs_and_shrugs_off_outliers() {
    let ms = Duration::from_millis;
    let mut pairs = vec![(ms(10), ms(10)); 9];
    pairs.push((ms(10), ms(500)));
    pairs.push((ms(900), ms(10)));
    assert!((median_ratio(&pairs) - 1.0).abs() < 1e-9);
    assert!((median_ratio(&[(ms(10), ms(20)), (ms(10), ms(30))]) - 2.5).abs() < 1e-9);
}

/// The answer to a wrong password and to an unknown email must take the same
/// time: both cost one scrypt verification, at a cost (ln=13, about 8 MiB and
/// tens of ms) that dwarfs the HTTP round trip. Without the dummy hash the
/// unknown email answers in less than half the time (watched: median ratio 0.44
/// in a debug build, 12 ms against 27 ms).
#[tokio::test]
async fn unknown_email_and_wrong_password_take_the_same_time() {
    let mut config = Config {
        throttle: lenient(),
        ..test_config()
    };
    config.hashing.params.log_n = 13;
    let app = spawn_app_with(config, Store::memory().await.unwrap()).await;
    app.logged_in("sara").await;
    let browser = app.browser();
    browser.csrf_token().await;
    let attempt = |email: &'static str, round: usize| {
        let browser = &browser;
        async move {
            let resp = browser
                .login(email, &format!("wrong password {round}"))
                .await;
            assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
        }
    };
    let (wrong, unknown) = ("sara@example.com", "nobody@example.com");
    // One of each first, unmeasured: the first of each kind pays for warming up.
    attempt(wrong, 0).await;
    attempt(unknown, 0).await;
    let mut pairs = Vec::new();
    for round in 1..=PAIRS {
        let pair = if round % 2 == 0 {
            let (a, ()) = timed(attempt(wrong, round)).await;
            let (b, ()) = timed(attempt(unknown, round)).await;
            (a, b)
        } else {
            let (b, ()) = timed(attempt(unknown, round)).await;
            let (a, ()) = timed(attempt(wrong, round)).await;
            (a, b)
        };
        pairs.push(pair);
    }
    assert_same_time(
        "enumeration timing",
        ("wrong password", "unknown email"),
        &pairs,
    );
}

/// Asking for a reset link for a known address and for an unknown one takes the
/// same time: the request only queues "a link for this address"; the mail sender
/// makes the link off the request.
#[tokio::test]
async fn a_reset_request_takes_the_same_time_for_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        mail: MailSettings {
            transport: MailTransport::Dir(dir.path().to_owned()),
            from: "gatehouse@example.com".into(),
        },
        throttle: lenient(),
        ..test_config()
    };
    let app = spawn_app_with(config, Store::memory().await.unwrap()).await;
    app.logged_in("tim").await;
    let browser = app.browser();
    browser.get("/forgot").await;
    let browser = &browser;
    // The pause after each request (the known address's link is made in the
    // background: let it finish) is part of neither measurement.
    let time = move |email: &'static str| async move {
        let started = Instant::now();
        let page = browser.post_form("/forgot", &[("email", email)]).await;
        let took = started.elapsed();
        assert_eq!(page.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(30)).await;
        took
    };
    let (known, unknown) = ("tim@example.com", "nobody@example.com");
    time(known).await;
    time(unknown).await;
    let mut pairs = Vec::new();
    for round in 1..=PAIRS {
        let pair = if round % 2 == 0 {
            let a = time(known).await;
            (a, time(unknown).await)
        } else {
            let b = time(unknown).await;
            (time(known).await, b)
        };
        pairs.push(pair);
    }
    assert_same_time("reset timing", ("known", "unknown"), &pairs);
}
