//! Tests of the retry policy: the delays' bounds, and which errors are retried how often.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proptest::prelude::*;

use super::{RetryPolicy, TimedOut, within};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(&'static str);

#[test]
fn delays_grow_from_the_initial_delay_up_to_the_maximum() {
    let policy = RetryPolicy {
        max_retries: 10,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(700),
        multiplier: 2.0,
        jitter: 0.0,
    };
    let delays: Vec<u128> = (0..5)
        .map(|retry| policy.delay(retry, 0.5).as_millis())
        .collect();
    assert_eq!(delays, [100, 200, 400, 700, 700]);
}

proptest! {
    #[test]
    fn delays_stay_within_the_jitter_and_the_maximum(
        retry in 0u32..200,
        draw in 0.0f64..=1.0,
        jitter in 0.0f64..=1.0,
        initial_ms in 1u64..10_000,
        max_ms in 1u64..100_000,
        multiplier in 1.0f64..10.0,
    ) {
        let policy = RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(initial_ms),
            max_delay: Duration::from_millis(max_ms),
            multiplier,
            jitter,
        };
        let delay = policy.delay(retry, draw).as_secs_f64();
        prop_assert!(delay <= max_ms as f64 / 1000.0 + 1e-9);
        let unjittered = (initial_ms as f64 / 1000.0) * multiplier.powi(retry as i32);
        if unjittered * (1.0 + jitter) <= max_ms as f64 / 1000.0 {
            prop_assert!(delay >= unjittered * (1.0 - jitter) - 1e-9);
            prop_assert!(delay <= unjittered * (1.0 + jitter) + 1e-9);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_up_to_the_limit_and_others_not_at_all() {
    let policy = RetryPolicy::default();
    let calls = AtomicU32::new(0);
    let outcome: Result<(), Failure> = policy
        .run(
            "an operation",
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure("down"))
            },
        )
        .await;
    assert!(outcome.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "the first try and three retries"
    );

    let calls = AtomicU32::new(0);
    let outcome: Result<(), Failure> = policy
        .run(
            "an operation",
            |_| false,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure("bad input"))
            },
        )
        .await;
    assert!(outcome.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a permanent error is not retried"
    );

    let calls = AtomicU32::new(0);
    let outcome = policy
        .run(
            "an operation",
            |_: &Failure| true,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Failure("down"))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
    assert_eq!(outcome.unwrap(), 7, "it succeeds once the failure passes");
}

#[tokio::test(start_paused = true)]
async fn within_gives_up_after_its_limit_and_says_so() {
    let limit = Duration::from_secs(10);
    assert_eq!(
        within(limit, async { 5 }).await,
        Ok(5),
        "a prompt answer passes"
    );

    // A server that never answers: the clock is paused, so this waits no real time.
    let silent = within(limit, std::future::pending::<()>()).await;
    let error = silent.expect_err("a silent operation times out");
    assert_eq!(error, TimedOut { after: limit });
    assert_eq!(
        error.to_string(),
        "no answer within 10s (the configured processing timeout); the database or the broker may be unreachable"
    );
}
