//! Traces across processes: an OTLP gRPC receiver on 127.0.0.1 (a tonic server implementing
//! OpenTelemetry's trace service) collects the spans of a real orchestrator process and a
//! real worker process, exported with `common.telemetry.enabled`, and one task's spans share
//! one trace id, the task's, across the three hops: orchestrator `step.enqueue` → worker
//! `step.execute` → orchestrator `step.result`, each the parent of the next.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tasker_shared::database::task;
use tokio::sync::Notify;

use crate::RUN_LIMIT;
use crate::deployment::{Backend, Deployment};

/// How long the spans may take to arrive after the task finished.
const SPANS_WITHIN: Duration = Duration::from_secs(60);

/// A span as received: its service, name, ids and parent.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// Every span exported to it, and a signal on each export.
#[derive(Debug, Default)]
struct Collector {
    spans: Mutex<Vec<Received>>,
    exported: Notify,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(Received {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                    });
                }
            }
        }
        self.spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(received);
        self.exported.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The receiver: a tonic server on an ephemeral port of 127.0.0.1, stopped when dropped.
struct Receiver {
    collector: Arc<Collector>,
    endpoint: String,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the OTLP receiver")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let collector = Arc::new(Collector::default());
        let service = TraceServiceServer::from_arc(Arc::clone(&collector));
        let server = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
            if let Err(error) = served {
                eprintln!("the OTLP receiver stopped: {error}");
            }
        });
        Ok(Self {
            collector,
            endpoint,
            server,
        })
    }

    fn spans(&self) -> Vec<Received> {
        self.collector
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done` holds for the spans received, checking after each export, up to
    /// `limit`; returns the spans then.
    async fn wait_for(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let exported = self.collector.exported.notified();
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            if tokio::time::timeout_at(deadline, exported).await.is_err() {
                anyhow::bail!(
                    "the spans asked for did not arrive within {limit:?}; received: {:#?}",
                    self.spans()
                );
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The environment that turns span export on for a process named `service`.
fn telemetry(endpoint: &str, service: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TASKER__COMMON__TELEMETRY__ENABLED", "true".to_owned()),
        (
            "TASKER__COMMON__TELEMETRY__OTLP_ENDPOINT",
            endpoint.to_owned(),
        ),
        (
            "TASKER__COMMON__TELEMETRY__SERVICE_NAME",
            service.to_owned(),
        ),
        ("TASKER__COMMON__TELEMETRY__SAMPLE_RATIO", "1.0".to_owned()),
        // Batches leave every 200 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ]
}

/// The three hops of one step, in the task's trace: enqueue (orchestrator) → execute
/// (worker) → result (orchestrator), each the parent of the next.
fn hops<'a>(spans: &'a [Received], trace_id: &[u8]) -> Option<[&'a Received; 3]> {
    let in_trace = || spans.iter().filter(move |span| span.trace_id == trace_id);
    in_trace()
        .filter(|span| span.name == "step.enqueue" && span.service == "tasker-orchestrator")
        .find_map(|enqueue| {
            let execute = in_trace().find(|span| {
                span.name == "step.execute"
                    && span.service == "tasker-worker"
                    && span.parent_span_id == enqueue.span_id
            })?;
            let result = in_trace().find(|span| {
                span.name == "step.result"
                    && span.service == "tasker-orchestrator"
                    && span.parent_span_id == execute.span_id
            })?;
            Some([enqueue, execute, result])
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_task_has_one_trace_across_orchestrator_worker_and_orchestrator() -> anyhow::Result<()>
{
    let receiver = Receiver::start().await?;
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let mut orchestrator = deployment.spawn_with(
        "orchestrator",
        &["orchestrator", "--shards", "1"],
        uuid::Uuid::now_v7(),
        &telemetry(&receiver.endpoint, "tasker-orchestrator"),
    )?;
    orchestrator.wait_for_line("ready", RUN_LIMIT)?;
    let mut worker = deployment.spawn_with(
        "worker",
        &["worker", "--workers", "2"],
        uuid::Uuid::now_v7(),
        &telemetry(&receiver.endpoint, "tasker-worker"),
    )?;
    worker.wait_for_line("ready", RUN_LIMIT)?;
    let mut submit = deployment.spawn(
        "submit",
        &["submit", "--tasks", "1", "--wait", "--no-progress"],
    )?;
    let status = submit.wait(RUN_LIMIT)?;
    ensure!(
        status.success(),
        "the submitter failed: {:?}",
        submit.output
    );

    let tasks = task::TaskScope::new().all(&deployment.pool).await?;
    ensure!(tasks.len() == 1, "one task was run, found {}", tasks.len());
    let task_id = tasks[0].task_id;
    let trace_id = task_id.into_uuid().into_bytes().to_vec();
    let steps = tasker_shared::database::step::for_tasks(&deployment.pool, &[task_id])
        .await?
        .remove(&task_id)
        .unwrap_or_default();
    ensure!(!steps.is_empty(), "task {task_id} has no steps");

    // Every step's three hops arrive in the task's trace (the processes keep running: the
    // batches leave on their own).
    let spans = receiver
        .wait_for(SPANS_WITHIN, |spans| {
            let chains = spans
                .iter()
                .filter(|span| span.trace_id == trace_id && span.name == "step.result")
                .count();
            chains >= steps.len() && hops(spans, &trace_id).is_some()
        })
        .await?;
    let [enqueue, execute, result] = hops(&spans, &trace_id).context("the three hops")?;
    for span in [enqueue, execute, result] {
        ensure!(
            span.trace_id == trace_id,
            "{span:?} is outside the task's trace"
        );
    }
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .collect();
    for name in ["task.create", "step.enqueue", "step.execute", "step.result"] {
        ensure!(
            in_trace.iter().any(|span| span.name == name),
            "no {name} span in task {task_id}'s trace: {in_trace:#?}"
        );
    }
    // One trace per task: every per-step span of the run carries the task's trace id.
    for span in spans.iter().filter(|span| span.name.starts_with("step.")) {
        ensure!(
            span.trace_id == trace_id,
            "{span:?} is outside the task's trace"
        );
    }
    println!(
        "task {task_id}: {} spans in its trace from {:?}",
        in_trace.len(),
        in_trace
            .iter()
            .map(|span| span.service.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    );

    // A graceful stop exports what is still queued (the guard's shutdown) and exits 0.
    for process in [&mut worker, &mut orchestrator] {
        let status = process.terminate(Duration::from_secs(60))?;
        ensure!(status.success(), "{} exited with {status}", process.name);
    }
    drop(receiver);
    deployment.finish().await
}
