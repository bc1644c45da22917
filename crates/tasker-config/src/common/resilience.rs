//! `common.circuit_breakers` and `common.backoff`: failure isolation and retry timing.

use crate::schema::{frange, len, range, section};

section! {
    /// Circuit breakers around the database, messaging, web and cache.
    pub struct CircuitBreakersConfig => RawCircuitBreakersConfig {
        /// Whether circuit breakers are active; when off, calls are never short-circuited.
        enabled: bool = true;
        /// Settings shared by all breakers.
        global_settings: CircuitBreakerGlobalSettings = RawCircuitBreakerGlobalSettings::default();
        /// Thresholds of a breaker without a component entry.
        default_config: CircuitBreakerSettings = RawCircuitBreakerSettings::default();
        /// Per-component thresholds.
        component_configs: CircuitBreakerComponents = RawCircuitBreakerComponents::default();
    }
}

section! {
    /// Settings shared by all circuit breakers.
    pub struct CircuitBreakerGlobalSettings => RawCircuitBreakerGlobalSettings {
        /// Interval of breaker metrics collection, in seconds.
        metrics_collection_interval_seconds: u32 = 30, range(1, 3600);
        /// Minimum time between two state changes of one breaker, in seconds (damps flapping).
        min_state_transition_interval_seconds: f64 = 5.0, frange(0.1, 60.0);
    }
}

section! {
    /// Thresholds of one circuit breaker.
    pub struct CircuitBreakerSettings => RawCircuitBreakerSettings {
        /// Consecutive failures that open the breaker.
        failure_threshold: u32 = 5, range(1, 100);
        /// Time an open breaker waits before letting a trial call through, in seconds.
        timeout_seconds: u32 = 30, range(1, 300);
        /// Consecutive successes in half-open state that close the breaker.
        success_threshold: u32 = 2, range(1, 100);
    }
}

section! {
    /// Per-component circuit breaker thresholds.
    pub struct CircuitBreakerComponents => RawCircuitBreakerComponents {
        /// The task readiness (step discovery) queries.
        task_readiness: CircuitBreakerSettings = RawCircuitBreakerSettings {
            failure_threshold: 10,
            success_threshold: 3,
            ..RawCircuitBreakerSettings::default()
        };
        /// The messaging backend.
        messaging: CircuitBreakerSettings = RawCircuitBreakerSettings::default();
        /// Outgoing web calls.
        web: CircuitBreakerSettings = RawCircuitBreakerSettings::default();
        /// The cache backend.
        cache: CircuitBreakerSettings = RawCircuitBreakerSettings::default();
    }
}

section! {
    /// Retry backoff of failed steps.
    pub struct BackoffConfig => RawBackoffConfig {
        /// Delays of the first retries in seconds, in order; later retries grow from the last
        /// entry by `backoff_multiplier`. The first entry is the base delay.
        default_backoff_seconds: Vec<u32> = [1, 5, 15, 30, 60], len(1, 20), range(1, 3600);
        /// Upper bound of any retry delay, in seconds.
        max_backoff_seconds: u32 = 3600, range(1, 3600);
        /// Growth factor applied after the explicit delays are used up.
        backoff_multiplier: f64 = 2.0, frange(1.0, 10.0);
        /// Whether delays are randomized to avoid thundering herds.
        jitter_enabled: bool = true;
        /// Largest random deviation, as a fraction of the delay.
        jitter_max_percentage: f64 = 0.15, frange(0.0, 1.0);
    }
    cross(raw, v) {
        for (index, delay) in raw.default_backoff_seconds.iter().enumerate() {
            if *delay > raw.max_backoff_seconds {
                let key = format!("default_backoff_seconds[{index}]");
                v.le(&key, delay, "max_backoff_seconds", &raw.max_backoff_seconds);
            }
        }
    }
}
