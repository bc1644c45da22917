//! DAG helpers over a task's steps: transitive dependencies and depth levels.

use sqlx::PgExecutor;
use tasker_models::ids::{NamedStepId, StepId, TaskId};
use tasker_state::StepState;
use uuid::Uuid;

use crate::error::DbError;

/// How deep [`transitive_dependencies`] follows edges, unless told otherwise.
pub const MAX_DEPTH_DEFAULT: i32 = 1_000;

/// An ancestor of a step.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Ancestor {
    /// The ancestor step.
    #[sqlx(rename = "workflow_step_uuid", try_from = "Uuid")]
    pub step_id: StepId,
    /// Its task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template step.
    #[sqlx(rename = "named_step_uuid", try_from = "Uuid")]
    pub named_step_id: NamedStepId,
    /// Its name in the template.
    pub name: String,
    /// Its current state.
    pub current_state: StepState,
    /// Its stored result, if any.
    pub results: Option<serde_json::Value>,
    /// The shortest number of edges from it to the step (1 = direct parent).
    pub distance: i32,
}

/// Every step `step_id` transitively depends on, once each with its shortest distance,
/// ordered by distance then id. Handlers receive their dependencies' results from this.
pub async fn transitive_dependencies<'c>(
    executor: impl PgExecutor<'c>,
    step_id: StepId,
) -> Result<Vec<Ancestor>, DbError> {
    let rows = sqlx::query_as::<_, Ancestor>(
        "SELECT * FROM tasker.get_step_transitive_dependencies($1, $2)",
    )
    .bind(step_id.into_uuid())
    .bind(MAX_DEPTH_DEFAULT)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// The depth level of every step of a task (roots 0; otherwise one more than the deepest
/// parent), ordered by level then step id.
pub async fn dependency_levels<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
) -> Result<Vec<(StepId, i32)>, DbError> {
    let rows: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT * FROM tasker.calculate_dependency_levels($1)")
            .bind(task_id.into_uuid())
            .fetch_all(executor)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(step, level)| (StepId::from_uuid(step), level))
        .collect())
}
