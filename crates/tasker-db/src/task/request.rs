//! Task creation from tasker-models' validated template and task request: the identity hash
//! from the template's strategy, the initial steps with their retry policies and handler inputs,
//! and the edges between them, written by [`super::create`].

use std::collections::HashMap;

use sqlx::PgConnection;
use tasker_models::identity::compute_identity_hash;
use tasker_models::ids::ProcessorId;
use tasker_models::request::ValidatedTaskRequest;
use tasker_models::template::ValidatedTemplate;

use super::create::{CreateTaskError, NewEdge, NewStep, NewTask, TaskCreation, create};
use crate::template::RegisteredTemplate;

/// Creates the task a validated request asks for, or returns the existing task with the same
/// identity (see [`super::create`] for the guarantees).
///
/// `registered` is what [`crate::template::register_validated`] returned for `template`. The
/// task starts with the template's initial steps (decision branches, deferred convergence and
/// batch workers are created later, when their time comes); edges connect initial steps only.
pub async fn create_from_request(
    conn: &mut PgConnection,
    template: &ValidatedTemplate,
    registered: &RegisteredTemplate,
    request: &ValidatedTaskRequest,
    processor_id: Option<ProcessorId>,
) -> Result<TaskCreation, CreateTaskError> {
    let identity = compute_identity_hash(
        template.template().identity_strategy,
        registered.named_task_id,
        &request.context,
        request.idempotency_key.as_ref(),
    )?;
    let named: HashMap<&str, _> = registered
        .steps
        .iter()
        .map(|(name, id)| (name.as_str(), *id))
        .collect();
    let initial: Vec<_> = template.initial_steps().collect();
    let position: HashMap<&str, usize> = initial
        .iter()
        .enumerate()
        .map(|(i, step)| (step.name.as_str(), i))
        .collect();
    let inputs: Vec<serde_json::Value> = initial
        .iter()
        .map(|step| serde_json::Value::Object(step.handler.initialization.clone()))
        .collect();
    let mut steps = Vec::with_capacity(initial.len());
    for (step, inputs) in initial.iter().zip(&inputs) {
        let Some(named_step_id) = named.get(step.name.as_str()) else {
            return Err(CreateTaskError::UnregisteredStep {
                template: template.routing_key(),
                step: step.name.as_str().to_owned(),
            });
        };
        steps.push(NewStep {
            named_step_id: *named_step_id,
            retryable: step.retry.retryable,
            max_attempts: i32::try_from(step.retry.max_attempts).unwrap_or(i32::MAX),
            inputs: Some(inputs),
        });
    }
    let edges: Vec<NewEdge> = initial
        .iter()
        .enumerate()
        .flat_map(|(to, step)| {
            let position = &position;
            step.dependencies
                .iter()
                .filter_map(move |dependency| position.get(dependency.as_str()))
                .map(move |&from| NewEdge { from, to })
        })
        .collect();
    create(
        conn,
        &NewTask {
            named_task_id: registered.named_task_id,
            identity_hash: identity.as_str(),
            context: &request.context,
            tags: &request.tags,
            priority: request.priority,
            initiator: Some(&request.initiator),
            source_system: Some(&request.source_system),
            reason: Some(&request.reason),
            correlation_id: request.correlation_id,
            parent_correlation_id: request.parent_correlation_id,
            requested_at: Some(request.requested_at),
            processor_id,
        },
        &steps,
        &edges,
    )
    .await
}
