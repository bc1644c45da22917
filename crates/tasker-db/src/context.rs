//! Task execution context: step counts per state and what the orchestrator should do next
//! (`tasker.get_task_execution_context`).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{NamedTaskId, TaskId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;
use crate::readiness::BackoffParams;

/// What a task's steps add up to. Evaluated in this order, the first match wins (the SQL
/// function's CASE is the source of truth):
///
/// 1. [`BlockedByFailures`](ExecutionStatus::BlockedByFailures): a step failed permanently or
///    was cancelled. A permanent failure wins over ready steps.
/// 2. [`HasReadySteps`](ExecutionStatus::HasReadySteps): at least one step can run now.
/// 3. [`Processing`](ExecutionStatus::Processing): steps are enqueued, running, or their
///    results await orchestration.
/// 4. [`AllComplete`](ExecutionStatus::AllComplete): every step is complete or resolved
///    manually.
/// 5. [`WaitingForRetry`](ExecutionStatus::WaitingForRetry): failed steps will be retried once
///    their backoff elapses.
/// 6. [`WaitingForDependencies`](ExecutionStatus::WaitingForDependencies): anything else,
///    including a task without steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "execution_status", rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Steps can be enqueued now.
    HasReadySteps,
    /// Steps are with workers or their results await orchestration.
    Processing,
    /// Failed steps wait for their backoff.
    WaitingForRetry,
    /// A permanent failure or a cancelled step blocks the task.
    BlockedByFailures,
    /// Every step is complete or resolved manually.
    AllComplete,
    /// Nothing can run and nothing is running.
    WaitingForDependencies,
}

impl ExecutionStatus {
    /// The snake_case label, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::HasReadySteps => "has_ready_steps",
            ExecutionStatus::Processing => "processing",
            ExecutionStatus::WaitingForRetry => "waiting_for_retry",
            ExecutionStatus::BlockedByFailures => "blocked_by_failures",
            ExecutionStatus::AllComplete => "all_complete",
            ExecutionStatus::WaitingForDependencies => "waiting_for_dependencies",
        }
    }

    /// What an orchestrator should do about it.
    pub const fn recommended_action(self) -> &'static str {
        match self {
            ExecutionStatus::HasReadySteps => "execute_ready_steps",
            ExecutionStatus::Processing => "wait_for_completion",
            ExecutionStatus::WaitingForRetry => "wait_for_retry",
            ExecutionStatus::BlockedByFailures => "handle_failures",
            ExecutionStatus::AllComplete => "finalize_task",
            ExecutionStatus::WaitingForDependencies => "wait_for_dependencies",
        }
    }
}

/// A task's steps summarised.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExecutionContext {
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template.
    #[sqlx(rename = "named_task_uuid", try_from = "Uuid")]
    pub named_task_id: NamedTaskId,
    /// The task's own state.
    pub task_state: TaskState,
    /// Steps in total.
    pub total_steps: i32,
    /// Steps in `pending`.
    pub pending_steps: i32,
    /// Steps in `enqueued`.
    pub enqueued_steps: i32,
    /// Steps in `in_progress`.
    pub in_progress_steps: i32,
    /// Steps in `enqueued_for_orchestration`.
    pub enqueued_for_orchestration_steps: i32,
    /// Steps `complete` or `resolved_manually`.
    pub completed_steps: i32,
    /// Steps in `error`.
    pub failed_steps: i32,
    /// Steps in `error` that will not be retried automatically.
    pub permanently_failed_steps: i32,
    /// Steps in `error` that will be retried (now or after their backoff).
    pub retryable_failed_steps: i32,
    /// Steps `cancelled`.
    pub cancelled_steps: i32,
    /// Steps ready for execution now.
    pub ready_steps: i32,
    /// The earliest time a failed step's backoff elapses, if one is still waiting.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// What the steps add up to.
    pub execution_status: ExecutionStatus,
    /// Completed steps as a percentage of all steps (0 without steps), two decimals.
    pub completion_percentage: f64,
}

/// The execution context of a task, or `None` if the task does not exist.
pub async fn for_task<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
    backoff: BackoffParams,
    now: Option<DateTime<Utc>>,
) -> Result<Option<ExecutionContext>, DbError> {
    let row = sqlx::query_as::<_, ExecutionContext>(
        "SELECT * FROM tasker.get_task_execution_context($1, $2, $3, $4, coalesce($5, now()))",
    )
    .bind(task_id.into_uuid())
    .bind(backoff.base_ms)
    .bind(backoff.multiplier)
    .bind(backoff.max_ms)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}
