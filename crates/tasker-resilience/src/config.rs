//! The breakers' own configuration: [`BreakerConfig`] for one breaker and
//! [`CircuitBreakersConfig`] for the registry, with their validation.
//!
//! These types mirror `common.circuit_breakers` of Tasker's configuration without depending on
//! it: the composition root maps the validated configuration onto them. Two things differ from
//! the files: durations are [`Duration`]s, and the global
//! `min_state_transition_interval_seconds` is copied into every [`BreakerConfig`], so that one
//! breaker's configuration is complete on its own.

use std::collections::BTreeMap;
use std::time::Duration;

/// Consecutive failures that open a breaker, by default (`failure_threshold`).
pub const FAILURE_THRESHOLD_DEFAULT: u32 = 5;
/// How long an open breaker waits before a trial call, by default (`timeout_seconds`).
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Consecutive trial successes that close a half-open breaker, by default
/// (`success_threshold`).
pub const SUCCESS_THRESHOLD_DEFAULT: u32 = 2;
/// Trial calls a half-open breaker lets through at once, by default.
pub const HALF_OPEN_MAX_CALLS_DEFAULT: u32 = 1;
/// The shortest time between two state changes of one breaker, by default
/// (`min_state_transition_interval_seconds`).
pub const MIN_STATE_TRANSITION_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);

/// The thresholds and timing of one circuit breaker.
///
/// A closed breaker opens when `failure_threshold` calls in a row failed, or, with a
/// [`FailureRateRule`], when the failure rate over its window reaches the rule's threshold. An
/// open breaker rejects calls until `max(timeout, min_state_transition_interval)` has passed
/// since it opened, then goes half-open: it lets at most `half_open_max_calls` trial calls
/// through at once, closes after `success_threshold` trial successes in a row and opens again
/// on any trial failure.
///
/// `min_state_transition_interval` damps flapping: a breaker does not open, and does not close,
/// sooner than that after its previous state change. A trip that comes too early is deferred
/// (the breaker stays closed and opens on the first call or failure after the interval, unless
/// a success came in between), and a half-open breaker that has seen enough successes too early
/// keeps admitting trials and closes on the first call or success after the interval. The one
/// change it never delays is half-open → open: a failed trial reopens at once, because letting
/// more calls through to a dependency that just failed is what a breaker exists to prevent, and
/// the open state it enters lasts at least the interval anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker (at least 1).
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before it lets a trial through.
    pub timeout: Duration,
    /// Consecutive trial successes that close a half-open breaker (at least 1).
    pub success_threshold: u32,
    /// Trial calls a half-open breaker lets through at once (at least 1).
    pub half_open_max_calls: u32,
    /// Open on a failure rate as well as on consecutive failures; `None`: consecutive failures
    /// only (Tasker's configuration files have no rate rule).
    pub failure_rate: Option<FailureRateRule>,
    /// The shortest time between two state changes (see the type's docs for the one exception).
    pub min_state_transition_interval: Duration,
}

impl Default for BreakerConfig {
    /// The shipped `default_config`: 5 failures, 30 s, 2 successes, one trial at a time, no
    /// rate rule, 5 s between state changes.
    fn default() -> Self {
        Self {
            failure_threshold: FAILURE_THRESHOLD_DEFAULT,
            timeout: TIMEOUT_DEFAULT,
            success_threshold: SUCCESS_THRESHOLD_DEFAULT,
            half_open_max_calls: HALF_OPEN_MAX_CALLS_DEFAULT,
            failure_rate: None,
            min_state_transition_interval: MIN_STATE_TRANSITION_INTERVAL_DEFAULT,
        }
    }
}

/// Opens a closed breaker when, over the last `window`, at least `minimum_calls` calls reported
/// an outcome and the share of failures among them reached `threshold`.
///
/// Ignored calls (caller errors) count neither way. The window is kept in ten buckets of a tenth
/// of `window` each, so it slides in steps of `window / 10`; it is emptied when the breaker
/// closes, so failures from before an open period do not trip it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureRateRule {
    /// The share of failures that opens the breaker, in `(0.0, 1.0]`.
    pub threshold: f64,
    /// Calls in the window below which the rule does not apply (at least 1).
    pub minimum_calls: u32,
    /// How far back the rule looks (at least 10 ms).
    pub window: Duration,
}

/// Every circuit breaker of a process: mirrors `common.circuit_breakers`.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakersConfig {
    /// `false` makes every breaker a pass-through: permits are always granted and nothing is
    /// counted.
    pub enabled: bool,
    /// The configuration of a component without an entry in `component_configs`.
    pub default_config: BreakerConfig,
    /// Per-component configuration, by component name (`task_readiness`, `messaging`, `web`,
    /// `cache` in the shipped files).
    pub component_configs: BTreeMap<String, BreakerConfig>,
}

impl CircuitBreakersConfig {
    /// The configuration of `component`: its entry, or the default.
    pub fn for_component(&self, component: &str) -> &BreakerConfig {
        self.component_configs
            .get(component)
            .unwrap_or(&self.default_config)
    }

    /// Checks the default and every component's configuration; the first problem is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.default_config.validate("default_config")?;
        for (component, config) in &self.component_configs {
            config.validate(component)?;
        }
        Ok(())
    }
}

/// A breaker configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid circuit breaker configuration for `{component}`: {field} {rule}")]
pub struct ConfigError {
    /// The component (or `default_config`) whose configuration is wrong.
    pub component: String,
    /// The field that is wrong.
    pub field: &'static str,
    /// What the field must be.
    pub rule: &'static str,
}

/// The shortest failure-rate window: ten buckets of at least 1 ms each.
const MIN_RATE_WINDOW: Duration = Duration::from_millis(10);

impl BreakerConfig {
    /// Checks that the thresholds can be met and the rate rule is meaningful; `component`
    /// names the breaker in the error.
    pub fn validate(&self, component: &str) -> Result<(), ConfigError> {
        let error = |field, rule| ConfigError {
            component: component.to_owned(),
            field,
            rule,
        };
        if self.failure_threshold == 0 {
            return Err(error("failure_threshold", "must be at least 1"));
        }
        if self.success_threshold == 0 {
            return Err(error("success_threshold", "must be at least 1"));
        }
        if self.half_open_max_calls == 0 {
            return Err(error("half_open_max_calls", "must be at least 1"));
        }
        if let Some(rule) = &self.failure_rate {
            if !(rule.threshold > 0.0 && rule.threshold <= 1.0) {
                return Err(error("failure_rate.threshold", "must be in (0.0, 1.0]"));
            }
            if rule.minimum_calls == 0 {
                return Err(error("failure_rate.minimum_calls", "must be at least 1"));
            }
            if rule.window < MIN_RATE_WINDOW {
                return Err(error("failure_rate.window", "must be at least 10 ms"));
            }
        }
        Ok(())
    }

    /// How long after opening a breaker lets its first trial through:
    /// `max(timeout, min_state_transition_interval)`.
    pub fn open_duration(&self) -> Duration {
        self.timeout.max(self.min_state_transition_interval)
    }
}
