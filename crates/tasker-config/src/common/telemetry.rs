//! `common.telemetry`: logs, traces, metrics and their export.

use crate::{
    schema::{NON_EMPTY, config_enum, frange, section},
    types::{BindAddress, HttpUrl},
};

config_enum! {
    /// Where a process's metrics go.
    pub enum MetricsExporter {
        /// Prometheus text exposition, served on `GET /metrics` at `metrics_listen`.
        Prometheus = "prometheus",
        /// Pushed over OTLP to `otlp_endpoint`.
        Otlp = "otlp",
        /// Nowhere: nothing is recorded and no listener is started.
        None = "none",
    }
}

config_enum! {
    /// Log output format.
    pub enum LogFormat {
        /// Multi-line, human-readable.
        Pretty = "pretty",
        /// One line per event, human-readable.
        Compact = "compact",
        /// One JSON object per line, for log collectors.
        Json = "json",
    }
}

section! {
    /// Logging and OpenTelemetry export. Binaries read this to set up their subscriber;
    /// libraries only emit `tracing` events.
    pub struct TelemetryConfig => RawTelemetryConfig {
        /// Whether traces are exported over OTLP.
        enabled: bool = false;
        /// `service.name` of exported telemetry.
        service_name: String = "tasker", NON_EMPTY;
        /// OTLP collector endpoint. Defaults through `${OTEL_EXPORTER_OTLP_ENDPOINT}`.
        otlp_endpoint: HttpUrl = "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4317}";
        /// Fraction of traces sampled, 0 to 1.
        sample_ratio: f64 = 1.0, frange(0.0, 1.0);
        /// `tracing` filter directive (`RUST_LOG` syntax), e.g. `info,sqlx=warn`.
        log_filter: String = "info", NON_EMPTY;
        /// Log output format.
        log_format: LogFormat = LogFormat::Pretty;
        /// Where metrics go: `prometheus` (each process serves `GET /metrics` at
        /// `metrics_listen`), `otlp` (pushed to `otlp_endpoint`) or `none`.
        metrics_exporter: MetricsExporter = MetricsExporter::Prometheus;
        /// Address of each process's metrics listener (`ip:port`) when `metrics_exporter` is
        /// `prometheus`. Port 0 picks a free port; the process prints the address it bound.
        /// Processes sharing a host need different ports.
        metrics_listen: BindAddress = "127.0.0.1:9464";
    }
}
