//! The binaries' one tracing init: log output to stderr (pretty, compact or JSON) filtered by
//! the configured directives, and, when export is on, every span exported over OTLP with a
//! parent-based ratio sampler.
//!
//! [`init`] returns a [`TracingGuard`]; the binary calls [`TracingGuard::shutdown`] before it
//! exits (outside the runtime's async context, with the runtime still alive), which exports the
//! spans still queued. Dropping the guard does the same.
//!
//! Filtering: the log output follows `RUST_LOG` when it is set and not empty, else the
//! configured directives ([`TracingConfig::log_filter`]). The exported traces do not follow it:
//! they hold every span at `info` and above, and warnings and errors as span events, whatever
//! the log shows, so a quiet log never empties the traces.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{ParseError, filter_fn},
    fmt::{format::Writer, time::FormatTime},
    layer::SubscriberExt as _,
    util::{SubscriberInitExt as _, TryInitError},
};

use crate::otlp::{OtlpEndpoint, OtlpError, span_exporter};

/// The environment variable whose directives, when set, replace the configured filter.
pub const FILTER_ENV: &str = "RUST_LOG";

/// The instrumentation scope of Tasker's spans.
const SCOPE: &str = "tasker";

/// How long [`TracingGuard::shutdown`] waits for the last spans to be exported.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(5);

/// The log line format (`common.telemetry.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Multi-line, human-readable.
    Pretty,
    /// One line per event, human-readable (with the span context of each line).
    Compact,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What the tracing init takes; the composition root maps `common.telemetry` onto it.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Filter directives of the log output (`RUST_LOG` syntax), unless [`FILTER_ENV`] is set.
    pub log_filter: String,
    /// The log line format.
    pub log_format: LogFormat,
    /// Written after the time on every log line (e.g. `process=<id>`), if any.
    pub line_label: Option<String>,
    /// OTLP span export, when `common.telemetry.enabled`.
    pub export: Option<TraceExport>,
}

/// Where spans are exported and how many.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The collector (redacted in `Debug`).
    pub endpoint: OtlpEndpoint,
    /// Fraction of tasks (and of other root spans) whose traces are sampled, 0 to 1.
    pub sample_ratio: f64,
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    /// The filter directives do not parse.
    #[error("parse the log filter directives from {origin}")]
    Filter {
        /// Where they came from: `RUST_LOG` or the configuration.
        origin: &'static str,
        /// What the parser reported.
        #[source]
        source: ParseError,
    },
    /// The OTLP exporter could not be built.
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    /// A global subscriber is installed already.
    #[error("install the tracing subscriber")]
    Install(#[source] TryInitError),
    /// The tracer provider did not shut down cleanly: spans may have been lost.
    #[error("shut down the span exporter (spans still queued may be lost)")]
    Shutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// A layer the binary adds to the subscriber (e.g. tokio-console's), unfiltered.
pub type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber described by `config`; see the module docs.
///
/// With export on, this must run inside a tokio runtime (the exporter's batches are exported
/// from a task of it; [`OtlpError::NoRuntime`] otherwise), and it turns trace propagation on
/// ([`crate::trace::enable`]).
pub fn init(config: &TracingConfig) -> Result<TracingGuard, TracingError> {
    init_with(config, None)
}

/// [`init`], with one more layer (unfiltered: it filters for itself).
pub fn init_with(
    config: &TracingConfig,
    extra: Option<ExtraLayer>,
) -> Result<TracingGuard, TracingError> {
    let filter = log_filter(config)?;
    let timer = Stamp(config.line_label.clone());
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_timer(timer);
    let output = match config.log_format {
        LogFormat::Pretty => output.pretty().with_filter(filter).boxed(),
        LogFormat::Compact => output.compact().with_filter(filter).boxed(),
        LogFormat::Json => output.json().with_filter(filter).boxed(),
    };
    let mut layers: Vec<ExtraLayer> = vec![output];
    let provider = match &config.export {
        Some(export) => {
            let provider = tracer_provider(&config.service_name, export)?;
            let spans = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(SCOPE))
                .with_filter(filter_fn(|metadata| {
                    if metadata.is_span() {
                        *metadata.level() <= Level::INFO
                    } else {
                        *metadata.level() <= Level::WARN
                    }
                }));
            layers.push(spans.boxed());
            Some(provider)
        }
        None => None,
    };
    layers.extend(extra);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(TracingError::Install)?;
    if let Some(export) = &config.export {
        crate::trace::enable(export.sample_ratio);
        tracing::info!(
            endpoint = %export.endpoint,
            sample_ratio = export.sample_ratio,
            service_name = %config.service_name,
            "exporting spans over OTLP"
        );
    }
    Ok(TracingGuard { provider })
}

/// Keeps the span exporter; [`TracingGuard::shutdown`] (or dropping it) exports what is
/// queued and stops it.
#[derive(Debug)]
#[must_use = "dropping the guard stops the span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Exports the spans still queued and stops the exporter. Call it outside the runtime's
    /// async context (after `block_on` returned), while the runtime is still alive: the last
    /// batch is exported by a task of that runtime.
    pub fn shutdown(mut self) -> Result<(), TracingError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), TracingError> {
        match self.provider.take() {
            Some(provider) => provider
                .shutdown_with_timeout(SHUTDOWN_WITHIN)
                .map_err(TracingError::Shutdown),
            None => Ok(()),
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "spans may have been lost"
            );
        }
    }
}

/// The log filter: `RUST_LOG` when set and not empty, else the configured directives.
fn log_filter(config: &TracingConfig) -> Result<EnvFilter, TracingError> {
    let (origin, directives) = match std::env::var(FILTER_ENV) {
        Ok(directives) if !directives.trim().is_empty() => (FILTER_ENV, directives),
        _ => ("common.telemetry.log_filter", config.log_filter.clone()),
    };
    EnvFilter::builder()
        .parse(directives)
        .map_err(|source| TracingError::Filter { origin, source })
}

/// The tracer provider: OTLP over gRPC, batched on the tokio runtime (see the `otlp` module
/// for why), parent-based ratio sampling, `service.name`.
fn tracer_provider(
    service_name: &str,
    export: &TraceExport,
) -> Result<SdkTracerProvider, TracingError> {
    let exporter = span_exporter(&export.endpoint)?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            export.sample_ratio.clamp(0.0, 1.0),
        ))))
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// The time (RFC 3339, UTC, microseconds), then the line label if any.
struct Stamp(Option<String>);

impl FormatTime for Stamp {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        tracing_subscriber::fmt::time::SystemTime.format_time(w)?;
        if let Some(label) = &self.0 {
            write!(w, " {label}")?;
        }
        Ok(())
    }
}
