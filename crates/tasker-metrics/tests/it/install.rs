//! Installing: the disabled metrics and a rejected configuration.

use tasker_metrics::config::{MetricsConfig, MetricsError, MetricsExporter};
use tasker_metrics::instruments::Metrics;

use crate::support::record_everything;

#[test]
fn disabled_metrics_record_nothing_and_render_nothing() {
    let metrics = Metrics::disabled();
    assert!(!metrics.is_enabled());
    record_everything(&metrics);
    assert_eq!(metrics.render_prometheus(), "");
}

#[test]
fn exporter_none_is_disabled() {
    let metrics = Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::None,
        service_name: "tasker".to_owned(),
    })
    .expect("a valid configuration");
    assert!(!metrics.is_enabled());
}

#[test]
fn an_empty_service_name_is_rejected() {
    let error = Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Prometheus,
        service_name: " ".to_owned(),
    })
    .expect_err("empty service name");
    assert!(matches!(error, MetricsError::EmptyServiceName));
    assert_eq!(
        error.to_string(),
        "install metrics: `service_name` is empty"
    );
}

#[test]
fn installed_metrics_render_target_info_before_any_recording() {
    let metrics = crate::support::installed();
    assert!(metrics.is_enabled());
    let text = metrics.render_prometheus();
    assert!(
        text.contains("target_info{service_name=\"tasker-test\"} 1\n"),
        "{text}"
    );
}
