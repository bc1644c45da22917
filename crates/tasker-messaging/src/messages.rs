//! The messages Tasker sends over its queues, in the workspace's vocabulary: typed ids
//! (`TaskId`, `StepId`, `CorrelationId`), the typed `TaskRequest` and task states.
//!
//! Step traffic carries identifiers only: the step's inputs and results travel through the
//! database ("the database is the API"), which keeps messages small and makes redelivery
//! idempotent. Task requests carry the request itself, because no task row exists yet. On the
//! wire the ids keep their names of the predecessor (`task_uuid`, `step_uuid`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tasker_models::request::TaskRequest;
use tasker_state::TaskState;
use uuid::Uuid;

use crate::envelope::{MessageKind, QueueMessage};
use crate::queue_name::QueueName;

/// Orchestration asks the workers of a namespace to run a step (on `worker_<namespace>_queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepMessage {
    /// The task the step belongs to.
    #[serde(rename = "task_uuid")]
    pub task_id: TaskId,
    /// The step to run.
    #[serde(rename = "step_uuid")]
    pub step_id: StepId,
    /// Correlates everything done for one task request across services.
    pub correlation_id: CorrelationId,
}

impl QueueMessage for StepMessage {
    const KIND: MessageKind = MessageKind::Step;
}

/// A worker reports that it stored a step's result (on `orchestration_step_results`); the result
/// itself is in the step's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepResultMessage {
    /// The task the step belongs to.
    #[serde(rename = "task_uuid")]
    pub task_id: TaskId,
    /// The step whose result is stored.
    #[serde(rename = "step_uuid")]
    pub step_id: StepId,
    /// The correlation id of the step message this answers.
    pub correlation_id: CorrelationId,
}

impl QueueMessage for StepResultMessage {
    const KIND: MessageKind = MessageKind::StepResult;
}

impl From<StepMessage> for StepResultMessage {
    /// The result report that answers a step message.
    fn from(step: StepMessage) -> Self {
        Self {
            task_id: step.task_id,
            step_id: step.step_id,
            correlation_id: step.correlation_id,
        }
    }
}

/// A request to create a task (on `orchestration_task_requests`): an orchestration command.
/// The request's own fields (priority, correlation id, initiator, ...) are the task's; the
/// envelope adds only what the transport needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequestMessage {
    /// Identifies this request message: a redelivery carries the same id, a new request with
    /// the same identity does not. Recorded on the task it creates.
    pub request_id: Uuid,
    /// When the request was sent.
    pub requested_at: DateTime<Utc>,
    /// Where the requester waits for [`TaskReplyMessage`]s: told when the task finishes (or the
    /// request is refused, or names a task that existed already), by whichever orchestrator does
    /// the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<QueueName>,
    /// The task request.
    pub request: TaskRequest,
}

impl QueueMessage for TaskRequestMessage {
    const KIND: MessageKind = MessageKind::TaskRequest;
}

/// A request to finalize a task (on `orchestration_task_finalizations`): an orchestration
/// command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFinalizationMessage {
    /// The task to finalize.
    #[serde(rename = "task_uuid")]
    pub task_id: TaskId,
    /// Correlates everything done for the task's request.
    pub correlation_id: CorrelationId,
}

impl QueueMessage for TaskFinalizationMessage {
    const KIND: MessageKind = MessageKind::TaskFinalization;
}

/// What orchestration tells a requester about its request, on the request's `reply_to` queue.
/// Delivered at least once: a requester may see the same reply twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReplyMessage {
    /// The request this answers.
    pub request_id: Uuid,
    /// What happened.
    pub reply: TaskReply,
}

impl QueueMessage for TaskReplyMessage {
    const KIND: MessageKind = MessageKind::TaskReply;
}

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskReply {
    /// The request's task existed already when the request was taken: a redelivery of the
    /// request that created it, or, if `duplicate`, a task created earlier for another request
    /// with the same identity, so nothing runs for this one. (A new task's requester hears of
    /// it with `Finished`.)
    Created {
        /// The task.
        task_id: TaskId,
        /// Another request created the task.
        duplicate: bool,
    },
    /// The request can never become a task; it was dead-lettered.
    Refused {
        /// Why, with what to change.
        reason: String,
    },
    /// The task reached a terminal state.
    Finished {
        /// The task.
        task_id: TaskId,
        /// The terminal state.
        state: TaskState,
    },
}

/// A task or step transition, relayed from the event outbox to `<namespace>_domain_events`
/// (at least once; a consumer that keeps the highest `sort_key` per task or step seen drops
/// repeats). Identifiers and states only, never the task's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleEventMessage {
    /// The event's place in the outbox: a task's events arrive in this order.
    pub event_id: i64,
    /// The lifecycle event, e.g. `step.completed` (tasker-state's rule tables name them).
    pub name: String,
    /// The task.
    #[serde(rename = "task_uuid")]
    pub task_id: TaskId,
    /// The step, for a step transition.
    #[serde(rename = "step_uuid")]
    pub step_id: Option<StepId>,
    /// The transition's sort key within its task or step.
    pub sort_key: i32,
    /// The state left (`None` for an initial transition).
    pub from_state: Option<String>,
    /// The state entered.
    pub to_state: String,
    /// The process that wrote the transition.
    pub processor_id: Option<Uuid>,
    /// When the transition happened.
    pub occurred_at: DateTime<Utc>,
}

impl QueueMessage for LifecycleEventMessage {
    const KIND: MessageKind = MessageKind::LifecycleEvent;
}

/// An event declared by a task template and published by a step handler, relayed from the
/// event outbox to `<namespace>_domain_events` with the task's lifecycle events (at least once:
/// a consumer drops an `event_id` it has seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainEvent {
    /// Identifies the event (a UUID v7, so ids sort by time); the same on every delivery.
    pub event_id: Uuid,
    /// The event's place in the outbox, shared with the lifecycle events (their `event_id`):
    /// a task's events of both kinds arrive in this order.
    pub sequence: i64,
    /// The event's name as declared, e.g. `payment.captured`.
    pub name: String,
    /// The version of the task's template, which declares the event and its schema.
    pub version: String,
    /// The namespace of the task that fired it.
    pub namespace: String,
    /// The task that fired it.
    #[serde(rename = "task_uuid")]
    pub task_id: TaskId,
    /// The step that fired it, if a step did.
    #[serde(rename = "step_uuid")]
    pub step_id: Option<StepId>,
    /// The correlation id of the task's request.
    pub correlation_id: CorrelationId,
    /// When it was fired.
    pub fired_at: DateTime<Utc>,
    /// The business payload, validated against the declared schema by the publisher.
    pub payload: serde_json::Value,
}

impl QueueMessage for DomainEvent {
    const KIND: MessageKind = MessageKind::DomainEvent;
}
