//! Ready-task discovery and claiming (`tasker.claim_ready_tasks`): claims up to N processable
//! tasks in priority order with `FOR UPDATE SKIP LOCKED` and performs the claim transition in
//! the same statement, so two orchestrators never get the same task.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{NamedTaskId, ProcessorId, TaskId, TaskTransitionId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;
use crate::readiness::BackoffParams;

/// How long a task may sit in `waiting_for_dependencies` and still be claimed (older ones are
/// left to stale-task detection), unless configured.
pub const WAITING_FOR_DEPENDENCIES_WINDOW_MINUTES_DEFAULT: i32 = 60;

/// What to claim.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    /// Claim at most this many tasks (>= 1).
    pub limit: i32,
    /// The orchestrator claiming them, recorded on the claim transitions.
    pub processor_id: Option<ProcessorId>,
    /// See [`WAITING_FOR_DEPENDENCIES_WINDOW_MINUTES_DEFAULT`].
    pub waiting_for_dependencies_window_minutes: i32,
    /// The backoff policy used to decide whether a waiting task has a ready step.
    pub backoff: BackoffParams,
}

impl ClaimRequest {
    /// Claim up to `limit` tasks for `processor_id` with the default window and backoff.
    pub fn new(limit: i32, processor_id: Option<ProcessorId>) -> Self {
        ClaimRequest {
            limit,
            processor_id,
            waiting_for_dependencies_window_minutes:
                WAITING_FOR_DEPENDENCIES_WINDOW_MINUTES_DEFAULT,
            backoff: BackoffParams::DEFAULT,
        }
    }
}

/// A task that was claimed, and the transition that claimed it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedTask {
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template.
    #[sqlx(rename = "named_task_uuid", try_from = "Uuid")]
    pub named_task_id: NamedTaskId,
    /// Its base priority.
    pub priority: i32,
    /// Priority with age escalation at claim time (`priority + 0.1 × age in hours`).
    pub computed_priority: f64,
    /// The state it was claimed from: `pending`, `waiting_for_dependencies` or
    /// `waiting_for_retry`.
    pub from_state: TaskState,
    /// The state the claim moved it to: `initializing`, `evaluating_results` or
    /// `enqueuing_steps`.
    pub to_state: TaskState,
    /// The claim transition.
    #[sqlx(rename = "task_transition_uuid", try_from = "Uuid")]
    pub transition_id: TaskTransitionId,
    /// Its position in the task's history.
    pub sort_key: i32,
    /// The lifecycle event to publish.
    pub lifecycle_event: String,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
}

/// Claims up to `request.limit` processable tasks, highest computed priority first.
///
/// Commit promptly: the claimed rows stay locked until the caller's transaction ends (with an
/// executor outside a transaction, the statement commits by itself).
pub async fn claim_ready_tasks<'c>(
    executor: impl PgExecutor<'c>,
    request: ClaimRequest,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<ClaimedTask>, DbError> {
    let rows = sqlx::query_as::<_, ClaimedTask>(
        "SELECT * FROM tasker.claim_ready_tasks($1, $2, $3, $4, $5, $6, coalesce($7, now()))",
    )
    .bind(request.limit)
    .bind(request.processor_id.map(ProcessorId::into_uuid))
    .bind(request.waiting_for_dependencies_window_minutes)
    .bind(request.backoff.base_ms)
    .bind(request.backoff.multiplier)
    .bind(request.backoff.max_ms)
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
