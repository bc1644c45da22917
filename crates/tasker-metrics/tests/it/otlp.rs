//! OTLP metric export (feature `otlp`): an OTLP gRPC receiver on 127.0.0.1 (a tonic server
//! implementing OpenTelemetry's metrics service) receives what the periodic reader pushes, with
//! the resource's `service.name`, built and exported on the test's tokio runtime.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use tasker_metrics::config::{MetricsConfig, MetricsError, MetricsExporter};
use tasker_metrics::instruments::Metrics;
use tasker_metrics::otlp::OtlpEndpoint;
use tokio::sync::Notify;

/// Every export received, and a signal on each.
#[derive(Debug, Default)]
struct Collector {
    requests: Mutex<Vec<ExportMetricsServiceRequest>>,
    exported: Notify,
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request.into_inner());
        self.exported.notify_waiters();
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The value of the monotonic sum `name` with `service.name = service` in `requests`, if any.
fn counter(requests: &[ExportMetricsServiceRequest], service: &str, name: &str) -> Option<u64> {
    requests
        .iter()
        .flat_map(|request| &request.resource_metrics)
        .filter(|resource_metrics| {
            resource_metrics
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .any(|attribute| {
                    attribute.key == "service.name"
                        && matches!(
                            attribute.value.as_ref().and_then(|value| value.value.as_ref()),
                            Some(Value::StringValue(value)) if value == service
                        )
                })
        })
        .flat_map(|resource_metrics| &resource_metrics.scope_metrics)
        .flat_map(|scope_metrics| &scope_metrics.metrics)
        .filter(|metric| metric.name == name)
        .filter_map(|metric| match &metric.data {
            Some(Data::Sum(sum)) => sum.data_points.first()?.value,
            _ => None,
        })
        .map(|value| match value {
            number_data_point::Value::AsInt(value) => u64::try_from(value).unwrap_or(0),
            number_data_point::Value::AsDouble(value) => value as u64,
        })
        .next_back()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_pushed_to_an_otlp_receiver() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let collector = Arc::new(Collector::default());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::from_arc(Arc::clone(&collector)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let metrics = Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Otlp {
            endpoint: OtlpEndpoint::new(endpoint),
            // Longer than the test: the points arrive through the explicit flush.
            interval: Duration::from_secs(600),
        },
        service_name: "tasker-otlp-test".to_owned(),
    })?;
    assert!(metrics.is_enabled());
    for _ in 0..3 {
        metrics.orchestration.task_completed("payments");
    }
    // The reader exports from a task of this runtime; flushing blocks until it is done, so
    // it runs outside the runtime's async context.
    let exported = collector.exported.notified();
    let flushing = metrics.clone();
    tokio::task::spawn_blocking(move || flushing.flush()).await??;
    tokio::time::timeout(Duration::from_secs(30), exported)
        .await
        .map_err(|_| anyhow::anyhow!("no export arrived within 30 s"))?;
    let requests = collector
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(
        counter(&requests, "tasker-otlp-test", "tasker.tasks.completed"),
        Some(3),
        "{requests:#?}"
    );
    tokio::task::spawn_blocking(move || metrics.shutdown()).await??;
    server.abort();
    Ok(())
}

#[test]
fn otlp_needs_a_runtime_and_says_so_without_the_credentials() {
    let error = Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Otlp {
            endpoint: OtlpEndpoint::new("http://user:s3cret@127.0.0.1:4317"),
            interval: Duration::from_secs(60),
        },
        service_name: "tasker".to_owned(),
    })
    .expect_err("no runtime here");
    assert!(matches!(error, MetricsError::Otlp(_)));
    let source = std::error::Error::source(&error).map(ToString::to_string);
    let chain = format!("{error}: {}", source.unwrap_or_default());
    assert!(chain.contains("no tokio runtime"), "{chain}");
    assert!(!chain.contains("s3cret"), "{chain}");
}
