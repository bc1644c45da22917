//! `cargo xtask otlp-sink`: an OTLP/gRPC receiver that counts what it is sent and drops it.
//!
//! For measuring what exporting costs the processes (the benchmark of metrics and tracing on
//! against off) without a collector's own cost on the same machine, and for looking at what a
//! process exports without installing one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// What was received so far.
#[derive(Debug, Default)]
struct Counts {
    span_exports: AtomicU64,
    spans: AtomicU64,
    metric_exports: AtomicU64,
    points: AtomicU64,
}

#[tonic::async_trait]
impl TraceService for Counts {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.span_exports.fetch_add(1, Ordering::Relaxed);
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Counts {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let metrics: usize = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .map(|scope| scope.metrics.len())
            .sum();
        self.metric_exports.fetch_add(1, Ordering::Relaxed);
        self.points.fetch_add(metrics as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "otlp-sink: {} spans in {} exports, {} metrics in {} exports",
            self.spans.load(Ordering::Relaxed),
            self.span_exports.load(Ordering::Relaxed),
            self.points.load(Ordering::Relaxed),
            self.metric_exports.load(Ordering::Relaxed),
        )
    }
}

/// Serves on `listen` until Ctrl-C, printing the counts every 5 s when they changed.
pub(crate) fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let counts = Arc::new(Counts::default());
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::from_arc(Arc::clone(&counts)))
            .add_service(MetricsServiceServer::from_arc(Arc::clone(&counts)))
            .serve_with_shutdown(listen, async {
                let _ = tokio::signal::ctrl_c().await;
            });
        println!("otlp-sink: listening on http://{listen} (Ctrl-C stops)");
        let reporter = {
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let mut last = String::new();
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let line = counts.line();
                    if line != last {
                        println!("{line}");
                        last = line;
                    }
                }
            })
        };
        let served = server
            .await
            .with_context(|| format!("serving OTLP on {listen}"));
        reporter.abort();
        println!("{}", counts.line());
        served
    })
}
