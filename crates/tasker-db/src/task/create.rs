//! Task creation: the task, its steps, edges and initial transitions in one set-based
//! statement, deduplicated by the identity hash.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_models::dag::{self, Adjacency, Cycle};
use tasker_models::ids::{CorrelationId, NamedStepId, NamedTaskId, ProcessorId, StepId, TaskId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;

/// The longest identity hash the database stores (the `tasker.identity_hash` domain).
pub const MAX_IDENTITY_HASH_CHARS: usize = 128;

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
    /// The request message the task is created from, if it came as one.
    pub request_id: Option<Uuid>,
    /// The requester's reply queue: told when the task is created and when it finishes.
    pub reply_to: Option<&'a str>,
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

/// The outcome of [`create`] and, per task, of [`create_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCreation {
    /// The task was created, with these step ids in the order of the given steps.
    Created {
        /// The new task.
        task_id: TaskId,
        /// Its steps, in input order.
        step_ids: Vec<StepId>,
    },
    /// A task with the same identity hash exists (created earlier, concurrently, or by an
    /// earlier task of the same [`create_many`] batch); nothing was written for this one.
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
    /// The edges form a cycle (found by tasker-models' `dag::sort`, the one acyclicity check).
    #[error(
        "the step dependencies form a cycle: {} (each step depends on the next)",
        cycle.render(|step| format!("step {step}"))
    )]
    Cycle {
        /// The cycle through the lowest step index, as step indexes: each depends on the next.
        cycle: Cycle,
    },
    /// The identity hash is empty or longer than the database accepts.
    #[error(
        "identity hash must be 1 to {max} characters, got {length} (hash long keys before using them as identities)",
        max = MAX_IDENTITY_HASH_CHARS
    )]
    IdentityHashLength {
        /// Its length in characters.
        length: usize,
    },
    /// A step allows a negative number of attempts.
    #[error("step {step} has max_attempts {max_attempts}; it must be 0 or more")]
    NegativeMaxAttempts {
        /// The step's index.
        step: usize,
        /// The value given.
        max_attempts: i32,
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
    let graph = NewTaskGraph {
        task: task.clone(),
        steps,
        edges,
    };
    let mut outcomes = create_many(conn, std::slice::from_ref(&graph)).await?;
    outcomes.pop().expect("one outcome per task")
}

/// A task with its steps and edges, for [`create_many`].
#[derive(Debug, Clone)]
pub struct NewTaskGraph<'a> {
    /// The task.
    pub task: NewTask<'a>,
    /// Its steps; edges refer to them by index.
    pub steps: &'a [NewStep<'a>],
    /// The dependencies between its steps.
    pub edges: &'a [NewEdge],
}

/// Creates many tasks, each with its steps, edges and initial transitions, in one statement,
/// and returns one outcome per task, in order: [`TaskCreation::Created`], or
/// [`TaskCreation::Existing`] when a task with the same identity hash exists (created earlier,
/// concurrently, or by an earlier task of the same batch: of several tasks sharing an
/// identity, the first is created), or the task's own error. Tasks that fail the checks made
/// before the database (the graph, the identity hash's length, negative attempts) are skipped
/// and the others created.
///
/// The outer error is the database's: a task it rejects (an unknown template or template step:
/// a foreign key) fails the whole statement. Run the call in a transaction to make the batch
/// all or nothing: after the insert, existing tasks are looked up (and a vanished one retried)
/// in further statements, and an error there leaves the inserted tasks to the caller's
/// transaction. Tasks are inserted in identity-hash order, so concurrent batches that share
/// identities wait for each other instead of deadlocking.
pub async fn create_many(
    conn: &mut PgConnection,
    tasks: &[NewTaskGraph<'_>],
) -> Result<Vec<Result<TaskCreation, CreateTaskError>>, DbError> {
    let mut outcomes: Vec<Option<Result<TaskCreation, CreateTaskError>>> =
        tasks.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = Vec::with_capacity(tasks.len());
    for (index, graph) in tasks.iter().enumerate() {
        match validate(&graph.task, graph.steps, graph.edges) {
            Ok(()) => pending.push(index),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    // A task whose duplicate vanished between the insert and the lookup is tried again.
    for _ in 0..3 {
        if pending.is_empty() {
            break;
        }
        let planned: Vec<Planned<'_, '_>> = pending.iter().map(|&i| plan(&tasks[i])).collect();
        let inserted: HashSet<Uuid> = insert(conn, &planned).await?.into_iter().collect();
        let mut missing = Vec::new();
        for (index, planned) in pending.iter().zip(&planned) {
            if inserted.contains(&planned.task_id) {
                outcomes[*index] = Some(Ok(TaskCreation::Created {
                    task_id: TaskId::from_uuid(planned.task_id),
                    step_ids: planned
                        .step_ids
                        .iter()
                        .copied()
                        .map(StepId::from_uuid)
                        .collect(),
                }));
            } else {
                missing.push(*index);
            }
        }
        pending.clear();
        if missing.is_empty() {
            break;
        }
        // The conflicting tasks have committed (ON CONFLICT waited for them) or were inserted
        // by this statement, so this new statement's snapshot sees them, unless one was
        // deleted in between.
        let hashes: Vec<&str> = missing
            .iter()
            .map(|&i| tasks[i].task.identity_hash)
            .collect();
        let rows: Vec<(String, Uuid, TaskState)> = sqlx::query_as(
            "SELECT identity_hash, task_uuid, state FROM tasker.tasks \
             WHERE identity_hash = ANY($1)",
        )
        .bind(&hashes)
        .fetch_all(&mut *conn)
        .await?;
        let existing: HashMap<String, (Uuid, TaskState)> = rows
            .into_iter()
            .map(|(hash, task_id, state)| (hash, (task_id, state)))
            .collect();
        for index in missing {
            match existing.get(tasks[index].task.identity_hash) {
                Some(&(task_id, state)) => {
                    outcomes[index] = Some(Ok(TaskCreation::Existing {
                        task_id: TaskId::from_uuid(task_id),
                        state,
                    }));
                }
                None => pending.push(index),
            }
        }
    }
    for index in pending {
        outcomes[index] = Some(Err(CreateTaskError::IdentityRace {
            identity_hash: tasks[index].task.identity_hash.to_owned(),
        }));
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every task has an outcome"))
        .collect())
}

/// A task of a batch with the ids it will get.
struct Planned<'g, 'a> {
    graph: &'g NewTaskGraph<'a>,
    task_id: Uuid,
    step_ids: Vec<Uuid>,
}

fn plan<'g, 'a>(graph: &'g NewTaskGraph<'a>) -> Planned<'g, 'a> {
    Planned {
        graph,
        task_id: Uuid::now_v7(),
        step_ids: graph.steps.iter().map(|_| Uuid::now_v7()).collect(),
    }
}

/// The batch's one statement; returns the ids of the tasks it inserted.
async fn insert(
    conn: &mut PgConnection,
    planned: &[Planned<'_, '_>],
) -> Result<Vec<Uuid>, DbError> {
    let n = planned.len();
    let mut task_ids = Vec::with_capacity(n);
    let mut named_task_ids = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut contexts = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut initiators = Vec::with_capacity(n);
    let mut source_systems = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut correlation_ids = Vec::with_capacity(n);
    let mut parent_correlation_ids = Vec::with_capacity(n);
    let mut requested_at = Vec::with_capacity(n);
    let mut transition_ids = Vec::with_capacity(n);
    let mut processors = Vec::with_capacity(n);
    let mut request_ids = Vec::with_capacity(n);
    let mut reply_tos = Vec::with_capacity(n);
    let (mut step_tasks, mut step_ids, mut named_step_ids) = (Vec::new(), Vec::new(), Vec::new());
    let (mut retryable, mut max_attempts, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
    let mut step_transition_ids = Vec::new();
    let (mut edge_tasks, mut edge_ids, mut edge_from, mut edge_to) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in planned {
        let task = &p.graph.task;
        task_ids.push(p.task_id);
        named_task_ids.push(task.named_task_id.into_uuid());
        hashes.push(task.identity_hash);
        contexts.push(task.context);
        tags.push(serde_json::Value::from(task.tags.to_vec()));
        priorities.push(task.priority);
        initiators.push(task.initiator);
        source_systems.push(task.source_system);
        reasons.push(task.reason);
        correlation_ids.push(task.correlation_id.into_uuid());
        parent_correlation_ids.push(task.parent_correlation_id.map(CorrelationId::into_uuid));
        requested_at.push(task.requested_at);
        transition_ids.push(Uuid::now_v7());
        processors.push(task.processor_id.map(ProcessorId::into_uuid));
        request_ids.push(task.request_id);
        reply_tos.push(task.reply_to);
        for (step, id) in p.graph.steps.iter().zip(&p.step_ids) {
            step_tasks.push(p.task_id);
            step_ids.push(*id);
            named_step_ids.push(step.named_step_id.into_uuid());
            retryable.push(step.retryable);
            max_attempts.push(step.max_attempts);
            inputs.push(step.inputs);
            step_transition_ids.push(Uuid::now_v7());
        }
        for edge in p.graph.edges {
            edge_tasks.push(p.task_id);
            edge_ids.push(Uuid::now_v7());
            edge_from.push(p.step_ids[edge.from]);
            edge_to.push(p.step_ids[edge.to]);
        }
    }
    Ok(sqlx::query_scalar(
        "WITH input AS ( \
             SELECT * FROM unnest( \
                 $1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[], $6::int4[], \
                 $7::text[], $8::text[], $9::text[], $10::uuid[], $11::uuid[], \
                 $12::timestamptz[], $13::uuid[], $14::uuid[], $26::uuid[], $27::text[] \
             ) WITH ORDINALITY AS i (task_uuid, named_task_uuid, identity_hash, context, tags, \
                     priority, initiator, source_system, reason, correlation_id, \
                     parent_correlation_id, requested_at, transition_uuid, processor_uuid, \
                     request_uuid, reply_to, ord) \
         ), task AS ( \
             INSERT INTO tasker.tasks ( \
                 task_uuid, named_task_uuid, identity_hash, context, tags, priority, initiator, \
                 source_system, reason, correlation_id, parent_correlation_id, requested_at, \
                 request_uuid, reply_to) \
             SELECT i.task_uuid, i.named_task_uuid, i.identity_hash, i.context, i.tags, \
                    i.priority, i.initiator, i.source_system, i.reason, i.correlation_id, \
                    i.parent_correlation_id, coalesce(i.requested_at, now()), i.request_uuid, \
                    i.reply_to \
             FROM input i \
             ORDER BY i.identity_hash, i.ord \
             ON CONFLICT (identity_hash) DO NOTHING \
             RETURNING task_uuid \
         ), task_transition AS ( \
             INSERT INTO tasker.task_transitions ( \
                 task_transition_uuid, task_uuid, sort_key, from_state, to_state, \
                 processor_uuid) \
             SELECT i.transition_uuid, t.task_uuid, 1, NULL, 'pending', i.processor_uuid \
             FROM task t JOIN input i ON i.task_uuid = t.task_uuid \
         ), steps AS ( \
             INSERT INTO tasker.workflow_steps ( \
                 workflow_step_uuid, task_uuid, named_step_uuid, retryable, max_attempts, inputs) \
             SELECT s.id, s.task_uuid, s.named, s.retryable, s.max_attempts, s.inputs \
             FROM unnest($15::uuid[], $16::uuid[], $17::uuid[], $18::bool[], $19::int[], \
                         $20::jsonb[]) AS s (task_uuid, id, named, retryable, max_attempts, inputs) \
             WHERE s.task_uuid IN (SELECT task_uuid FROM task) \
         ), step_transitions AS ( \
             INSERT INTO tasker.workflow_step_transitions ( \
                 workflow_step_transition_uuid, workflow_step_uuid, task_uuid, sort_key, \
                 from_state, to_state, processor_uuid) \
             SELECT s.transition_id, s.id, s.task_uuid, 1, NULL, 'pending', i.processor_uuid \
             FROM unnest($21::uuid[], $16::uuid[], $15::uuid[]) AS s (transition_id, id, task_uuid) \
             JOIN input i ON i.task_uuid = s.task_uuid \
             WHERE s.task_uuid IN (SELECT task_uuid FROM task) \
         ), edges AS ( \
             INSERT INTO tasker.workflow_step_edges ( \
                 workflow_step_edge_uuid, task_uuid, from_step_uuid, to_step_uuid) \
             SELECT e.id, e.task_uuid, e.from_id, e.to_id \
             FROM unnest($22::uuid[], $23::uuid[], $24::uuid[], $25::uuid[]) \
                 AS e (id, task_uuid, from_id, to_id) \
             WHERE e.task_uuid IN (SELECT task_uuid FROM task) \
         ) \
         SELECT task_uuid FROM task",
    )
    .bind(&task_ids)
    .bind(&named_task_ids)
    .bind(&hashes)
    .bind(&contexts)
    .bind(&tags)
    .bind(&priorities)
    .bind(&initiators)
    .bind(&source_systems)
    .bind(&reasons)
    .bind(&correlation_ids)
    .bind(&parent_correlation_ids)
    .bind(&requested_at)
    .bind(&transition_ids)
    .bind(&processors)
    .bind(&step_tasks)
    .bind(&step_ids)
    .bind(&named_step_ids)
    .bind(&retryable)
    .bind(&max_attempts)
    .bind(&inputs)
    .bind(&step_transition_ids)
    .bind(&edge_ids)
    .bind(&edge_tasks)
    .bind(&edge_from)
    .bind(&edge_to)
    .bind(&request_ids)
    .bind(&reply_tos)
    .fetch_all(&mut *conn)
    .await?)
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
    let length = task.identity_hash.chars().count();
    if !(1..=MAX_IDENTITY_HASH_CHARS).contains(&length) {
        return Err(CreateTaskError::IdentityHashLength { length });
    }
    if let Some((step, new_step)) = steps.iter().enumerate().find(|(_, s)| s.max_attempts < 0) {
        return Err(CreateTaskError::NegativeMaxAttempts {
            step,
            max_attempts: new_step.max_attempts,
        });
    }
    let mut named = HashSet::with_capacity(steps.len());
    if let Some(step) = steps.iter().find(|s| !named.insert(s.named_step_id)) {
        return Err(CreateTaskError::DuplicateStep {
            named_step_id: step.named_step_id,
        });
    }
    let mut seen = HashSet::with_capacity(edges.len());
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
    }
    let pairs: Vec<(usize, usize)> = edges.iter().map(|edge| (edge.from, edge.to)).collect();
    dag::sort(&Adjacency::from_edges(steps.len(), &pairs)).map_err(|error| {
        CreateTaskError::Cycle {
            cycle: error.first().clone(),
        }
    })?;
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
