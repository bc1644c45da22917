//! Helpers shared by the tests: configurations and a recorder of state changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::config::BreakerConfig;
use tasker_resilience::state::{BreakerState, StateChange, StateChangeCallback};

/// A configuration without damping: `failure_threshold` failures open, `timeout_secs` until a
/// trial, `success_threshold` successes close, `max_trials` at once.
pub(crate) fn config(
    failure_threshold: u32,
    timeout_secs: u64,
    success_threshold: u32,
    max_trials: u32,
) -> BreakerConfig {
    BreakerConfig {
        failure_threshold,
        timeout: Duration::from_secs(timeout_secs),
        success_threshold,
        half_open_max_calls: max_trials,
        failure_rate: None,
        min_state_transition_interval: Duration::ZERO,
    }
}

/// Keeps every state change a breaker reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    changes: Arc<Mutex<Vec<StateChange>>>,
}

impl Recorder {
    pub(crate) fn callback(&self) -> StateChangeCallback {
        let changes = Arc::clone(&self.changes);
        Arc::new(move |change: &StateChange| {
            changes.lock().expect("not poisoned").push(change.clone());
        })
    }

    pub(crate) fn changes(&self) -> Vec<StateChange> {
        self.changes.lock().expect("not poisoned").clone()
    }

    pub(crate) fn edges(&self) -> Vec<(BreakerState, BreakerState)> {
        self.changes().iter().map(|c| (c.from, c.to)).collect()
    }
}

/// A breaker for `component` with `config`, recording its changes.
pub(crate) fn recorded(config: BreakerConfig) -> (CircuitBreaker, Recorder) {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder("messaging", config)
        .on_state_change(recorder.callback())
        .build()
        .expect("a valid configuration");
    (breaker, recorder)
}

/// Fails `n` calls in a row.
pub(crate) fn fail(breaker: &CircuitBreaker, n: u32) {
    for _ in 0..n {
        breaker.permit().expect("a permit").failure();
    }
}
