//! Many task transitions in one round trip: the compare-and-set, the history rows and the
//! effects of [`super::transition`], for a batch of tasks in one statement; chains of
//! transitions of one task applied at once; and row locks on a batch of tasks.

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
    /// the two transitions would be ambiguous (a chain says it).
    #[error("task {task_id} appears more than once in the batch")]
    DuplicateInBatch {
        /// The task.
        task_id: TaskId,
    },
    /// The database failed.
    #[error("failed to apply a batch of task transitions")]
    Database(#[from] DbError),
}

/// Transitions to apply to one task one after the other, in one go: from `expected`, each
/// event applies to the state the previous one led to.
#[derive(Debug, Clone)]
pub struct TaskTransitionChain<'a> {
    /// The task.
    pub task_id: TaskId,
    /// The state the caller read; the chain applies only if the task is still in it.
    pub expected: TaskState,
    /// What happened, in order.
    pub events: Vec<TaskEvent>,
    /// The process applying them (audit only).
    pub processor_id: Option<ProcessorId>,
    /// Extra context to record with every transition of the chain (a JSON object); `None`
    /// records `{}`.
    pub metadata: Option<&'a serde_json::Value>,
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
    let chains = requests
        .into_iter()
        .map(|request| TaskTransitionChain {
            task_id: request.task_id,
            expected: request.expected,
            events: vec![request.event],
            processor_id: request.processor_id,
            metadata: request.metadata,
        })
        .collect();
    let outcomes = transition_chains(conn, chains).await?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.map(|mut applied| applied.pop().expect("a chain of one event applies one"))
        })
        .collect())
}

/// Applies a chain of transitions to each of many tasks, in one statement: for each task, the
/// same history rows, effects and errors as applying its events one after the other with
/// [`transition_batch`] in one transaction, but with one update of the task's row.
///
/// The chain applies only if the task is still in `expected`, and all of it or nothing: an
/// event the state machine refuses from the state the previous events led to fails the whole
/// chain with [`TaskTransitionError::Invalid`] before anything is sent. The rows get
/// consecutive sort keys in event order; `completed_at` is set if the chain enters `complete`,
/// and `next_retry_at` is what the last event leaves (set by `retry_scheduled`, cleared by any
/// other). An empty chain is applied trivially: it checks nothing and writes nothing.
/// Outcomes come back in input order, each the applied transitions in event order.
pub async fn transition_chains(
    conn: &mut PgConnection,
    chains: Vec<TaskTransitionChain<'_>>,
) -> Result<Vec<Result<Vec<AppliedTaskTransition>, TaskTransitionError>>, TaskBatchError> {
    let machine = TaskStateMachine::new();
    let mut outcomes: Vec<Option<Result<Vec<AppliedTaskTransition>, TaskTransitionError>>> =
        Vec::with_capacity(chains.len());
    let mut planned = Vec::with_capacity(chains.len());
    let mut seen = HashSet::with_capacity(chains.len());
    for (index, chain) in chains.into_iter().enumerate() {
        let task_id = chain.task_id;
        if !seen.insert(task_id) {
            return Err(TaskBatchError::DuplicateInBatch { task_id });
        }
        if chain.metadata.is_some_and(|m| !m.is_object()) {
            outcomes.push(Some(Err(TaskTransitionError::MetadataNotObject)));
            continue;
        }
        if chain.events.is_empty() {
            outcomes.push(Some(Ok(Vec::new())));
            continue;
        }
        let mut records = Vec::with_capacity(chain.events.len());
        let mut state = chain.expected;
        let mut refused = None;
        for event in chain.events {
            match machine.apply(state, event) {
                Ok(record) => {
                    state = record.to;
                    records.push(record);
                }
                Err(error) => {
                    refused = Some(TaskTransitionError::Invalid { task_id, error });
                    break;
                }
            }
        }
        if let Some(error) = refused {
            outcomes.push(Some(Err(error)));
            continue;
        }
        let transition_ids = records.iter().map(|_| Uuid::now_v7()).collect();
        planned.push(Planned {
            index,
            task_id,
            records,
            processor_id: chain.processor_id,
            metadata: chain.metadata.cloned(),
            transition_ids,
        });
        outcomes.push(None);
    }

    if !planned.is_empty() {
        let applied = apply(conn, &planned).await?;
        let mut failed = Vec::new();
        for plan in &planned {
            match applied.get(&plan.task_id) {
                Some(&(first_sort_key, created_at)) => {
                    let transitions = plan
                        .records
                        .iter()
                        .zip(&plan.transition_ids)
                        .zip(first_sort_key..)
                        .map(|((record, id), sort_key)| AppliedTaskTransition {
                            transition_id: TaskTransitionId::from_uuid(*id),
                            task_id: plan.task_id,
                            from: record.from,
                            to: record.to,
                            sort_key,
                            lifecycle_event: record.lifecycle_event,
                            created_at,
                        })
                        .collect();
                    outcomes[plan.index] = Some(Ok(transitions));
                }
                None => failed.push(plan),
            }
        }
        if !failed.is_empty() {
            let ids: Vec<TaskId> = failed.iter().map(|plan| plan.task_id).collect();
            let actual = task_states(conn, &ids, false).await?;
            for plan in failed {
                let task_id = plan.task_id;
                outcomes[plan.index] = Some(Err(match actual.get(&task_id) {
                    None => TaskTransitionError::NotFound { task_id },
                    Some(&actual) => TaskTransitionError::Conflict {
                        task_id,
                        expected: plan.records[0].from,
                        actual,
                    },
                }));
            }
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every chain has an outcome"))
        .collect())
}

/// Locks tasks for the rest of the caller's transaction, in id order (so that lockers of
/// overlapping batches cannot deadlock), and returns the state each is in; tasks that do not
/// exist are absent. Under READ COMMITTED a lock waits for the transaction holding it and then
/// reports the state it committed, so a caller that read the state here can apply a transition
/// (or a chain) from it without a conflict, and decide on data read after the lock.
pub async fn lock_batch(
    conn: &mut PgConnection,
    task_ids: &[TaskId],
) -> Result<HashMap<TaskId, TaskState>, DbError> {
    if task_ids.is_empty() {
        return Ok(HashMap::new());
    }
    task_states(conn, task_ids, true).await
}

struct Planned {
    index: usize,
    task_id: TaskId,
    records: Vec<TaskTransitionRecord>,
    processor_id: Option<ProcessorId>,
    metadata: Option<serde_json::Value>,
    transition_ids: Vec<Uuid>,
}

/// The SQL side: [`super::transition`]'s statement over arrays, a chain's rows per task, with
/// the tasks locked in id order first. Returns the applied tasks with the sort key of their
/// chain's first row and the time.
async fn apply(
    conn: &mut PgConnection,
    planned: &[Planned],
) -> Result<HashMap<TaskId, (i32, DateTime<Utc>)>, DbError> {
    let n = planned.len();
    let mut task_ids = Vec::with_capacity(n);
    let mut from = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut lengths = Vec::with_capacity(n);
    let mut mark_completed = Vec::with_capacity(n);
    let mut next_retry_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut row_tasks = Vec::with_capacity(n);
    let mut row_ords = Vec::with_capacity(n);
    let mut row_ids = Vec::with_capacity(n);
    let mut row_from = Vec::with_capacity(n);
    let mut row_to = Vec::with_capacity(n);
    let mut row_events = Vec::with_capacity(n);
    let mut row_lifecycle = Vec::with_capacity(n);
    let mut row_processors: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let mut row_metadata = Vec::with_capacity(n);
    for plan in planned {
        let (Some(first), Some(last)) = (plan.records.first(), plan.records.last()) else {
            continue;
        };
        let task = plan.task_id.into_uuid();
        task_ids.push(task);
        from.push(first.from);
        to.push(last.to);
        lengths.push(i32::try_from(plan.records.len()).unwrap_or(i32::MAX));
        mark_completed.push(
            plan.records
                .iter()
                .any(|record| record.effects.contains(&TaskEffect::MarkCompletedAt)),
        );
        next_retry_at.push(match &last.event {
            TaskEvent::RetryScheduled { retry_at } => Some(*retry_at),
            _ => None,
        });
        let metadata = plan
            .metadata
            .clone()
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
        for ((ord, record), id) in (1..).zip(&plan.records).zip(&plan.transition_ids) {
            row_tasks.push(task);
            row_ords.push(ord);
            row_ids.push(*id);
            row_from.push(record.from);
            row_to.push(record.to);
            row_events.push(record.event_json());
            row_lifecycle.push(record.lifecycle_event);
            row_processors.push(plan.processor_id.map(ProcessorId::into_uuid));
            row_metadata.push(metadata.clone());
        }
    }
    let rows: Vec<(Uuid, i32, DateTime<Utc>)> = sqlx::query_as(
        "WITH chains AS ( \
             SELECT * FROM unnest( \
                 $1::uuid[], $2::task_state[], $3::task_state[], $4::int4[], $5::bool[], \
                 $6::timestamptz[] \
             ) AS c (task_uuid, from_state, to_state, length, mark_completed, next_retry_at) \
         ), input AS ( \
             SELECT * FROM unnest( \
                 $7::uuid[], $8::int4[], $9::uuid[], $10::task_state[], $11::task_state[], \
                 $12::jsonb[], $13::text[], $14::uuid[], $15::jsonb[] \
             ) AS i (task_uuid, ord, transition_uuid, from_state, to_state, event, lifecycle, \
                     processor_uuid, metadata) \
         ), locked AS ( \
             SELECT t.task_uuid \
             FROM tasker.tasks t \
             WHERE t.task_uuid IN (SELECT task_uuid FROM chains) \
             ORDER BY t.task_uuid \
             FOR UPDATE OF t \
         ), moved AS ( \
             UPDATE tasker.tasks t SET \
                 state = c.to_state, state_entered_at = now(), updated_at = now(), \
                 completed_at = CASE WHEN c.mark_completed THEN now() ELSE t.completed_at END, \
                 next_retry_at = c.next_retry_at, \
                 most_recent_sort_key = t.most_recent_sort_key + c.length \
             FROM chains c \
             JOIN locked l ON l.task_uuid = c.task_uuid \
             WHERE t.task_uuid = c.task_uuid AND t.state = c.from_state \
             RETURNING t.task_uuid, t.most_recent_sort_key - c.length AS base \
         ), inserted AS ( \
             INSERT INTO tasker.task_transitions ( \
                 task_transition_uuid, task_uuid, sort_key, from_state, to_state, event, \
                 lifecycle_event, processor_uuid, metadata) \
             SELECT i.transition_uuid, i.task_uuid, m.base + i.ord, i.from_state, i.to_state, \
                    i.event, i.lifecycle, i.processor_uuid, i.metadata \
             FROM moved m \
             JOIN input i ON i.task_uuid = m.task_uuid \
             RETURNING task_uuid, sort_key, created_at \
         ) \
         SELECT task_uuid, min(sort_key), min(created_at) FROM inserted GROUP BY task_uuid",
    )
    .bind(&task_ids)
    .bind(&from)
    .bind(&to)
    .bind(&lengths)
    .bind(&mark_completed)
    .bind(&next_retry_at)
    .bind(&row_tasks)
    .bind(&row_ords)
    .bind(&row_ids)
    .bind(&row_from)
    .bind(&row_to)
    .bind(&row_events)
    .bind(&row_lifecycle)
    .bind(&row_processors)
    .bind(&row_metadata)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(task, sort_key, created_at)| (TaskId::from_uuid(task), (sort_key, created_at)))
        .collect())
}

/// The current state of tasks whose transition was not applied (a new statement, so under
/// READ COMMITTED it sees what the winners committed); absent tasks do not exist.
/// The state of each task that exists; with `lock`, the rows are locked in id order first.
/// (A conflict's report reads without locking: a task is not locked for a transition that
/// did not apply.)
async fn task_states(
    conn: &mut PgConnection,
    task_ids: &[TaskId],
    lock: bool,
) -> Result<HashMap<TaskId, TaskState>, DbError> {
    let ids: Vec<Uuid> = task_ids.iter().map(|id| id.into_uuid()).collect();
    let sql = if lock {
        "SELECT t.task_uuid, t.state FROM tasker.tasks t \
         WHERE t.task_uuid = ANY($1) \
         ORDER BY t.task_uuid \
         FOR UPDATE OF t"
    } else {
        "SELECT t.task_uuid, t.state FROM tasker.tasks t WHERE t.task_uuid = ANY($1)"
    };
    let rows: Vec<(Uuid, TaskState)> = sqlx::query_as(sql).bind(&ids).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(task, state)| (TaskId::from_uuid(task), state))
        .collect())
}
