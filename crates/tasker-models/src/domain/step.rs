//! A workflow step: one step of one task, with the execution bookkeeping readiness relies on.

use chrono::{DateTime, Utc};

use crate::ids::{NamedStepId, StepId, TaskId};

/// A workflow step (`workflow_steps`), unique per task and step name. Its state is the most
/// recent [`StepTransition`](super::StepTransition); the flags here are kept in sync with it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowStep {
    /// Primary key.
    pub id: StepId,
    /// The task it belongs to.
    pub task_id: TaskId,
    /// Its name.
    pub named_step_id: NamedStepId,
    /// Whether failures may be retried (from the template).
    pub retryable: bool,
    /// Attempts allowed in total (from the template).
    pub max_attempts: u32,
    /// A worker holds it.
    pub in_process: bool,
    /// It finished (successfully or resolved).
    pub processed: bool,
    /// When it finished.
    pub processed_at: Option<DateTime<Utc>>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the last attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// Delay requested before the next attempt.
    pub backoff_request_seconds: Option<u32>,
    /// Handler input (the template's `initialization`, or a batch worker's cursor).
    pub inputs: Option<serde_json::Value>,
    /// The last execution result.
    pub results: Option<serde_json::Value>,
    /// Higher runs first.
    pub priority: i32,
    /// Batch progress record.
    pub checkpoint: Option<serde_json::Value>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl WorkflowStep {
    /// Whether another attempt is allowed by the retry settings (the first always is).
    #[must_use]
    pub fn has_attempts_left(&self) -> bool {
        self.attempts == 0 || (self.retryable && self.attempts < self.max_attempts)
    }
}
