//! The task and step states: their storage labels, parsing, and the predicates other crates
//! filter on.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Which of the two state machines a state, event or error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Machine {
    /// The task state machine ([`TaskState`], [`crate::TaskEvent`]).
    Task,
    /// The workflow step state machine ([`StepState`], [`crate::StepEvent`]).
    Step,
}

impl Machine {
    /// `"task"` or `"step"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Machine::Task => "task",
            Machine::Step => "step",
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The state of a task. Stored as the Postgres enum `task_state` with these snake_case labels.
///
/// What moves a task out of each state, and who does it, is in [`TaskState::description`] and
/// in the generated `docs/state-machine.md`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sqlx",
    derive(sqlx::Type),
    sqlx(type_name = "task_state", rename_all = "snake_case")
)]
pub enum TaskState {
    /// Created, waiting to be claimed by an orchestrator.
    #[default]
    Pending,
    /// Claimed; the orchestrator is discovering which steps are ready.
    Initializing,
    /// The orchestrator is sending ready steps to the worker queues.
    EnqueuingSteps,
    /// Steps are with the workers; waiting for their results.
    StepsInProcess,
    /// The orchestrator is deciding what the step results add up to.
    EvaluatingResults,
    /// No step can run until running steps finish.
    WaitingForDependencies,
    /// A failed step is waiting out its retry backoff.
    WaitingForRetry,
    /// A step failed permanently; orchestration or an operator decides what happens next.
    BlockedByFailures,
    /// Terminal: every step succeeded, or the task had none.
    Complete,
    /// Terminal: the task failed. Only an operator's reset leaves it.
    Error,
    /// Terminal: cancelled.
    Cancelled,
    /// Terminal: an operator resolved the task by hand.
    ResolvedManually,
}

impl TaskState {
    /// Every task state, in lifecycle order.
    pub const ALL: [TaskState; 12] = [
        TaskState::Pending,
        TaskState::Initializing,
        TaskState::EnqueuingSteps,
        TaskState::StepsInProcess,
        TaskState::EvaluatingResults,
        TaskState::WaitingForDependencies,
        TaskState::WaitingForRetry,
        TaskState::BlockedByFailures,
        TaskState::Complete,
        TaskState::Error,
        TaskState::Cancelled,
        TaskState::ResolvedManually,
    ];

    /// The snake_case label used in JSON and as the Postgres enum label.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Initializing => "initializing",
            TaskState::EnqueuingSteps => "enqueuing_steps",
            TaskState::StepsInProcess => "steps_in_process",
            TaskState::EvaluatingResults => "evaluating_results",
            TaskState::WaitingForDependencies => "waiting_for_dependencies",
            TaskState::WaitingForRetry => "waiting_for_retry",
            TaskState::BlockedByFailures => "blocked_by_failures",
            TaskState::Complete => "complete",
            TaskState::Error => "error",
            TaskState::Cancelled => "cancelled",
            TaskState::ResolvedManually => "resolved_manually",
        }
    }

    /// `complete`, `error`, `cancelled` and `resolved_manually`. Nothing leaves a terminal task
    /// state except an operator's `reset` from `error`.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Complete
                | TaskState::Error
                | TaskState::Cancelled
                | TaskState::ResolvedManually
        )
    }

    /// An orchestrator is working on the task right now: `initializing`, `enqueuing_steps`,
    /// `steps_in_process` or `evaluating_results`.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            TaskState::Initializing
                | TaskState::EnqueuingSteps
                | TaskState::StepsInProcess
                | TaskState::EvaluatingResults
        )
    }

    /// The task waits for something outside the orchestrator: `waiting_for_dependencies`,
    /// `waiting_for_retry` or `blocked_by_failures`.
    pub const fn is_waiting(self) -> bool {
        matches!(
            self,
            TaskState::WaitingForDependencies
                | TaskState::WaitingForRetry
                | TaskState::BlockedByFailures
        )
    }

    /// The states ready-task discovery claims from: `pending`, `waiting_for_dependencies`, and
    /// `waiting_for_retry` (the latter only once its earliest retry time has passed, which the
    /// caller checks).
    pub const fn is_claimable(self) -> bool {
        matches!(
            self,
            TaskState::Pending | TaskState::WaitingForDependencies | TaskState::WaitingForRetry
        )
    }

    /// What the state means, what moves a task out of it, and who does it.
    pub const fn description(self) -> &'static str {
        match self {
            TaskState::Pending => {
                "Created and waiting to be claimed. The orchestrator that claims it moves it to \
                 `initializing`; an operator may cancel it."
            }
            TaskState::Initializing => {
                "Claimed by an orchestrator, which is discovering the ready steps. It moves on to \
                 `enqueuing_steps` (steps are ready), `complete` (the task has no steps) or \
                 `waiting_for_dependencies` (nothing is ready yet). The staleness detector may move \
                 it to `error` if it stays too long (an orchestrator died mid-step)."
            }
            TaskState::EnqueuingSteps => {
                "The orchestrator is sending the ready steps to the worker queues. It moves on to \
                 `steps_in_process` once they are sent, or to `error` if enqueueing failed (or, by \
                 the staleness detector, if it stays too long)."
            }
            TaskState::StepsInProcess => {
                "Steps are with the workers. The orchestrator's result processor moves the task to \
                 `evaluating_results` when a step result arrives; the staleness detector may move \
                 it to `error` if none comes for too long."
            }
            TaskState::EvaluatingResults => {
                "The orchestrator decides what the steps add up to: `complete`, more ready steps \
                 (`enqueuing_steps`), steps still running (`steps_in_process`), \
                 `waiting_for_dependencies`, `waiting_for_retry` or `blocked_by_failures`. The \
                 staleness detector may move it to `error` if it stays too long."
            }
            TaskState::WaitingForDependencies => {
                "No step can run until others finish. The orchestrator moves the task back to \
                 `evaluating_results` when dependencies are ready; the staleness detector may move \
                 it to `error` if it waits too long."
            }
            TaskState::WaitingForRetry => {
                "A failed step is waiting out its backoff. The orchestrator moves the task to \
                 `enqueuing_steps` when the retry is due; the staleness detector may move it to \
                 `error` if it waits too long."
            }
            TaskState::BlockedByFailures => {
                "A step failed permanently. The orchestrator gives up (`error`), or an operator \
                 resolves the task by hand (`resolved_manually`) or resets the failed steps and \
                 has the task re-evaluated (`evaluating_results`)."
            }
            TaskState::Complete => {
                "Terminal: every step succeeded, or the task had no steps. Nothing leaves it."
            }
            TaskState::Error => {
                "Terminal: the task failed. Only an operator's `reset` leaves it, back to `pending`."
            }
            TaskState::Cancelled => {
                "Terminal: cancelled by an operator or API client. Nothing leaves it."
            }
            TaskState::ResolvedManually => {
                "Terminal: an operator resolved the blocked task by hand. Nothing leaves it."
            }
        }
    }
}

/// The state of a workflow step. Stored as the Postgres enum `step_state` with these snake_case
/// labels.
///
/// `error` is not terminal: a failed step waits there until it is retry-eligible (see
/// [`crate::is_retry_eligible`]) or an operator acts on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sqlx",
    derive(sqlx::Type),
    sqlx(type_name = "step_state", rename_all = "snake_case")
)]
pub enum StepState {
    /// Created; waiting for its dependencies and for the orchestrator to enqueue it.
    #[default]
    Pending,
    /// On a worker queue, not yet claimed by a worker.
    Enqueued,
    /// A worker is running the step's handler.
    InProgress,
    /// The worker's result (success or failure) is stored and awaits the orchestrator.
    EnqueuedForOrchestration,
    /// Terminal: the step succeeded (or an operator completed it with a result).
    Complete,
    /// The step failed. Not terminal: it is retried once retry-eligible.
    Error,
    /// Terminal: cancelled. Does not satisfy dependencies.
    Cancelled,
    /// Terminal: an operator resolved the step without a result. Satisfies dependencies.
    ResolvedManually,
}

impl StepState {
    /// Every step state, in lifecycle order.
    pub const ALL: [StepState; 8] = [
        StepState::Pending,
        StepState::Enqueued,
        StepState::InProgress,
        StepState::EnqueuedForOrchestration,
        StepState::Complete,
        StepState::Error,
        StepState::Cancelled,
        StepState::ResolvedManually,
    ];

    /// The snake_case label used in JSON and as the Postgres enum label.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Enqueued => "enqueued",
            StepState::InProgress => "in_progress",
            StepState::EnqueuedForOrchestration => "enqueued_for_orchestration",
            StepState::Complete => "complete",
            StepState::Error => "error",
            StepState::Cancelled => "cancelled",
            StepState::ResolvedManually => "resolved_manually",
        }
    }

    /// `complete`, `cancelled` and `resolved_manually`. Nothing leaves a terminal step state.
    /// `error` is not terminal.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Complete | StepState::Cancelled | StepState::ResolvedManually
        )
    }

    /// `error`: the step failed and waits for a retry or an operator.
    pub const fn is_error(self) -> bool {
        matches!(self, StepState::Error)
    }

    /// A child step may run once every parent is in one of these states: `complete` or
    /// `resolved_manually` (not `cancelled`).
    pub const fn satisfies_dependencies(self) -> bool {
        matches!(self, StepState::Complete | StepState::ResolvedManually)
    }

    /// The step is somewhere between the queue and the orchestrator: `enqueued`, `in_progress`
    /// or `enqueued_for_orchestration`. A task with such steps is still processing.
    pub const fn is_in_processing_pipeline(self) -> bool {
        matches!(
            self,
            StepState::Enqueued | StepState::InProgress | StepState::EnqueuedForOrchestration
        )
    }

    /// What the state means, what moves a step out of it, and who does it.
    pub const fn description(self) -> &'static str {
        match self {
            StepState::Pending => {
                "Created, or back for a retry. The orchestrator's step enqueuer moves it to \
                 `enqueued` once every parent is `complete` or `resolved_manually`."
            }
            StepState::Enqueued => {
                "A message is on the worker queue. A worker claiming it moves it to \
                 `in_progress`; the orchestrator fails it when enqueueing failed or the message \
                 was lost."
            }
            StepState::InProgress => {
                "A worker is running the handler. The worker moves it to \
                 `enqueued_for_orchestration` with the result; the orchestrator fails it on a \
                 timeout or a worker crash."
            }
            StepState::EnqueuedForOrchestration => {
                "The worker's result, successful or not, is stored and awaits the orchestrator, \
                 which completes the step when the result succeeded and fails it otherwise."
            }
            StepState::Complete => {
                "Terminal: the step succeeded, or an operator completed it with a result. \
                 Satisfies dependencies."
            }
            StepState::Error => {
                "The step failed. Not terminal: the orchestrator retries it (back to `pending`) \
                 once it is retry-eligible (retryable, attempts below max_attempts, backoff \
                 elapsed), and an operator may reset it. Until then it blocks its dependents."
            }
            StepState::Cancelled => {
                "Terminal: cancelled, usually with its task. Does not satisfy dependencies."
            }
            StepState::ResolvedManually => {
                "Terminal: an operator resolved the step without a result. Satisfies \
                 dependencies."
            }
        }
    }
}

/// A string that is not the label of any state of the named machine.
///
/// The message names the value, suggests the closest label when there is one, and lists the
/// valid labels.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown {machine} state {value:?}{}; valid {machine} states are: {}",
    suggestion_text(*.suggestion),
    valid_labels(*.machine)
)]
pub struct UnknownState {
    machine: Machine,
    value: String,
    suggestion: Option<&'static str>,
}

impl UnknownState {
    /// The machine whose states were expected.
    pub fn machine(&self) -> Machine {
        self.machine
    }

    /// The string that failed to parse.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The closest valid label, if one is close enough to be a likely typo.
    pub fn suggestion(&self) -> Option<&'static str> {
        self.suggestion
    }
}

fn suggestion_text(suggestion: Option<&'static str>) -> String {
    suggestion
        .map(|label| format!(" (did you mean {label:?}?)"))
        .unwrap_or_default()
}

fn valid_labels(machine: Machine) -> String {
    let labels: Vec<&str> = match machine {
        Machine::Task => TaskState::ALL.iter().map(|state| state.as_str()).collect(),
        Machine::Step => StepState::ALL.iter().map(|state| state.as_str()).collect(),
    };
    labels.join(", ")
}

/// The label closest to `value`, when it is within a typo's distance.
fn closest_label(value: &str, labels: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let normalized = value.trim().to_lowercase().replace(['-', ' '], "_");
    labels
        .map(|label| (strsim::damerau_levenshtein(&normalized, label), label))
        .filter(|(distance, label)| *distance <= (label.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, label)| label)
}

impl FromStr for TaskState {
    type Err = UnknownState;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| UnknownState {
                machine: Machine::Task,
                value: value.to_owned(),
                suggestion: closest_label(value, TaskState::ALL.iter().map(|s| s.as_str())),
            })
    }
}

impl FromStr for StepState {
    type Err = UnknownState;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        StepState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| UnknownState {
                machine: Machine::Step,
                value: value.to_owned(),
                suggestion: closest_label(value, StepState::ALL.iter().map(|s| s.as_str())),
            })
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests;
