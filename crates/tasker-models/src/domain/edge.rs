//! Dependency edges between the workflow steps of a task.

use chrono::{DateTime, Utc};

use crate::ids::{EdgeId, StepId};

/// The only edge name in use: the parent provides what the child needs.
pub const EDGE_NAME_PROVIDES: &str = "provides";

/// An edge (`workflow_step_edges`): `to_step_id` depends on `from_step_id`. A step is ready
/// only when every step with an edge into it is complete or resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowStepEdge {
    /// Primary key.
    pub id: EdgeId,
    /// The prerequisite.
    pub from_step_id: StepId,
    /// The dependent.
    pub to_step_id: StepId,
    /// Always [`EDGE_NAME_PROVIDES`] today.
    pub name: String,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}
