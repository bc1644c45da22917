//! Steps added to an existing task from its tasker-models template: which steps may be added
//! (those not created with the task), their retry policies and inputs, and their dependencies
//! as the template declares them, written by [`super::add_to_task`]'s statement.

use sqlx::PgConnection;
use tasker_models::ids::{ProcessorId, TaskId};
use tasker_models::template::{StepType, ValidatedTemplate};

use super::add::{AddStepsError, AddedStep, Dependency, NewTaskStep, insert};
use crate::template::StepDefaults;

/// A step of the template to add to a task.
#[derive(Debug, Clone, Copy)]
pub struct StepToAdd<'a> {
    /// The template step: a step of a decision's branch, a deferred convergence step or a
    /// batch worker (steps created with the task cannot be added again).
    pub name: &'a str,
    /// 0, or the batch worker's number (1..N; 0 is the placeholder of an empty batch).
    pub instance: u32,
    /// The handler's input; `None` uses the template's `handler.initialization`. Batch
    /// workers get their cursor here.
    pub inputs: Option<&'a serde_json::Value>,
}

/// Adds steps of `template` to a task that runs it, with the dependencies the template
/// declares, in one statement (see [`super::add_to_task`] for idempotency and concurrency).
///
/// Checks, before anything is written: each step is a step of `template` that is not created
/// with the task (see `StepGraph::initial_steps`), only batch workers have instances other
/// than 0, and the task runs `template` (namespace, name and version). A declared dependency
/// on step `d` becomes an edge from every instance of `d` the task has or gets in this call
/// (a convergence step after a batch depends on all its workers). It is required, except for
/// a `deferred_convergence` step, whose parents are those of its declared dependencies that
/// were created (at least one). Retry policies come from the template.
pub async fn add_from_template(
    conn: &mut PgConnection,
    template: &ValidatedTemplate,
    task_id: TaskId,
    steps: &[StepToAdd<'_>],
    processor_id: Option<ProcessorId>,
) -> Result<Vec<AddedStep>, AddStepsError> {
    let mut defaults = Vec::with_capacity(steps.len());
    for step in steps {
        let not_in_template = || AddStepsError::NotInTemplate {
            task_id,
            step: step.name.to_owned(),
        };
        let index = template.step_index(step.name).ok_or_else(not_in_template)?;
        let definition = template.step(index).ok_or_else(not_in_template)?;
        if template.graph().is_initial(index) {
            return Err(AddStepsError::CreatedWithTask {
                step: step.name.to_owned(),
            });
        }
        if step.instance != 0 && definition.step_type != StepType::BatchWorker {
            return Err(AddStepsError::NotABatchWorker {
                step: step.name.to_owned(),
                instance: step.instance,
            });
        }
        defaults.push((definition, StepDefaults::of(definition)));
    }
    let new_steps: Vec<NewTaskStep<'_>> = steps
        .iter()
        .zip(&defaults)
        .map(|(step, (definition, step_defaults))| {
            let required = definition.step_type != StepType::DeferredConvergence;
            NewTaskStep {
                name: step.name,
                instance: step.instance,
                retryable: step_defaults.retryable,
                max_attempts: step_defaults.max_attempts,
                inputs: Some(step.inputs.unwrap_or(&step_defaults.inputs)),
                depends_on: definition
                    .dependencies
                    .iter()
                    .map(|dependency| Dependency {
                        name: dependency.as_str(),
                        instance: None,
                        required,
                    })
                    .collect(),
            }
        })
        .collect();
    let inner = template.template();
    insert(
        conn,
        task_id,
        &new_steps,
        processor_id,
        Some([
            inner.namespace_name.as_str(),
            inner.name.as_str(),
            inner.version.as_str(),
        ]),
    )
    .await
}
