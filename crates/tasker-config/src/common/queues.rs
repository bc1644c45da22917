//! `common.queues`: the messaging backend, queue naming and each backend's settings.

use crate::{
    schema::{NON_EMPTY, config_enum, identifier, range, section},
    types::AmqpUrl,
};

/// Longest pgmq queue name: pgmq prefixes tables with `q_`/`a_` and PostgreSQL identifiers
/// are at most 63 bytes, and pgmq itself caps names at 47.
const QUEUE_NAME_MAX: usize = 47;

/// Longest namespace, so that `{namespace}_{name}_queue` still fits a queue name.
const NAMESPACE_MAX: usize = 29;

config_enum! {
    /// The message queue backend.
    pub enum MessagingBackend {
        /// PGMQ, the PostgreSQL message queue extension (no extra service).
        Pgmq = "pgmq",
        /// RabbitMQ over AMQP 0.9.1.
        RabbitMq = "rabbitmq",
    }
}

section! {
    /// Message queues: which backend carries messages and how queues are named.
    pub struct QueuesConfig => RawQueuesConfig {
        /// The messaging backend. Defaults through `${TASKER_MESSAGING_BACKEND}`.
        backend: MessagingBackend = "${TASKER_MESSAGING_BACKEND:-pgmq}";
        /// Namespace of the orchestration queues.
        orchestration_namespace: String = "orchestration", identifier(NAMESPACE_MAX);
        /// Namespace prefix of the worker queues.
        worker_namespace: String = "worker", identifier(NAMESPACE_MAX);
        /// Default visibility timeout of a read message, in seconds: an unacknowledged message
        /// becomes visible again after this long.
        default_visibility_timeout_seconds: u32 = 30, range(1, 3600);
        /// Pattern of namespace queue names; must contain `{name}` (and may contain
        /// `{namespace}`).
        naming_pattern: String = "{namespace}_{name}_queue", NON_EMPTY;
        /// Names of the queues the orchestrator consumes.
        orchestration_queues: OrchestrationQueues = RawOrchestrationQueues::default();
        /// Settings used when `backend = "pgmq"`.
        pgmq: PgmqConfig = RawPgmqConfig::default();
        /// Settings used when `backend = "rabbitmq"`.
        rabbitmq: RabbitMqConfig = RawRabbitMqConfig::default();
    }
    cross(raw, v) {
        if !raw.naming_pattern.contains("{name}") {
            v.require("naming_pattern", &raw.naming_pattern, "queues are named (the `{name}` placeholder is missing)");
        }
    }
}

section! {
    /// Names of the orchestration queues.
    pub struct OrchestrationQueues => RawOrchestrationQueues {
        /// Queue of new task requests.
        task_requests: String = "orchestration_task_requests", identifier(QUEUE_NAME_MAX);
        /// Queue of tasks ready to be finalized.
        task_finalizations: String = "orchestration_task_finalizations", identifier(QUEUE_NAME_MAX);
        /// Queue of step results reported by workers.
        step_results: String = "orchestration_step_results", identifier(QUEUE_NAME_MAX);
    }
}

section! {
    /// PGMQ backend settings.
    pub struct PgmqConfig => RawPgmqConfig {
        /// Polling interval when no notification arrives, in milliseconds.
        poll_interval_ms: u32 = 500, range(10, 10_000);
        /// Queue depth levels that trigger warnings and back-pressure.
        queue_depth_thresholds: QueueDepthThresholds = RawQueueDepthThresholds::default();
    }
}

section! {
    /// Queue depth levels.
    pub struct QueueDepthThresholds => RawQueueDepthThresholds {
        /// Depth at which a queue is reported as critical.
        critical_threshold: u64 = 5000, range(1, 100_000_000);
        /// Depth at which new work is refused (overflow).
        overflow_threshold: u64 = 10_000, range(1, 100_000_000);
    }
    cross(raw, v) {
        v.le("critical_threshold", &raw.critical_threshold, "overflow_threshold", &raw.overflow_threshold);
    }
}

section! {
    /// RabbitMQ backend settings.
    pub struct RabbitMqConfig => RawRabbitMqConfig {
        /// AMQP URL (`amqp://` or `amqps://`); the password is redacted when displayed.
        url: AmqpUrl = "${RABBITMQ_URL:-amqp://guest:guest@localhost:5672/%2F}";
        /// Unacknowledged messages a consumer may hold (basic.qos prefetch).
        prefetch_count: u16 = 100, range(1, 65_535);
        /// AMQP heartbeat interval in seconds; 0 disables heartbeats.
        heartbeat_seconds: u32 = 30, range(0, 3600);
        /// Put before every queue and exchange name on the broker, so that deployments sharing
        /// one broker never share queues (letters, digits, `_`, `.`, `-`; at most 128). Empty:
        /// the database's name and a dot (`tasker_production.`), so each database is its own
        /// deployment.
        queue_prefix: String = "";
    }
}
