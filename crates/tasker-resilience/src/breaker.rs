//! [`CircuitBreaker`]: one breaker around one dependency.
//!
//! The state lives in atomics. A call through a closed breaker reads one state word and bumps
//! counters; it takes no lock and reads no clock (unless a failure-rate rule is configured or a
//! deferred trip is waiting). State changes take a mutex, which serialises them and the
//! state-change callbacks; the fast paths never wait for it.
//!
//! The state word holds the state in its two low bits and a count of state changes above them.
//! A permit remembers the word it was granted under, so an outcome reported after the breaker
//! moved on (a slow call from before it opened, a trial of an earlier half-open period) is
//! counted in the totals but changes no state.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BreakerConfig, ConfigError};
use crate::permit::{Outcome, Permit, PermitKind};
use crate::state::{BreakerState, STATE_MASK, StateChange, StateChangeCallback, TransitionReason};
use crate::window::FailureWindow;

/// A circuit breaker around one dependency (a component: `messaging`, `web`, ...).
///
/// Ask it for a [`Permit`] before each call ([`CircuitBreaker::permit`]) and report the call's
/// outcome on the permit, or let [`CircuitBreaker::call`] do both. Share it with an `Arc`; all
/// methods take `&self`.
pub struct CircuitBreaker {
    component: Arc<str>,
    config: BreakerConfig,
    enabled: bool,
    /// Time zero of the breaker's clock; instants are kept as nanoseconds since it.
    clock_start: Instant,
    /// The state (two low bits) and the number of state changes so far (the rest).
    word: AtomicU64,
    /// Closed: failures in a row since the last success.
    consecutive_failures: AtomicU32,
    /// Half-open: trial successes since it was entered.
    trial_successes: AtomicU32,
    /// Trial permits not yet finished, of any half-open period.
    trials_in_flight: AtomicU32,
    /// Closed: a trip came within the damping interval and waits for it to end.
    pending_open: AtomicBool,
    /// Open: when the first trial is due (clock nanoseconds).
    trial_due: AtomicU64,
    /// When the damping interval after the last state change ends (clock nanoseconds; 0 before
    /// the first change).
    settled_at: AtomicU64,
    window: Option<FailureWindow>,
    counters: Counters,
    /// Serialises state changes; holds the reason of a deferred trip.
    transitions: Mutex<Option<TransitionReason>>,
    on_state_change: Option<StateChangeCallback>,
}

/// A call rejected by the breaker without being tried.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError {
    /// The breaker is open: the dependency failed and is given time to recover.
    #[error(
        "circuit breaker `{component}` is open; the next trial call is due in {next_trial_in:?}"
    )]
    Open {
        /// The breaker's component.
        component: Arc<str>,
        /// How long until the breaker lets a trial call through.
        next_trial_in: Duration,
        /// When that is (tokio's clock).
        retry_at: Instant,
    },
    /// The breaker is half-open and as many trial calls as it allows are in flight.
    #[error(
        "circuit breaker `{component}` is half-open and its {max_trials} trial call(s) are in flight"
    )]
    HalfOpenBusy {
        /// The breaker's component.
        component: Arc<str>,
        /// Trial calls the breaker allows at once.
        max_trials: u32,
    },
}

impl BreakerError {
    /// The component of the breaker that rejected the call.
    pub fn component(&self) -> &str {
        match self {
            BreakerError::Open { component, .. } | BreakerError::HalfOpenBusy { component, .. } => {
                component
            }
        }
    }
}

/// Totals of one breaker since it was created, for metrics.
///
/// `calls` counts granted permits; each finished permit counts once in `successes`, `failures`
/// (dropped permits included) or `ignored`, so `calls` minus those three is the number of calls
/// in flight. `rejected` counts permits refused. A disabled breaker counts nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerCounters {
    /// Permits granted.
    pub calls: u64,
    /// Calls reported successful.
    pub successes: u64,
    /// Calls reported failed by the dependency, or dropped before reporting.
    pub failures: u64,
    /// Calls refused because the breaker was open or its trials were all in flight.
    pub rejected: u64,
    /// Calls that failed through the caller's fault (neither success nor failure).
    pub ignored: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    rejected: AtomicU64,
    ignored: AtomicU64,
}

/// Builds a [`CircuitBreaker`] with a state-change callback or disabled.
#[must_use]
pub struct CircuitBreakerBuilder {
    component: Arc<str>,
    config: BreakerConfig,
    enabled: bool,
    on_state_change: Option<StateChangeCallback>,
}

impl CircuitBreakerBuilder {
    /// Calls `callback` on every state change (see [`StateChangeCallback`]).
    pub fn on_state_change(mut self, callback: StateChangeCallback) -> Self {
        self.on_state_change = Some(callback);
        self
    }

    /// `false` makes the breaker a pass-through: every permit is granted and nothing is
    /// counted. Enabled by default.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The breaker, closed; fails if the configuration cannot work.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate(&self.component)?;
        Ok(CircuitBreaker {
            window: self.config.failure_rate.as_ref().map(FailureWindow::new),
            component: self.component,
            config: self.config,
            enabled: self.enabled,
            clock_start: Instant::now(),
            word: AtomicU64::new(BreakerState::Closed.bits()),
            consecutive_failures: AtomicU32::new(0),
            trial_successes: AtomicU32::new(0),
            trials_in_flight: AtomicU32::new(0),
            pending_open: AtomicBool::new(false),
            trial_due: AtomicU64::new(0),
            settled_at: AtomicU64::new(0),
            counters: Counters::default(),
            transitions: Mutex::new(None),
            on_state_change: self.on_state_change,
        })
    }
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("component", &self.component)
            .field("config", &self.config)
            .field("enabled", &self.enabled)
            .field("on_state_change", &self.on_state_change.is_some())
            .finish()
    }
}

impl CircuitBreaker {
    /// An enabled breaker for `component`, closed, without a state-change callback.
    pub fn new(component: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, ConfigError> {
        Self::builder(component, config).build()
    }

    /// A builder, for a callback or a disabled breaker.
    pub fn builder(component: impl Into<Arc<str>>, config: BreakerConfig) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            component: component.into(),
            config,
            enabled: true,
            on_state_change: None,
        }
    }

    /// A disabled breaker: every permit is granted and nothing is counted.
    pub fn pass_through(component: impl Into<Arc<str>>) -> Self {
        let builder = Self::builder(component, BreakerConfig::default()).enabled(false);
        match builder.build() {
            Ok(breaker) => breaker,
            Err(error) => unreachable!("the default configuration is valid: {error}"),
        }
    }

    /// The component this breaker guards.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Whether it is enabled (a disabled breaker is a pass-through).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current state. An open breaker whose timeout passed stays `Open` until the next
    /// call asks for a permit; a disabled breaker is always `Closed`.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_bits(self.word.load(Ordering::Acquire))
    }

    /// The totals so far.
    pub fn counters(&self) -> BreakerCounters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BreakerCounters {
            calls: load(&self.counters.calls),
            successes: load(&self.counters.successes),
            failures: load(&self.counters.failures),
            rejected: load(&self.counters.rejected),
            ignored: load(&self.counters.ignored),
        }
    }

    /// Trial permits granted and not yet finished (at most `half_open_max_calls`).
    pub fn trials_in_flight(&self) -> u32 {
        self.trials_in_flight.load(Ordering::Acquire)
    }

    /// A permit for one call, or the reason the call must not be tried.
    ///
    /// Closed: granted. Open: rejected with [`BreakerError::Open`] until the open period has
    /// passed; then the breaker goes half-open. Half-open: a trial permit while fewer than
    /// `half_open_max_calls` are in flight, [`BreakerError::HalfOpenBusy`] otherwise.
    ///
    /// Report the call's outcome on the permit. A permit dropped without an outcome (its
    /// future was cancelled) counts as a failure.
    pub fn permit(&self) -> Result<Permit<'_>, BreakerError> {
        if !self.enabled {
            return Ok(Permit::new(self, PermitKind::PassThrough, 0));
        }
        loop {
            let word = self.word.load(Ordering::Acquire);
            match BreakerState::from_bits(word) {
                BreakerState::Closed => {
                    if self.pending_open.load(Ordering::Relaxed) && self.open_deferred(word) {
                        continue;
                    }
                    self.counters.calls.fetch_add(1, Ordering::Relaxed);
                    return Ok(Permit::new(self, PermitKind::Normal, word));
                }
                BreakerState::Open => {
                    let now = self.now();
                    let due = self.trial_due.load(Ordering::Relaxed);
                    if now < due {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        return Err(BreakerError::Open {
                            component: Arc::clone(&self.component),
                            next_trial_in: Duration::from_nanos(due - now),
                            retry_at: self.clock_start + Duration::from_nanos(due),
                        });
                    }
                    self.transition_from(word, BreakerState::HalfOpen, |_| {
                        Some(TransitionReason::TimeoutElapsed)
                    });
                }
                BreakerState::HalfOpen => {
                    if self.trial_successes.load(Ordering::Relaxed) >= self.config.success_threshold
                        && self.close_if_settled(word)
                    {
                        continue;
                    }
                    let max = self.config.half_open_max_calls;
                    let admitted = self.trials_in_flight.fetch_update(
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        |in_flight| (in_flight < max).then_some(in_flight + 1),
                    );
                    if admitted.is_err() {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        return Err(BreakerError::HalfOpenBusy {
                            component: Arc::clone(&self.component),
                            max_trials: max,
                        });
                    }
                    if self.word.load(Ordering::Acquire) != word {
                        // The breaker moved on while the slot was taken: give it back, look again.
                        self.trials_in_flight.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    }
                    self.counters.calls.fetch_add(1, Ordering::Relaxed);
                    return Ok(Permit::new(self, PermitKind::Trial, word));
                }
            }
        }
    }

    /// Records the outcome of a permit granted under `word`; called exactly once per permit.
    pub(crate) fn finish(&self, kind: PermitKind, word: u64, outcome: Outcome) {
        let counter = match (kind, outcome) {
            (PermitKind::PassThrough, _) => return,
            (_, Outcome::Success) => &self.counters.successes,
            (_, Outcome::Failure | Outcome::Cancelled) => &self.counters.failures,
            (_, Outcome::Ignored) => &self.counters.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let current = self.word.load(Ordering::Acquire) == word;
        match kind {
            PermitKind::Normal if current => self.closed_outcome(word, outcome),
            PermitKind::Trial => {
                if current {
                    self.trial_outcome(word, outcome);
                }
                self.trials_in_flight.fetch_sub(1, Ordering::AcqRel);
            }
            PermitKind::Normal | PermitKind::PassThrough => {}
        }
    }

    fn closed_outcome(&self, word: u64, outcome: Outcome) {
        match outcome {
            Outcome::Success => {
                if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                }
                if self.pending_open.load(Ordering::Relaxed) {
                    self.pending_open.store(false, Ordering::Relaxed);
                }
                if let Some(window) = &self.window {
                    window.record(self.now(), false);
                }
            }
            Outcome::Failure | Outcome::Cancelled => {
                let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let mut reason = (failures >= self.config.failure_threshold)
                    .then_some(TransitionReason::ConsecutiveFailures(failures));
                if let Some(window) = &self.window {
                    let now = self.now();
                    window.record(now, true);
                    let totals = window.totals(now);
                    if reason.is_none() && window.trips(totals) {
                        reason = Some(TransitionReason::FailureRate {
                            failures: totals.failures,
                            calls: totals.calls,
                        });
                    }
                }
                if let Some(reason) = reason {
                    self.trip(word, reason);
                }
            }
            Outcome::Ignored => {}
        }
    }

    fn trial_outcome(&self, word: u64, outcome: Outcome) {
        match outcome {
            Outcome::Success => {
                let successes = self.trial_successes.fetch_add(1, Ordering::AcqRel) + 1;
                if successes >= self.config.success_threshold {
                    self.close_if_settled(word);
                }
            }
            Outcome::Failure => {
                self.transition_from(word, BreakerState::Open, |_| {
                    Some(TransitionReason::TrialFailed)
                });
            }
            Outcome::Cancelled => {
                self.transition_from(word, BreakerState::Open, |_| {
                    Some(TransitionReason::TrialCancelled)
                });
            }
            Outcome::Ignored => {}
        }
    }

    /// Closed → open for `reason`, or deferred until the damping interval ends.
    fn trip(&self, word: u64, reason: TransitionReason) {
        self.transition_from(word, BreakerState::Open, |pending| {
            if self.now() < self.settled_at.load(Ordering::Relaxed) {
                *pending = Some(reason);
                self.pending_open.store(true, Ordering::Relaxed);
                None
            } else {
                Some(reason)
            }
        });
    }

    /// Opens a closed breaker whose trip was deferred, if the damping interval has ended;
    /// `true` if the state word changed.
    fn open_deferred(&self, word: u64) -> bool {
        if self.now() < self.settled_at.load(Ordering::Relaxed) {
            return false;
        }
        self.transition_from(word, BreakerState::Open, |pending| {
            if !self.pending_open.load(Ordering::Relaxed) {
                return None;
            }
            let failures = self.consecutive_failures.load(Ordering::Relaxed);
            Some(pending.unwrap_or(TransitionReason::ConsecutiveFailures(failures)))
        });
        self.word.load(Ordering::Acquire) != word
    }

    /// Closes a half-open breaker that has its successes, if the damping interval has ended;
    /// `true` if the state word changed.
    fn close_if_settled(&self, word: u64) -> bool {
        if self.now() < self.settled_at.load(Ordering::Relaxed) {
            return false;
        }
        self.transition_from(word, BreakerState::Closed, |_| {
            let successes = self.trial_successes.load(Ordering::Acquire);
            (successes >= self.config.success_threshold)
                .then_some(TransitionReason::TrialsSucceeded(successes))
        });
        self.word.load(Ordering::Acquire) != word
    }

    /// Changes the state to `to` if the state word is still `word` and `decide`, called under
    /// the transition lock with the deferred-trip reason, gives a reason.
    fn transition_from(
        &self,
        word: u64,
        to: BreakerState,
        decide: impl FnOnce(&mut Option<TransitionReason>) -> Option<TransitionReason>,
    ) {
        let mut pending = self.lock();
        if self.word.load(Ordering::Acquire) != word {
            return;
        }
        let Some(reason) = decide(&mut pending) else {
            return;
        };
        let now = self.now();
        match to {
            BreakerState::Open => {
                let open_for = nanos(self.config.open_duration());
                self.trial_due
                    .store(now.saturating_add(open_for), Ordering::Relaxed);
                self.consecutive_failures.store(0, Ordering::Relaxed);
                self.pending_open.store(false, Ordering::Relaxed);
                *pending = None;
            }
            BreakerState::HalfOpen => self.trial_successes.store(0, Ordering::Relaxed),
            BreakerState::Closed => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                self.pending_open.store(false, Ordering::Relaxed);
                *pending = None;
                if let Some(window) = &self.window {
                    window.clear();
                }
            }
        }
        let damping = nanos(self.config.min_state_transition_interval);
        self.settled_at
            .store(now.saturating_add(damping), Ordering::Relaxed);
        let changes = (word >> STATE_MASK.count_ones()) + 1;
        let next = (changes << STATE_MASK.count_ones()) | to.bits();
        self.word.store(next, Ordering::Release);

        let change = StateChange {
            component: Arc::clone(&self.component),
            from: BreakerState::from_bits(word),
            to,
            reason,
            at: self.clock_start + Duration::from_nanos(now),
        };
        if to == BreakerState::Open {
            tracing::warn!(
                component = %change.component,
                from = change.from.as_str(),
                to = change.to.as_str(),
                reason = %change.reason,
                "circuit breaker state changed"
            );
        } else {
            tracing::info!(
                component = %change.component,
                from = change.from.as_str(),
                to = change.to.as_str(),
                reason = %change.reason,
                "circuit breaker state changed"
            );
        }
        if let Some(callback) = &self.on_state_change {
            callback(&change);
        }
        drop(pending);
    }

    fn lock(&self) -> MutexGuard<'_, Option<TransitionReason>> {
        // A panicking callback leaves nothing half-done: every store precedes the callback.
        self.transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Nanoseconds on the breaker's clock.
    fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.clock_start))
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("component", &self.component)
            .field("enabled", &self.enabled)
            .field("state", &self.state())
            .field("counters", &self.counters())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
