//! A task: one run of a registered template.

use chrono::{DateTime, Utc};

use crate::identity::IdentityHash;
use crate::ids::{CorrelationId, NamedTaskId, TaskId};

/// A task (`tasks`). Its state is not a column: it is the most recent
/// [`TaskTransition`](super::TaskTransition).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    /// Primary key.
    pub id: TaskId,
    /// The template it runs.
    pub named_task_id: NamedTaskId,
    /// Set when the task reaches `complete`.
    pub complete: bool,
    /// When the task was requested.
    pub requested_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Who asked for it.
    pub initiator: Option<String>,
    /// Which system asked for it.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The task's input, exactly as requested.
    pub context: serde_json::Value,
    /// The deduplication key (unique).
    pub identity_hash: IdentityHash,
    /// Higher runs first (-100..=100).
    pub priority: i32,
    /// Correlates everything the task causes.
    pub correlation_id: CorrelationId,
    /// The correlation id of the task that caused this one.
    pub parent_correlation_id: Option<CorrelationId>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}
