//! The task state machine: its transition table, what an accepted transition yields, and the
//! error for a transition the table does not have.

use std::{convert::Infallible, fmt};

use crate::{
    TaskEvent, TaskEventKind, TaskState,
    rule::{self, Actor, FromStates, LifecycleTransition, Rule},
};

/// The task state machine: which event moves a task from which state to which.
///
/// Task transitions have no data guards: the table is the whole rule, so [`transition`] is all
/// most callers need. [`apply`] also yields what must be recorded.
///
/// ```
/// use tasker_state::{TaskEvent, TaskState, TaskStateMachine};
///
/// let machine = TaskStateMachine::new();
/// assert_eq!(machine.transition(TaskState::Pending, TaskEvent::Initialize)?, TaskState::Initializing);
///
/// let record = machine.apply(TaskState::EvaluatingResults, TaskEvent::AllStepsSuccessful)?;
/// assert_eq!(record.to, TaskState::Complete);
/// assert_eq!(record.lifecycle_event, "task.completed");
///
/// let error = machine.transition(TaskState::Complete, TaskEvent::Cancel).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "task event `cancel` is not accepted in state `complete`: `complete` is terminal and nothing leaves it",
/// );
/// # Ok::<(), tasker_state::InvalidTaskTransition>(())
/// ```
///
/// [`transition`]: TaskStateMachine::transition
/// [`apply`]: TaskStateMachine::apply
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskStateMachine {
    _private: (),
}

/// What an accepted task transition yields: everything the caller must record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTransitionRecord {
    /// The state the task was in.
    pub from: TaskState,
    /// The state the task is now in.
    pub to: TaskState,
    /// The event that caused the transition; recorded as [`TaskTransitionRecord::event_json`].
    pub event: TaskEvent,
    /// Changes to apply to the task row in the same database transaction.
    pub effects: Vec<TaskEffect>,
    /// The name published on the events system, for example `task.completed`.
    pub lifecycle_event: &'static str,
}

impl TaskTransitionRecord {
    /// The event as the JSON object to record, for example
    /// `{"type":"steps_enqueued","step_ids":[...]}`.
    pub fn event_json(&self) -> serde_json::Value {
        self.event.to_json()
    }
}

/// A change to the task row that goes with a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEffect {
    /// Set `completed_at` to the transition's time (the database's `now()`). Happens exactly on
    /// entering `complete`, so `state = complete ⇔ completed_at is not null` holds.
    MarkCompletedAt,
}

impl TaskEffect {
    /// Every task effect.
    pub const ALL: [TaskEffect; 1] = [TaskEffect::MarkCompletedAt];

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEffect::MarkCompletedAt => "mark_completed_at",
        }
    }

    /// What the effect does to the task row.
    pub const fn description(self) -> &'static str {
        match self {
            TaskEffect::MarkCompletedAt => "`completed_at` ← transition time",
        }
    }
}

impl fmt::Display for TaskEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A task event that the table does not accept in the given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task event `{event}` is not accepted in state `{from}`: {}", refusal(*.from))]
pub struct InvalidTaskTransition {
    /// The state the task was in.
    pub from: TaskState,
    /// The event that was refused.
    pub event: TaskEventKind,
}

fn refusal(from: TaskState) -> String {
    let accepted = TaskStateMachine::new().accepted_events(from);
    match (from.is_terminal(), accepted.is_empty()) {
        (true, true) => format!("`{from}` is terminal and nothing leaves it"),
        (true, false) => format!(
            "`{from}` is terminal; only {} leaves it",
            rule::backticked(&accepted)
        ),
        (false, _) => format!("it accepts {}", rule::backticked(&accepted)),
    }
}

pub(crate) type TaskRule = Rule<TaskState, TaskEventKind, Infallible, TaskEffect>;

impl TaskStateMachine {
    /// The task state machine. It holds no data: the table is static.
    pub const fn new() -> Self {
        TaskStateMachine { _private: () }
    }

    /// The state `event` moves a task in `from` to, or an error naming both when the table has
    /// no such transition.
    ///
    /// Takes a [`TaskEvent`], a `&TaskEvent` or a [`TaskEventKind`].
    pub fn transition(
        &self,
        from: TaskState,
        event: impl Into<TaskEventKind>,
    ) -> Result<TaskState, InvalidTaskTransition> {
        let event = event.into();
        rule::find_rule(TASK_RULES, from, event)
            .map(|rule| rule.to)
            .ok_or(InvalidTaskTransition { from, event })
    }

    /// Applies `event` to a task in `from`: the target state plus everything to record (the
    /// event, the effects on the task row and the lifecycle event name).
    pub fn apply(
        &self,
        from: TaskState,
        event: TaskEvent,
    ) -> Result<TaskTransitionRecord, InvalidTaskTransition> {
        let kind = event.kind();
        let rule = rule::find_rule(TASK_RULES, from, kind)
            .ok_or(InvalidTaskTransition { from, event: kind })?;
        Ok(TaskTransitionRecord {
            from,
            to: rule.to,
            event,
            effects: rule.effects.to_vec(),
            lifecycle_event: rule.lifecycle_event,
        })
    }

    /// The event kinds accepted in `state`, in [`TaskEventKind::ALL`] order.
    pub fn accepted_events(&self, state: TaskState) -> Vec<TaskEventKind> {
        rule::accepted_events(TASK_RULES, &TaskEventKind::ALL, state)
    }

    /// Who performs the transition `event` makes from `from`, or an error if there is none.
    pub fn actors(
        &self,
        from: TaskState,
        event: TaskEventKind,
    ) -> Result<&'static [Actor], InvalidTaskTransition> {
        rule::find_rule(TASK_RULES, from, event)
            .map(|rule| rule.actors)
            .ok_or(InvalidTaskTransition { from, event })
    }

    /// Every lifecycle event name a task transition can publish.
    pub fn lifecycle_events(&self) -> Vec<&'static str> {
        rule::lifecycle_events(TASK_RULES)
    }

    /// Every task transition with its lifecycle event name, one per rule in table order:
    /// the names with the states they connect, for event catalogues and for checking a stored
    /// transition against the table.
    pub fn lifecycle_transitions(&self) -> Vec<LifecycleTransition<TaskState>> {
        rule::lifecycle_transitions(TASK_RULES)
    }
}

const ORCHESTRATION: &[Actor] = &[Actor::Orchestration];
const OPERATOR: &[Actor] = &[Actor::Operator];

/// The task transition table. The transition functions and the generated docs both read it.
pub(crate) const TASK_RULES: &[TaskRule] = {
    use TaskEventKind as E;
    use TaskState as S;
    &[
        Rule {
            from: FromStates::Only(&[S::Pending]),
            events: &[E::Initialize],
            to: S::Initializing,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.initialize_requested",
            when: "an orchestrator claims the pending task",
        },
        Rule {
            from: FromStates::Only(&[S::Initializing]),
            events: &[E::ReadyStepsFound],
            to: S::EnqueuingSteps,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.steps_discovery_completed",
            when: "step discovery finds steps ready to run",
        },
        Rule {
            from: FromStates::Only(&[S::Initializing]),
            events: &[E::NoStepsFound],
            to: S::Complete,
            guard: None,
            effects: &[TaskEffect::MarkCompletedAt],
            actors: ORCHESTRATION,
            lifecycle_event: "task.completed",
            when: "the task has no steps at all",
        },
        Rule {
            from: FromStates::Only(&[S::Initializing]),
            events: &[E::NoDependenciesReady],
            to: S::WaitingForDependencies,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.awaiting_dependencies",
            when: "steps exist but none can run yet",
        },
        Rule {
            from: FromStates::Only(&[S::EnqueuingSteps]),
            events: &[E::StepsEnqueued],
            to: S::StepsInProcess,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.steps_enqueued",
            when: "the ready steps are on the worker queues",
        },
        Rule {
            from: FromStates::Only(&[S::EnqueuingSteps]),
            events: &[E::EnqueueFailed],
            to: S::Error,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.failed",
            when: "sending the ready steps to the worker queues failed",
        },
        Rule {
            from: FromStates::Only(&[S::StepsInProcess]),
            events: &[E::StepCompleted, E::StepFailed, E::AllStepsCompleted],
            to: S::EvaluatingResults,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.step_results_received",
            when: "the result processor receives a step result",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::AllStepsSuccessful],
            to: S::Complete,
            guard: None,
            effects: &[TaskEffect::MarkCompletedAt],
            actors: ORCHESTRATION,
            lifecycle_event: "task.completed",
            when: "every step is complete or resolved manually",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::ReadyStepsFound],
            to: S::EnqueuingSteps,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.steps_discovery_completed",
            when: "more steps became ready",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::StepsStillProcessing],
            to: S::StepsInProcess,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.awaiting_step_results",
            when: "steps are still with the workers and nothing else can run",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::NoDependenciesReady],
            to: S::WaitingForDependencies,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.awaiting_dependencies",
            when: "the remaining steps wait for dependencies",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::RetryScheduled],
            to: S::WaitingForRetry,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.retry_backoff_started",
            when: "failed steps wait out their backoff before a retry",
        },
        Rule {
            from: FromStates::Only(&[S::EvaluatingResults]),
            events: &[E::PermanentFailure],
            to: S::BlockedByFailures,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.blocked_by_failures",
            when: "a step failed and cannot be retried (a permanent failure wins over ready steps)",
        },
        Rule {
            from: FromStates::Only(&[S::WaitingForDependencies]),
            events: &[E::DependenciesReady],
            to: S::EvaluatingResults,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.dependencies_satisfied",
            when: "ready-task discovery finds steps whose dependencies are now satisfied",
        },
        Rule {
            from: FromStates::Only(&[S::WaitingForRetry]),
            events: &[E::RetryReady],
            to: S::EnqueuingSteps,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.retry_backoff_completed",
            when: "ready-task discovery finds the retry due",
        },
        Rule {
            from: FromStates::Only(&[S::BlockedByFailures]),
            events: &[E::GiveUp],
            to: S::Error,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.failed",
            when: "the finalizer gives up on the blocked task",
        },
        Rule {
            from: FromStates::Only(&[
                S::Initializing,
                S::EnqueuingSteps,
                S::StepsInProcess,
                S::EvaluatingResults,
                S::WaitingForDependencies,
                S::WaitingForRetry,
            ]),
            events: &[E::StalenessTimeout],
            to: S::Error,
            guard: None,
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "task.failed",
            when: "the staleness detector, configured to move stale tasks to error, finds the task in its state too long or past its lifetime",
        },
        Rule {
            from: FromStates::Only(&[S::BlockedByFailures]),
            events: &[E::ManualResolution],
            to: S::ResolvedManually,
            guard: None,
            effects: &[],
            actors: OPERATOR,
            lifecycle_event: "task.resolved_manually",
            when: "an operator resolves the blocked task by hand",
        },
        Rule {
            from: FromStates::Only(&[S::BlockedByFailures]),
            events: &[E::RetryFailedSteps],
            to: S::EvaluatingResults,
            guard: None,
            effects: &[],
            actors: OPERATOR,
            lifecycle_event: "task.failed_steps_retry_requested",
            when: "an operator has reset the failed steps and asks for re-evaluation",
        },
        Rule {
            from: FromStates::Only(&[S::Error]),
            events: &[E::Reset],
            to: S::Pending,
            guard: None,
            effects: &[],
            actors: OPERATOR,
            lifecycle_event: "task.retry_requested",
            when: "an operator resets the failed task to run again",
        },
        Rule {
            from: FromStates::AnyNonTerminal,
            events: &[E::Cancel],
            to: S::Cancelled,
            guard: None,
            effects: &[],
            actors: OPERATOR,
            lifecycle_event: "task.cancelled",
            when: "an operator or API client cancels the task",
        },
    ]
};

#[cfg(test)]
mod tests;
