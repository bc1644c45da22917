//! Many task transitions in one round trip: the compare-and-set, the history row and the
//! effects of [`super::transition`], for a batch of tasks in one statement.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_models::ids::{ProcessorId, TaskId, TaskTransitionId};
use tasker_state::{TaskEffect, TaskEvent, TaskState, TaskStateMachine, TaskTransitionRecord};
use uuid::Uuid;

use super::transition::{AppliedTaskTransition, TaskTransition, TaskTransitionError};
use crate::error::DbError;

/// Why a batch of task transitions was not applied at all. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum TaskBatchError {
    /// The same task appears twice: one statement cannot move a task twice, and the order of
    /// the two transitions would be ambiguous.
    #[error("task {task_id} appears more than once in the batch")]
    DuplicateInBatch {
        /// The task.
        task_id: TaskId,
    },
    /// The database failed.
    #[error("failed to apply a batch of task transitions")]
    Database(#[from] DbError),
}

/// Applies many task transitions in one statement; each succeeds or fails on its own and the
/// outcomes come back in input order.
///
/// Each item has exactly the semantics of [`super::transition`]: the task moves from
/// `expected` to the state machine's target only if it is still `expected`, its
/// `most_recent_sort_key` moves to the next sort key and the new row gets it, with the event as
/// JSON, the lifecycle event name, the item's processor and metadata, and the effects apply
/// (`completed_at`, `next_retry_at`, `state_entered_at`). Items fail with the same errors:
/// [`TaskTransitionError::Invalid`] and [`TaskTransitionError::MetadataNotObject`] before
/// anything is sent, [`TaskTransitionError::Conflict`] (with the state the task is actually
/// in) or [`TaskTransitionError::NotFound`] after. The tasks are locked in id order, so
/// concurrent batches over overlapping tasks cannot deadlock each other; under READ
/// COMMITTED a batch that waited for another's lock re-checks each task's state after it, so
/// every transition applies at most once.
///
/// The outer `Result` fails only for a task named twice (nothing is sent) or a database
/// failure; then nothing of the batch was written (unless the caller's transaction already
/// committed parts).
pub async fn transition_batch(
    conn: &mut PgConnection,
    requests: Vec<TaskTransition<'_>>,
) -> Result<Vec<Result<AppliedTaskTransition, TaskTransitionError>>, TaskBatchError> {
    let machine = TaskStateMachine::new();
    let mut outcomes: Vec<Option<Result<AppliedTaskTransition, TaskTransitionError>>> =
        Vec::with_capacity(requests.len());
    let mut planned = Vec::with_capacity(requests.len());
    let mut seen = HashSet::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        let task_id = request.task_id;
        if !seen.insert(task_id) {
            return Err(TaskBatchError::DuplicateInBatch { task_id });
        }
        let outcome = if request.metadata.is_some_and(|m| !m.is_object()) {
            Some(Err(TaskTransitionError::MetadataNotObject))
        } else {
            match machine.apply(request.expected, request.event) {
                Ok(record) => {
                    planned.push(Planned {
                        index,
                        task_id,
                        record,
                        processor_id: request.processor_id,
                        metadata: request.metadata.cloned(),
                        transition_id: Uuid::now_v7(),
                    });
                    None
                }
                Err(source) => Some(Err(TaskTransitionError::Invalid { task_id, source })),
            }
        };
        outcomes.push(outcome);
    }

    if !planned.is_empty() {
        let applied = apply(conn, &planned).await?;
        let mut failed = Vec::new();
        for plan in &planned {
            match applied.get(&plan.task_id) {
                Some(&(sort_key, created_at)) => {
                    outcomes[plan.index] = Some(Ok(AppliedTaskTransition {
                        transition_id: TaskTransitionId::from_uuid(plan.transition_id),
                        task_id: plan.task_id,
                        from: plan.record.from,
                        to: plan.record.to,
                        sort_key,
                        lifecycle_event: plan.record.lifecycle_event,
                        created_at,
                    }));
                }
                None => failed.push(plan),
            }
        }
        if !failed.is_empty() {
            let actual = current_states(conn, &failed).await?;
            for plan in failed {
                let task_id = plan.task_id;
                outcomes[plan.index] = Some(Err(match actual.get(&task_id) {
                    None => TaskTransitionError::NotFound { task_id },
                    Some(&actual) => TaskTransitionError::Conflict {
                        task_id,
                        expected: plan.record.from,
                        actual,
                    },
                }));
            }
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every request has an outcome"))
        .collect())
}

struct Planned {
    index: usize,
    task_id: TaskId,
    record: TaskTransitionRecord,
    processor_id: Option<ProcessorId>,
    metadata: Option<serde_json::Value>,
    transition_id: Uuid,
}

/// The SQL side of a batch: [`super::transition`]'s statement over arrays, with the tasks
/// locked in id order first. Returns the applied tasks with their sort key and time.
async fn apply(
    conn: &mut PgConnection,
    planned: &[Planned],
) -> Result<HashMap<TaskId, (i32, DateTime<Utc>)>, DbError> {
    let n = planned.len();
    let mut task_ids = Vec::with_capacity(n);
    let mut from = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut mark_completed = Vec::with_capacity(n);
    let mut next_retry_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut transition_ids = Vec::with_capacity(n);
    let mut events = Vec::with_capacity(n);
    let mut lifecycle = Vec::with_capacity(n);
    let mut processors: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    for plan in planned {
        let record = &plan.record;
        task_ids.push(plan.task_id.into_uuid());
        from.push(record.from);
        to.push(record.to);
        mark_completed.push(record.effects.contains(&TaskEffect::MarkCompletedAt));
        next_retry_at.push(match &record.event {
            TaskEvent::RetryScheduled { retry_at } => Some(*retry_at),
            _ => None,
        });
        transition_ids.push(plan.transition_id);
        events.push(record.event_json());
        lifecycle.push(record.lifecycle_event);
        processors.push(plan.processor_id.map(ProcessorId::into_uuid));
        metadata.push(
            plan.metadata
                .clone()
                .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new())),
        );
    }
    let rows: Vec<(Uuid, i32, DateTime<Utc>)> = sqlx::query_as(
        "WITH input AS ( \
             SELECT * FROM unnest( \
                 $1::uuid[], $2::task_state[], $3::task_state[], $4::bool[], \
                 $5::timestamptz[], $6::uuid[], $7::jsonb[], $8::text[], $9::uuid[], \
                 $10::jsonb[] \
             ) AS i (task_uuid, from_state, to_state, mark_completed, next_retry_at, \
                     transition_uuid, event, lifecycle, processor_uuid, metadata) \
         ), locked AS ( \
             SELECT t.task_uuid \
             FROM tasker.tasks t \
             WHERE t.task_uuid IN (SELECT task_uuid FROM input) \
             ORDER BY t.task_uuid \
             FOR UPDATE OF t \
         ), moved AS ( \
             UPDATE tasker.tasks t SET \
                 state = i.to_state, state_entered_at = now(), updated_at = now(), \
                 completed_at = CASE WHEN i.mark_completed THEN now() ELSE t.completed_at END, \
                 next_retry_at = i.next_retry_at, \
                 most_recent_sort_key = t.most_recent_sort_key + 1 \
             FROM input i \
             JOIN locked l ON l.task_uuid = i.task_uuid \
             WHERE t.task_uuid = i.task_uuid AND t.state = i.from_state \
             RETURNING t.task_uuid, t.most_recent_sort_key, i.from_state, i.to_state, \
                       i.transition_uuid, i.event, i.lifecycle, i.processor_uuid, i.metadata \
         ), inserted AS ( \
             INSERT INTO tasker.task_transitions ( \
                 task_transition_uuid, task_uuid, sort_key, from_state, to_state, event, \
                 lifecycle_event, processor_uuid, metadata) \
             SELECT m.transition_uuid, m.task_uuid, m.most_recent_sort_key, m.from_state, \
                    m.to_state, m.event, m.lifecycle, m.processor_uuid, m.metadata \
             FROM moved m \
             RETURNING task_uuid, sort_key, created_at \
         ) \
         SELECT task_uuid, sort_key, created_at FROM inserted",
    )
    .bind(&task_ids)
    .bind(&from)
    .bind(&to)
    .bind(&mark_completed)
    .bind(&next_retry_at)
    .bind(&transition_ids)
    .bind(&events)
    .bind(&lifecycle)
    .bind(&processors)
    .bind(&metadata)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(task, sort_key, created_at)| (TaskId::from_uuid(task), (sort_key, created_at)))
        .collect())
}

/// The current state of tasks whose transition was not applied (a new statement, so under
/// READ COMMITTED it sees what the winners committed); absent tasks do not exist.
async fn current_states(
    conn: &mut PgConnection,
    failed: &[&Planned],
) -> Result<HashMap<TaskId, TaskState>, DbError> {
    let ids: Vec<Uuid> = failed.iter().map(|plan| plan.task_id.into_uuid()).collect();
    let rows: Vec<(Uuid, TaskState)> =
        sqlx::query_as("SELECT task_uuid, state FROM tasker.tasks WHERE task_uuid = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(task, state)| (TaskId::from_uuid(task), state))
        .collect())
}
