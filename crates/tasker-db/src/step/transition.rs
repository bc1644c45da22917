//! Atomic step transitions, one or many per round trip: compare-and-set on the step's state,
//! the guard evaluated in the same statement, the transition row and the effects.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_models::ids::{ProcessorId, StepId, StepTransitionId, TaskId};
use tasker_state::{
    BackoffPolicy, DependencyStatus, GuardError, InvalidStepTransition, JitterSample, RetryContext,
    StepEffect, StepEvent, StepGuard, StepGuardContext, StepState, StepStateMachine,
    StepTransitionRecord, TaskState,
};
use uuid::Uuid;

use crate::error::DbError;
use crate::readiness::{BackoffParams, millis};

/// A step transition to apply: the state the caller believes the step is in and the event.
#[derive(Debug, Clone)]
pub struct StepTransition {
    /// The step.
    pub step_id: StepId,
    /// The state the caller read; the transition applies only if the step is still in it.
    pub expected: StepState,
    /// What happened.
    pub event: StepEvent,
    /// Extra context to record with the transition (a JSON object); `None` records `{}`.
    pub metadata: Option<serde_json::Value>,
}

impl StepTransition {
    /// A transition without metadata.
    pub fn new(step_id: StepId, expected: StepState, event: StepEvent) -> Self {
        Self {
            step_id,
            expected,
            event,
            metadata: None,
        }
    }
}

/// A step transition that was applied and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedStepTransition {
    /// The recorded transition row.
    pub transition_id: StepTransitionId,
    /// The step.
    pub step_id: StepId,
    /// The step's task.
    pub task_id: TaskId,
    /// The state it left.
    pub from: StepState,
    /// The state it entered.
    pub to: StepState,
    /// Its position in the step's history (1 is the initial `pending`).
    pub sort_key: i32,
    /// The lifecycle event to publish, e.g. `step.enqueue_requested`.
    pub lifecycle_event: &'static str,
    /// When it happened (the transaction's time).
    pub created_at: DateTime<Utc>,
}

/// Why a step transition was not applied. Nothing was written for it.
#[derive(Debug, thiserror::Error)]
pub enum StepTransitionError {
    /// The state machine has no such transition from the expected state.
    ///
    /// The refusal is part of the message, not a [`source`](std::error::Error::source), like
    /// the guard's in [`StepTransitionError::GuardFailed`]: a chain printer would otherwise
    /// print it twice.
    #[error("step {step_id}: {error}")]
    Invalid {
        /// The step.
        step_id: StepId,
        /// The state machine's refusal.
        error: InvalidStepTransition,
    },
    /// The step is no longer in the expected state: another actor moved it first. (If `actual`
    /// equals `expected`, the guard's inputs changed while the transition was evaluated.)
    #[error("step {step_id} is `{actual}`, not `{expected}`: another actor changed it first")]
    Conflict {
        /// The step.
        step_id: StepId,
        /// The state the caller expected.
        expected: StepState,
        /// The state it is actually in.
        actual: StepState,
    },
    /// The transition's guard rejected it, evaluated on the database's current data.
    #[error("step {step_id}: {error}")]
    GuardFailed {
        /// The step.
        step_id: StepId,
        /// The guard and why it failed.
        error: GuardError,
    },
    /// No such step.
    #[error("step {step_id} does not exist")]
    NotFound {
        /// The step.
        step_id: StepId,
    },
    /// The same step appears twice in one batch.
    #[error("step {step_id} appears more than once in the batch")]
    DuplicateInBatch {
        /// The step.
        step_id: StepId,
    },
    /// The metadata is not a JSON object.
    #[error("step {step_id}: transition metadata must be a JSON object")]
    MetadataNotObject {
        /// The step.
        step_id: StepId,
    },
    /// The database failed.
    #[error("failed to apply a step transition")]
    Database(#[from] DbError),
}

/// Applies one step transition atomically; see [`transition_batch`].
pub async fn transition(
    conn: &mut PgConnection,
    request: StepTransition,
    processor_id: Option<ProcessorId>,
    backoff: BackoffParams,
) -> Result<AppliedStepTransition, StepTransitionError> {
    let mut results = transition_batch(conn, vec![request], processor_id, backoff).await?;
    results.pop().unwrap_or_else(|| {
        Err(StepTransitionError::Database(DbError::Other(
            sqlx::Error::RowNotFound,
        )))
    })
}

/// Applies many step transitions in one statement; each succeeds or fails on its own and the
/// results come back in input order.
///
/// For each step: the state moves from `expected` to the state machine's target only if it is
/// still `expected` and the transition's guard holds on the current rows (parents complete or
/// resolved manually; the stored result succeeded; retry-eligible with `backoff` and the
/// backoff elapsed), its `most_recent_sort_key` moves to the next sort key and the new row is
/// inserted with it, the event as JSON and the lifecycle event name, and the effects are
/// applied to the step row (attempts, last_attempted_at, results, completed_at, processed_at,
/// backoff, failure retryability). Steps are locked in id order, so concurrent batches cannot
/// deadlock each other. A result handed to orchestration (`enqueued_for_orchestration`) also
/// gets an audit row naming the processor.
///
/// The outer `Result` fails only if the database does; then nothing of the batch was written
/// (unless the caller's transaction already committed parts).
pub async fn transition_batch(
    conn: &mut PgConnection,
    requests: Vec<StepTransition>,
    processor_id: Option<ProcessorId>,
    backoff: BackoffParams,
) -> Result<Vec<Result<AppliedStepTransition, StepTransitionError>>, DbError> {
    let (outcomes, _) = run_batch(conn, requests, processor_id, backoff, false).await?;
    Ok(outcomes)
}

/// The outcomes of a batch that locked its steps' tasks, and those tasks' states.
pub type LockedTasksBatch = (
    Vec<Result<AppliedStepTransition, StepTransitionError>>,
    HashMap<TaskId, TaskState>,
);

/// [`transition_batch`] for a caller that decides on tasks after moving their steps (an
/// orchestrator recording step results): in the same statement, before any step row, it locks
/// the tasks of every requested step (`FOR UPDATE`, in task id order: the order every path
/// takes, tasks before their steps, so it cannot deadlock with a claim or another batch) and
/// returns their states, as read under the lock. The locks last until the caller's transaction
/// ends; call it inside one. Tasks of unknown steps are not in the map.
///
/// One round trip instead of two ([`crate::task::lock_batch`], then [`transition_batch`]),
/// with one difference: the statement's snapshot is taken before it waits for a task lock. The
/// step rows it locks and moves are re-checked at their newest version, so compare-and-set
/// holds, but a guard that reads other rows (`dependencies_satisfied` reads the parents) sees
/// that snapshot, not what a task holder committed meanwhile. Use it for transitions whose
/// guard reads only the step (complete, fail, retry); take the locks first with `lock_batch`
/// for the others.
pub async fn transition_batch_locking_tasks(
    conn: &mut PgConnection,
    requests: Vec<StepTransition>,
    processor_id: Option<ProcessorId>,
    backoff: BackoffParams,
) -> Result<LockedTasksBatch, DbError> {
    run_batch(conn, requests, processor_id, backoff, true).await
}

async fn run_batch(
    conn: &mut PgConnection,
    requests: Vec<StepTransition>,
    processor_id: Option<ProcessorId>,
    backoff: BackoffParams,
    lock_tasks: bool,
) -> Result<LockedTasksBatch, DbError> {
    let all_steps: Vec<Uuid> = if lock_tasks {
        requests.iter().map(|r| r.step_id.into_uuid()).collect()
    } else {
        Vec::new()
    };
    let machine = StepStateMachine::new();
    let mut outcomes: Vec<Option<Result<AppliedStepTransition, StepTransitionError>>> =
        Vec::with_capacity(requests.len());
    let mut planned: Vec<Planned> = Vec::new();
    let mut seen = HashSet::new();
    for (index, request) in requests.into_iter().enumerate() {
        let step_id = request.step_id;
        let outcome = if !seen.insert(step_id) {
            Some(Err(StepTransitionError::DuplicateInBatch { step_id }))
        } else if request.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            Some(Err(StepTransitionError::MetadataNotObject { step_id }))
        } else {
            match machine.apply_unguarded(request.expected, request.event) {
                Ok(record) => {
                    planned.push(Planned {
                        index,
                        step_id,
                        record,
                        metadata: request.metadata,
                        transition_id: Uuid::now_v7(),
                    });
                    None
                }
                Err(error) => Some(Err(StepTransitionError::Invalid { step_id, error })),
            }
        };
        outcomes.push(outcome);
    }

    let mut task_states = HashMap::new();
    if !planned.is_empty() || (lock_tasks && !all_steps.is_empty()) {
        let locks = lock_tasks.then_some(all_steps.as_slice());
        let (applied, states) = apply(conn, &planned, processor_id, backoff, locks).await?;
        task_states = states;
        let mut failed = Vec::new();
        for plan in &planned {
            match applied.get(&plan.step_id) {
                Some(&(task_id, sort_key, created_at)) => {
                    outcomes[plan.index] = Some(Ok(AppliedStepTransition {
                        transition_id: StepTransitionId::from_uuid(plan.transition_id),
                        step_id: plan.step_id,
                        task_id: TaskId::from_uuid(task_id),
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
            let explained = explain_failures(conn, &failed, backoff).await?;
            for (plan, error) in failed.into_iter().zip(explained) {
                outcomes[plan.index] = Some(Err(error));
            }
        }
    }
    let outcomes = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every request has an outcome"))
        .collect();
    Ok((outcomes, task_states))
}

struct Planned {
    index: usize,
    step_id: StepId,
    record: StepTransitionRecord,
    metadata: Option<serde_json::Value>,
    transition_id: Uuid,
}

/// The statement of a batch, with `$task_locks` (a CTE that locks the steps' tasks, or
/// nothing), `$after_task_locks` (a condition that makes the step locks wait for it) and
/// `$select` (the final SELECT). Parameters: the transitions' arrays ($1..$18), the processor
/// ($19), the backoff ($20..$22) and, when tasks are locked, every requested step ($23).
macro_rules! step_transitions_sql {
    ($task_locks:literal, $after_task_locks:literal, $select:literal) => {
        concat!(
            "WITH input AS ( \
             SELECT * FROM unnest( \
                 $1::uuid[], $2::step_state[], $3::step_state[], $4::text[], $5::jsonb[], \
                 $6::text[], $7::uuid[], $8::bool[], $9::bool[], $10::bool[], $11::jsonb[], \
                 $12::bool[], $13::bool[], $14::int8[], $15::bool[], $16::bool[], $17::bool[], \
                 $18::jsonb[] \
             ) AS i (step_uuid, from_state, to_state, guard, event, lifecycle, transition_uuid, \
                     inc_attempts, set_last_attempted, store_result, result, mark_completed, \
                     set_backoff, backoff_ms, set_failure_retryable, failure_retryable, \
                     reset_attempts, metadata) ",
            $task_locks,
            "), locked AS ( \
             SELECT s.workflow_step_uuid \
             FROM tasker.workflow_steps s \
             WHERE s.workflow_step_uuid IN (SELECT step_uuid FROM input) ",
            $after_task_locks,
            " ORDER BY s.workflow_step_uuid \
             FOR UPDATE OF s \
         ), moved AS ( \
             UPDATE tasker.workflow_steps s SET \
                 state = i.to_state, \
                 state_entered_at = now(), \
                 updated_at = now(), \
                 attempts = CASE WHEN i.reset_attempts THEN 0 \
                                 WHEN i.inc_attempts THEN s.attempts + 1 \
                                 ELSE s.attempts END, \
                 last_attempted_at = CASE WHEN i.set_last_attempted THEN now() \
                                          ELSE s.last_attempted_at END, \
                 results = CASE WHEN i.store_result THEN i.result ELSE s.results END, \
                 completed_at = CASE WHEN i.mark_completed THEN now() ELSE s.completed_at END, \
                 processed_at = CASE WHEN i.to_state IN ('complete', 'cancelled', 'resolved_manually') \
                                     THEN now() ELSE s.processed_at END, \
                 backoff_request_ms = CASE WHEN i.set_backoff THEN i.backoff_ms \
                                           ELSE s.backoff_request_ms END, \
                 failure_retryable = CASE WHEN i.set_failure_retryable THEN i.failure_retryable \
                                          ELSE s.failure_retryable END, \
                 most_recent_sort_key = s.most_recent_sort_key + 1 \
             FROM input i \
             JOIN locked l ON l.workflow_step_uuid = i.step_uuid \
             WHERE s.workflow_step_uuid = i.step_uuid \
               AND s.state = i.from_state \
               AND CASE i.guard \
                   WHEN 'dependencies_satisfied' THEN NOT EXISTS ( \
                       SELECT 1 FROM tasker.workflow_step_edges e \
                       JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid \
                       WHERE e.to_step_uuid = s.workflow_step_uuid \
                         AND p.state NOT IN ('complete', 'resolved_manually')) \
                   WHEN 'not_in_progress' THEN s.state <> 'in_progress' \
                   WHEN 'result_succeeded' THEN coalesce(s.results -> 'success' = 'true'::jsonb, false) \
                   WHEN 'retry_eligible' THEN \
                       tasker.step_retry_eligible(s.attempts, s.max_attempts, s.retryable, \
                                                  s.failure_retryable) \
                       AND (s.last_attempted_at IS NULL \
                            OR s.last_attempted_at \
                               + tasker.step_backoff_ms(s.backoff_request_ms, s.attempts, \
                                                        $20, $21, $22) \
                                 * interval '1 millisecond' <= now()) \
                   ELSE true \
               END \
             RETURNING s.workflow_step_uuid, s.task_uuid, s.results, s.most_recent_sort_key, \
                       i.from_state, i.to_state, i.event, i.lifecycle, i.transition_uuid, \
                       i.metadata \
         ), inserted AS ( \
             INSERT INTO tasker.workflow_step_transitions ( \
                 workflow_step_transition_uuid, workflow_step_uuid, task_uuid, sort_key, \
                 from_state, to_state, event, lifecycle_event, processor_uuid, metadata) \
             SELECT m.transition_uuid, m.workflow_step_uuid, m.task_uuid, \
                    m.most_recent_sort_key, m.from_state, m.to_state, m.event, m.lifecycle, \
                    $19, coalesce(m.metadata, '{}'::jsonb) \
             FROM moved m \
             RETURNING workflow_step_uuid, task_uuid, sort_key, created_at \
         ), audited AS ( \
             INSERT INTO tasker.workflow_step_result_audit ( \
                 workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid, \
                 correlation_id, success, execution_time_ms) \
             SELECT m.workflow_step_uuid, m.transition_uuid, m.task_uuid, $19, \
                    (SELECT t.correlation_id FROM tasker.tasks t WHERE t.task_uuid = m.task_uuid), \
                    coalesce(m.results -> 'success' = 'true'::jsonb, false), \
                    CASE WHEN jsonb_typeof(m.results -> 'metadata' -> 'execution_time_ms') = 'number' \
                          AND (m.results -> 'metadata' ->> 'execution_time_ms')::numeric \
                              BETWEEN 0 AND 9223372036854775807 \
                         THEN (m.results -> 'metadata' ->> 'execution_time_ms')::numeric::bigint \
                    END \
             FROM moved m \
             WHERE m.to_state = 'enqueued_for_orchestration' \
         ) ",
            $select
        )
    };
}

/// Steps only.
const APPLY: &str = step_transitions_sql!(
    "",
    "",
    "SELECT workflow_step_uuid, task_uuid, sort_key, created_at, NULL::task_state AS task_state \
     FROM inserted"
);

/// Tasks first: `task_locks` is materialised (every task locked) by the scalar subquery in
/// `locked`'s filter, evaluated once before the first step row is locked.
const APPLY_LOCKING_TASKS: &str = step_transitions_sql!(
    "), task_locks AS MATERIALIZED ( \
         SELECT t.task_uuid, t.state \
         FROM tasker.tasks t \
         WHERE t.task_uuid IN ( \
             SELECT s.task_uuid FROM tasker.workflow_steps s \
             WHERE s.workflow_step_uuid = ANY($23::uuid[])) \
         ORDER BY t.task_uuid \
         FOR UPDATE OF t ",
    "AND (SELECT count(*) FROM task_locks) >= 0",
    "SELECT workflow_step_uuid, task_uuid, sort_key, created_at, NULL::task_state AS task_state \
     FROM inserted \
     UNION ALL \
     SELECT NULL, task_uuid, NULL, NULL, state FROM task_locks"
);

/// One row of a batch's statement: an applied step transition, or a locked task's state.
type AppliedRow = (
    Option<Uuid>,
    Uuid,
    Option<i32>,
    Option<DateTime<Utc>>,
    Option<TaskState>,
);

/// The SQL side of a batch: one statement over arrays. Returns the applied steps with their
/// task, sort key and time, and, when `lock_tasks` names the requested steps, the states of
/// their tasks, locked first.
async fn apply(
    conn: &mut PgConnection,
    planned: &[Planned],
    processor_id: Option<ProcessorId>,
    backoff: BackoffParams,
    lock_tasks: Option<&[Uuid]>,
) -> Result<
    (
        HashMap<StepId, (Uuid, i32, DateTime<Utc>)>,
        HashMap<TaskId, TaskState>,
    ),
    DbError,
> {
    let n = planned.len();
    let mut columns = Columns::with_capacity(n);
    for plan in planned {
        columns.push(plan);
    }
    let sql = if lock_tasks.is_some() {
        APPLY_LOCKING_TASKS
    } else {
        APPLY
    };
    let mut query = sqlx::query_as::<_, AppliedRow>(sql)
        .bind(&columns.step_ids)
        .bind(&columns.from)
        .bind(&columns.to)
        .bind(&columns.guard)
        .bind(&columns.event)
        .bind(&columns.lifecycle)
        .bind(&columns.transition_ids)
        .bind(&columns.inc_attempts)
        .bind(&columns.set_last_attempted)
        .bind(&columns.store_result)
        .bind(&columns.result)
        .bind(&columns.mark_completed)
        .bind(&columns.set_backoff)
        .bind(&columns.backoff_ms)
        .bind(&columns.set_failure_retryable)
        .bind(&columns.failure_retryable)
        .bind(&columns.reset_attempts)
        .bind(&columns.metadata)
        .bind(processor_id.map(ProcessorId::into_uuid))
        .bind(backoff.base_ms)
        .bind(backoff.multiplier)
        .bind(backoff.max_ms);
    if let Some(steps) = lock_tasks {
        query = query.bind(steps);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut applied = HashMap::with_capacity(n);
    let mut tasks = HashMap::new();
    for (step, task, sort_key, created_at, task_state) in rows {
        match (step, sort_key, created_at, task_state) {
            (Some(step), Some(sort_key), Some(created_at), _) => {
                applied.insert(StepId::from_uuid(step), (task, sort_key, created_at));
            }
            (None, _, _, Some(state)) => {
                tasks.insert(TaskId::from_uuid(task), state);
            }
            _ => {}
        }
    }
    Ok((applied, tasks))
}

/// The batch's arrays, one element per planned transition.
struct Columns {
    step_ids: Vec<Uuid>,
    from: Vec<StepState>,
    to: Vec<StepState>,
    guard: Vec<Option<&'static str>>,
    event: Vec<serde_json::Value>,
    lifecycle: Vec<&'static str>,
    transition_ids: Vec<Uuid>,
    inc_attempts: Vec<bool>,
    set_last_attempted: Vec<bool>,
    store_result: Vec<bool>,
    result: Vec<Option<serde_json::Value>>,
    mark_completed: Vec<bool>,
    set_backoff: Vec<bool>,
    backoff_ms: Vec<Option<i64>>,
    set_failure_retryable: Vec<bool>,
    failure_retryable: Vec<bool>,
    reset_attempts: Vec<bool>,
    metadata: Vec<Option<serde_json::Value>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Columns {
            step_ids: Vec::with_capacity(n),
            from: Vec::with_capacity(n),
            to: Vec::with_capacity(n),
            guard: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            lifecycle: Vec::with_capacity(n),
            transition_ids: Vec::with_capacity(n),
            inc_attempts: Vec::with_capacity(n),
            set_last_attempted: Vec::with_capacity(n),
            store_result: Vec::with_capacity(n),
            result: Vec::with_capacity(n),
            mark_completed: Vec::with_capacity(n),
            set_backoff: Vec::with_capacity(n),
            backoff_ms: Vec::with_capacity(n),
            set_failure_retryable: Vec::with_capacity(n),
            failure_retryable: Vec::with_capacity(n),
            reset_attempts: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, plan: &Planned) {
        let record = &plan.record;
        self.step_ids.push(plan.step_id.into_uuid());
        self.from.push(record.from);
        self.to.push(record.to);
        self.guard.push(record.guard.map(StepGuard::as_str));
        self.event.push(record.event_json());
        self.lifecycle.push(record.lifecycle_event);
        self.transition_ids.push(plan.transition_id);
        self.metadata.push(plan.metadata.clone());
        let (mut inc, mut last, mut store, mut complete, mut reset) =
            (false, false, false, false, false);
        let mut result = None;
        let mut backoff = None;
        let mut failure_retryable = None;
        for effect in &record.effects {
            match effect {
                StepEffect::IncrementAttempts => inc = true,
                StepEffect::SetLastAttemptedAt => last = true,
                StepEffect::StoreResult(value) => {
                    store = true;
                    result = Some(value.clone());
                }
                StepEffect::MarkCompletedAt => complete = true,
                StepEffect::SetBackoff(duration) => backoff = Some(duration.map(millis)),
                StepEffect::SetFailureRetryable(value) => failure_retryable = Some(*value),
                StepEffect::ResetAttempts => reset = true,
            }
        }
        self.inc_attempts.push(inc);
        self.set_last_attempted.push(last);
        self.store_result.push(store);
        self.result.push(result);
        self.mark_completed.push(complete);
        self.set_backoff.push(backoff.is_some());
        self.backoff_ms.push(backoff.flatten());
        self.set_failure_retryable.push(failure_retryable.is_some());
        self.failure_retryable
            .push(failure_retryable.unwrap_or(true));
        self.reset_attempts.push(reset);
    }
}

/// What the database says about a step whose transition was not applied.
#[derive(sqlx::FromRow)]
struct StepFacts {
    workflow_step_uuid: Uuid,
    state: StepState,
    attempts: i32,
    max_attempts: i32,
    retryable: bool,
    failure_retryable: bool,
    last_attempted_at: Option<DateTime<Utc>>,
    backoff_request_ms: Option<i64>,
    result_success: Option<bool>,
    parents: i64,
    satisfied_parents: i64,
    now: DateTime<Utc>,
}

/// Reads the current rows of steps whose transition was not applied (a new statement, so
/// under READ COMMITTED it sees what the winners committed) and says why each failed.
async fn explain_failures(
    conn: &mut PgConnection,
    failed: &[&Planned],
    backoff: BackoffParams,
) -> Result<Vec<StepTransitionError>, DbError> {
    let ids: Vec<Uuid> = failed.iter().map(|plan| plan.step_id.into_uuid()).collect();
    let facts: Vec<StepFacts> = sqlx::query_as(
        "SELECT s.workflow_step_uuid, s.state, s.attempts, s.max_attempts, s.retryable, \
                s.failure_retryable, s.last_attempted_at, s.backoff_request_ms, \
                CASE jsonb_typeof(s.results -> 'success') \
                    WHEN 'boolean' THEN (s.results ->> 'success')::boolean END AS result_success, \
                (SELECT count(*) FROM tasker.workflow_step_edges e \
                  WHERE e.to_step_uuid = s.workflow_step_uuid) AS parents, \
                (SELECT count(*) FROM tasker.workflow_step_edges e \
                  JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid \
                  WHERE e.to_step_uuid = s.workflow_step_uuid \
                    AND p.state IN ('complete', 'resolved_manually')) AS satisfied_parents, \
                now() AS now \
         FROM tasker.workflow_steps s \
         WHERE s.workflow_step_uuid = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let facts: HashMap<Uuid, StepFacts> = facts
        .into_iter()
        .map(|f| (f.workflow_step_uuid, f))
        .collect();
    Ok(failed
        .iter()
        .map(|plan| {
            let step_id = plan.step_id;
            let expected = plan.record.from;
            let Some(facts) = facts.get(&step_id.into_uuid()) else {
                return StepTransitionError::NotFound { step_id };
            };
            if facts.state != expected {
                return StepTransitionError::Conflict {
                    step_id,
                    expected,
                    actual: facts.state,
                };
            }
            match plan
                .record
                .guard
                .map(|guard| guard.check(&guard_context(facts, backoff)))
            {
                Some(Err(error)) => StepTransitionError::GuardFailed { step_id, error },
                // The guard holds now: its inputs changed while the transition was evaluated.
                Some(Ok(())) | None => StepTransitionError::Conflict {
                    step_id,
                    expected,
                    actual: facts.state,
                },
            }
        })
        .collect())
}

fn guard_context(facts: &StepFacts, backoff: BackoffParams) -> StepGuardContext {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let policy = BackoffPolicy::new(
        Duration::from_millis(u64::try_from(backoff.base_ms).unwrap_or(0)),
        backoff.multiplier,
        Duration::from_millis(u64::try_from(backoff.max_ms).unwrap_or(0)),
        0.0,
    );
    StepGuardContext {
        dependencies: Some(DependencyStatus {
            total: count(facts.parents),
            satisfied: count(facts.satisfied_parents),
        }),
        in_progress: facts.state == StepState::InProgress,
        result_success: facts.result_success,
        // An invalid policy (base above max) cannot come from a validated configuration;
        // without one the retry guard reports its context as missing.
        retry: policy.ok().map(|policy| RetryContext {
            retryable: facts.retryable && facts.failure_retryable,
            attempts: u32::try_from(facts.attempts).unwrap_or(0),
            max_attempts: u32::try_from(facts.max_attempts).unwrap_or(0),
            last_attempted_at: facts.last_attempted_at,
            requested_backoff: facts
                .backoff_request_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            policy,
            jitter: JitterSample::NONE,
            now: facts.now,
        }),
    }
}
