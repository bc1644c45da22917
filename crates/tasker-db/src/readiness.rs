//! Step readiness: for each step of a task, its state, dependencies, retry eligibility and
//! whether it can run now (`tasker.get_step_readiness_status`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{NamedStepId, StepId, TaskId};
use tasker_state::{BackoffPolicy, StepState};
use uuid::Uuid;

use crate::error::DbError;

mod many;

pub use many::for_tasks;

/// The backoff policy as the SQL functions take it: tasker-state's [`BackoffPolicy`] without
/// jitter (`min(base × multiplier^attempts, max)`, whole milliseconds, halves rounded up; the
/// integration tests hold `tasker.step_backoff_ms` equal to `BackoffPolicy::backoff_for`).
///
/// Jitter is random per decision and cannot be recomputed by a query; a caller that wants it
/// records the jittered delay as the step's requested backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffParams {
    /// The delay after the first attempt, before growth, in milliseconds.
    pub base_ms: i64,
    /// The growth factor per attempt (>= 1).
    pub multiplier: f64,
    /// The longest delay, in milliseconds.
    pub max_ms: i64,
}

impl BackoffParams {
    /// The SQL functions' own defaults: 1 s base, doubling, at most 60 s.
    pub const DEFAULT: BackoffParams = BackoffParams {
        base_ms: 1_000,
        multiplier: 2.0,
        max_ms: 60_000,
    };
}

impl From<&BackoffPolicy> for BackoffParams {
    fn from(policy: &BackoffPolicy) -> Self {
        BackoffParams {
            base_ms: millis(policy.base()),
            multiplier: policy.multiplier(),
            max_ms: millis(policy.max()),
        }
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One step of a task as readiness sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepReadiness {
    /// The step.
    #[sqlx(rename = "workflow_step_uuid", try_from = "Uuid")]
    pub step_id: StepId,
    /// Its task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template step.
    #[sqlx(rename = "named_step_uuid", try_from = "Uuid")]
    pub named_step_id: NamedStepId,
    /// The step's name in its template.
    pub name: String,
    /// Its current state.
    pub current_state: StepState,
    /// How many steps it depends on directly.
    pub total_parents: i32,
    /// How many of those are `complete` or `resolved_manually`.
    pub completed_parents: i32,
    /// Every parent is `complete` or `resolved_manually` (true without parents).
    pub dependencies_satisfied: bool,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Its retry policy and its last failure both allow retries.
    pub retryable: bool,
    /// Policy eligibility: the first attempt, or retryable with attempts left (ignores the
    /// backoff).
    pub retry_eligible: bool,
    /// When the last attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// The backoff that applies before the next attempt, in milliseconds.
    pub backoff_ms: i64,
    /// `last_attempted_at + backoff` (None if the step never started).
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Whether the step can be enqueued now.
    pub ready_for_execution: bool,
}

/// Readiness of every step of a task, ordered by step id; empty for an unknown task.
///
/// `now` is the time the backoff is compared with (the database's `now()` when `None`).
pub async fn for_task<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
    backoff: BackoffParams,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<StepReadiness>, DbError> {
    let rows = sqlx::query_as::<_, StepReadiness>(
        "SELECT * FROM tasker.get_step_readiness_status($1, $2, $3, $4, coalesce($5, now()))",
    )
    .bind(task_id.into_uuid())
    .bind(backoff.base_ms)
    .bind(backoff.multiplier)
    .bind(backoff.max_ms)
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
