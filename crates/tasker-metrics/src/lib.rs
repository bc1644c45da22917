//! Tasker's metrics: every OpenTelemetry instrument, created once from the installed meter
//! provider, with typed recording methods, and a Prometheus text exposition.
//!
//! Entry points:
//! - [`instruments::Metrics::install`] builds the meter provider from a
//!   [`config::MetricsConfig`] (mirroring `common.telemetry`) and creates every instrument;
//!   [`instruments::Metrics::disabled`] is the explicit no-op.
//! - The instruments, grouped by area as fields of [`instruments::Metrics`]:
//!   [`db::DbMetrics`], [`messaging::MessagingMetrics`],
//!   [`orchestration::OrchestrationMetrics`], [`cache::CacheMetrics`],
//!   [`resilience::ResilienceMetrics`], [`security::SecurityMetrics`]. Callers record through
//!   methods such as `metrics.orchestration.task_completed(namespace)` and never build
//!   attribute lists.
//! - [`instruments::Metrics::render_prometheus`]: the text a process serves on `GET /metrics`;
//!   with the `listener` feature, `listener::MetricsListener` serves it (axum, HTTP/1.1) and
//!   `listener::router` gives the route to a process that has an HTTP server already.
//!
//! Names and units follow the OpenTelemetry semantic conventions where they exist
//! (`db.client.operation.duration` in seconds, `messaging.client.sent.messages`, ...); the rest
//! are `tasker.*`. The exposition's naming rules are described in the `exposition` module.
//!
//! ```
//! use std::time::Duration;
//! use tasker_metrics::config::{MetricsConfig, MetricsExporter};
//! use tasker_metrics::instruments::Metrics;
//!
//! let config = MetricsConfig {
//!     exporter: MetricsExporter::Prometheus,
//!     service_name: "tasker".to_owned(),
//! };
//! let metrics = Metrics::install(&config).expect("a valid configuration");
//! metrics.orchestration.task_completed("payments");
//! metrics.db.operation("claim_steps", Duration::from_millis(3));
//! let text = metrics.render_prometheus();
//! assert!(text.contains(r#"tasker_tasks_completed_total{tasker_namespace="payments"} 1"#));
//! ```
//!
//! Items are reached through their modules; the crate root re-exports nothing.
//!
//! This crate depends on no workspace crate (the composition root maps configuration onto
//! [`config`]), and is the only library allowed to depend on `opentelemetry_sdk`: it owns the
//! meter and tracer providers, and only binaries call [`instruments::Metrics::install`] and
//! `subscriber::init`.
//!
//! Traces:
//! - [`trace`]: W3C trace context for one task across processes (the task's id is its trace
//!   id; a message's `traceparent` parents the span that handles it). The engines use it; it
//!   costs one atomic load when tracing is off.
//! - `subscriber` (feature `subscriber`, binaries only): the one tracing init (log format and
//!   filter, OTLP span export with a parent-based ratio sampler) and its flushing guard.
//! - `otlp` (feature `otlp`, implied by `subscriber`): the OTLP endpoint (credentials redacted)
//!   and the gRPC exporters, also behind `MetricsExporter::Otlp`.

mod attribute;
pub mod cache;
pub mod config;
pub mod db;
mod exposition;
pub mod instruments;
#[cfg(feature = "listener")]
pub mod listener;
pub mod messaging;
pub mod orchestration;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod resilience;
pub mod security;
#[cfg(feature = "subscriber")]
pub mod subscriber;
pub mod trace;
