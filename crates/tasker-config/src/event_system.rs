//! Event systems: how a component learns about new work (notifications, polling or both)
//! and how it paces the processing.

use crate::schema::{NON_EMPTY, config_enum, frange, range, section};

config_enum! {
    /// How an event system discovers work.
    pub enum DeploymentMode {
        /// Poll the database at `fallback_polling_interval_seconds`.
        Polling = "polling" | "PollingOnly",
        /// React to PostgreSQL notifications only.
        EventDriven = "event_driven" | "EventDrivenOnly",
        /// React to notifications and poll as a safety net for missed ones.
        Hybrid = "hybrid" | "Hybrid",
    }
}

section! {
    /// One event system (orchestration or task readiness).
    pub struct EventSystemConfig => RawEventSystemConfig {
        /// Identifier of the event system in logs and metrics.
        system_id: String = "orchestration-event-system", NON_EMPTY;
        /// How work is discovered.
        deployment_mode: DeploymentMode = DeploymentMode::Hybrid;
        /// Intervals and timeouts.
        timing: EventTiming = RawEventTiming::default();
        /// Concurrency and batching.
        processing: EventProcessing = RawEventProcessing::default();
        /// Health monitoring.
        health: EventHealth = RawEventHealth::default();
    }
}

section! {
    /// Intervals and timeouts of an event system.
    pub struct EventTiming => RawEventTiming {
        /// Interval of health checks, in seconds.
        health_check_interval_seconds: u32 = 30, range(1, 3600);
        /// Polling interval in `polling` and `hybrid` modes, in seconds.
        fallback_polling_interval_seconds: u32 = 5, range(1, 300);
        /// Visibility timeout of claimed messages, in seconds.
        visibility_timeout_seconds: u32 = 30, range(1, 3600);
        /// Longest processing time of one event, in seconds.
        processing_timeout_seconds: u32 = 60, range(1, 3600);
        /// How long a claim on a task is held, in seconds.
        claim_timeout_seconds: u32 = 300, range(1, 3600);
    }
}

section! {
    /// Concurrency and batching of an event system.
    pub struct EventProcessing => RawEventProcessing {
        /// Events processed concurrently.
        max_concurrent_operations: u32 = 50, range(1, 10_000);
        /// Events fetched per poll.
        batch_size: u32 = 20, range(1, 1000);
        /// Retries of a failed event before it is given up.
        max_retries: u32 = 3, range(0, 100);
        /// Delay between retries of a failed event.
        backoff: EventBackoff = RawEventBackoff::default();
    }
}

section! {
    /// Retry delays of a failed event.
    pub struct EventBackoff => RawEventBackoff {
        /// First retry delay, in milliseconds.
        initial_delay_ms: u32 = 100, range(1, 60_000);
        /// Largest retry delay, in milliseconds.
        max_delay_ms: u32 = 10_000, range(1, 600_000);
        /// Growth factor between retries.
        multiplier: f64 = 2.0, frange(1.0, 10.0);
        /// Largest random deviation, as a fraction of the delay.
        jitter_percent: f64 = 0.1, frange(0.0, 1.0);
    }
    cross(raw, v) {
        v.le("initial_delay_ms", &raw.initial_delay_ms, "max_delay_ms", &raw.max_delay_ms);
    }
}

section! {
    /// Health monitoring of an event system.
    pub struct EventHealth => RawEventHealth {
        /// Whether health is monitored.
        enabled: bool = true;
        /// Whether processing latency is measured.
        performance_monitoring_enabled: bool = true;
        /// Consecutive errors that mark the system unhealthy.
        max_consecutive_errors: u32 = 10, range(1, 1000);
        /// Errors per minute that mark the system unhealthy.
        error_rate_threshold_per_minute: u32 = 20, range(1, 10_000);
    }
}
