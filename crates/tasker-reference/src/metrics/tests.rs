//! `common.telemetry`'s metrics keys mapped onto tasker-metrics.

use tasker_shared::config::common::{MetricsExporter as Configured, TelemetryConfig};

use super::install;

/// The shipped `common.telemetry` (this environment's), with `exporter`.
fn telemetry(exporter: Configured) -> TelemetryConfig {
    let (config, _) = crate::setup::load_config().expect("the shipped configuration loads");
    TelemetryConfig {
        metrics_exporter: exporter,
        ..config.common.telemetry
    }
}

#[test]
fn prometheus_installs_metrics_with_a_listener_at_metrics_listen() {
    let telemetry = telemetry(Configured::Prometheus);
    let (metrics, listen) = install(&telemetry).expect("installs");
    assert!(metrics.is_enabled());
    assert_eq!(listen, Some(telemetry.metrics_listen.socket_addr()));
}

#[test]
fn none_records_nothing_and_listens_nowhere() {
    let (metrics, listen) = install(&telemetry(Configured::None)).expect("installs");
    assert!(!metrics.is_enabled());
    assert_eq!(listen, None);
}

// Multi-threaded, as the binary's runtime is: dropping the last handle shuts the exporter
// down, which waits for the reader's task to push the last points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_pushes_to_otlp_endpoint_and_listens_nowhere() {
    // The exporter connects lazily: installing needs a runtime, not a collector.
    let (metrics, listen) = install(&telemetry(Configured::Otlp)).expect("installs");
    assert!(metrics.is_enabled());
    assert_eq!(listen, None);
    tokio::task::spawn_blocking(move || drop(metrics))
        .await
        .expect("the exporter shuts down");
}
