//! `CommonConfig` and its small sections: system, execution, task templates, channels.

use super::{
    BackoffConfig, CacheConfig, CircuitBreakersConfig, DatabaseConfig, PgmqDatabaseConfig,
    QueuesConfig, RawBackoffConfig, RawCacheConfig, RawCircuitBreakersConfig, RawDatabaseConfig,
    RawPgmqDatabaseConfig, RawQueuesConfig, RawTelemetryConfig, TelemetryConfig,
};
use crate::schema::{NON_EMPTY, frange, range, section};

section! {
    /// Settings shared by every Tasker process (orchestration and workers).
    pub struct CommonConfig => RawCommonConfig {
        /// System-wide identity defaults.
        system: SystemConfig = RawSystemConfig::default();
        /// The primary database.
        database: DatabaseConfig = RawDatabaseConfig::default();
        /// The optional separate PGMQ database.
        pgmq_database: PgmqDatabaseConfig = RawPgmqDatabaseConfig::default();
        /// Messaging backend and queues.
        queues: QueuesConfig = RawQueuesConfig::default();
        /// Circuit breakers.
        circuit_breakers: CircuitBreakersConfig = RawCircuitBreakersConfig::default();
        /// In-process channel buffers shared by all processes.
        mpsc_channels: CommonChannels = RawCommonChannels::default();
        /// Execution limits.
        execution: ExecutionConfig = RawExecutionConfig::default();
        /// Retry backoff.
        backoff: BackoffConfig = RawBackoffConfig::default();
        /// Cache backend and TTLs.
        cache: CacheConfig = RawCacheConfig::default();
        /// Where task templates are found.
        task_templates: TaskTemplatesConfig = RawTaskTemplatesConfig::default();
        /// Logging, tracing and metrics export.
        telemetry: TelemetryConfig = RawTelemetryConfig::default();
    }
}

section! {
    /// System-wide identity defaults.
    pub struct SystemConfig => RawSystemConfig {
        /// System name given to tasks that do not name a dependent system.
        default_dependent_system: String = "default", NON_EMPTY;
    }
}

section! {
    /// Execution limits.
    pub struct ExecutionConfig => RawExecutionConfig {
        /// Most steps enqueued for one task in one pass.
        step_enqueue_batch_size: u32 = 50, range(1, 1000);
        /// Deployment label (`development`, `test`, `production`, ...) attached to telemetry.
        environment: String = "development", NON_EMPTY;
    }
}

section! {
    /// Where task templates are loaded from.
    pub struct TaskTemplatesConfig => RawTaskTemplatesConfig {
        /// Glob patterns of task template files, relative to the working directory.
        search_paths: Vec<String> = ["config/tasks/**/*.{yml,yaml}"], NON_EMPTY;
    }
}

section! {
    /// Buffer sizes of in-process channels shared by all processes.
    pub struct CommonChannels => RawCommonChannels {
        /// Event publisher channel.
        event_publisher: EventPublisherChannels = RawEventPublisherChannels::default();
        /// Channels to FFI (language binding) workers.
        ffi: FfiChannels = RawFfiChannels::default();
        /// What happens when a channel fills up.
        overflow_policy: OverflowPolicy = RawOverflowPolicy::default();
    }
}

section! {
    /// Event publisher channel.
    pub struct EventPublisherChannels => RawEventPublisherChannels {
        /// Capacity of the event publisher queue.
        event_queue_buffer_size: u32 = 5000, range(100, 1_000_000);
    }
}

section! {
    /// Channels to FFI (language binding) workers.
    pub struct FfiChannels => RawFfiChannels {
        /// Capacity of the Ruby event channel.
        ruby_event_buffer_size: u32 = 1000, range(100, 100_000);
    }
}

section! {
    /// Channel overflow monitoring.
    pub struct OverflowPolicy => RawOverflowPolicy {
        /// Fill ratio (0 to 1) above which a channel logs a warning.
        log_warning_threshold: f64 = 0.8, frange(0.0, 1.0);
        /// Saturation metrics.
        metrics: OverflowMetrics = RawOverflowMetrics::default();
    }
}

section! {
    /// Channel saturation metrics.
    pub struct OverflowMetrics => RawOverflowMetrics {
        /// Interval of channel saturation checks, in seconds.
        saturation_check_interval_seconds: u32 = 30, range(1, 3600);
    }
}
