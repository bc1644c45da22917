//! Readiness of the steps of many tasks in one statement: `tasker.get_step_readiness_status`
//! applied to each task of an array (the function is inlined, so this is one cached plan).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::TaskId;
use uuid::Uuid;

use super::{BackoffParams, StepReadiness};
use crate::error::DbError;

/// Readiness of every step of each of `task_ids`, grouped by task, each group ordered by step
/// id (the rows [`super::for_task`] returns for that task); unknown tasks are absent.
///
/// `now` is the time the backoff is compared with (the database's `now()` when `None`), the
/// same instant for every task.
pub async fn for_tasks<'c>(
    executor: impl PgExecutor<'c>,
    task_ids: &[TaskId],
    backoff: BackoffParams,
    now: Option<DateTime<Utc>>,
) -> Result<HashMap<TaskId, Vec<StepReadiness>>, DbError> {
    if task_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = task_ids.iter().map(|id| id.into_uuid()).collect();
    let rows = sqlx::query_as::<_, StepReadiness>(
        "SELECT r.* \
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t (task_uuid, ord) \
         CROSS JOIN LATERAL tasker.get_step_readiness_status( \
             t.task_uuid, $2, $3, $4, coalesce($5, now())) AS r \
         ORDER BY t.ord, r.workflow_step_uuid",
    )
    .bind(&ids)
    .bind(backoff.base_ms)
    .bind(backoff.multiplier)
    .bind(backoff.max_ms)
    .bind(now)
    .fetch_all(executor)
    .await?;
    let mut grouped: HashMap<TaskId, Vec<StepReadiness>> = HashMap::with_capacity(task_ids.len());
    for row in rows {
        grouped.entry(row.task_id).or_default().push(row);
    }
    Ok(grouped)
}
