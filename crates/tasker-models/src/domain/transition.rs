//! State transitions: the append-only history whose most recent row is an entity's state.

use chrono::{DateTime, Utc};
use tasker_state::{StepState, TaskState};

use crate::ids::{ProcessorId, StepId, StepTransitionId, TaskId, TaskTransitionId};

/// A task state transition (`task_transitions`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskTransition {
    /// Primary key.
    pub id: TaskTransitionId,
    /// The task.
    pub task_id: TaskId,
    /// The state before; `None` for the first transition.
    pub from_state: Option<TaskState>,
    /// The state after.
    pub to_state: TaskState,
    /// Position in the task's history, from 1.
    pub sort_key: u32,
    /// Whether this is the task's current state (at most one per task).
    pub most_recent: bool,
    /// The orchestrator that wrote it (audit only).
    pub processor_id: Option<ProcessorId>,
    /// What caused the transition, as JSON.
    pub metadata: serde_json::Value,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A step state transition (`workflow_step_transitions`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepTransition {
    /// Primary key.
    pub id: StepTransitionId,
    /// The step.
    pub step_id: StepId,
    /// The state before; `None` for the first transition.
    pub from_state: Option<StepState>,
    /// The state after.
    pub to_state: StepState,
    /// Position in the step's history, from 1.
    pub sort_key: u32,
    /// Whether this is the step's current state (at most one per step).
    pub most_recent: bool,
    /// What caused the transition, as JSON.
    pub metadata: serde_json::Value,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}
