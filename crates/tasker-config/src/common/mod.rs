//! The `[common]` section: settings every Tasker process reads.

mod cache;
mod database;
mod queues;
mod resilience;
mod root;
mod telemetry;

pub use cache::{CacheBackend, CacheConfig, MemcachedConfig, MokaConfig, RedisConfig};
pub use database::{DatabaseConfig, PgmqDatabaseConfig, PoolConfig};
pub use queues::{
    MessagingBackend, OrchestrationQueues, PgmqConfig, QueueDepthThresholds, QueuesConfig,
    RabbitMqConfig,
};
pub use resilience::{
    BackoffConfig, CircuitBreakerComponents, CircuitBreakerGlobalSettings, CircuitBreakerSettings,
    CircuitBreakersConfig,
};
pub use root::{
    CommonChannels, CommonConfig, EventPublisherChannels, ExecutionConfig, FfiChannels,
    OverflowMetrics, OverflowPolicy, SystemConfig, TaskTemplatesConfig,
};
pub use telemetry::{LogFormat, MetricsExporter, TelemetryConfig};

pub(crate) use cache::RawCacheConfig;
pub(crate) use database::{RawDatabaseConfig, RawPgmqDatabaseConfig};
pub(crate) use queues::RawQueuesConfig;
pub(crate) use resilience::{RawBackoffConfig, RawCircuitBreakersConfig};
pub(crate) use root::RawCommonConfig;
pub(crate) use telemetry::RawTelemetryConfig;
