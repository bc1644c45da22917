//! W3C trace context for one task across processes: one task, one trace.
//!
//! A task's trace id *is* its id: the 16 bytes of the task's UUID are a valid W3C trace id, so
//! every process rebuilds the task's trace context from the id alone, without storing or
//! passing anything. Each per-task span is a child of a synthetic root ([`follow_task`]): its
//! trace id is the task's, its span id is derived from the task id, and its sampled flag is
//! decided from the task id and the configured ratio, the same way in every process. That root
//! is never exported (trace viewers show the task's spans under a missing root span).
//!
//! Across a hop, the span that sends a message writes its `traceparent` into the message's
//! envelope ([`traceparent`]), and the span that handles the message on the other side is its
//! child ([`follow`]): orchestrator `step.enqueue` → worker `step.execute` → orchestrator
//! `step.result`. Batch spans cover many tasks; they are linked to the tasks' traces
//! ([`link_task`]) rather than being their parents.
//!
//! Cost when tracing is off: every function first checks one relaxed atomic ([`is_enabled`]),
//! set only by the binaries' tracing init when it installs an exporting tracer provider, and
//! returns at once when it is clear; callers check it before building per-task spans.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header name of the W3C trace context, the key it has in a carrier.
const TRACEPARENT: &str = "traceparent";

/// Longest `traceparent` accepted from a message: version 00 is 55 characters; later versions
/// may append fields, but nothing legitimate comes near this.
const TRACEPARENT_MAX: usize = 256;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The sample ratio as `f64` bits (1.0 until [`enable`] says otherwise).
static SAMPLE_RATIO: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000);

/// Whether spans are exported, so that trace context is worth propagating: false until
/// [`enable`] (the binaries' tracing init calls it when it installs an OTLP exporter).
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns propagation on, with the fraction of tasks whose traces are sampled (clamped to
/// 0..=1). Called once by the tracing init that installs the exporting layer (and by tests
/// that install their own); every process of a deployment must use the same ratio, so that
/// they agree on which tasks are sampled.
pub fn enable(sample_ratio: f64) {
    let ratio = if sample_ratio.is_nan() {
        1.0
    } else {
        sample_ratio.clamp(0.0, 1.0)
    };
    SAMPLE_RATIO.store(ratio.to_bits(), Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Makes `span` (created, not yet entered) a child of `task`'s synthetic root, so that it
/// belongs to the task's trace. Does nothing when tracing is off.
pub fn follow_task(span: &tracing::Span, task: [u8; 16]) {
    if !is_enabled() {
        return;
    }
    let root = task_root(task);
    // Fails only for a span the filters disabled (nothing to export) or one already started
    // (a caller's bug, which leaves the span in its own trace): nothing to do either way.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(root));
}

/// Makes `span` (created, not yet entered) a child of the span that sent a message, named by
/// the message's `traceparent`; without one (a message from an older producer, or tracing off
/// at the sender), or when it does not belong to `task`'s trace, a child of the task's root as
/// with [`follow_task`]. Does nothing when tracing is off.
pub fn follow(span: &tracing::Span, task: [u8; 16], traceparent: Option<&str>) {
    if !is_enabled() {
        return;
    }
    match traceparent.and_then(parse) {
        Some(parent) if parent.trace_id().to_bytes() == task => {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        _ => follow_task(span, task),
    }
}

/// Links `span` to `task`'s trace (a batch span to the tasks it worked on). Does nothing when
/// tracing is off.
pub fn link_task(span: &tracing::Span, task: [u8; 16]) {
    if !is_enabled() {
        return;
    }
    span.add_link(task_root(task));
}

/// Links `span` to the span a `traceparent` names (a task's first span to the span that sent
/// its request). Ignores a missing or malformed one, and does nothing when tracing is off.
pub fn link(span: &tracing::Span, traceparent: Option<&str>) {
    if !is_enabled() {
        return;
    }
    if let Some(linked) = traceparent.and_then(parse) {
        span.add_link(linked);
    }
}

/// The `traceparent` of `span`, for the envelope of a message it sends: `None` when tracing is
/// off or the span is disabled.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !is_enabled() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Carrier::default();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.0
}

/// The `traceparent` of the current span (see [`traceparent`]).
pub fn current_traceparent() -> Option<String> {
    if !is_enabled() {
        return None;
    }
    traceparent(&tracing::Span::current())
}

/// The span context a `traceparent` names, if it is well-formed.
fn parse(traceparent: &str) -> Option<SpanContext> {
    if traceparent.len() > TRACEPARENT_MAX {
        return None;
    }
    let carrier = Carrier(Some(traceparent.to_owned()));
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// The synthetic root of a task's trace: trace id = task id, span id and sampling derived from
/// the task id, so every process computes the same one.
fn task_root(task: [u8; 16]) -> SpanContext {
    let (high, low) = halves(task);
    let mixed = splitmix64(high ^ splitmix64(low));
    let span_id = splitmix64(mixed ^ 0x7461_736b_6572_7370).max(1);
    let ratio = f64::from_bits(SAMPLE_RATIO.load(Ordering::Relaxed));
    let sampled = ratio >= 1.0 || sampled_below(mixed, ratio);
    SpanContext::new(
        TraceId::from_bytes(task),
        SpanId::from_bytes(span_id.to_be_bytes()),
        if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        TraceState::default(),
    )
}

/// Whether a uniformly mixed 64-bit value falls within the sampled fraction `ratio`.
fn sampled_below(mixed: u64, ratio: f64) -> bool {
    // 53 bits of the value as a fraction in [0, 1), exactly representable in an f64.
    let fraction = (mixed >> 11) as f64 / (1u64 << 53) as f64;
    fraction < ratio
}

fn halves(bytes: [u8; 16]) -> (u64, u64) {
    let mut high = [0; 8];
    let mut low = [0; 8];
    high.copy_from_slice(&bytes[..8]);
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(high), u64::from_be_bytes(low))
}

/// SplitMix64's finaliser: a fixed, well-mixing permutation of 64-bit values (UUID v7 ids
/// carry a timestamp and version bits, which must not bias the sampling decision).
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A carrier with room for the `traceparent` only (the trace state is not propagated).
#[derive(Default)]
struct Carrier(Option<String>);

impl opentelemetry::propagation::Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl opentelemetry::propagation::Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0.as_deref()).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[cfg(test)]
mod tests;
