//! Every transition, the rejection errors and their text, classification of errors, stale
//! outcomes, cancellation, the failure-rate rule and the disabled pass-through.

use std::time::Duration;

use tasker_resilience::breaker::{BreakerCounters, BreakerError, CircuitBreaker};
use tasker_resilience::config::{BreakerConfig, FailureRateRule};
use tasker_resilience::permit::{CallError, ErrorClass};
use tasker_resilience::state::{BreakerState, TransitionReason};
use tokio::time::{Instant, advance};

use crate::support::{config, fail, recorded};

use BreakerState::{Closed, HalfOpen, Open};

#[derive(Debug, thiserror::Error)]
#[error("the dependency said no")]
struct DependencyError;

fn open_error(breaker: &CircuitBreaker) -> Duration {
    match breaker.permit() {
        Err(BreakerError::Open { next_trial_in, .. }) => next_trial_in,
        other => panic!("expected an open breaker, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_open_the_breaker() {
    // (outcomes before the last failure, threshold, open after the last failure)
    let cases: &[(&str, u32, bool)] = &[
        ("ff", 3, true),
        ("fsf", 3, false),
        ("ffsff", 3, true),
        ("ffiff", 5, true), // an ignored call neither resets nor counts
        ("", 1, true),
        ("ffff", 10, false),
    ];
    for &(before, threshold, opens) in cases {
        let (breaker, recorder) = recorded(config(threshold, 30, 1, 1));
        for outcome in before.chars() {
            let permit = breaker.permit().expect("closed");
            match outcome {
                'f' => permit.failure(),
                's' => permit.success(),
                _ => permit.ignore(),
            }
        }
        assert_eq!(breaker.state(), Closed, "{before}");
        fail(&breaker, 1);
        let expected = if opens { Open } else { Closed };
        assert_eq!(
            breaker.state(),
            expected,
            "{before} then a failure, threshold {threshold}"
        );
        if opens {
            let reason = recorder.changes()[0].reason;
            assert!(
                matches!(reason, TransitionReason::ConsecutiveFailures(n) if n == threshold),
                "{reason:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_until_its_timeout_then_goes_half_open() {
    let (breaker, recorder) = recorded(config(2, 30, 1, 1));
    fail(&breaker, 2);
    let opened_at = Instant::now();
    assert_eq!(open_error(&breaker), Duration::from_secs(30));
    advance(Duration::from_millis(29_999)).await;
    assert_eq!(open_error(&breaker), Duration::from_millis(1));
    let Err(BreakerError::Open { retry_at, .. }) = breaker.permit() else {
        panic!("open");
    };
    assert_eq!(retry_at, opened_at + Duration::from_secs(30));
    advance(Duration::from_millis(1)).await;
    // The state changes lazily: the timeout alone does not move it.
    assert_eq!(breaker.state(), Open);
    let trial = breaker.permit().expect("a trial is due");
    assert!(trial.is_trial());
    assert_eq!(breaker.state(), HalfOpen);
    assert_eq!(recorder.edges(), [(Closed, Open), (Open, HalfOpen)]);
    assert_eq!(
        recorder.changes()[1].reason,
        TransitionReason::TimeoutElapsed
    );
    trial.ignore();
}

#[tokio::test(start_paused = true)]
async fn half_open_closes_after_success_threshold_and_reopens_on_any_failure() {
    // (trial outcomes, final state, reason of the last change)
    let cases: &[(&str, BreakerState, TransitionReason)] = &[
        ("sss", Closed, TransitionReason::TrialsSucceeded(3)),
        ("sisis", Closed, TransitionReason::TrialsSucceeded(3)),
        ("f", Open, TransitionReason::TrialFailed),
        ("ssf", Open, TransitionReason::TrialFailed),
        ("sd", Open, TransitionReason::TrialCancelled),
        ("ss", HalfOpen, TransitionReason::TimeoutElapsed),
    ];
    for &(trials, state, reason) in cases {
        let (breaker, recorder) = recorded(config(1, 10, 3, 1));
        fail(&breaker, 1);
        advance(Duration::from_secs(10)).await;
        for outcome in trials.chars() {
            let permit = breaker.permit().expect("a trial");
            assert!(permit.is_trial(), "{trials}");
            match outcome {
                's' => permit.success(),
                'f' => permit.failure(),
                'i' => permit.ignore(),
                _ => drop(permit),
            }
        }
        assert_eq!(breaker.state(), state, "{trials}");
        assert_eq!(breaker.trials_in_flight(), 0, "{trials}");
        let changes = recorder.changes();
        assert_eq!(changes.last().map(|c| c.reason), Some(reason), "{trials}");
        if state == Open {
            // Reopened: the full timeout again.
            assert_eq!(open_error(&breaker), Duration::from_secs(10), "{trials}");
        }
        if state == Closed {
            let permit = breaker.permit().expect("closed");
            assert!(!permit.is_trial());
            permit.success();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_the_configured_trials() {
    for max_trials in 1..=4 {
        let (breaker, _) = recorded(config(1, 1, 100, max_trials));
        fail(&breaker, 1);
        advance(Duration::from_secs(1)).await;
        let trials: Vec<_> = (0..max_trials)
            .map(|_| breaker.permit().expect("a trial slot"))
            .collect();
        assert_eq!(breaker.trials_in_flight(), max_trials);
        let Err(error) = breaker.permit() else {
            panic!("{max_trials} trials are in flight");
        };
        assert!(
            matches!(error, BreakerError::HalfOpenBusy { max_trials: m, .. } if m == max_trials)
        );
        for trial in trials {
            trial.ignore();
        }
        assert_eq!(breaker.trials_in_flight(), 0);
        breaker.permit().expect("a slot is free again").ignore();
        assert_eq!(breaker.state(), HalfOpen);
    }
}

#[tokio::test(start_paused = true)]
async fn rejection_errors_name_the_component_and_the_next_trial() {
    let (breaker, _) = recorded(config(1, 30, 1, 2));
    fail(&breaker, 1);
    advance(Duration::from_millis(12_500)).await;
    let error = breaker.permit().expect_err("open");
    assert_eq!(error.component(), "messaging");
    insta::assert_snapshot!(
        error,
        @"circuit breaker `messaging` is open; the next trial call is due in 17.5s"
    );
    advance(Duration::from_millis(17_500)).await;
    let _trials = [breaker.permit(), breaker.permit()];
    let error = breaker.permit().expect_err("both trials in flight");
    insta::assert_snapshot!(
        error,
        @"circuit breaker `messaging` is half-open and its 2 trial call(s) are in flight"
    );
    let call_error = breaker
        .call(
            || async { Ok::<_, DependencyError>(()) },
            |_| ErrorClass::Dependency,
        )
        .await
        .expect_err("rejected");
    assert!(matches!(
        call_error,
        CallError::Rejected(BreakerError::HalfOpenBusy { .. })
    ));
}

#[test]
fn reasons_and_states_have_stable_names() {
    let reasons = [
        TransitionReason::ConsecutiveFailures(5),
        TransitionReason::FailureRate {
            failures: 6,
            calls: 10,
        },
        TransitionReason::TimeoutElapsed,
        TransitionReason::TrialsSucceeded(2),
        TransitionReason::TrialFailed,
        TransitionReason::TrialCancelled,
    ];
    let text: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(text.join("\n"), @r"
    5 consecutive failures
    failure rate 6/10 in the window
    open timeout elapsed
    2 consecutive trial successes
    a trial call failed
    a trial call was cancelled
    ");
    let states = [
        (Closed, 0, "closed"),
        (HalfOpen, 1, "half_open"),
        (Open, 2, "open"),
    ];
    for (state, gauge, name) in states {
        assert_eq!(state.as_gauge(), gauge);
        assert_eq!(state.as_str(), name);
        assert_eq!(state.to_string(), name);
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let rate = |threshold, minimum_calls, window_ms| {
        Some(FailureRateRule {
            threshold,
            minimum_calls,
            window: Duration::from_millis(window_ms),
        })
    };
    let base = BreakerConfig::default();
    let cases = [
        BreakerConfig {
            failure_threshold: 0,
            ..base.clone()
        },
        BreakerConfig {
            success_threshold: 0,
            ..base.clone()
        },
        BreakerConfig {
            half_open_max_calls: 0,
            ..base.clone()
        },
        BreakerConfig {
            failure_rate: rate(0.0, 1, 1000),
            ..base.clone()
        },
        BreakerConfig {
            failure_rate: rate(1.5, 1, 1000),
            ..base.clone()
        },
        BreakerConfig {
            failure_rate: rate(f64::NAN, 1, 1000),
            ..base.clone()
        },
        BreakerConfig {
            failure_rate: rate(0.5, 0, 1000),
            ..base.clone()
        },
        BreakerConfig {
            failure_rate: rate(0.5, 1, 9),
            ..base.clone()
        },
    ];
    let messages: Vec<String> = cases
        .into_iter()
        .map(|config| {
            CircuitBreaker::new("web", config)
                .expect_err("invalid")
                .to_string()
        })
        .collect();
    insta::assert_snapshot!(messages.join("\n"), @r"
    invalid circuit breaker configuration for `web`: failure_threshold must be at least 1
    invalid circuit breaker configuration for `web`: success_threshold must be at least 1
    invalid circuit breaker configuration for `web`: half_open_max_calls must be at least 1
    invalid circuit breaker configuration for `web`: failure_rate.threshold must be in (0.0, 1.0]
    invalid circuit breaker configuration for `web`: failure_rate.threshold must be in (0.0, 1.0]
    invalid circuit breaker configuration for `web`: failure_rate.threshold must be in (0.0, 1.0]
    invalid circuit breaker configuration for `web`: failure_rate.minimum_calls must be at least 1
    invalid circuit breaker configuration for `web`: failure_rate.window must be at least 10 ms
    ");
    assert!(CircuitBreaker::new("web", base).is_ok());
}

#[tokio::test(start_paused = true)]
async fn call_classifies_errors_and_counts_cancellations() {
    let (breaker, _) = recorded(config(3, 30, 1, 1));
    let ok = breaker
        .call(
            || async { Ok::<_, DependencyError>(7) },
            |_| ErrorClass::Dependency,
        )
        .await;
    assert_eq!(ok.ok(), Some(7));
    for _ in 0..5 {
        let caller = breaker
            .call(
                || async { Err::<(), _>(DependencyError) },
                |_| ErrorClass::Caller,
            )
            .await;
        assert!(matches!(caller, Err(CallError::Failed(DependencyError))));
    }
    assert_eq!(
        breaker.state(),
        Closed,
        "caller errors never trip the breaker"
    );
    let failed = breaker
        .call(
            || async { Err::<(), _>(DependencyError) },
            |_| ErrorClass::Dependency,
        )
        .await;
    assert!(failed.expect_err("failed").into_failed().is_some());
    // A call given up on by a timeout is dropped: a failure.
    let timed_out = tokio::time::timeout(
        Duration::from_secs(1),
        breaker.call(std::future::pending::<Result<(), DependencyError>>, |_| {
            ErrorClass::Dependency
        }),
    )
    .await;
    assert!(timed_out.is_err());
    assert_eq!(
        breaker.counters(),
        BreakerCounters {
            calls: 8,
            successes: 1,
            failures: 2,
            rejected: 0,
            ignored: 5
        }
    );
    fail(&breaker, 1);
    assert_eq!(breaker.state(), Open);
    assert_eq!(breaker.counters().failures, 3);
}

#[tokio::test(start_paused = true)]
async fn outcomes_of_an_earlier_state_change_no_state() {
    let (breaker, recorder) = recorded(config(2, 10, 1, 1));
    let slow = breaker.permit().expect("closed");
    fail(&breaker, 2);
    assert_eq!(breaker.state(), Open);
    // A call from before the breaker opened succeeds late: it does not close the breaker.
    slow.success();
    assert_eq!(breaker.state(), Open);
    advance(Duration::from_secs(10)).await;
    let first_trial = breaker.permit().expect("a trial");
    first_trial.failure();
    advance(Duration::from_secs(10)).await;
    let trial = breaker.permit().expect("the next trial");
    let late = breaker.permit();
    assert!(late.is_err(), "one trial at a time");
    trial.success();
    assert_eq!(breaker.state(), Closed);
    assert_eq!(
        recorder.edges(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_trial_outstanding_across_a_reopening_still_holds_its_slot() {
    let (breaker, _) = recorded(config(1, 5, 1, 2));
    fail(&breaker, 1);
    advance(Duration::from_secs(5)).await;
    let slow = breaker.permit().expect("trial 1");
    breaker.permit().expect("trial 2").failure();
    assert_eq!(breaker.state(), Open);
    advance(Duration::from_secs(5)).await;
    let fresh = breaker.permit().expect("one slot is free");
    assert!(
        breaker.permit().is_err(),
        "the slow trial of the last period holds the other"
    );
    assert_eq!(breaker.trials_in_flight(), 2);
    slow.success(); // stale: frees its slot, counts no success
    assert_eq!(breaker.state(), HalfOpen);
    assert_eq!(breaker.trials_in_flight(), 1);
    fresh.success();
    assert_eq!(breaker.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn the_failure_rate_rule_opens_the_breaker() {
    let rule = FailureRateRule {
        threshold: 0.5,
        minimum_calls: 4,
        window: Duration::from_secs(10),
    };
    // (outcomes, open at the end)
    let cases: &[(&str, bool)] = &[
        ("sfsf", true),
        ("sff", false), // below the minimum calls
        ("ssssssf", false),
        ("sssfff", true),
        ("fiiif", false),  // ignored calls count neither way: 2 calls
        ("fffwff", false), // `w` waits out the window: 2 calls after it
        ("ssswffff", true),
    ];
    for &(outcomes, opens) in cases {
        let config = BreakerConfig {
            failure_rate: Some(rule),
            ..config(100, 30, 1, 1)
        };
        let (breaker, recorder) = recorded(config);
        for outcome in outcomes.chars() {
            if outcome == 'w' {
                advance(Duration::from_secs(10)).await;
                continue;
            }
            let permit = breaker.permit().expect("closed");
            match outcome {
                's' => permit.success(),
                'f' => permit.failure(),
                _ => permit.ignore(),
            }
        }
        let expected = if opens { Open } else { Closed };
        assert_eq!(breaker.state(), expected, "{outcomes}");
        if opens {
            let reason = recorder.changes()[0].reason;
            assert!(
                matches!(reason, TransitionReason::FailureRate { .. }),
                "{reason:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_window_is_emptied_when_the_breaker_closes() {
    let rule = FailureRateRule {
        threshold: 0.5,
        minimum_calls: 2,
        window: Duration::from_secs(60),
    };
    let (breaker, _) = recorded(BreakerConfig {
        failure_rate: Some(rule),
        ..config(100, 1, 1, 1)
    });
    breaker.permit().expect("closed").success();
    fail(&breaker, 1);
    assert_eq!(breaker.state(), Open);
    advance(Duration::from_secs(1)).await;
    breaker.permit().expect("a trial").success();
    assert_eq!(breaker.state(), Closed);
    // One failure after closing: 1/1, below the minimum of 2 calls, though the window's
    // earlier failure would have made it 2/3.
    fail(&breaker, 1);
    assert_eq!(breaker.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn a_disabled_breaker_passes_everything_and_counts_nothing() {
    let breakers = [
        CircuitBreaker::pass_through("cache"),
        CircuitBreaker::builder("cache", config(1, 30, 1, 1))
            .enabled(false)
            .build()
            .expect("valid"),
    ];
    for breaker in breakers {
        assert!(!breaker.is_enabled());
        for round in 0..100 {
            let permit = breaker.permit().expect("always granted");
            assert!(!permit.is_trial());
            match round % 4 {
                0 => permit.failure(),
                1 => drop(permit),
                2 => permit.ignore(),
                _ => permit.success(),
            }
        }
        let called = breaker
            .call(
                || async { Err::<(), _>(DependencyError) },
                |_| ErrorClass::Dependency,
            )
            .await;
        assert!(matches!(called, Err(CallError::Failed(_))));
        assert_eq!(breaker.state(), Closed);
        assert_eq!(breaker.counters(), BreakerCounters::default());
        assert_eq!(breaker.trials_in_flight(), 0);
    }
}
