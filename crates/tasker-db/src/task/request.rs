//! Task creation from tasker-models' validated template and task request: the identity hash
//! from the template's strategy, the initial steps with their retry policies and handler inputs,
//! and the edges between them, written by [`super::create_many`].

use std::collections::HashMap;

use sqlx::PgConnection;
use tasker_models::identity::compute_identity_hash;
use tasker_models::ids::{NamedStepId, NamedTaskId, ProcessorId};
use tasker_models::request::ValidatedTaskRequest;
use tasker_models::template::ValidatedTemplate;

use super::create::{
    CreateTaskError, NewEdge, NewStep, NewTask, NewTaskGraph, TaskCreation, create_many,
};
use crate::error::DbError;
use crate::template::{RegisteredTemplate, StepDefaults};

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
    let one = RequestToCreate {
        template,
        registered,
        request,
        origin: None,
    };
    let mut outcomes =
        create_many_from_requests(conn, std::slice::from_ref(&one), processor_id).await?;
    outcomes.pop().expect("one outcome per request")
}

/// A validated request and the template it runs, for [`create_many_from_requests`].
#[derive(Debug, Clone, Copy)]
pub struct RequestToCreate<'a> {
    /// The request's template.
    pub template: &'a ValidatedTemplate,
    /// What [`crate::template::register_validated`] returned for it.
    pub registered: &'a RegisteredTemplate,
    /// The request.
    pub request: &'a ValidatedTaskRequest,
    /// The request message it came in, if it came as one.
    pub origin: Option<RequestOrigin<'a>>,
}

/// The request message a task is created from: recorded on the task, so that any process can
/// tell a redelivered request from a duplicate and reply to its requester.
#[derive(Debug, Clone, Copy)]
pub struct RequestOrigin<'a> {
    /// The request message's id.
    pub request_id: uuid::Uuid,
    /// The requester's reply queue, if it waits for replies.
    pub reply_to: Option<&'a str>,
}

/// Creates the tasks of many requests in one statement ([`super::create_many`]): one outcome
/// per request, in order. A request that cannot become a task (no identity, a step that is
/// not registered, an invalid graph) gets its error and the others are created; the outer
/// error is the database's, with [`super::create_many`]'s guarantees (run the call in a
/// transaction to make the batch all or nothing).
pub async fn create_many_from_requests(
    conn: &mut PgConnection,
    requests: &[RequestToCreate<'_>],
    processor_id: Option<ProcessorId>,
) -> Result<Vec<Result<TaskCreation, CreateTaskError>>, DbError> {
    let planned: Vec<Result<Planned, CreateTaskError>> = requests.iter().map(plan).collect();
    let steps: Vec<Vec<NewStep<'_>>> = planned
        .iter()
        .map(|planned| planned.as_ref().map(Planned::steps).unwrap_or_default())
        .collect();
    let graphs: Vec<NewTaskGraph<'_>> = requests
        .iter()
        .zip(&planned)
        .zip(&steps)
        .filter_map(|((item, planned), steps)| {
            let planned = planned.as_ref().ok()?;
            Some(NewTaskGraph {
                task: planned.task(item.request, item.origin, processor_id),
                steps,
                edges: &planned.edges,
            })
        })
        .collect();
    let mut created = create_many(conn, &graphs).await?.into_iter();
    Ok(planned
        .into_iter()
        .map(|planned| match planned {
            Ok(_) => created.next().expect("one outcome per planned request"),
            Err(error) => Err(error),
        })
        .collect())
}

/// What a request's task needs beyond the request itself, owned: its identity hash, and per
/// initial step the template step, retry policy and handler input.
struct Planned {
    named_task_id: NamedTaskId,
    identity: String,
    steps: Vec<(NamedStepId, StepDefaults)>,
    edges: Vec<NewEdge>,
}

impl Planned {
    fn steps(&self) -> Vec<NewStep<'_>> {
        self.steps
            .iter()
            .map(|(named_step_id, defaults)| NewStep {
                named_step_id: *named_step_id,
                retryable: defaults.retryable,
                max_attempts: defaults.max_attempts,
                inputs: Some(&defaults.inputs),
            })
            .collect()
    }

    fn task<'a>(
        &'a self,
        request: &'a ValidatedTaskRequest,
        origin: Option<RequestOrigin<'a>>,
        processor_id: Option<ProcessorId>,
    ) -> NewTask<'a> {
        NewTask {
            named_task_id: self.named_task_id,
            identity_hash: self.identity.as_str(),
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
            request_id: origin.map(|origin| origin.request_id),
            reply_to: origin.and_then(|origin| origin.reply_to),
        }
    }
}

fn plan(item: &RequestToCreate<'_>) -> Result<Planned, CreateTaskError> {
    let RequestToCreate {
        template,
        registered,
        request,
        origin: _,
    } = *item;
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
    let mut steps = Vec::with_capacity(initial.len());
    for step in &initial {
        let Some(named_step_id) = named.get(step.name.as_str()) else {
            return Err(CreateTaskError::UnregisteredStep {
                template: template.routing_key(),
                step: step.name.as_str().to_owned(),
            });
        };
        steps.push((*named_step_id, StepDefaults::of(step)));
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
    Ok(Planned {
        named_task_id: registered.named_task_id,
        identity: identity.as_str().to_owned(),
        steps,
        edges,
    })
}
