//! Shared helpers: installed metrics and a fixed set of recordings.

use std::time::Duration;

use tasker_metrics::config::{MetricsConfig, MetricsExporter};
use tasker_metrics::instruments::Metrics;

/// Metrics with the Prometheus exporter, service `tasker-test`.
pub(crate) fn installed() -> Metrics {
    Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Prometheus,
        service_name: "tasker-test".to_owned(),
    })
    .expect("a valid configuration")
}

/// One recording on every instrument, with fixed values.
pub(crate) fn record_everything(metrics: &Metrics) {
    metrics
        .db
        .operation("claim_steps", Duration::from_millis(3));
    metrics.db.pool(4, 6);
    metrics.db.acquire_wait(Duration::from_micros(200));
    metrics
        .messaging
        .sent("pgmq", "orchestration_step_results", 2);
    metrics
        .messaging
        .received("pgmq", "orchestration_step_results", 2);
    metrics
        .messaging
        .acked("pgmq", "orchestration_step_results", 1);
    metrics
        .messaging
        .dead_lettered("pgmq", "worker_payments_queue");
    metrics
        .messaging
        .queue_depth("pgmq", "worker_payments_queue", 17);
    metrics.messaging.receive_latency(
        "pgmq",
        "orchestration_step_results",
        Duration::from_millis(20),
    );
    metrics.messaging.operation_latency(
        "pgmq",
        "worker_payments_queue",
        "send",
        Duration::from_millis(2),
    );
    metrics.orchestration.task_created("payments");
    metrics.orchestration.task_completed("payments");
    metrics.orchestration.task_failed("payments");
    metrics
        .orchestration
        .step_duration("charge_card", Duration::from_millis(250));
    metrics.orchestration.claim_batch(7);
    metrics
        .orchestration
        .task_duration("payments", Duration::from_secs(42));
    metrics.cache.hit("template");
    metrics.cache.miss("template");
    metrics.resilience.breaker_state("messaging", 2);
    metrics.resilience.rejection("messaging");
    metrics
        .security
        .authentication("jwt", "expired", Duration::from_micros(40));
    metrics.security.permission_denied("tasks:create");
}
