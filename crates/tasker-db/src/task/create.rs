//! Task creation: the task, its steps, edges and initial transitions in one set-based
//! statement, deduplicated by the identity hash.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_models::ids::{CorrelationId, NamedStepId, NamedTaskId, ProcessorId, StepId, TaskId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;

/// A task to create. The identity hash deduplicates: a second task with the same hash is not
/// created (see [`TaskCreation::Existing`]).
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    /// The registered template version the task runs.
    pub named_task_id: NamedTaskId,
    /// The deduplication key computed by tasker-models' identity strategy.
    pub identity_hash: &'a str,
    /// The caller's input, stored exactly as given (must be a JSON object).
    pub context: &'a serde_json::Value,
    /// Free-form labels.
    pub tags: &'a [String],
    /// Higher runs first; age escalation adds 0.1 per hour.
    pub priority: i32,
    /// Who asked for the task.
    pub initiator: Option<&'a str>,
    /// Which system asked for it.
    pub source_system: Option<&'a str>,
    /// Why.
    pub reason: Option<&'a str>,
    /// Correlates everything the task causes.
    pub correlation_id: CorrelationId,
    /// The correlation id of the task that caused this one.
    pub parent_correlation_id: Option<CorrelationId>,
    /// When the request was made (the database's `now()` when `None`).
    pub requested_at: Option<DateTime<Utc>>,
    /// The process creating the task, recorded on the initial transitions.
    pub processor_id: Option<ProcessorId>,
}

/// A step of a new task.
#[derive(Debug, Clone)]
pub struct NewStep<'a> {
    /// The template step it instantiates.
    pub named_step_id: NamedStepId,
    /// Whether its failures may be retried.
    pub retryable: bool,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The handler's initialization input.
    pub inputs: Option<&'a serde_json::Value>,
}

/// A dependency between two steps of a new task, by their index in the step list: `to`
/// depends on `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewEdge {
    /// The prerequisite's index.
    pub from: usize,
    /// The dependent's index.
    pub to: usize,
}

/// The outcome of [`create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCreation {
    /// The task was created, with these step ids in the order of the given steps.
    Created {
        /// The new task.
        task_id: TaskId,
        /// Its steps, in input order.
        step_ids: Vec<StepId>,
    },
    /// A task with the same identity hash exists already; nothing was written.
    Existing {
        /// The existing task.
        task_id: TaskId,
        /// Its current state.
        state: TaskState,
    },
}

impl TaskCreation {
    /// The created or existing task.
    pub fn task_id(&self) -> TaskId {
        match self {
            TaskCreation::Created { task_id, .. } | TaskCreation::Existing { task_id, .. } => {
                *task_id
            }
        }
    }

    /// Whether an existing task was returned instead of creating one.
    pub fn is_existing(&self) -> bool {
        matches!(self, TaskCreation::Existing { .. })
    }
}

/// Why a task could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    /// The context is not a JSON object.
    #[error("task context must be a JSON object, got {kind}")]
    ContextNotObject {
        /// The JSON type given.
        kind: &'static str,
    },
    /// An edge names a step index outside the step list.
    #[error(
        "edge {from} -> {to} refers to a step that does not exist (the task has {steps} steps)"
    )]
    EdgeOutOfRange {
        /// The edge's prerequisite index.
        from: usize,
        /// The edge's dependent index.
        to: usize,
        /// How many steps there are.
        steps: usize,
    },
    /// An edge connects a step to itself.
    #[error("step {step} cannot depend on itself")]
    SelfEdge {
        /// The step's index.
        step: usize,
    },
    /// The same edge is listed twice.
    #[error("edge {from} -> {to} is listed twice")]
    DuplicateEdge {
        /// The edge's prerequisite index.
        from: usize,
        /// The edge's dependent index.
        to: usize,
    },
    /// The edges form a cycle.
    #[error("the step dependencies form a cycle through steps {steps:?}")]
    Cycle {
        /// The indexes of the steps on or behind the cycle.
        steps: Vec<usize>,
    },
    /// Two steps instantiate the same template step.
    #[error("template step {named_step_id} is listed twice")]
    DuplicateStep {
        /// The repeated template step.
        named_step_id: NamedStepId,
    },
    /// The duplicate that prevented creation vanished before it could be read; retry.
    #[error(
        "a task with identity hash `{identity_hash}` was concurrently created and removed; retry"
    )]
    IdentityRace {
        /// The hash.
        identity_hash: String,
    },
    /// The request's identity could not be computed (a `caller_provided` template without an
    /// idempotency key).
    #[error("cannot deduplicate the request")]
    Identity(#[from] tasker_models::identity::IdentityError),
    /// A step of the template was not registered with it.
    #[error(
        "template {template} has step `{step}`, which is not registered (register the template first)"
    )]
    UnregisteredStep {
        /// The template's routing key.
        template: String,
        /// The step's name.
        step: String,
    },
    /// The database rejected the task (unknown template: a foreign key; invariant: a check).
    #[error("failed to create a task")]
    Database(#[from] DbError),
}

/// Creates a task with its steps, edges and initial `pending` transitions in one statement
/// (set-based: the steps and edges travel as arrays, whatever their number), or returns the
/// existing task with the same identity hash.
///
/// Concurrent identical requests are safe: exactly one creates the task and the others wait
/// for it to commit and get [`TaskCreation::Existing`].
pub async fn create(
    conn: &mut PgConnection,
    task: &NewTask<'_>,
    steps: &[NewStep<'_>],
    edges: &[NewEdge],
) -> Result<TaskCreation, CreateTaskError> {
    validate(task, steps, edges)?;

    let task_id = Uuid::now_v7();
    let step_ids: Vec<Uuid> = steps.iter().map(|_| Uuid::now_v7()).collect();
    let step_transition_ids: Vec<Uuid> = steps.iter().map(|_| Uuid::now_v7()).collect();
    let named_step_ids: Vec<Uuid> = steps.iter().map(|s| s.named_step_id.into_uuid()).collect();
    let retryable: Vec<bool> = steps.iter().map(|s| s.retryable).collect();
    let max_attempts: Vec<i32> = steps.iter().map(|s| s.max_attempts).collect();
    let inputs: Vec<Option<&serde_json::Value>> = steps.iter().map(|s| s.inputs).collect();
    let edge_ids: Vec<Uuid> = edges.iter().map(|_| Uuid::now_v7()).collect();
    let edge_from: Vec<Uuid> = edges.iter().map(|e| step_ids[e.from]).collect();
    let edge_to: Vec<Uuid> = edges.iter().map(|e| step_ids[e.to]).collect();
    let tags = serde_json::Value::from(task.tags.to_vec());
    let processor = task.processor_id.map(ProcessorId::into_uuid);

    for _ in 0..3 {
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "WITH task AS ( \
                 INSERT INTO tasker.tasks ( \
                     task_uuid, named_task_uuid, identity_hash, context, tags, priority, initiator, \
                     source_system, reason, correlation_id, parent_correlation_id, requested_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now())) \
                 ON CONFLICT (identity_hash) DO NOTHING \
                 RETURNING task_uuid \
             ), task_transition AS ( \
                 INSERT INTO tasker.task_transitions ( \
                     task_transition_uuid, task_uuid, sort_key, from_state, to_state, \
                     processor_uuid) \
                 SELECT $13, t.task_uuid, 1, NULL, 'pending', $14 FROM task t \
             ), steps AS ( \
                 INSERT INTO tasker.workflow_steps ( \
                     workflow_step_uuid, task_uuid, named_step_uuid, retryable, max_attempts, inputs) \
                 SELECT s.id, t.task_uuid, s.named, s.retryable, s.max_attempts, s.inputs \
                 FROM task t, \
                      unnest($15::uuid[], $16::uuid[], $17::bool[], $18::int[], $19::jsonb[]) \
                          AS s (id, named, retryable, max_attempts, inputs) \
             ), step_transitions AS ( \
                 INSERT INTO tasker.workflow_step_transitions ( \
                     workflow_step_transition_uuid, workflow_step_uuid, task_uuid, sort_key, \
                     from_state, to_state, processor_uuid) \
                 SELECT s.transition_id, s.id, t.task_uuid, 1, NULL, 'pending', $14 \
                 FROM task t, unnest($20::uuid[], $15::uuid[]) AS s (transition_id, id) \
             ), edges AS ( \
                 INSERT INTO tasker.workflow_step_edges ( \
                     workflow_step_edge_uuid, task_uuid, from_step_uuid, to_step_uuid) \
                 SELECT e.id, t.task_uuid, e.from_id, e.to_id \
                 FROM task t, unnest($21::uuid[], $22::uuid[], $23::uuid[]) AS e (id, from_id, to_id) \
             ) \
             SELECT task_uuid FROM task",
        )
        .bind(task_id)
        .bind(task.named_task_id.into_uuid())
        .bind(task.identity_hash)
        .bind(task.context)
        .bind(&tags)
        .bind(task.priority)
        .bind(task.initiator)
        .bind(task.source_system)
        .bind(task.reason)
        .bind(task.correlation_id.into_uuid())
        .bind(task.parent_correlation_id.map(CorrelationId::into_uuid))
        .bind(task.requested_at)
        .bind(Uuid::now_v7())
        .bind(processor)
        .bind(&step_ids)
        .bind(&named_step_ids)
        .bind(&retryable)
        .bind(&max_attempts)
        .bind(&inputs)
        .bind(&step_transition_ids)
        .bind(&edge_ids)
        .bind(&edge_from)
        .bind(&edge_to)
        .fetch_optional(&mut *conn)
        .await
        .map_err(DbError::from)?;
        if let Some(task_id) = inserted {
            return Ok(TaskCreation::Created {
                task_id: TaskId::from_uuid(task_id),
                step_ids: step_ids.iter().copied().map(StepId::from_uuid).collect(),
            });
        }
        // The conflicting task has committed (ON CONFLICT waited for it), so this statement's
        // fresh snapshot sees it, unless it was deleted in between.
        let existing: Option<(Uuid, TaskState)> =
            sqlx::query_as("SELECT task_uuid, state FROM tasker.tasks WHERE identity_hash = $1")
                .bind(task.identity_hash)
                .fetch_optional(&mut *conn)
                .await
                .map_err(DbError::from)?;
        if let Some((task_id, state)) = existing {
            return Ok(TaskCreation::Existing {
                task_id: TaskId::from_uuid(task_id),
                state,
            });
        }
    }
    Err(CreateTaskError::IdentityRace {
        identity_hash: task.identity_hash.to_owned(),
    })
}

fn validate(
    task: &NewTask<'_>,
    steps: &[NewStep<'_>],
    edges: &[NewEdge],
) -> Result<(), CreateTaskError> {
    if !task.context.is_object() {
        return Err(CreateTaskError::ContextNotObject {
            kind: json_kind(task.context),
        });
    }
    let mut named = HashSet::with_capacity(steps.len());
    if let Some(step) = steps.iter().find(|s| !named.insert(s.named_step_id)) {
        return Err(CreateTaskError::DuplicateStep {
            named_step_id: step.named_step_id,
        });
    }
    let mut seen = HashSet::with_capacity(edges.len());
    let mut indegree = vec![0usize; steps.len()];
    let mut children = vec![Vec::new(); steps.len()];
    for edge in edges {
        let NewEdge { from, to } = *edge;
        if from >= steps.len() || to >= steps.len() {
            return Err(CreateTaskError::EdgeOutOfRange {
                from,
                to,
                steps: steps.len(),
            });
        }
        if from == to {
            return Err(CreateTaskError::SelfEdge { step: from });
        }
        if !seen.insert(*edge) {
            return Err(CreateTaskError::DuplicateEdge { from, to });
        }
        indegree[to] += 1;
        children[from].push(to);
    }
    // Kahn's algorithm: whatever cannot be ordered sits on or behind a cycle.
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| indegree[i] == 0).collect();
    let mut ordered = 0;
    while let Some(step) = ready.pop() {
        ordered += 1;
        for &child in &children[step] {
            indegree[child] -= 1;
            if indegree[child] == 0 {
                ready.push(child);
            }
        }
    }
    if ordered < steps.len() {
        let steps = (0..steps.len()).filter(|&i| indegree[i] > 0).collect();
        return Err(CreateTaskError::Cycle { steps });
    }
    Ok(())
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
