//! The metrics settings this crate takes, mirroring `common.telemetry`.

/// The `service.name` when the configuration gives none (`common.telemetry.service_name`'s
/// default).
pub const SERVICE_NAME_DEFAULT: &str = "tasker";

/// Where metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsExporter {
    /// Prometheus text exposition, rendered on demand by
    /// [`Metrics::render_prometheus`](crate::instruments::Metrics::render_prometheus) (served on
    /// `GET /metrics` by the process).
    Prometheus,
    /// Pushed over OTLP (gRPC) to a collector every `interval`, cumulative (feature `otlp`).
    /// Must be installed inside a tokio runtime: the reader exports from a task of it.
    #[cfg(feature = "otlp")]
    Otlp {
        /// The collector (credentials in the URL are redacted in `Debug`).
        endpoint: crate::otlp::OtlpEndpoint,
        /// How often the points are pushed.
        interval: std::time::Duration,
    },
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
    /// The OTLP exporter could not be built.
    #[cfg(feature = "otlp")]
    #[error("install metrics")]
    Otlp(#[source] crate::otlp::OtlpError),
    /// Pushing the last points (on [`Metrics::shutdown`](crate::instruments::Metrics::shutdown)) failed.
    #[error("flush the metrics exporter")]
    Flush(#[source] opentelemetry_sdk::error::OTelSdkError),
}
