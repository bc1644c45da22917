//! The metrics settings this crate takes, mirroring `common.telemetry`.

/// The `service.name` when the configuration gives none (`common.telemetry.service_name`'s
/// default).
pub const SERVICE_NAME_DEFAULT: &str = "tasker";

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExporter {
    /// Prometheus text exposition, rendered on demand by
    /// [`Metrics::render_prometheus`](crate::instruments::Metrics::render_prometheus) (served on
    /// `GET /metrics` by the process).
    Prometheus,
    /// Nowhere: every instrument is a no-op ([`Metrics::disabled`](crate::instruments::Metrics::disabled)).
    None,
}

/// The metrics settings. The composition root maps `common.telemetry` onto it; this crate does
/// not know `tasker-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where metrics go.
    pub exporter: MetricsExporter,
    /// `service.name` of the exported metrics (Prometheus: the `target_info` label
    /// `service_name`).
    pub service_name: String,
}

/// Why metrics could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The service name is empty.
    #[error("install metrics: `service_name` is empty")]
    EmptyServiceName,
}
