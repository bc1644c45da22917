//! Tests for backoff and retry eligibility, including the boundaries the issue lists.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use super::*;

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// base 1 s, ×2, max 60 s, no jitter.
fn policy() -> BackoffPolicy {
    BackoffPolicy::new(secs(1), 2.0, secs(60), 0.0).unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

/// A retryable step with one of three attempts used, last attempted at `t0`, asked at `now`.
fn context(now: DateTime<Utc>) -> RetryContext {
    RetryContext {
        retryable: true,
        attempts: 1,
        max_attempts: 3,
        last_attempted_at: Some(t0()),
        requested_backoff: None,
        policy: policy(),
        jitter: JitterSample::NONE,
        now,
    }
}

#[test]
fn backoff_grows_exponentially_up_to_the_max() {
    let policy = policy();
    let delays: Vec<u64> = (0..9)
        .map(|attempts| policy.backoff_for(attempts, JitterSample::NONE).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(policy.backoff_for(u32::MAX, JitterSample::NONE), secs(60));

    let fractional = BackoffPolicy::new(Duration::from_millis(250), 1.5, secs(10), 0.0).unwrap();
    // 250 ms × 1.5² = 562.5 ms, rounded to whole milliseconds, halves up.
    assert_eq!(
        fractional.backoff_for(2, JitterSample::NONE),
        Duration::from_millis(563)
    );
    // Computed in milliseconds: 9 ms × 1.5 is exactly 13.5 ms, rounded up (in seconds,
    // 0.009 × 1.5 × 1000 is 13.499999999999998, which rounded down).
    let small = BackoffPolicy::new(Duration::from_millis(9), 1.5, secs(1), 0.0).unwrap();
    assert_eq!(
        small.backoff_for(1, JitterSample::NONE),
        Duration::from_millis(14)
    );
    // No cap on the exponent: 6211 ms × 1.0001^65 = 6251.6 ms.
    let slow = BackoffPolicy::new(Duration::from_millis(6211), 1.0001, secs(60), 0.0).unwrap();
    assert_eq!(
        slow.backoff_for(65, JitterSample::NONE),
        Duration::from_millis(6252)
    );
    // A base of zero stays zero, even where the multiplier's power overflows.
    let zero = BackoffPolicy::new(Duration::ZERO, 2.5, secs(1), 0.0).unwrap();
    assert_eq!(
        zero.backoff_for(u32::MAX, JitterSample::NONE),
        Duration::ZERO
    );
}

#[test]
fn jitter_moves_the_delay_by_up_to_the_fraction_and_never_past_max() {
    let policy = BackoffPolicy::new(secs(1), 2.0, secs(60), 0.25).unwrap();
    let at = |attempts, sample| policy.backoff_for(attempts, JitterSample::new(sample).unwrap());
    assert_eq!(at(3, 0.5), secs(8));
    assert_eq!(at(3, 0.0), secs(6));
    assert_eq!(at(3, 1.0), secs(10));
    assert_eq!(at(3, 0.75), secs(9));
    // Already at max: jitter can lower it but never raise it.
    assert_eq!(at(10, 1.0), secs(60));
    assert_eq!(at(10, 0.0), secs(45));
    // Deterministic: the same draw gives the same delay.
    assert_eq!(at(4, 0.123), at(4, 0.123));
}

#[test]
fn backoff_policy_rejects_nonsense() {
    let errors = [
        BackoffPolicy::new(secs(1), 0.5, secs(60), 0.0).unwrap_err(),
        BackoffPolicy::new(secs(1), f64::NAN, secs(60), 0.0).unwrap_err(),
        BackoffPolicy::new(secs(1), f64::INFINITY, secs(60), 0.0).unwrap_err(),
        BackoffPolicy::new(secs(1), 2.0, secs(60), 1.5).unwrap_err(),
        BackoffPolicy::new(secs(1), 2.0, secs(60), -0.1).unwrap_err(),
        BackoffPolicy::new(secs(1), 2.0, secs(60), f64::NAN).unwrap_err(),
        BackoffPolicy::new(secs(120), 2.0, secs(60), 0.1).unwrap_err(),
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(messages.join("\n"));
    let policy = BackoffPolicy::new(secs(2), 1.0, secs(2), 1.0).unwrap();
    assert_eq!(
        (
            policy.base(),
            policy.multiplier(),
            policy.max(),
            policy.jitter()
        ),
        (secs(2), 1.0, secs(2), 1.0)
    );
}

#[test]
fn jitter_samples_are_fractions() {
    assert_eq!(JitterSample::new(0.0).unwrap().get(), 0.0);
    assert_eq!(JitterSample::new(1.0).unwrap().get(), 1.0);
    assert_eq!(JitterSample::NONE.get(), 0.5);
    for bad in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
        let error = JitterSample::new(bad).unwrap_err();
        assert!(error.to_string().contains("between 0 and 1"), "{error}");
    }
    assert_eq!(JitterSample::from_bits(0).get(), 0.0);
    assert!(JitterSample::from_bits(u64::MAX).get() < 1.0);
    assert_eq!(JitterSample::from_bits(1 << 63).get(), 0.5);
}

#[test]
fn next_retry_at_adds_the_backoff_and_saturates() {
    assert_eq!(next_retry_at(t0(), secs(90)), t0() + TimeDelta::seconds(90));
    assert_eq!(next_retry_at(t0(), Duration::MAX), DateTime::<Utc>::MAX_UTC);
    assert_eq!(
        next_retry_at(DateTime::<Utc>::MAX_UTC, secs(1)),
        DateTime::<Utc>::MAX_UTC
    );
}

#[test]
fn eligible_once_the_backoff_has_elapsed() {
    // attempts = 1 → backoff 2 s → due at t0 + 2 s.
    let due = t0() + TimeDelta::seconds(2);
    assert_eq!(context(due).next_retry_at(), Some(due));
    assert_eq!(
        is_retry_eligible(&context(due - TimeDelta::seconds(1))),
        Err(RetryIneligible::BackoffPending {
            next_retry_at: due,
            remaining: secs(1)
        })
    );
    assert_eq!(is_retry_eligible(&context(due)), Ok(()));
    assert_eq!(
        is_retry_eligible(&context(due + TimeDelta::seconds(1))),
        Ok(())
    );
}

#[test]
fn a_requested_backoff_replaces_the_policy() {
    let mut retry = context(t0() + TimeDelta::seconds(10));
    retry.requested_backoff = Some(secs(120));
    assert_eq!(retry.backoff(), secs(120));
    let due = t0() + TimeDelta::seconds(120);
    assert!(matches!(
        is_retry_eligible(&retry),
        Err(RetryIneligible::BackoffPending { next_retry_at, .. }) if next_retry_at == due
    ));
    retry.now = due - TimeDelta::seconds(1);
    assert!(is_retry_eligible(&retry).is_err());
    retry.now = due + TimeDelta::seconds(1);
    assert_eq!(is_retry_eligible(&retry), Ok(()));
    // Not capped by the policy's max, and no jitter.
    retry.jitter = JitterSample::new(1.0).unwrap();
    retry.policy = BackoffPolicy::new(secs(1), 2.0, secs(60), 0.5).unwrap();
    assert_eq!(retry.backoff(), secs(120));
}

#[test]
fn attempts_boundaries() {
    let late = t0() + TimeDelta::days(1);
    let with = |attempts, max_attempts| RetryContext {
        attempts,
        max_attempts,
        ..context(late)
    };
    // attempts = max_attempts − 1: eligible; attempts = max_attempts: exhausted.
    assert_eq!(is_retry_eligible(&with(2, 3)), Ok(()));
    assert_eq!(
        is_retry_eligible(&with(3, 3)),
        Err(RetryIneligible::AttemptsExhausted {
            attempts: 3,
            max_attempts: 3
        })
    );
    assert!(is_retry_eligible(&with(4, 3)).is_err());
    // max_attempts = 1: the first attempt is allowed, a failed one is never retried.
    assert_eq!(is_retry_eligible(&with(0, 1)), Ok(()));
    assert_eq!(
        is_retry_eligible(&with(1, 1)),
        Err(RetryIneligible::AttemptsExhausted {
            attempts: 1,
            max_attempts: 1
        })
    );
    // max_attempts = 0: still the first attempt is allowed, nothing after it.
    assert_eq!(is_retry_eligible(&with(0, 0)), Ok(()));
    assert_eq!(
        is_retry_eligible(&with(1, 0)),
        Err(RetryIneligible::AttemptsExhausted {
            attempts: 1,
            max_attempts: 0
        })
    );
}

#[test]
fn not_retryable_blocks_every_retry_but_not_the_first_attempt() {
    let late = t0() + TimeDelta::days(1);
    let not_retryable = |attempts| RetryContext {
        retryable: false,
        attempts,
        ..context(late)
    };
    assert_eq!(
        is_retry_eligible(&not_retryable(1)),
        Err(RetryIneligible::NotRetryable { attempts: 1 })
    );
    assert_eq!(is_retry_eligible(&not_retryable(0)), Ok(()));
}

#[test]
fn the_first_attempt_still_honours_a_pending_backoff() {
    // A step whose enqueueing failed with a requested backoff, after an operator reset.
    let retry = RetryContext {
        attempts: 0,
        requested_backoff: Some(secs(30)),
        ..context(t0() + TimeDelta::seconds(29))
    };
    assert!(matches!(
        is_retry_eligible(&retry),
        Err(RetryIneligible::BackoffPending { .. })
    ));
    // Never attempted: nothing to wait for.
    let never = RetryContext {
        attempts: 0,
        last_attempted_at: None,
        ..context(t0())
    };
    assert_eq!(never.next_retry_at(), None);
    assert_eq!(is_retry_eligible(&never), Ok(()));
}

#[test]
fn ineligibility_messages() {
    let due = t0() + TimeDelta::seconds(3725);
    let errors = [
        RetryIneligible::NotRetryable { attempts: 2 },
        RetryIneligible::AttemptsExhausted {
            attempts: 3,
            max_attempts: 3,
        },
        RetryIneligible::BackoffPending {
            next_retry_at: due,
            remaining: secs(3725),
        },
        RetryIneligible::BackoffPending {
            next_retry_at: due,
            remaining: Duration::from_millis(1500),
        },
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(messages.join("\n"));
}

proptest! {
    #[test]
    fn backoff_is_capped_by_max_and_within_the_jitter_band(
        base_ms in 1u64..10_000,
        extra_ms in 0u64..1_000_000,
        multiplier in 1.0f64..4.0,
        jitter in 0.0f64..=1.0,
        sample in 0.0f64..=1.0,
        attempts in 0u32..100,
    ) {
        let base = Duration::from_millis(base_ms);
        let max = Duration::from_millis(base_ms + extra_ms);
        let policy = BackoffPolicy::new(base, multiplier, max, jitter).unwrap();
        let plain = policy.backoff_for(attempts, JitterSample::NONE);
        let jittered = policy.backoff_for(attempts, JitterSample::new(sample).unwrap());
        prop_assert!(plain <= max);
        prop_assert!(jittered <= max);
        let band = plain.as_secs_f64() * jitter + 0.001;
        prop_assert!((jittered.as_secs_f64() - plain.as_secs_f64()).abs() <= band);
        // Without jitter the delay never shrinks as attempts grow.
        prop_assert!(policy.backoff_for(attempts + 1, JitterSample::NONE) >= plain);
    }

    #[test]
    fn eligibility_matches_its_definition(
        retryable in any::<bool>(),
        attempts in 0u32..6,
        max_attempts in 0u32..6,
        elapsed_secs in 0i64..200,
        requested in prop::option::of(0u64..100),
    ) {
        let retry = RetryContext {
            retryable,
            attempts,
            max_attempts,
            requested_backoff: requested.map(secs),
            ..context(t0() + TimeDelta::seconds(elapsed_secs))
        };
        let backoff = requested.map_or_else(
            || policy().backoff_for(attempts, JitterSample::NONE),
            secs,
        );
        let expected = (attempts == 0 || (retryable && attempts < max_attempts))
            && elapsed_secs >= i64::try_from(backoff.as_secs()).unwrap();
        prop_assert_eq!(is_retry_eligible(&retry).is_ok(), expected);
    }
}
