//! Steps added to an existing task (decision branches, batch workers, deferred convergence):
//! the steps, their edges and initial transitions in one idempotent statement.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use tasker_models::dag::{self, Adjacency};
use tasker_models::ids::{ProcessorId, StepId, TaskId};
use uuid::Uuid;

use crate::error::DbError;

/// A step of the task's template to add, with the steps it depends on.
#[derive(Debug, Clone)]
pub struct NewTaskStep<'a> {
    /// The template step it instantiates (a step of the task's template).
    pub name: &'a str,
    /// Which instance: 0 for every step but batch workers, numbered 1..N by their batchable
    /// step (0 is the placeholder worker of an empty batch).
    pub instance: u32,
    /// Whether its failures may be retried.
    pub retryable: bool,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The handler's input.
    pub inputs: Option<&'a serde_json::Value>,
    /// Its parents: steps of the task that exist already or are added by the same call.
    pub depends_on: Vec<Dependency<'a>>,
}

/// A dependency of an added step on a template step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dependency<'a> {
    /// The template step depended on.
    pub name: &'a str,
    /// One instance of it, or (`None`) every instance the task has (existing or added by the
    /// same call), as a convergence step depends on all batch workers.
    pub instance: Option<u32>,
    /// Whether a matching step must exist. An optional dependency that matches nothing is
    /// dropped, as a deferred convergence step depends only on the branches that were created;
    /// a step with dependencies must still get at least one parent.
    pub required: bool,
}

/// A step of the task after [`add_to_task`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedStep {
    /// The step.
    pub step_id: StepId,
    /// Its template step.
    pub name: String,
    /// Its instance.
    pub instance: u32,
    /// Whether this call created it (false: it existed, and was left as it was).
    pub created: bool,
}

/// Why steps could not be added. Nothing was written in every case.
#[derive(Debug, thiserror::Error)]
pub enum AddStepsError {
    /// No such task.
    #[error("task {task_id} does not exist")]
    NoSuchTask {
        /// The task.
        task_id: TaskId,
    },
    /// The task runs another template than the one given.
    #[error(
        "task {task_id} runs template {actual}, not {expected}: steps can only be added from the task's own template"
    )]
    WrongTemplate {
        /// The task.
        task_id: TaskId,
        /// The template given.
        expected: String,
        /// The task's template.
        actual: String,
    },
    /// The step is not a step of the task's template (as registered).
    #[error("step `{step}` is not a step of the template of task {task_id}")]
    NotInTemplate {
        /// The task.
        task_id: TaskId,
        /// The step's name.
        step: String,
    },
    /// The template defines the step, but it is created with the task.
    #[error("step `{step}` is created with the task; only later steps can be added")]
    CreatedWithTask {
        /// The step's name.
        step: String,
    },
    /// A numbered instance of a step that is not a batch worker.
    #[error("step `{step}` is not a batch worker, so it has no instance {instance} (use 0)")]
    NotABatchWorker {
        /// The step's name.
        step: String,
        /// The instance asked for.
        instance: u32,
    },
    /// The same step instance is listed twice.
    #[error("step `{step}` instance {instance} is listed twice")]
    DuplicateStep {
        /// The step's name.
        step: String,
        /// The instance.
        instance: u32,
    },
    /// A step lists the same dependency twice.
    #[error("step `{step}` instance {instance} lists its dependency on `{dependency}` twice")]
    DuplicateDependency {
        /// The step's name.
        step: String,
        /// The instance.
        instance: u32,
        /// The dependency's name.
        dependency: String,
    },
    /// The added steps depend on each other in a cycle (found by tasker-models' `dag::sort`,
    /// the one acyclicity check).
    #[error(
        "the added steps depend on each other in a cycle: {} (each step depends on the next)",
        render_cycle(cycle)
    )]
    Cycle {
        /// The steps of the cycle (name and instance), each depending on the next and the last
        /// on the first, starting at the earliest in the input.
        cycle: Vec<(String, u32)>,
    },
    /// A required dependency matches no step of the task.
    #[error(
        "step `{step}` instance {instance} depends on `{dependency}`, which task {task_id} does not have (add it first or in the same call)"
    )]
    MissingDependency {
        /// The task.
        task_id: TaskId,
        /// The step's name.
        step: String,
        /// The instance.
        instance: u32,
        /// The dependency's name.
        dependency: String,
    },
    /// None of a step's dependencies matches a step of the task, which would make it a root
    /// that runs at once.
    #[error(
        "none of the dependencies of step `{step}` instance {instance} exists in task {task_id}"
    )]
    NoParents {
        /// The task.
        task_id: TaskId,
        /// The step's name.
        step: String,
        /// The instance.
        instance: u32,
    },
    /// A number does not fit the database's integer.
    #[error(
        "step `{step}` instance {instance} is out of range (at most {})",
        i32::MAX
    )]
    InstanceOutOfRange {
        /// The step's name.
        step: String,
        /// The instance.
        instance: u32,
    },
    /// The database failed.
    #[error("failed to add steps to a task")]
    Database(#[from] DbError),
}

/// Adds steps of the task's template to an existing task, with their edges and initial
/// `pending` transitions, in one statement (one round trip, on the caller's connection and
/// transaction).
///
/// Idempotent: a step instance the task already has is returned as it is (`created: false`)
/// and neither it nor its edges are changed, so concurrent callers adding the same steps get
/// the same rows and no duplicates (the key is task, template step, instance; a caller that
/// loses the race waits for the winner's commit). Edges are written only to steps this call
/// creates: an existing step never gets new parents.
///
/// Each step must be a step of the task's template (resolved by name against the registered
/// template) and every dependency must resolve as [`Dependency`] describes; otherwise nothing
/// is written. [`add_from_template`](super::add_from_template) derives all of this from a
/// tasker-models template.
pub async fn add_to_task(
    conn: &mut PgConnection,
    task_id: TaskId,
    steps: &[NewTaskStep<'_>],
    processor_id: Option<ProcessorId>,
) -> Result<Vec<AddedStep>, AddStepsError> {
    insert(conn, task_id, steps, processor_id, None).await
}

/// [`add_to_task`], optionally checking that the task runs `template`
/// (`[namespace, name, version]`).
pub(super) async fn insert(
    conn: &mut PgConnection,
    task_id: TaskId,
    steps: &[NewTaskStep<'_>],
    processor_id: Option<ProcessorId>,
    template: Option<[&str; 3]>,
) -> Result<Vec<AddedStep>, AddStepsError> {
    validate(steps)?;
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    let instances: Vec<i32> = steps
        .iter()
        .map(|s| db_instance(s.name, s.instance))
        .collect::<Result<_, _>>()?;
    let step_ids: Vec<Uuid> = steps.iter().map(|_| Uuid::now_v7()).collect();
    let transition_ids: Vec<Uuid> = steps.iter().map(|_| Uuid::now_v7()).collect();
    let retryable: Vec<bool> = steps.iter().map(|s| s.retryable).collect();
    let max_attempts: Vec<i32> = steps.iter().map(|s| s.max_attempts).collect();
    let inputs: Vec<Option<&serde_json::Value>> = steps.iter().map(|s| s.inputs).collect();
    let (mut dep_steps, mut dep_names, mut dep_instances, mut dep_required) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (ord, step) in steps.iter().enumerate() {
        for dependency in &step.depends_on {
            dep_steps.push(i32::try_from(ord + 1).unwrap_or(i32::MAX));
            dep_names.push(dependency.name);
            dep_instances.push(
                dependency
                    .instance
                    .map(|instance| db_instance(dependency.name, instance))
                    .transpose()?,
            );
            dep_required.push(dependency.required);
        }
    }
    let expected_template =
        template.map(|[namespace, name, version]| format!("{namespace}/{name}:{version}"));
    let template: Option<Vec<&str>> = template.map(|t| t.to_vec());

    let rows: Vec<Outcome> = sqlx::query_as(ADD_STEPS_SQL)
        .bind(task_id.into_uuid())
        .bind(&names)
        .bind(&instances)
        .bind(&step_ids)
        .bind(&transition_ids)
        .bind(&retryable)
        .bind(&max_attempts)
        .bind(&inputs)
        .bind(&dep_steps)
        .bind(&dep_names)
        .bind(&dep_instances)
        .bind(&dep_required)
        .bind(processor_id.map(ProcessorId::into_uuid))
        .bind(template)
        .fetch_all(&mut *conn)
        .await
        .map_err(DbError::from)?;

    let mut added: Vec<Option<AddedStep>> = vec![None; steps.len()];
    let mut problem: Option<AddStepsError> = None;
    for Outcome {
        kind,
        ord,
        step_uuid,
        created,
        detail,
    } in rows
    {
        let index = usize::try_from(ord - 1).ok();
        let step = index.and_then(|i| steps.get(i));
        let (name, instance) = step.map_or((String::new(), 0), |s| (s.name.to_owned(), s.instance));
        let error = match kind.as_str() {
            "step" => {
                if let (Some(slot), Some(step_uuid)) =
                    (index.and_then(|i| added.get_mut(i)), step_uuid)
                {
                    *slot = Some(AddedStep {
                        step_id: StepId::from_uuid(step_uuid),
                        name,
                        instance,
                        created: created.unwrap_or(false),
                    });
                }
                continue;
            }
            "no_such_task" => AddStepsError::NoSuchTask { task_id },
            "wrong_template" => AddStepsError::WrongTemplate {
                task_id,
                expected: expected_template.clone().unwrap_or_default(),
                actual: detail.unwrap_or_default(),
            },
            "not_in_template" => AddStepsError::NotInTemplate {
                task_id,
                step: name,
            },
            "missing_dependency" => AddStepsError::MissingDependency {
                task_id,
                step: name,
                instance,
                dependency: detail.unwrap_or_default(),
            },
            _ => AddStepsError::NoParents {
                task_id,
                step: name,
                instance,
            },
        };
        // Problems come first in the statement's order of precedence.
        problem.get_or_insert(error);
    }
    if let Some(problem) = problem {
        return Err(problem);
    }
    Ok(added.into_iter().flatten().collect())
}

/// A row of [`ADD_STEPS_SQL`]: a step that was added (or existed), or a problem.
#[derive(sqlx::FromRow)]
struct Outcome {
    /// `step`, or the problem: `no_such_task`, `wrong_template`, `not_in_template`,
    /// `missing_dependency`, `no_parents`.
    kind: String,
    /// The step's position in the input (1-based; 0 for problems of the task).
    ord: i32,
    step_uuid: Option<Uuid>,
    created: Option<bool>,
    /// The task's template (`wrong_template`) or the dependency (`missing_dependency`).
    detail: Option<String>,
}

/// The statement: resolve the steps against the task's template and their dependencies against
/// the task's steps and the added ones; if anything fails to resolve, write nothing and report
/// it; otherwise upsert the steps in key order (so concurrent callers lock in the same order),
/// then write the initial transitions and the edges of the steps this call created.
const ADD_STEPS_SQL: &str = "\
WITH task AS ( \
    SELECT t.task_uuid, t.named_task_uuid, \
           $14::text[] IS NULL OR (ns.name, nt.name, nt.version) = ($14[1], $14[2], $14[3]) \
               AS template_matches, \
           ns.name || '/' || nt.name || ':' || nt.version AS template_key \
    FROM tasker.tasks t \
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid \
    JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
    WHERE t.task_uuid = $1 \
), input AS ( \
    SELECT i.ord::integer AS ord, i.name, i.instance, i.step_uuid, i.transition_uuid, \
           i.retryable, i.max_attempts, i.inputs, n.named_step_uuid \
    FROM unnest($2::text[], $3::integer[], $4::uuid[], $5::uuid[], $6::boolean[], \
                $7::integer[], $8::jsonb[]) \
         WITH ORDINALITY AS i (name, instance, step_uuid, transition_uuid, retryable, \
                               max_attempts, inputs, ord) \
    LEFT JOIN tasker.named_steps n \
           ON n.named_task_uuid = (SELECT t.named_task_uuid FROM task t) AND n.name = i.name \
), deps AS ( \
    SELECT d.dep_ord, d.step_ord, d.name, d.instance, d.required \
    FROM unnest($9::integer[], $10::text[], $11::integer[], $12::boolean[]) \
         WITH ORDINALITY AS d (step_ord, name, instance, required, dep_ord) \
), candidates AS ( \
    SELECT ns.name, s.instance, s.workflow_step_uuid AS step_uuid \
    FROM tasker.workflow_steps s \
    JOIN tasker.named_steps ns ON ns.named_step_uuid = s.named_step_uuid \
    WHERE s.task_uuid = $1 AND ns.name IN (SELECT d.name FROM deps d) \
    UNION \
    SELECT i.name, i.instance, NULL FROM input i \
), parents AS ( \
    SELECT d.dep_ord, d.step_ord, c.name, c.instance \
    FROM deps d \
    JOIN candidates c ON c.name = d.name AND (d.instance IS NULL OR c.instance = d.instance) \
), problems AS ( \
    SELECT 0 AS rank, 'no_such_task' AS kind, 0 AS ord, NULL::text AS detail \
    WHERE NOT EXISTS (SELECT 1 FROM task) \
    UNION ALL \
    SELECT 1, 'wrong_template', 0, t.template_key FROM task t WHERE NOT t.template_matches \
    UNION ALL \
    SELECT 2, 'not_in_template', i.ord, NULL FROM input i \
    WHERE i.named_step_uuid IS NULL AND EXISTS (SELECT 1 FROM task) \
    UNION ALL \
    SELECT 3, 'missing_dependency', d.step_ord, d.name FROM deps d \
    WHERE d.required AND NOT EXISTS (SELECT 1 FROM parents p WHERE p.dep_ord = d.dep_ord) \
    UNION ALL \
    SELECT 4, 'no_parents', d.step_ord, NULL FROM deps d \
    GROUP BY d.step_ord \
    HAVING NOT EXISTS (SELECT 1 FROM parents p WHERE p.step_ord = d.step_ord) \
), upserted AS ( \
    INSERT INTO tasker.workflow_steps ( \
        workflow_step_uuid, task_uuid, named_step_uuid, instance, retryable, max_attempts, inputs) \
    SELECT i.step_uuid, $1, i.named_step_uuid, i.instance, i.retryable, i.max_attempts, i.inputs \
    FROM input i \
    WHERE NOT EXISTS (SELECT 1 FROM problems) \
    ORDER BY i.named_step_uuid, i.instance \
    ON CONFLICT (task_uuid, named_step_uuid, instance) DO UPDATE SET instance = EXCLUDED.instance \
    RETURNING workflow_step_uuid, named_step_uuid, instance \
), resolved AS ( \
    SELECT i.ord, i.name, i.instance, u.workflow_step_uuid, \
           u.workflow_step_uuid = i.step_uuid AS created, i.transition_uuid \
    FROM input i \
    JOIN upserted u ON u.named_step_uuid = i.named_step_uuid AND u.instance = i.instance \
), step_transitions AS ( \
    INSERT INTO tasker.workflow_step_transitions ( \
        workflow_step_transition_uuid, workflow_step_uuid, task_uuid, sort_key, from_state, \
        to_state, processor_uuid) \
    SELECT r.transition_uuid, r.workflow_step_uuid, $1, 1, NULL, 'pending', $13 \
    FROM resolved r WHERE r.created \
), edges AS ( \
    INSERT INTO tasker.workflow_step_edges ( \
        workflow_step_edge_uuid, task_uuid, from_step_uuid, to_step_uuid) \
    SELECT tasker.uuid_generate_v7(), $1, e.parent, e.child \
    FROM ( \
        SELECT DISTINCT child.workflow_step_uuid AS child, \
               coalesce(parent.workflow_step_uuid, c.step_uuid) AS parent \
        FROM parents p \
        JOIN resolved child ON child.ord = p.step_ord AND child.created \
        LEFT JOIN resolved parent ON parent.name = p.name AND parent.instance = p.instance \
        LEFT JOIN candidates c \
               ON c.step_uuid IS NOT NULL AND c.name = p.name AND c.instance = p.instance \
    ) e \
) \
SELECT kind, ord, step_uuid, created, detail FROM ( \
    SELECT p.rank, p.kind, p.ord, NULL::uuid AS step_uuid, NULL::boolean AS created, p.detail \
    FROM problems p \
    UNION ALL \
    SELECT 5, 'step', r.ord, r.workflow_step_uuid, r.created, NULL FROM resolved r \
) out \
ORDER BY rank, ord";

fn db_instance(step: &str, instance: u32) -> Result<i32, AddStepsError> {
    i32::try_from(instance).map_err(|_| AddStepsError::InstanceOutOfRange {
        step: step.to_owned(),
        instance,
    })
}

/// What can be checked without the database: duplicates and cycles among the added steps.
fn validate(steps: &[NewTaskStep<'_>]) -> Result<(), AddStepsError> {
    let mut keys = HashSet::with_capacity(steps.len());
    for step in steps {
        if !keys.insert((step.name, step.instance)) {
            return Err(AddStepsError::DuplicateStep {
                step: step.name.to_owned(),
                instance: step.instance,
            });
        }
        let mut seen = HashSet::with_capacity(step.depends_on.len());
        for dependency in &step.depends_on {
            if !seen.insert((dependency.name, dependency.instance)) {
                return Err(AddStepsError::DuplicateDependency {
                    step: step.name.to_owned(),
                    instance: step.instance,
                    dependency: dependency.name.to_owned(),
                });
            }
        }
    }
    // The dependencies among the added steps themselves (existing steps never get new
    // parents, so they cannot close a cycle).
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        by_name.entry(step.name).or_default().push(index);
    }
    let mut parents = Adjacency::with_capacity(steps.len(), 0);
    for step in steps {
        for dependency in &step.depends_on {
            for &parent in by_name.get(dependency.name).map_or(&[][..], Vec::as_slice) {
                if dependency
                    .instance
                    .is_none_or(|i| steps[parent].instance == i)
                {
                    parents.push(parent);
                }
            }
        }
        parents.finish_list();
    }
    dag::sort(&parents).map_err(|error| AddStepsError::Cycle {
        cycle: error
            .first()
            .nodes()
            .iter()
            .filter_map(|&index| steps.get(index))
            .map(|step| (step.name.to_owned(), step.instance))
            .collect(),
    })?;
    Ok(())
}

/// A cycle of added steps as `` `a` instance 1 → `b` instance 0 → `a` instance 1 ``.
fn render_cycle(cycle: &[(String, u32)]) -> String {
    let step = |(name, instance): &(String, u32)| format!("`{name}` instance {instance}");
    cycle
        .iter()
        .chain(cycle.first())
        .map(step)
        .collect::<Vec<_>>()
        .join(" → ")
}
