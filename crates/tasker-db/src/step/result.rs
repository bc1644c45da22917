//! The stored result of a step: the JSON object a worker writes with
//! `enqueue_for_orchestration` and orchestration reads to complete or fail the step.
//!
//! Its shape is part of the schema: the `complete` guard and the result audit read `success`
//! in SQL. `{"success": true, "result": <value>, "metadata": {..}}` or `{"success": false,
//! "error": {"message", "kind", "details", "retryable", "requested_backoff_ms"}, "metadata":
//! {..}}`, where the metadata holds `execution_time_ms`, `attempt` and `worker_id`.

use std::time::Duration;

use serde_json::{Value, json};
use tasker_models::ids::ProcessorId;
use tasker_state::StepError;

use super::record::StepRecord;

/// Facts about the attempt that produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFacts {
    /// How long the handler ran.
    pub elapsed: Duration,
    /// The attempt's number (1 for the first).
    pub attempt: u32,
    /// The process that ran it.
    pub worker_id: ProcessorId,
}

/// A failure as a worker reports it.
#[derive(Debug, Clone, Copy)]
pub struct ReportedFailure<'a> {
    /// What went wrong, for people.
    pub message: &'a str,
    /// A machine-readable classification.
    pub kind: Option<&'a str>,
    /// Structured details.
    pub details: Option<&'a Value>,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The backoff the handler asked for (retryable failures only).
    pub requested_backoff: Option<Duration>,
}

/// The stored result of a successful attempt.
pub fn success(result: &Value, facts: AttemptFacts) -> Value {
    json!({
        "success": true,
        "result": result,
        "metadata": metadata(facts),
    })
}

/// The stored result of a failed attempt.
pub fn failure(failure: ReportedFailure<'_>, facts: AttemptFacts) -> Value {
    let mut error = json!({
        "message": failure.message,
        "kind": failure.kind,
        "details": failure.details,
        "retryable": failure.retryable,
    });
    if failure.retryable {
        error["requested_backoff_ms"] = json!(failure.requested_backoff.map(millis));
    }
    json!({
        "success": false,
        "error": error,
        "metadata": metadata(facts),
    })
}

fn metadata(facts: AttemptFacts) -> Value {
    json!({
        "execution_time_ms": millis(facts.elapsed),
        "attempt": facts.attempt,
        "worker_id": facts.worker_id.into_uuid(),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl StepRecord {
    /// Whether the stored result reports success (what the `complete` guard checks).
    pub fn result_succeeded(&self) -> bool {
        self.results
            .as_ref()
            .and_then(|results| results.get("success"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The value a successful attempt produced.
    pub fn result_value(&self) -> Option<&Value> {
        self.results
            .as_ref()
            .and_then(|results| results.get("result"))
    }

    /// The failure the stored result reports, as the step's error; a result without one reads
    /// as a permanent failure without a message.
    pub fn reported_failure(&self) -> StepError {
        let error = self
            .results
            .as_ref()
            .and_then(|results| results.get("error"));
        let message = error
            .and_then(|error| error.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the step failed without a message")
            .to_owned();
        let retryable = error
            .and_then(|error| error.get("retryable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let requested_backoff = error
            .and_then(|error| error.get("requested_backoff_ms"))
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
        StepError {
            message,
            retryable,
            requested_backoff,
        }
    }
}
