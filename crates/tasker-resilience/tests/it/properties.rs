//! Property tests over random interleavings of permits, successes, failures, caller errors,
//! cancellations (dropped permits) and time, on a paused clock.
//!
//! Invariants: a half-open breaker never has more trial permits out than it allows; every
//! permit is released exactly once (the breaker's in-flight count equals the trial permits
//! held, and its counters account for every permit); the state follows only the allowed edges;
//! an open breaker rejects until its open period has passed and lets a call through after it;
//! no state change comes sooner than the damping interval after the previous one, except
//! half-open → open.

use std::time::Duration;

use proptest::prelude::*;
use tasker_resilience::breaker::{BreakerError, CircuitBreaker};
use tasker_resilience::config::{BreakerConfig, FailureRateRule};
use tasker_resilience::permit::Permit;
use tasker_resilience::state::BreakerState;
use tokio::time::Instant;

use crate::support::Recorder;

use BreakerState::{Closed, HalfOpen, Open};

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Succeed(usize),
    Fail(usize),
    Ignore(usize),
    Cancel(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        2 => any::<usize>().prop_map(Op::Succeed),
        2 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Ignore),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (0u64..4_000).prop_map(Op::Advance),
    ]
}

fn breaker_config() -> impl Strategy<Value = BreakerConfig> {
    let rate = prop::option::of((1u32..=10, 1u32..=5, 1u64..=20).prop_map(
        |(tenths, minimum_calls, window_secs)| FailureRateRule {
            threshold: f64::from(tenths) / 10.0,
            minimum_calls,
            window: Duration::from_secs(window_secs),
        },
    ));
    (
        1u32..=4,
        0u64..=5_000,
        1u32..=3,
        1u32..=3,
        rate,
        0u64..=4_000,
    )
        .prop_map(
            |(
                failure_threshold,
                timeout_ms,
                success_threshold,
                max_trials,
                failure_rate,
                damping_ms,
            )| {
                BreakerConfig {
                    failure_threshold,
                    timeout: Duration::from_millis(timeout_ms),
                    success_threshold,
                    half_open_max_calls: max_trials,
                    failure_rate,
                    min_state_transition_interval: Duration::from_millis(damping_ms),
                }
            },
        )
}

fn allowed(from: BreakerState, to: BreakerState) -> bool {
    matches!(
        (from, to),
        (Closed, Open) | (Open, HalfOpen) | (HalfOpen, Closed) | (HalfOpen, Open)
    )
}

fn run(config: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let recorder = Recorder::default();
        let breaker = CircuitBreaker::builder("prop", config.clone())
            .on_state_change(recorder.callback())
            .build()
            .expect("a valid configuration");
        let max_trials = config.half_open_max_calls;
        let mut held: Vec<Permit<'_>> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    let state_before = breaker.state();
                    let now = Instant::now();
                    let last_open = |recorder: &Recorder| {
                        recorder
                            .changes()
                            .last()
                            .filter(|c| c.to == Open)
                            .map(|c| c.at)
                    };
                    let opened_before = last_open(&recorder);
                    match breaker.permit() {
                        Ok(permit) => {
                            if let (Open, Some(opened_at)) = (state_before, opened_before) {
                                prop_assert!(
                                    now >= opened_at + config.open_duration(),
                                    "granted while open"
                                );
                            }
                            held.push(permit);
                        }
                        Err(BreakerError::Open { next_trial_in, .. }) => {
                            // Open before, or opened just now by a deferred trip.
                            let opened_at =
                                last_open(&recorder).expect("rejected as open while open");
                            prop_assert_eq!(breaker.state(), Open);
                            prop_assert!(now < opened_at + config.open_duration());
                            prop_assert_eq!(
                                now + next_trial_in,
                                opened_at + config.open_duration()
                            );
                        }
                        Err(BreakerError::HalfOpenBusy { .. }) => {
                            prop_assert_eq!(breaker.state(), HalfOpen);
                            prop_assert_eq!(breaker.trials_in_flight(), max_trials);
                        }
                    }
                }
                Op::Succeed(i) | Op::Fail(i) | Op::Ignore(i) | Op::Cancel(i)
                    if !held.is_empty() =>
                {
                    let permit = held.swap_remove(i % held.len());
                    match op {
                        Op::Succeed(_) => permit.success(),
                        Op::Fail(_) => permit.failure(),
                        Op::Ignore(_) => permit.ignore(),
                        _ => drop(permit),
                    }
                }
                Op::Advance(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
                Op::Succeed(_) | Op::Fail(_) | Op::Ignore(_) | Op::Cancel(_) => {}
            }
            let trials_held = held.iter().filter(|p| p.is_trial()).count();
            prop_assert!(trials_held <= max_trials as usize);
            prop_assert_eq!(breaker.trials_in_flight() as usize, trials_held);
            let counters = breaker.counters();
            prop_assert_eq!(
                counters.calls,
                counters.successes + counters.failures + counters.ignored + held.len() as u64
            );
        }
        drop(held);
        prop_assert_eq!(breaker.trials_in_flight(), 0);
        let counters = breaker.counters();
        prop_assert_eq!(
            counters.calls,
            counters.successes + counters.failures + counters.ignored
        );

        let changes = recorder.changes();
        let mut state = Closed;
        let mut last_at: Option<Instant> = None;
        for change in &changes {
            prop_assert_eq!(change.from, state);
            prop_assert!(
                allowed(change.from, change.to),
                "{:?} → {:?}",
                change.from,
                change.to
            );
            if let Some(last_at) = last_at
                && (change.from, change.to) != (HalfOpen, Open)
            {
                prop_assert!(change.at - last_at >= config.min_state_transition_interval);
            }
            state = change.to;
            last_at = Some(change.at);
        }
        prop_assert_eq!(breaker.state(), state);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_interleavings_keep_the_invariants(
        config in breaker_config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(config, ops)?;
    }
}
