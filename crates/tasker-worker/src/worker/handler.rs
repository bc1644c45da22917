//! Running one step's handler: everything it may read (its context), its outcome as the
//! stored result tasker-db documents, and the message of a handler that panicked.

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use tasker_db::step::StepRecord;
use tasker_db::step::result::{self as stored, AttemptFacts, ReportedFailure};
use tasker_models::ids::ProcessorId;
use tasker_models::names::StepName;
use tasker_registry::handler::{StepContext, StepEvents, StepFailure, StepOutcome};
use tasker_state::StepState;

use super::Started;
use crate::error::{Doing as _, WorkerError};

/// Everything the handler of `record` may read, and the step's timeout.
pub(super) fn step_context(
    item: &Started,
    record: &StepRecord,
    task_steps: &[StepRecord],
) -> Result<(StepContext, Option<Duration>), WorkerError> {
    let template = item.entry.template.template();
    let Some(definition) = item.entry.template.step_by_name(&record.name) else {
        return Err(WorkerError::invariant(format!(
            "template {} has no step {}",
            item.entry.key(),
            record.name
        )));
    };
    let mut dependency_results = BTreeMap::new();
    for parent in item.entry.parents(&record.name) {
        let result = task_steps
            .iter()
            .find(|step| {
                &step.name == parent && step.state == StepState::Complete && step.result_succeeded()
            })
            .and_then(StepRecord::result_value);
        if let Some(result) = result {
            let name =
                StepName::new(parent.as_str()).doing_with(|| format!("step name {parent}"))?;
            dependency_results.insert(name, result.clone());
        }
    }
    let inputs = match &record.inputs {
        Some(Value::Object(inputs)) => inputs.clone(),
        _ => Map::new(),
    };
    let context = StepContext {
        task_id: item.task.task_id,
        step_id: record.step_id,
        correlation_id: item.task.correlation_id,
        namespace: template.namespace_name.clone(),
        task_name: template.name.clone(),
        version: template.version.clone(),
        step_name: definition.name.clone(),
        method: definition.handler.effective_method().to_owned(),
        attempt: u32::try_from(record.attempts).unwrap_or(0),
        max_attempts: u32::try_from(record.max_attempts).unwrap_or(0),
        inputs,
        dependency_results,
        task_context: item.task.context.clone(),
        events: StepEvents::new(
            definition.name.as_str(),
            item.entry.declared_events(&record.name),
        ),
    };
    let timeout = definition
        .timeout_seconds
        .map(|seconds| Duration::from_secs(u64::from(seconds)));
    Ok((context, timeout))
}

/// The result a worker stores for an outcome (the shape tasker-db documents).
pub(super) fn stored_result(
    outcome: &StepOutcome,
    elapsed: Duration,
    attempt: u32,
    worker: ProcessorId,
) -> Value {
    let facts = AttemptFacts {
        elapsed,
        attempt,
        worker_id: worker,
    };
    fn failure(
        error: &StepFailure,
        retryable: bool,
        requested_backoff: Option<Duration>,
    ) -> ReportedFailure<'_> {
        ReportedFailure {
            message: &error.message,
            kind: error.kind.as_deref(),
            details: error.details.as_ref(),
            retryable,
            requested_backoff,
        }
    }
    match outcome {
        StepOutcome::Success { result } => stored::success(result, facts),
        StepOutcome::RetryableFailure {
            error,
            requested_backoff,
        } => stored::failure(failure(error, true, *requested_backoff), facts),
        StepOutcome::PermanentFailure { error } => {
            stored::failure(failure(error, false, None), facts)
        }
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text panic payload")
}
