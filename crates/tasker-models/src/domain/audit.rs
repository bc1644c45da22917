//! Step result audit entries: who produced which result, for compliance.

use chrono::{DateTime, Utc};

use crate::ids::{CorrelationId, ProcessorId, StepId, StepResultAuditId, StepTransitionId, TaskId};

/// One audited step result (`workflow_step_result_audit`). It references the transition that
/// carries the full result rather than copying it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepResultAudit {
    /// Primary key.
    pub id: StepResultAuditId,
    /// The step.
    pub step_id: StepId,
    /// The transition that recorded the result.
    pub transition_id: StepTransitionId,
    /// The step's task (denormalized).
    pub task_id: TaskId,
    /// When the result was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The worker that produced it.
    pub worker_id: Option<ProcessorId>,
    /// The task's correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// Whether the step succeeded.
    pub success: bool,
    /// How long the handler ran.
    pub execution_time_ms: Option<u64>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}
