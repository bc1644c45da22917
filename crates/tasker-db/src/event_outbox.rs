//! The event outbox (`tasker.event_outbox`): every task and step transition that names a
//! lifecycle event is copied there by a trigger in the transition's own transaction, so a
//! committed transition always has its event; the domain events a step handler published are
//! written there by the worker ([`insert_domain_events`]) in the transaction that stores the
//! step's result. A relay takes a batch in event order, sends it on, and deletes it in one
//! transaction; one relay runs at a time across processes ([`try_lock_relay`]), so each task's
//! events, of both kinds, leave in the order they were written.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_models::ids::{StepId, TaskId};
use uuid::Uuid;

use crate::error::DbError;

/// The advisory lock key of the relay (`hashtext('tasker.event_outbox.relay')` would do as
/// well; a constant keeps it readable in `pg_locks`).
const RELAY_LOCK: i64 = 0x7461_736b_6572_0001;

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxEntry {
    /// A task or step transition.
    Lifecycle(OutboxEvent),
    /// A domain event a step handler published.
    Domain(OutboxDomainEvent),
}

impl OutboxEntry {
    /// Its place in the outbox: a task's events are relayed in this order.
    pub fn event_id(&self) -> i64 {
        match self {
            OutboxEntry::Lifecycle(event) => event.event_id,
            OutboxEntry::Domain(event) => event.event_id,
        }
    }

    /// The task it belongs to.
    pub fn task_id(&self) -> TaskId {
        match self {
            OutboxEntry::Lifecycle(event) => event.task_id,
            OutboxEntry::Domain(event) => event.task_id,
        }
    }

    /// The task's namespace (its domain-event queue).
    pub fn namespace_name(&self) -> &str {
        match self {
            OutboxEntry::Lifecycle(event) => &event.namespace_name,
            OutboxEntry::Domain(event) => &event.namespace_name,
        }
    }
}

/// A lifecycle event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Its place in the outbox: a task's events are relayed in this order.
    pub event_id: i64,
    /// The task.
    pub task_id: TaskId,
    /// The step, for a step transition.
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

/// A domain event waiting in the outbox, with what its message needs of its task.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDomainEvent {
    /// Its place in the outbox (shared with lifecycle events).
    pub event_id: i64,
    /// The event's own id (a UUID v7), the same on every delivery.
    pub domain_event_id: Uuid,
    /// The task.
    pub task_id: TaskId,
    /// The step whose handler published it.
    pub step_id: Option<StepId>,
    /// The task's namespace (its domain-event queue).
    pub namespace_name: String,
    /// The version of the task's template.
    pub template_version: String,
    /// The task's correlation id.
    pub correlation_id: Uuid,
    /// The declared name, e.g. `payment.processed`.
    pub name: String,
    /// The payload, valid against the declared schema when it was published.
    pub payload: serde_json::Value,
    /// The worker process that stored it.
    pub processor_uuid: Option<Uuid>,
    /// When the handler published it.
    pub occurred_at: DateTime<Utc>,
}

/// A domain event to write with a step's result.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDomainEvent {
    /// The event's own id (a UUID v7).
    pub domain_event_id: Uuid,
    /// The task.
    pub task_id: TaskId,
    /// The step whose handler published it.
    pub step_id: StepId,
    /// The declared name.
    pub name: String,
    /// The payload (already checked against the declared schema).
    pub payload: serde_json::Value,
    /// When the handler published it.
    pub occurred_at: DateTime<Utc>,
}

/// Writes domain events into the outbox, in the order given (one statement). Call it in the
/// transaction that stores the publishing step's result: a rollback takes them back with it.
pub async fn insert_domain_events(
    conn: &mut PgConnection,
    events: &[NewDomainEvent],
    processor: Option<Uuid>,
) -> Result<u64, DbError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut tasks = Vec::with_capacity(events.len());
    let mut steps = Vec::with_capacity(events.len());
    let mut names = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    for event in events {
        ids.push(event.domain_event_id);
        tasks.push(event.task_id.into_uuid());
        steps.push(event.step_id.into_uuid());
        names.push(event.name.clone());
        payloads.push(event.payload.clone());
        times.push(event.occurred_at);
    }
    let result = sqlx::query(
        "INSERT INTO tasker.event_outbox \
             (kind, domain_event_uuid, task_uuid, workflow_step_uuid, name, payload, \
              processor_uuid, occurred_at) \
         SELECT 'domain', e.id, e.task, e.step, e.name, e.payload, $7, e.at \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], \
                     $6::timestamptz[]) WITH ORDINALITY AS e(id, task, step, name, payload, at, n) \
         ORDER BY e.n",
    )
    .bind(&ids)
    .bind(&tasks)
    .bind(&steps)
    .bind(&names)
    .bind(&payloads)
    .bind(&times)
    .bind(processor)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Takes the relay's lock for the rest of the transaction; `false` if another relay holds it.
pub async fn try_lock_relay(conn: &mut PgConnection) -> Result<bool, DbError> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(conn)
        .await?;
    Ok(locked)
}

/// An outbox row as `take_batch` reads it.
#[derive(sqlx::FromRow)]
struct Row {
    event_id: i64,
    kind: String,
    task_uuid: Uuid,
    workflow_step_uuid: Option<Uuid>,
    namespace_name: String,
    template_version: String,
    correlation_id: Uuid,
    sort_key: Option<i32>,
    name: String,
    from_state: Option<String>,
    to_state: Option<String>,
    domain_event_uuid: Option<Uuid>,
    payload: Option<serde_json::Value>,
    processor_uuid: Option<Uuid>,
    occurred_at: DateTime<Utc>,
}

impl Row {
    fn entry(self) -> Result<OutboxEntry, DbError> {
        let task_id = TaskId::from_uuid(self.task_uuid);
        let invalid = |what: &str| {
            // The table's CHECK constraint rules this out.
            DbError::Decode(sqlx::Error::Protocol(format!(
                "outbox row {} ({} event) has no {what}",
                self.event_id, self.kind
            )))
        };
        match self.kind.as_str() {
            "domain" => Ok(OutboxEntry::Domain(OutboxDomainEvent {
                event_id: self.event_id,
                domain_event_id: self
                    .domain_event_uuid
                    .ok_or_else(|| invalid("domain_event_uuid"))?,
                task_id,
                step_id: self.workflow_step_uuid.map(StepId::from_uuid),
                namespace_name: self.namespace_name,
                template_version: self.template_version,
                correlation_id: self.correlation_id,
                name: self.name,
                payload: self.payload.ok_or_else(|| invalid("payload"))?,
                processor_uuid: self.processor_uuid,
                occurred_at: self.occurred_at,
            })),
            _ => Ok(OutboxEntry::Lifecycle(OutboxEvent {
                event_id: self.event_id,
                task_id,
                step_uuid: self.workflow_step_uuid,
                sort_key: self.sort_key.ok_or_else(|| invalid("sort_key"))?,
                to_state: self.to_state.clone().ok_or_else(|| invalid("to_state"))?,
                namespace_name: self.namespace_name,
                name: self.name,
                from_state: self.from_state,
                processor_uuid: self.processor_uuid,
                occurred_at: self.occurred_at,
            })),
        }
    }
}

/// Deletes and returns up to `limit` events of both kinds, oldest first, with what their
/// messages need of their tasks (namespace, template version, correlation id). Call it inside
/// the transaction that sends them on: a rollback puts them back.
pub async fn take_batch(conn: &mut PgConnection, limit: i64) -> Result<Vec<OutboxEntry>, DbError> {
    let rows = sqlx::query_as::<_, Row>(
        "WITH taken AS ( \
             DELETE FROM tasker.event_outbox \
             WHERE event_id IN ( \
                 SELECT event_id FROM tasker.event_outbox \
                 ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING * \
         ) \
         SELECT taken.event_id, taken.kind, taken.task_uuid, taken.workflow_step_uuid, \
                ns.name AS namespace_name, nt.version AS template_version, t.correlation_id, \
                taken.sort_key, taken.name, taken.from_state, taken.to_state, \
                taken.domain_event_uuid, taken.payload, taken.processor_uuid, taken.occurred_at \
         FROM taken \
         JOIN tasker.tasks t ON t.task_uuid = taken.task_uuid \
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid \
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
         ORDER BY taken.event_id",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Row::entry).collect()
}

/// How many events wait to be relayed.
pub async fn pending<'c>(executor: impl PgExecutor<'c>) -> Result<i64, DbError> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tasker.event_outbox")
        .fetch_one(executor)
        .await?;
    Ok(count)
}
