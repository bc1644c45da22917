//! The engine's spans and their place in the tasks' traces (`tasker_metrics::trace`): one span
//! per batch (`intake.batch`, `claim.round`, `results.batch`), linked to the traces of the
//! tasks it worked on, and per-task spans (`task.create`, `step.enqueue`, `step.result`,
//! `task.finalize`) in each task's own trace. Per-task spans are only made while spans are
//! exported (`trace::is_enabled`): with tracing off, they cost one atomic load per batch.

use tasker_messaging::messages::{StepResultMessage, TaskRequestMessage};
use tasker_messaging::queue::ReceivedMessage;
use tasker_metrics::trace;
use tasker_models::ids::{StepId, TaskId};
use tracing::Span;

/// The key of a task's trace: its id's bytes (its trace id).
pub(crate) fn trace_key(task_id: TaskId) -> [u8; 16] {
    task_id.into_uuid().into_bytes()
}

/// `task.create`, the first span of a new task's trace, linked to the span that sent its
/// request (when the requester traced it); `batch` is linked to the task.
pub(crate) fn task_created(
    batch: &Span,
    task_id: TaskId,
    namespace: &str,
    request: &ReceivedMessage,
) {
    if !trace::is_enabled() {
        return;
    }
    let span =
        tracing::info_span!("task.create", tasker.task_id = %task_id, tasker.namespace = namespace);
    trace::follow_task(&span, trace_key(task_id));
    let requested = request
        .decode_traced::<TaskRequestMessage>()
        .ok()
        .and_then(|traced| traced.traceparent);
    trace::link(&span, requested.as_deref());
    trace::link_task(batch, trace_key(task_id));
}

/// `step.enqueue` for a step message about to be sent, in the task's trace; returns the
/// `traceparent` for the message's envelope (`None` with tracing off).
pub(crate) fn step_enqueued(
    task_id: TaskId,
    step_id: StepId,
    step_name: Option<&str>,
    queue: &str,
) -> Option<String> {
    if !trace::is_enabled() {
        return None;
    }
    let span = tracing::info_span!(
        "step.enqueue",
        tasker.task_id = %task_id,
        tasker.step_id = %step_id,
        tasker.step_name = step_name.unwrap_or_default(),
        messaging.destination.name = queue,
    );
    trace::follow_task(&span, trace_key(task_id));
    trace::traceparent(&span)
}

/// One `step.result` span per result message, each the child of the worker's `step.execute`
/// span that sent it; kept open by the caller until the batch is committed. Empty with
/// tracing off.
pub(crate) fn results_received<'m>(
    batch: &Span,
    received: impl Iterator<Item = &'m ReceivedMessage>,
) -> Vec<Span> {
    if !trace::is_enabled() {
        return Vec::new();
    }
    received
        .filter_map(|message| message.decode_traced::<StepResultMessage>().ok())
        .map(|traced| {
            let result = traced.message;
            let span = tracing::info_span!(
                "step.result",
                tasker.task_id = %result.task_id,
                tasker.step_id = %result.step_id,
            );
            trace::follow(
                &span,
                trace_key(result.task_id),
                traced.traceparent.as_deref(),
            );
            trace::link_task(batch, trace_key(result.task_id));
            span
        })
        .collect()
}

/// `task.finalize`, in the task's trace.
pub(crate) fn finalizing(task_id: TaskId) -> Span {
    let span = tracing::info_span!("task.finalize", tasker.task_id = %task_id);
    trace::follow_task(&span, trace_key(task_id));
    span
}
