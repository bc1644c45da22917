//! Atomic task transitions: compare-and-set on the task's state, the transition row and the
//! effects in one statement.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_models::ids::{ProcessorId, TaskId, TaskTransitionId};
use tasker_state::{InvalidTaskTransition, TaskEffect, TaskEvent, TaskState, TaskStateMachine};
use uuid::Uuid;

use crate::error::DbError;

/// A task transition to apply: the state the caller believes the task is in and the event.
#[derive(Debug, Clone)]
pub struct TaskTransition<'a> {
    /// The task.
    pub task_id: TaskId,
    /// The state the caller read; the transition applies only if the task is still in it.
    pub expected: TaskState,
    /// What happened.
    pub event: TaskEvent,
    /// The process applying it (audit only).
    pub processor_id: Option<ProcessorId>,
    /// Extra context to record with the transition (a JSON object); `None` records `{}`.
    pub metadata: Option<&'a serde_json::Value>,
}

/// A transition that was applied and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTaskTransition {
    /// The recorded transition row.
    pub transition_id: TaskTransitionId,
    /// The task.
    pub task_id: TaskId,
    /// The state it left.
    pub from: TaskState,
    /// The state it entered.
    pub to: TaskState,
    /// Its position in the task's history (1 is the initial `pending`).
    pub sort_key: i32,
    /// The lifecycle event to publish, e.g. `task.completed`.
    pub lifecycle_event: &'static str,
    /// When it happened (the transaction's time).
    pub created_at: DateTime<Utc>,
}

/// Why a task transition was not applied. Nothing was written in every case.
#[derive(Debug, thiserror::Error)]
pub enum TaskTransitionError {
    /// The state machine has no such transition from the expected state.
    ///
    /// The refusal is part of the message, not a [`source`](std::error::Error::source) (as with
    /// [`StepTransitionError::GuardFailed`](crate::step::StepTransitionError::GuardFailed)): it
    /// is the reason for this error, and a chain printer would otherwise print it twice.
    #[error("task {task_id}: {error}")]
    Invalid {
        /// The task.
        task_id: TaskId,
        /// The state machine's refusal.
        error: InvalidTaskTransition,
    },
    /// The task is no longer in the expected state: another actor moved it first.
    #[error("task {task_id} is `{actual}`, not `{expected}`: another actor changed it first")]
    Conflict {
        /// The task.
        task_id: TaskId,
        /// The state the caller expected.
        expected: TaskState,
        /// The state it is actually in.
        actual: TaskState,
    },
    /// No such task.
    #[error("task {task_id} does not exist")]
    NotFound {
        /// The task.
        task_id: TaskId,
    },
    /// The metadata is not a JSON object.
    #[error("transition metadata must be a JSON object")]
    MetadataNotObject,
    /// The database failed.
    #[error("failed to apply a task transition")]
    Database(#[from] DbError),
}

/// Applies a task transition atomically.
///
/// In one statement: the task's state moves from `expected` to the state machine's target only
/// if it is still `expected` (compare-and-set), its `most_recent_sort_key` moves to the next
/// sort key and the new transition row is inserted with it, the event as JSON and the
/// lifecycle event name, and the effects are applied to the task row (`completed_at` on
/// entering `complete`; `next_retry_at` from `retry_scheduled`, cleared on any other
/// transition; `state_entered_at`). A lost race is [`TaskTransitionError::Conflict`] with the
/// actual state and writes nothing.
pub async fn transition(
    conn: &mut PgConnection,
    request: TaskTransition<'_>,
) -> Result<AppliedTaskTransition, TaskTransitionError> {
    let task_id = request.task_id;
    let record = TaskStateMachine::new()
        .apply(request.expected, request.event)
        .map_err(|error| TaskTransitionError::Invalid { task_id, error })?;
    let empty = serde_json::Value::Object(serde_json::Map::new());
    let metadata = request.metadata.unwrap_or(&empty);
    if !metadata.is_object() {
        return Err(TaskTransitionError::MetadataNotObject);
    }
    let mark_completed = record.effects.contains(&TaskEffect::MarkCompletedAt);
    let next_retry_at = match &record.event {
        TaskEvent::RetryScheduled { retry_at } => Some(*retry_at),
        _ => None,
    };
    let transition_id = Uuid::now_v7();

    let applied: Option<(i32, DateTime<Utc>)> = sqlx::query_as(
        "WITH moved AS ( \
             UPDATE tasker.tasks SET \
                 state = $3, state_entered_at = now(), updated_at = now(), \
                 completed_at = CASE WHEN $4 THEN now() ELSE completed_at END, \
                 next_retry_at = $5, most_recent_sort_key = most_recent_sort_key + 1 \
             WHERE task_uuid = $1 AND state = $2 \
             RETURNING task_uuid, most_recent_sort_key \
         ), inserted AS ( \
             INSERT INTO tasker.task_transitions ( \
                 task_transition_uuid, task_uuid, sort_key, from_state, to_state, event, \
                 lifecycle_event, processor_uuid, metadata) \
             SELECT $6, m.task_uuid, m.most_recent_sort_key, $2, $3, $7, $8, $9, $10 \
             FROM moved m \
             RETURNING sort_key, created_at \
         ) \
         SELECT sort_key, created_at FROM inserted",
    )
    .bind(task_id.into_uuid())
    .bind(record.from)
    .bind(record.to)
    .bind(mark_completed)
    .bind(next_retry_at)
    .bind(transition_id)
    .bind(record.event_json())
    .bind(record.lifecycle_event)
    .bind(request.processor_id.map(ProcessorId::into_uuid))
    .bind(metadata)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;

    match applied {
        Some((sort_key, created_at)) => Ok(AppliedTaskTransition {
            transition_id: TaskTransitionId::from_uuid(transition_id),
            task_id,
            from: record.from,
            to: record.to,
            sort_key,
            lifecycle_event: record.lifecycle_event,
            created_at,
        }),
        None => {
            // A new statement, so under READ COMMITTED it sees the winner's committed state.
            let actual: Option<TaskState> =
                sqlx::query_scalar("SELECT state FROM tasker.tasks WHERE task_uuid = $1")
                    .bind(task_id.into_uuid())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
            Err(match actual {
                None => TaskTransitionError::NotFound { task_id },
                Some(actual) => TaskTransitionError::Conflict {
                    task_id,
                    expected: record.from,
                    actual,
                },
            })
        }
    }
}
