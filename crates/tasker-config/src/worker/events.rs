//! `worker.event_systems`: how a worker learns about new steps.

use crate::{
    event_system::{
        DeploymentMode, EventHealth, EventProcessing, EventTiming, RawEventHealth,
        RawEventProcessing, RawEventTiming,
    },
    schema::{NON_EMPTY, range, section},
};

section! {
    /// The worker's event systems.
    pub struct WorkerEventSystems => RawWorkerEventSystems {
        /// The step dispatch event system.
        worker: WorkerEventSystemConfig = RawWorkerEventSystemConfig::default();
    }
}

section! {
    /// The worker's step dispatch event system.
    pub struct WorkerEventSystemConfig => RawWorkerEventSystemConfig {
        /// Identifier of the event system in logs and metrics.
        system_id: String = "worker-event-system", NON_EMPTY;
        /// How work is discovered.
        deployment_mode: DeploymentMode = DeploymentMode::Hybrid;
        /// Intervals and timeouts.
        timing: EventTiming = RawEventTiming {
            fallback_polling_interval_seconds: 2,
            ..RawEventTiming::default()
        };
        /// Concurrency and batching.
        processing: EventProcessing = RawEventProcessing {
            max_concurrent_operations: 100,
            ..RawEventProcessing::default()
        };
        /// Health monitoring.
        health: EventHealth = RawEventHealth::default();
        /// Worker-specific settings of the event system.
        metadata: WorkerEventMetadata = RawWorkerEventMetadata::default();
    }
}

section! {
    /// Worker-specific settings of the event system.
    pub struct WorkerEventMetadata => RawWorkerEventMetadata {
        /// The in-process event bus.
        in_process_events: InProcessEventsConfig = RawInProcessEventsConfig::default();
        /// The notification listener.
        listener: ListenerConfig = RawListenerConfig::default();
        /// The fallback poller that catches missed notifications.
        fallback_poller: FallbackPollerConfig = RawFallbackPollerConfig::default();
    }
}

section! {
    /// The in-process event bus.
    pub struct InProcessEventsConfig => RawInProcessEventsConfig {
        /// Whether events are forwarded to FFI (language binding) handlers.
        ffi_integration_enabled: bool = true;
        /// Recently seen event ids kept to drop duplicates.
        deduplication_cache_size: u32 = 10_000, range(100, 100_000);
    }
}

section! {
    /// The PostgreSQL notification listener.
    pub struct ListenerConfig => RawListenerConfig {
        /// Delay between reconnection attempts, in seconds.
        retry_interval_seconds: u32 = 5, range(1, 300);
        /// Reconnection attempts before the listener gives up (the poller keeps working).
        max_retry_attempts: u32 = 5, range(0, 100);
        /// Longest handling time of one notification, in seconds.
        event_timeout_seconds: u32 = 60, range(1, 3600);
        /// Whether notifications are handled in batches.
        batch_processing: bool = true;
        /// Connection timeout of the listener, in seconds.
        connection_timeout_seconds: u32 = 30, range(1, 300);
    }
}

section! {
    /// The fallback poller that catches steps whose notification was missed.
    pub struct FallbackPollerConfig => RawFallbackPollerConfig {
        /// Whether the poller runs.
        enabled: bool = true;
        /// Polling interval, in milliseconds.
        polling_interval_ms: u32 = 1000, range(10, 60_000);
        /// Messages fetched per poll.
        batch_size: u32 = 20, range(1, 1000);
        /// Only messages older than this are polled (younger ones are still expected by
        /// notification), in seconds.
        age_threshold_seconds: u32 = 5, range(1, 3600);
        /// Messages older than this are left to the staleness detector, in hours.
        max_age_hours: u32 = 24, range(1, 168);
        /// Visibility timeout of polled messages, in seconds.
        visibility_timeout_seconds: u32 = 30, range(1, 3600);
        /// Namespaces polled; empty polls every namespace the worker serves.
        supported_namespaces: Vec<String> = Vec::new();
    }
}
