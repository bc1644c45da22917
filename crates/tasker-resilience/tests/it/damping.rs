//! `min_state_transition_interval`: no change sooner than the interval after the previous one,
//! except half-open → open; open → half-open after `max(timeout, interval)`.

use std::time::Duration;

use tasker_resilience::breaker::BreakerError;
use tasker_resilience::config::BreakerConfig;
use tasker_resilience::state::{BreakerState, TransitionReason};
use tokio::time::advance;

use crate::support::{config, fail, recorded};

use BreakerState::{Closed, HalfOpen, Open};

fn damped(timeout_secs: u64, interval_secs: u64) -> BreakerConfig {
    BreakerConfig {
        min_state_transition_interval: Duration::from_secs(interval_secs),
        ..config(1, timeout_secs, 1, 1)
    }
}

#[tokio::test(start_paused = true)]
async fn the_open_period_is_the_longer_of_timeout_and_interval() {
    // (timeout, interval, seconds until the first trial)
    let cases = [(30, 5, 30), (1, 5, 5), (5, 5, 5), (2, 0, 2)];
    for (timeout, interval, due) in cases {
        let (breaker, _) = recorded(damped(timeout, interval));
        fail(&breaker, 1);
        let Err(BreakerError::Open { next_trial_in, .. }) = breaker.permit() else {
            panic!("open");
        };
        assert_eq!(
            next_trial_in,
            Duration::from_secs(due),
            "{timeout}/{interval}"
        );
        advance(Duration::from_secs(due) - Duration::from_millis(1)).await;
        assert!(breaker.permit().is_err(), "{timeout}/{interval}");
        advance(Duration::from_millis(1)).await;
        breaker.permit().expect("due").ignore();
        assert_eq!(breaker.state(), HalfOpen);
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_trip_is_not_damped() {
    let (breaker, _) = recorded(damped(30, 5));
    fail(&breaker, 1);
    assert_eq!(breaker.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn closing_waits_for_the_interval_after_half_open() {
    let (breaker, recorder) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("a trial").success();
    assert_eq!(
        breaker.state(),
        HalfOpen,
        "enough successes, but too soon to close"
    );
    advance(Duration::from_secs(4)).await;
    // Still half-open: trials only, one at a time.
    let trial = breaker.permit().expect("a trial");
    assert!(trial.is_trial());
    assert!(breaker.permit().is_err());
    trial.ignore();
    advance(Duration::from_secs(1)).await;
    let permit = breaker.permit().expect("closed now");
    assert!(!permit.is_trial());
    permit.success();
    assert_eq!(
        recorder.edges(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    let changes = recorder.changes();
    assert_eq!(changes[2].at - changes[1].at, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_success_after_the_interval_closes_too() {
    let (breaker, recorder) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    let early = breaker.permit().expect("a trial");
    advance(Duration::from_secs(5)).await;
    early.success();
    assert_eq!(breaker.state(), Closed);
    assert_eq!(
        recorder.changes().last().map(|c| c.reason),
        Some(TransitionReason::TrialsSucceeded(1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_at_once() {
    let (breaker, recorder) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("a trial").failure();
    assert_eq!(breaker.state(), Open, "half-open → open is never delayed");
    assert_eq!(
        recorder.edges(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
    let changes = recorder.changes();
    assert_eq!(changes[2].at, changes[1].at);
}

#[tokio::test(start_paused = true)]
async fn a_trip_right_after_closing_is_deferred_to_the_end_of_the_interval() {
    let (breaker, recorder) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("a trial").success();
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("closes").success();
    assert_eq!(breaker.state(), Closed);
    // Failures within 5 s of closing: the breaker stays closed and calls go through.
    for _ in 0..3 {
        advance(Duration::from_secs(1)).await;
        fail(&breaker, 1);
        assert_eq!(breaker.state(), Closed);
    }
    advance(Duration::from_millis(1999)).await;
    breaker
        .permit()
        .expect("still within the interval")
        .ignore();
    advance(Duration::from_millis(1)).await;
    // The first call after the interval finds the deferred trip and is rejected.
    assert!(matches!(breaker.permit(), Err(BreakerError::Open { .. })));
    let changes = recorder.changes();
    let last = changes.last().expect("changes");
    assert_eq!((last.from, last.to), (Closed, Open));
    assert_eq!(last.reason, TransitionReason::ConsecutiveFailures(3));
    assert_eq!(
        last.at - changes[changes.len() - 2].at,
        Duration::from_secs(5)
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_cancels_a_deferred_trip() {
    let (breaker, _) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("a trial").success();
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("closes").success();
    fail(&breaker, 1);
    breaker.permit().expect("closed").success();
    advance(Duration::from_secs(10)).await;
    breaker
        .permit()
        .expect("the deferred trip was cancelled")
        .success();
    assert_eq!(breaker.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_interval_trips_a_deferred_breaker() {
    let (breaker, _) = recorded(damped(1, 5));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    breaker.permit().expect("a trial").success();
    advance(Duration::from_secs(5)).await;
    let held = breaker.permit().expect("closes");
    fail(&breaker, 1);
    assert_eq!(breaker.state(), Closed);
    advance(Duration::from_secs(5)).await;
    held.failure();
    assert_eq!(breaker.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn damping_bounds_the_rate_of_state_changes_under_flapping() {
    // A dependency that alternates between failing and succeeding every 100 ms for a minute.
    for (interval, most_changes) in [(0u64, 240usize), (5, 24)] {
        let (breaker, recorder) = recorded(BreakerConfig {
            min_state_transition_interval: Duration::from_secs(interval),
            ..config(1, 1, 1, 1)
        });
        for tick in 0..600u32 {
            advance(Duration::from_millis(100)).await;
            if let Ok(permit) = breaker.permit() {
                if (tick / 5) % 2 == 0 {
                    permit.failure();
                } else {
                    permit.success();
                }
            }
        }
        let changes = recorder.changes();
        assert!(
            changes.len() <= most_changes,
            "{interval}: {}",
            changes.len()
        );
        for pair in changes.windows(2) {
            let exempt = (pair[1].from, pair[1].to) == (HalfOpen, Open);
            if !exempt {
                assert!(pair[1].at - pair[0].at >= Duration::from_secs(interval));
            }
        }
    }
}
