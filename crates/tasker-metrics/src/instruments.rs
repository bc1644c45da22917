//! [`Metrics`]: the meter provider and every instrument, created once at start-up.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Meter, MeterProvider as _, noop::NoopMeterProvider};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, MeterProviderBuilder, Pipeline, SdkMeterProvider,
        Temporality, data::ResourceMetrics, reader::MetricReader,
    },
};

use crate::{
    cache::CacheMetrics,
    config::{MetricsConfig, MetricsError, MetricsExporter},
    db::DbMetrics,
    exposition,
    messaging::MessagingMetrics,
    orchestration::OrchestrationMetrics,
    resilience::ResilienceMetrics,
    security::SecurityMetrics,
};

/// The instrumentation scope of every instrument.
const SCOPE: &str = "tasker";

/// Every Tasker instrument, grouped by area, created from the installed provider.
///
/// Cloning is cheap (the instruments and the provider are reference-counted); clones record
/// into the same instruments. Recording never fails and never blocks on IO.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Database operations and the connection pool.
    pub db: DbMetrics,
    /// Messages sent, received, acknowledged, dead-lettered; queue depth; receive latency.
    pub messaging: MessagingMetrics,
    /// Tasks created, completed and failed; step and task durations; claim batch sizes.
    pub orchestration: OrchestrationMetrics,
    /// Cache hits and misses.
    pub cache: CacheMetrics,
    /// Circuit breaker states and rejections.
    pub resilience: ResilienceMetrics,
    /// Authentication results and permission denials.
    pub security: SecurityMetrics,
    exporter: Exporter,
}

/// What the instruments record into.
#[derive(Debug, Clone)]
enum Exporter {
    /// Nothing: the instruments are the API's no-ops.
    Disabled,
    /// An SDK provider whose periodic reader pushes over OTLP.
    #[cfg(feature = "otlp")]
    Otlp {
        /// Kept so the provider (and its reader's task) lives as long as any clone.
        provider: SdkMeterProvider,
    },
    /// An SDK provider whose reader the Prometheus exposition collects on demand.
    Prometheus {
        /// Kept so the provider lives as long as any clone of [`Metrics`].
        _provider: SdkMeterProvider,
        reader: PrometheusReader,
    },
}

impl Metrics {
    /// Installs the meter provider `config` asks for and creates every instrument from it.
    ///
    /// With [`MetricsExporter::None`] this is [`Metrics::disabled`]. The provider is not made
    /// the process-wide global: Tasker's instruments come from here, so none of them is a no-op
    /// left over from before installation.
    pub fn install(config: &MetricsConfig) -> Result<Self, MetricsError> {
        if config.service_name.trim().is_empty() {
            return Err(MetricsError::EmptyServiceName);
        }
        match &config.exporter {
            MetricsExporter::None => Ok(Self::disabled()),
            #[cfg(feature = "otlp")]
            MetricsExporter::Otlp { endpoint, interval } => {
                use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
                // The async-runtime reader: see the `otlp` module for why.
                let exporter =
                    crate::otlp::metric_exporter(endpoint).map_err(MetricsError::Otlp)?;
                let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
                    .with_interval(*interval)
                    .build();
                let provider = MeterProviderBuilder::default()
                    .with_resource(
                        Resource::builder_empty()
                            .with_service_name(config.service_name.clone())
                            .build(),
                    )
                    .with_reader(reader)
                    .build();
                let meter = provider.meter(SCOPE);
                Ok(Self::from_meter(&meter, Exporter::Otlp { provider }))
            }
            MetricsExporter::Prometheus => {
                let reader = PrometheusReader::new();
                let provider = MeterProviderBuilder::default()
                    .with_resource(
                        Resource::builder_empty()
                            .with_service_name(config.service_name.clone())
                            .build(),
                    )
                    .with_reader(reader.clone())
                    .build();
                let meter = provider.meter(SCOPE);
                Ok(Self::from_meter(
                    &meter,
                    Exporter::Prometheus {
                        _provider: provider,
                        reader,
                    },
                ))
            }
        }
    }

    /// Metrics that record nothing, on purpose: for tests, and when metrics are off. Every
    /// instrument exists, so callers never check whether metrics are on.
    pub fn disabled() -> Self {
        let meter = NoopMeterProvider::new().meter(SCOPE);
        Self::from_meter(&meter, Exporter::Disabled)
    }

    /// Whether recordings go anywhere.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.exporter, Exporter::Disabled)
    }

    /// The Prometheus text exposition (format 0.0.4) of everything recorded so far: cumulative,
    /// families sorted by name, no timestamps. Empty when metrics are disabled or the
    /// collection failed (logged with `tracing`).
    pub fn render_prometheus(&self) -> String {
        let Exporter::Prometheus { reader, .. } = &self.exporter else {
            return String::new();
        };
        let mut resource_metrics = ResourceMetrics::default();
        if let Err(error) = reader.collect(&mut resource_metrics) {
            tracing::warn!(%error, "collecting metrics for the Prometheus exposition failed");
            return String::new();
        }
        exposition::render(&resource_metrics)
    }

    /// Pushes what is recorded now (OTLP; nothing to do otherwise). Call it from outside the
    /// runtime's async context, e.g. `spawn_blocking`, or before exiting: the last points are
    /// exported by a task of the runtime.
    pub fn flush(&self) -> Result<(), MetricsError> {
        match &self.exporter {
            #[cfg(feature = "otlp")]
            Exporter::Otlp { provider } => provider.force_flush().map_err(MetricsError::Flush),
            _ => Ok(()),
        }
    }

    /// Pushes what is recorded and stops the exporter (OTLP; nothing to do otherwise). Same
    /// calling rules as [`Metrics::flush`].
    pub fn shutdown(&self) -> Result<(), MetricsError> {
        match &self.exporter {
            #[cfg(feature = "otlp")]
            Exporter::Otlp { provider } => provider.shutdown().map_err(MetricsError::Flush),
            _ => Ok(()),
        }
    }

    fn from_meter(meter: &Meter, exporter: Exporter) -> Self {
        Self {
            db: DbMetrics::new(meter),
            messaging: MessagingMetrics::new(meter),
            orchestration: OrchestrationMetrics::new(meter),
            cache: CacheMetrics::new(meter),
            resilience: ResilienceMetrics::new(meter),
            security: SecurityMetrics::new(meter),
            exporter,
        }
    }
}

/// The SDK's [`ManualReader`], shared between the provider (which registers its pipeline on
/// it) and [`Metrics::render_prometheus`] (which collects through it). Cumulative temporality,
/// as Prometheus expects.
#[derive(Debug, Clone)]
struct PrometheusReader(Arc<ManualReader>);

impl PrometheusReader {
    fn new() -> Self {
        Self(Arc::new(
            ManualReader::builder()
                .with_temporality(Temporality::Cumulative)
                .build(),
        ))
    }
}

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: std::sync::Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
