//! Tests of trace propagation: spans exported to memory, parents and links checked.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

const TASK: [u8; 16] = [
    0x01, 0x93, 0x5a, 0x7e, 0x11, 0x22, 0x73, 0x44, 0x85, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
];

/// Runs `body` with a subscriber that exports every span into memory, and returns the spans.
fn with_exporter(body: impl FnOnce()) -> Vec<SpanData> {
    enable(1.0);
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, body);
    provider.force_flush().expect("flushes");
    exporter.get_finished_spans().expect("finished spans")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

#[test]
fn a_traceparent_injected_on_one_side_parents_the_span_on_the_other() {
    let mut sent = None;
    let spans = with_exporter(|| {
        let enqueue = tracing::info_span!("step.enqueue");
        follow_task(&enqueue, TASK);
        sent = traceparent(&enqueue);
        drop(enqueue);
        let execute = tracing::info_span!("step.execute");
        follow(&execute, TASK, sent.as_deref());
        let result = traceparent(&execute);
        drop(execute);
        let handled = tracing::info_span!("step.result");
        follow(&handled, TASK, result.as_deref());
    });
    let sent = sent.expect("a traceparent while tracing is on");
    assert!(
        sent.starts_with("00-01935a7e112273448566778899aabbcc-"),
        "{sent}"
    );
    assert!(sent.ends_with("-01"), "sampled at ratio 1: {sent}");
    let enqueue = named(&spans, "step.enqueue");
    let execute = named(&spans, "step.execute");
    let result = named(&spans, "step.result");
    for span in [enqueue, execute, result] {
        assert_eq!(span.span_context.trace_id().to_bytes(), TASK);
    }
    assert_eq!(enqueue.parent_span_id, task_root(TASK).span_id());
    assert_eq!(execute.parent_span_id, enqueue.span_context.span_id());
    assert_eq!(result.parent_span_id, execute.span_context.span_id());
    assert!(execute.parent_span_is_remote);
}

#[test]
fn a_missing_malformed_or_foreign_traceparent_falls_back_to_the_task_root() {
    let foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let spans = with_exporter(|| {
        for (name, traceparent) in [
            ("missing", None),
            ("malformed", Some("00-not-a-trace-01")),
            ("foreign", Some(foreign)),
        ] {
            let span = tracing::info_span!("handled", case = name);
            follow(&span, TASK, traceparent);
        }
    });
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(span.span_context.trace_id().to_bytes(), TASK);
        assert_eq!(span.parent_span_id, task_root(TASK).span_id());
    }
}

#[test]
fn links_name_the_task_trace_and_the_request() {
    let request = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let spans = with_exporter(|| {
        let batch = tracing::info_span!("claim.round");
        link_task(&batch, TASK);
        let created = tracing::info_span!("task.create");
        follow_task(&created, TASK);
        link(&created, Some(request));
    });
    let batch = named(&spans, "claim.round");
    assert_ne!(batch.span_context.trace_id().to_bytes(), TASK);
    assert_eq!(batch.links.links.len(), 1);
    assert_eq!(
        batch.links.links[0].span_context.trace_id().to_bytes(),
        TASK
    );
    let created = named(&spans, "task.create");
    assert_eq!(
        created.links.links[0].span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[test]
fn the_task_root_is_the_same_everywhere_and_sampling_follows_the_ratio() {
    assert_eq!(task_root(TASK), task_root(TASK));
    assert!(task_root(TASK).is_remote());
    // Over many ids, the sampled share is close to the ratio.
    let sampled = (0u32..10_000)
        .filter(|n| {
            let mut id = TASK;
            id[12..].copy_from_slice(&n.to_be_bytes());
            let (high, low) = halves(id);
            sampled_below(splitmix64(high ^ splitmix64(low)), 0.1)
        })
        .count();
    assert!((800..1200).contains(&sampled), "{sampled} of 10000 at 0.1");
}
