//! The messages Tasker sends over its queues.
//!
//! Step traffic carries identifiers only: the step's inputs and results travel through the
//! database ("the database is the API"), which keeps messages small and makes redelivery
//! idempotent. Task requests carry the request itself, because no task row exists yet; its
//! shape belongs to the models crate, so it travels here as JSON that the consumer decodes there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{MessageKind, QueueMessage};

/// Orchestration asks the workers of a namespace to run a step (on `worker_<namespace>_queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepMessage {
    /// The task the step belongs to.
    pub task_uuid: Uuid,
    /// The step to run.
    pub step_uuid: Uuid,
    /// Correlates everything done for one task request across services.
    pub correlation_id: Uuid,
}

impl QueueMessage for StepMessage {
    const KIND: MessageKind = MessageKind::Step;
}

/// A worker reports that it stored a step's result (on `orchestration_step_results`); the result
/// itself is in the step's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepResultMessage {
    /// The task the step belongs to.
    pub task_uuid: Uuid,
    /// The step whose result is stored.
    pub step_uuid: Uuid,
    /// The correlation id of the step message this answers.
    pub correlation_id: Uuid,
}

impl QueueMessage for StepResultMessage {
    const KIND: MessageKind = MessageKind::StepResult;
}

/// The priority of a task request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    /// Background work.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of normal work.
    High,
    /// Ahead of everything else.
    Urgent,
}

/// A request to create a task (on `orchestration_task_requests`): an orchestration command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequestMessage {
    /// Identifies this request (idempotency and tracing).
    pub request_id: Uuid,
    /// Correlates everything done for this request.
    pub correlation_id: Uuid,
    /// When the request was made.
    pub requested_at: DateTime<Utc>,
    /// Who made it, if known.
    pub requester: Option<String>,
    /// The request's priority.
    pub priority: TaskPriority,
    /// The task request as the models crate serialises it; decode it there.
    pub request: serde_json::Value,
}

impl QueueMessage for TaskRequestMessage {
    const KIND: MessageKind = MessageKind::TaskRequest;
}

/// A request to finalize a task (on `orchestration_task_finalizations`): an orchestration
/// command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFinalizationMessage {
    /// The task to finalize.
    pub task_uuid: Uuid,
    /// Correlates everything done for the task's request.
    pub correlation_id: Uuid,
}

impl QueueMessage for TaskFinalizationMessage {
    const KIND: MessageKind = MessageKind::TaskFinalization;
}

/// An event declared by a task template, published on `<namespace>_domain_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainEvent {
    /// Identifies the event (a UUID v7, so ids sort by time).
    pub event_id: Uuid,
    /// The event's name as declared, e.g. `payment.captured`.
    pub name: String,
    /// The version of the event's schema.
    pub version: String,
    /// The namespace of the task that fired it.
    pub namespace: String,
    /// The task that fired it.
    pub task_uuid: Uuid,
    /// The step that fired it, if a step did.
    pub step_uuid: Option<Uuid>,
    /// The correlation id of the task's request.
    pub correlation_id: Uuid,
    /// When it was fired.
    pub fired_at: DateTime<Utc>,
    /// The business payload, validated against the declared schema by the publisher.
    pub payload: serde_json::Value,
}

impl QueueMessage for DomainEvent {
    const KIND: MessageKind = MessageKind::DomainEvent;
}
