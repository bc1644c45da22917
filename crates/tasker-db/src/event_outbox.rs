//! The lifecycle-event outbox (`tasker.event_outbox`): every task and step transition that names
//! a lifecycle event is copied there by a trigger in the transition's own transaction, so a
//! committed transition always has its event. A relay takes a batch in event order, sends it
//! on, and deletes it in one transaction; one relay runs at a time across processes
//! ([`try_lock_relay`]), so each task's events leave in the order they were written.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_models::ids::{StepId, TaskId};
use uuid::Uuid;

use crate::error::DbError;

/// The advisory lock key of the relay (`hashtext('tasker.event_outbox.relay')` would do as
/// well; a constant keeps it readable in `pg_locks`).
const RELAY_LOCK: i64 = 0x7461_736b_6572_0001;

/// A lifecycle event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEvent {
    /// Its place in the outbox: a task's events are relayed in this order.
    pub event_id: i64,
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// The step, for a step transition.
    #[sqlx(rename = "workflow_step_uuid")]
    step_uuid: Option<Uuid>,
    /// The task's namespace (its domain-event queue).
    pub namespace_name: String,
    /// The transition's sort key within its task or step.
    pub sort_key: i32,
    /// The lifecycle event's name, e.g. `step.completed`.
    pub name: String,
    /// The state left (`None` for an initial transition).
    pub from_state: Option<String>,
    /// The state entered.
    pub to_state: String,
    /// The process that wrote the transition.
    pub processor_uuid: Option<Uuid>,
    /// When the transition happened.
    pub occurred_at: DateTime<Utc>,
}

impl OutboxEvent {
    /// The step, for a step transition.
    pub fn step_id(&self) -> Option<StepId> {
        self.step_uuid.map(StepId::from_uuid)
    }
}

/// Takes the relay's lock for the rest of the transaction; `false` if another relay holds it.
pub async fn try_lock_relay(conn: &mut PgConnection) -> Result<bool, DbError> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(conn)
        .await?;
    Ok(locked)
}

/// Deletes and returns up to `limit` events, oldest first, with their tasks' namespaces. Call
/// it inside the transaction that sends them on: a rollback puts them back.
pub async fn take_batch(conn: &mut PgConnection, limit: i64) -> Result<Vec<OutboxEvent>, DbError> {
    let events = sqlx::query_as::<_, OutboxEvent>(
        "WITH taken AS ( \
             DELETE FROM tasker.event_outbox \
             WHERE event_id IN ( \
                 SELECT event_id FROM tasker.event_outbox \
                 ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING * \
         ) \
         SELECT taken.event_id, taken.task_uuid, taken.workflow_step_uuid, ns.name AS namespace_name, \
                taken.sort_key, taken.name, taken.from_state, taken.to_state, \
                taken.processor_uuid, taken.occurred_at \
         FROM taken \
         JOIN tasker.tasks t ON t.task_uuid = taken.task_uuid \
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid \
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
         ORDER BY taken.event_id",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(events)
}

/// How many events wait to be relayed.
pub async fn pending<'c>(executor: impl PgExecutor<'c>) -> Result<i64, DbError> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tasker.event_outbox")
        .fetch_one(executor)
        .await?;
    Ok(count)
}
