//! The events that drive both machines, their payloads, and their payload-free kinds.
//!
//! Events serialize as JSON objects with an explicit `type` tag, for example
//! `{"type":"steps_enqueued","step_ids":["…"]}`. That JSON is what a transition records.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event for the task state machine.
///
/// Which event is accepted in which state is the table in [`crate::TaskStateMachine`] (and
/// `docs/state-machine.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskEvent {
    /// An orchestrator claimed the pending task and starts initializing it.
    Initialize,
    /// Step discovery found `count` steps ready to run.
    ReadyStepsFound {
        /// How many steps are ready.
        count: u32,
    },
    /// The task has no steps at all.
    NoStepsFound,
    /// Steps remain, but none can run until others finish.
    NoDependenciesReady,
    /// The ready steps were sent to the worker queues.
    StepsEnqueued {
        /// The steps that were enqueued (may be empty).
        step_ids: Vec<Uuid>,
    },
    /// Sending the ready steps to the worker queues failed.
    EnqueueFailed {
        /// What went wrong.
        reason: String,
    },
    /// A step's successful result arrived.
    StepCompleted {
        /// The step whose result arrived.
        step_id: Uuid,
    },
    /// A step's failed result arrived.
    StepFailed {
        /// The step whose result arrived.
        step_id: Uuid,
    },
    /// Every enqueued step has reported a result.
    AllStepsCompleted,
    /// Evaluation: every step is complete or resolved manually.
    AllStepsSuccessful,
    /// Evaluation: steps are still with the workers; nothing to do yet.
    StepsStillProcessing,
    /// Dependencies that blocked every remaining step are now satisfied.
    DependenciesReady,
    /// Evaluation: failed steps will be retried; the earliest retry is due at `retry_at`.
    RetryScheduled {
        /// When the earliest failed step becomes retry-eligible.
        retry_at: DateTime<Utc>,
    },
    /// The retry time has come; the retried steps are ready to enqueue.
    RetryReady,
    /// Evaluation: a step failed permanently (not retryable, or out of attempts).
    PermanentFailure {
        /// Why the task cannot make progress.
        reason: String,
    },
    /// Orchestration gives up on a task blocked by failures.
    GiveUp,
    /// The staleness detector found the task in a transient state longer than its threshold
    /// (or past its lifetime) and moves it to `error`; the transition's metadata says which
    /// limit and by how much.
    StalenessTimeout,
    /// An operator resolved a task blocked by failures by hand.
    ManualResolution,
    /// An operator asks to re-evaluate a blocked task after resetting its failed steps.
    RetryFailedSteps,
    /// An operator resets a failed task back to `pending`.
    Reset,
    /// The task is cancelled.
    Cancel,
}

/// The kind of a [`TaskEvent`], without its payload: what the transition table is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskEventKind {
    /// [`TaskEvent::Initialize`]
    Initialize,
    /// [`TaskEvent::ReadyStepsFound`]
    ReadyStepsFound,
    /// [`TaskEvent::NoStepsFound`]
    NoStepsFound,
    /// [`TaskEvent::NoDependenciesReady`]
    NoDependenciesReady,
    /// [`TaskEvent::StepsEnqueued`]
    StepsEnqueued,
    /// [`TaskEvent::EnqueueFailed`]
    EnqueueFailed,
    /// [`TaskEvent::StepCompleted`]
    StepCompleted,
    /// [`TaskEvent::StepFailed`]
    StepFailed,
    /// [`TaskEvent::AllStepsCompleted`]
    AllStepsCompleted,
    /// [`TaskEvent::AllStepsSuccessful`]
    AllStepsSuccessful,
    /// [`TaskEvent::StepsStillProcessing`]
    StepsStillProcessing,
    /// [`TaskEvent::DependenciesReady`]
    DependenciesReady,
    /// [`TaskEvent::RetryScheduled`]
    RetryScheduled,
    /// [`TaskEvent::RetryReady`]
    RetryReady,
    /// [`TaskEvent::PermanentFailure`]
    PermanentFailure,
    /// [`TaskEvent::GiveUp`]
    GiveUp,
    /// [`TaskEvent::StalenessTimeout`]
    StalenessTimeout,
    /// [`TaskEvent::ManualResolution`]
    ManualResolution,
    /// [`TaskEvent::RetryFailedSteps`]
    RetryFailedSteps,
    /// [`TaskEvent::Reset`]
    Reset,
    /// [`TaskEvent::Cancel`]
    Cancel,
}

impl TaskEventKind {
    /// Every task event kind.
    pub const ALL: [TaskEventKind; 21] = [
        TaskEventKind::Initialize,
        TaskEventKind::ReadyStepsFound,
        TaskEventKind::NoStepsFound,
        TaskEventKind::NoDependenciesReady,
        TaskEventKind::StepsEnqueued,
        TaskEventKind::EnqueueFailed,
        TaskEventKind::StepCompleted,
        TaskEventKind::StepFailed,
        TaskEventKind::AllStepsCompleted,
        TaskEventKind::AllStepsSuccessful,
        TaskEventKind::StepsStillProcessing,
        TaskEventKind::DependenciesReady,
        TaskEventKind::RetryScheduled,
        TaskEventKind::RetryReady,
        TaskEventKind::PermanentFailure,
        TaskEventKind::GiveUp,
        TaskEventKind::StalenessTimeout,
        TaskEventKind::ManualResolution,
        TaskEventKind::RetryFailedSteps,
        TaskEventKind::Reset,
        TaskEventKind::Cancel,
    ];

    /// The snake_case name, equal to the event's JSON `type` tag.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEventKind::Initialize => "initialize",
            TaskEventKind::ReadyStepsFound => "ready_steps_found",
            TaskEventKind::NoStepsFound => "no_steps_found",
            TaskEventKind::NoDependenciesReady => "no_dependencies_ready",
            TaskEventKind::StepsEnqueued => "steps_enqueued",
            TaskEventKind::EnqueueFailed => "enqueue_failed",
            TaskEventKind::StepCompleted => "step_completed",
            TaskEventKind::StepFailed => "step_failed",
            TaskEventKind::AllStepsCompleted => "all_steps_completed",
            TaskEventKind::AllStepsSuccessful => "all_steps_successful",
            TaskEventKind::StepsStillProcessing => "steps_still_processing",
            TaskEventKind::DependenciesReady => "dependencies_ready",
            TaskEventKind::RetryScheduled => "retry_scheduled",
            TaskEventKind::RetryReady => "retry_ready",
            TaskEventKind::PermanentFailure => "permanent_failure",
            TaskEventKind::GiveUp => "give_up",
            TaskEventKind::StalenessTimeout => "staleness_timeout",
            TaskEventKind::ManualResolution => "manual_resolution",
            TaskEventKind::RetryFailedSteps => "retry_failed_steps",
            TaskEventKind::Reset => "reset",
            TaskEventKind::Cancel => "cancel",
        }
    }
}

impl TaskEvent {
    /// The event's kind, without its payload.
    pub const fn kind(&self) -> TaskEventKind {
        match self {
            TaskEvent::Initialize => TaskEventKind::Initialize,
            TaskEvent::ReadyStepsFound { .. } => TaskEventKind::ReadyStepsFound,
            TaskEvent::NoStepsFound => TaskEventKind::NoStepsFound,
            TaskEvent::NoDependenciesReady => TaskEventKind::NoDependenciesReady,
            TaskEvent::StepsEnqueued { .. } => TaskEventKind::StepsEnqueued,
            TaskEvent::EnqueueFailed { .. } => TaskEventKind::EnqueueFailed,
            TaskEvent::StepCompleted { .. } => TaskEventKind::StepCompleted,
            TaskEvent::StepFailed { .. } => TaskEventKind::StepFailed,
            TaskEvent::AllStepsCompleted => TaskEventKind::AllStepsCompleted,
            TaskEvent::AllStepsSuccessful => TaskEventKind::AllStepsSuccessful,
            TaskEvent::StepsStillProcessing => TaskEventKind::StepsStillProcessing,
            TaskEvent::DependenciesReady => TaskEventKind::DependenciesReady,
            TaskEvent::RetryScheduled { .. } => TaskEventKind::RetryScheduled,
            TaskEvent::RetryReady => TaskEventKind::RetryReady,
            TaskEvent::PermanentFailure { .. } => TaskEventKind::PermanentFailure,
            TaskEvent::GiveUp => TaskEventKind::GiveUp,
            TaskEvent::StalenessTimeout => TaskEventKind::StalenessTimeout,
            TaskEvent::ManualResolution => TaskEventKind::ManualResolution,
            TaskEvent::RetryFailedSteps => TaskEventKind::RetryFailedSteps,
            TaskEvent::Reset => TaskEventKind::Reset,
            TaskEvent::Cancel => TaskEventKind::Cancel,
        }
    }

    /// The event as the JSON object a transition records (never Debug text).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .expect("a TaskEvent holds only strings, integers, uuids and timestamps")
    }
}

impl TaskEventKind {
    /// A representative event of this kind, for docs and tests.
    pub(crate) fn example(self) -> TaskEvent {
        match self {
            TaskEventKind::Initialize => TaskEvent::Initialize,
            TaskEventKind::ReadyStepsFound => TaskEvent::ReadyStepsFound { count: 3 },
            TaskEventKind::NoStepsFound => TaskEvent::NoStepsFound,
            TaskEventKind::NoDependenciesReady => TaskEvent::NoDependenciesReady,
            TaskEventKind::StepsEnqueued => TaskEvent::StepsEnqueued {
                step_ids: vec![EXAMPLE_STEP_ID, EXAMPLE_OTHER_STEP_ID],
            },
            TaskEventKind::EnqueueFailed => TaskEvent::EnqueueFailed {
                reason: "queue worker_payments_queue is missing".into(),
            },
            TaskEventKind::StepCompleted => TaskEvent::StepCompleted {
                step_id: EXAMPLE_STEP_ID,
            },
            TaskEventKind::StepFailed => TaskEvent::StepFailed {
                step_id: EXAMPLE_STEP_ID,
            },
            TaskEventKind::AllStepsCompleted => TaskEvent::AllStepsCompleted,
            TaskEventKind::AllStepsSuccessful => TaskEvent::AllStepsSuccessful,
            TaskEventKind::StepsStillProcessing => TaskEvent::StepsStillProcessing,
            TaskEventKind::DependenciesReady => TaskEvent::DependenciesReady,
            TaskEventKind::RetryScheduled => TaskEvent::RetryScheduled {
                retry_at: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            },
            TaskEventKind::RetryReady => TaskEvent::RetryReady,
            TaskEventKind::PermanentFailure => TaskEvent::PermanentFailure {
                reason: "step charge_card failed permanently".into(),
            },
            TaskEventKind::GiveUp => TaskEvent::GiveUp,
            TaskEventKind::StalenessTimeout => TaskEvent::StalenessTimeout,
            TaskEventKind::ManualResolution => TaskEvent::ManualResolution,
            TaskEventKind::RetryFailedSteps => TaskEvent::RetryFailedSteps,
            TaskEventKind::Reset => TaskEvent::Reset,
            TaskEventKind::Cancel => TaskEvent::Cancel,
        }
    }
}

const EXAMPLE_STEP_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const EXAMPLE_OTHER_STEP_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
const EXAMPLE_WORKER_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00aa);

impl From<&TaskEvent> for TaskEventKind {
    fn from(event: &TaskEvent) -> Self {
        event.kind()
    }
}

impl From<TaskEvent> for TaskEventKind {
    fn from(event: TaskEvent) -> Self {
        event.kind()
    }
}

impl fmt::Display for TaskEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An event for the workflow step state machine.
///
/// Which event is accepted in which state, with which guard, is the table in
/// [`crate::StepStateMachine`] (and `docs/state-machine.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepEvent {
    /// The orchestrator sends the step to its worker queue.
    Enqueue,
    /// A worker claimed the step and starts running its handler.
    Start {
        /// The worker that claimed the step.
        worker_id: Uuid,
    },
    /// The worker finished the handler and hands its result (successful or not) to the
    /// orchestrator.
    EnqueueForOrchestration {
        /// The step execution result as JSON, stored on the step.
        result: serde_json::Value,
    },
    /// The orchestrator accepts the stored, successful result.
    Complete,
    /// The step failed: its result reported a failure, enqueueing failed, it timed out, or its
    /// worker crashed.
    Fail {
        /// What failed, and whether it may be retried.
        error: StepError,
    },
    /// The orchestrator retries a retry-eligible failed step.
    Retry,
    /// An operator resets a failed step for another run, with its attempts back at zero.
    ResetForRetry,
    /// The step is cancelled (usually because its task is).
    Cancel,
    /// An operator resolves the step without a result; dependents may run.
    ResolveManually,
    /// An operator completes the step with a result of their own.
    CompleteManually {
        /// The operator-supplied result, stored on the step.
        result: serde_json::Value,
    },
}

/// Why a step failed, carried by [`StepEvent::Fail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepError {
    /// What went wrong, for people.
    pub message: String,
    /// Whether this failure may be retried at all. `false` for permanent failures (for example
    /// invalid input); the step's own retry policy applies on top.
    pub retryable: bool,
    /// A backoff the failure asked for (for example an HTTP `Retry-After`), used instead of the
    /// backoff policy. Serialized as whole milliseconds in `requested_backoff_ms`.
    #[serde(rename = "requested_backoff_ms", default, with = "optional_millis")]
    pub requested_backoff: Option<Duration>,
}

impl StepError {
    /// A retryable failure with no requested backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
            requested_backoff: None,
        }
    }

    /// A permanent failure: never retried automatically.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
            requested_backoff: None,
        }
    }

    /// The same failure, asking to be retried no sooner than `backoff` after the attempt.
    #[must_use]
    pub fn with_requested_backoff(mut self, backoff: Duration) -> Self {
        self.requested_backoff = Some(backoff);
        self
    }
}

/// The kind of a [`StepEvent`], without its payload: what the transition table is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepEventKind {
    /// [`StepEvent::Enqueue`]
    Enqueue,
    /// [`StepEvent::Start`]
    Start,
    /// [`StepEvent::EnqueueForOrchestration`]
    EnqueueForOrchestration,
    /// [`StepEvent::Complete`]
    Complete,
    /// [`StepEvent::Fail`]
    Fail,
    /// [`StepEvent::Retry`]
    Retry,
    /// [`StepEvent::ResetForRetry`]
    ResetForRetry,
    /// [`StepEvent::Cancel`]
    Cancel,
    /// [`StepEvent::ResolveManually`]
    ResolveManually,
    /// [`StepEvent::CompleteManually`]
    CompleteManually,
}

impl StepEventKind {
    /// Every step event kind.
    pub const ALL: [StepEventKind; 10] = [
        StepEventKind::Enqueue,
        StepEventKind::Start,
        StepEventKind::EnqueueForOrchestration,
        StepEventKind::Complete,
        StepEventKind::Fail,
        StepEventKind::Retry,
        StepEventKind::ResetForRetry,
        StepEventKind::Cancel,
        StepEventKind::ResolveManually,
        StepEventKind::CompleteManually,
    ];

    /// The snake_case name, equal to the event's JSON `type` tag.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepEventKind::Enqueue => "enqueue",
            StepEventKind::Start => "start",
            StepEventKind::EnqueueForOrchestration => "enqueue_for_orchestration",
            StepEventKind::Complete => "complete",
            StepEventKind::Fail => "fail",
            StepEventKind::Retry => "retry",
            StepEventKind::ResetForRetry => "reset_for_retry",
            StepEventKind::Cancel => "cancel",
            StepEventKind::ResolveManually => "resolve_manually",
            StepEventKind::CompleteManually => "complete_manually",
        }
    }
}

impl StepEvent {
    /// The event's kind, without its payload.
    pub const fn kind(&self) -> StepEventKind {
        match self {
            StepEvent::Enqueue => StepEventKind::Enqueue,
            StepEvent::Start { .. } => StepEventKind::Start,
            StepEvent::EnqueueForOrchestration { .. } => StepEventKind::EnqueueForOrchestration,
            StepEvent::Complete => StepEventKind::Complete,
            StepEvent::Fail { .. } => StepEventKind::Fail,
            StepEvent::Retry => StepEventKind::Retry,
            StepEvent::ResetForRetry => StepEventKind::ResetForRetry,
            StepEvent::Cancel => StepEventKind::Cancel,
            StepEvent::ResolveManually => StepEventKind::ResolveManually,
            StepEvent::CompleteManually { .. } => StepEventKind::CompleteManually,
        }
    }

    /// The event as the JSON object a transition records (never Debug text).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .expect("a StepEvent holds only strings, integers, booleans, uuids and JSON values")
    }
}

impl StepEventKind {
    /// A representative event of this kind, for docs and tests.
    pub(crate) fn example(self) -> StepEvent {
        match self {
            StepEventKind::Enqueue => StepEvent::Enqueue,
            StepEventKind::Start => StepEvent::Start {
                worker_id: EXAMPLE_WORKER_ID,
            },
            StepEventKind::EnqueueForOrchestration => StepEvent::EnqueueForOrchestration {
                result: serde_json::json!({"success": true, "result": {"charge_id": "ch_1"}}),
            },
            StepEventKind::Complete => StepEvent::Complete,
            StepEventKind::Fail => StepEvent::Fail {
                error: StepError::retryable("payment gateway timed out")
                    .with_requested_backoff(Duration::from_secs(30)),
            },
            StepEventKind::Retry => StepEvent::Retry,
            StepEventKind::ResetForRetry => StepEvent::ResetForRetry,
            StepEventKind::Cancel => StepEvent::Cancel,
            StepEventKind::ResolveManually => StepEvent::ResolveManually,
            StepEventKind::CompleteManually => StepEvent::CompleteManually {
                result: serde_json::json!({"success": true, "result": {"refunded": true}}),
            },
        }
    }
}

impl From<&StepEvent> for StepEventKind {
    fn from(event: &StepEvent) -> Self {
        event.kind()
    }
}

impl From<StepEvent> for StepEventKind {
    fn from(event: StepEvent) -> Self {
        event.kind()
    }
}

impl fmt::Display for StepEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// `Option<Duration>` as whole milliseconds (`null` when absent).
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests;
