//! A breaker's states, the changes between them and why they happened.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

/// The state of a circuit breaker.
///
/// The allowed changes are closed → open, open → half-open, half-open → closed and
/// half-open → open; nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through. Left for `Open` when `failure_threshold` calls in a row failed or the
    /// failure-rate rule tripped, no sooner than `min_state_transition_interval` after the
    /// previous change.
    Closed,
    /// At most `half_open_max_calls` trial calls go through at once, the others are rejected.
    /// Left for `Closed` after `success_threshold` trial successes in a row (no sooner than
    /// `min_state_transition_interval` after it was entered), and for `Open` on any trial
    /// failure, at once.
    HalfOpen,
    /// Calls are rejected without being tried. Left for `HalfOpen` by the first call after
    /// `max(timeout, min_state_transition_interval)`.
    Open,
}

impl BreakerState {
    /// The state as a gauge value: 0 closed, 1 half-open, 2 open (the higher, the less gets
    /// through).
    pub const fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }

    /// The state's name in logs and metrics labels: `closed`, `half_open`, `open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    pub(crate) const fn from_bits(bits: u64) -> Self {
        match bits & STATE_MASK {
            0 => BreakerState::Closed,
            1 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }

    pub(crate) const fn bits(self) -> u64 {
        // The gauge values are 0..=2, so they fit the two low bits of the state word.
        self.as_gauge() as u64
    }
}

/// The bits of the state word that hold the state; the rest count state changes.
pub(crate) const STATE_MASK: u64 = 0b11;

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a breaker changed its state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransitionReason {
    /// Closed → open: this many calls in a row failed.
    ConsecutiveFailures(u32),
    /// Closed → open: the failure-rate rule tripped.
    FailureRate {
        /// Failures in the window.
        failures: u32,
        /// Calls with an outcome in the window.
        calls: u32,
    },
    /// Open → half-open: the open period passed and a call asked for a permit.
    TimeoutElapsed,
    /// Half-open → closed: this many trial calls in a row succeeded.
    TrialsSucceeded(u32),
    /// Half-open → open: a trial call failed.
    TrialFailed,
    /// Half-open → open: a trial call was dropped (cancelled) before reporting its outcome.
    TrialCancelled,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            TransitionReason::FailureRate { failures, calls } => {
                write!(f, "failure rate {failures}/{calls} in the window")
            }
            TransitionReason::TimeoutElapsed => f.write_str("open timeout elapsed"),
            TransitionReason::TrialsSucceeded(n) => write!(f, "{n} consecutive trial successes"),
            TransitionReason::TrialFailed => f.write_str("a trial call failed"),
            TransitionReason::TrialCancelled => f.write_str("a trial call was cancelled"),
        }
    }
}

/// One state change of one breaker, as handed to the state-change callback.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// The breaker's component name.
    pub component: Arc<str>,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When (tokio's clock, so paused time in tests).
    pub at: Instant,
}

/// A callback told of every state change, for metrics.
///
/// It runs on the thread that caused the change, while the breaker holds its transition lock,
/// so that callbacks see the changes of one breaker in order. It must be quick and must not ask
/// the same breaker for a permit; reading [`crate::breaker::CircuitBreaker::state`] is fine.
pub type StateChangeCallback = Arc<dyn Fn(&StateChange) + Send + Sync>;
