//! The workflow step state machine: its transition table with guards and effects, what an
//! accepted transition yields, and its errors.

use std::{fmt, time::Duration};

use crate::{
    StepEvent, StepEventKind, StepState,
    guard::{GuardError, StepGuard, StepGuardContext},
    rule::{self, Actor, FromStates, LifecycleTransition, Rule},
};

/// The workflow step state machine.
///
/// [`transition`] is the structural check (the table only). [`apply`] also runs the
/// transition's guard against a [`StepGuardContext`] and yields what must be recorded;
/// [`apply_unguarded`] yields the same record without running the guard, for callers that
/// evaluate it elsewhere (for example in the SQL statement that applies the transition).
///
/// ```
/// use tasker_state::{StepEffect, StepEvent, StepGuardContext, StepState, StepStateMachine};
///
/// let machine = StepStateMachine::new();
/// let worker_id = uuid::Uuid::nil();
/// assert_eq!(
///     machine.transition(StepState::Enqueued, StepEvent::Start { worker_id })?,
///     StepState::InProgress,
/// );
///
/// let record = machine.apply(
///     StepState::Enqueued,
///     StepEvent::Start { worker_id },
///     &StepGuardContext::default(),
/// )?;
/// assert_eq!(record.effects, [StepEffect::IncrementAttempts, StepEffect::SetLastAttemptedAt]);
/// assert_eq!(record.lifecycle_event, "step.execution_requested");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`transition`]: StepStateMachine::transition
/// [`apply`]: StepStateMachine::apply
/// [`apply_unguarded`]: StepStateMachine::apply_unguarded
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStateMachine {
    _private: (),
}

/// What an accepted step transition yields: everything the caller must record.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTransitionRecord {
    /// The state the step was in.
    pub from: StepState,
    /// The state the step is now in.
    pub to: StepState,
    /// The event that caused the transition; recorded as [`StepTransitionRecord::event_json`].
    pub event: StepEvent,
    /// The transition's guard: checked by [`StepStateMachine::apply`], to be enforced by the
    /// caller after [`StepStateMachine::apply_unguarded`].
    pub guard: Option<StepGuard>,
    /// Changes to apply to the step row in the same database transaction, in order.
    pub effects: Vec<StepEffect>,
    /// The name published on the events system, for example `step.enqueue_requested`.
    pub lifecycle_event: &'static str,
}

impl StepTransitionRecord {
    /// The event as the JSON object to record, for example
    /// `{"type":"fail","error":{"message":"...","retryable":true,"requested_backoff_ms":null}}`.
    pub fn event_json(&self) -> serde_json::Value {
        self.event.to_json()
    }
}

/// A change to the step row that goes with a transition.
///
/// Times are the transition's time (the database's `now()` in the applying transaction).
/// Flags that follow from the state alone (in process, processed) are not effects: derive them
/// from [`StepState`].
#[derive(Debug, Clone, PartialEq)]
pub enum StepEffect {
    /// `attempts` ← `attempts + 1`. A claim counts as an attempt, so a crashed worker consumes
    /// one.
    IncrementAttempts,
    /// `last_attempted_at` ← transition time.
    SetLastAttemptedAt,
    /// `results` ← this JSON.
    StoreResult(serde_json::Value),
    /// `completed_at` ← transition time. Happens exactly on entering `complete`, so
    /// `state = complete ⇔ completed_at is not null` holds.
    MarkCompletedAt,
    /// The backoff the failure requested (`backoff_request_seconds`), replacing the policy's for the
    /// next retry; `None` clears one left by an earlier failure.
    SetBackoff(Option<Duration>),
    /// Whether the failure may be retried; `false` makes the step ineligible for automatic
    /// retry until an operator resets it. Read back as part of [`crate::RetryContext::retryable`].
    SetFailureRetryable(bool),
    /// `attempts` ← 0.
    ResetAttempts,
}

impl StepEffect {
    /// The snake_case name.
    pub const fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    const fn kind(&self) -> StepEffectKind {
        match self {
            StepEffect::IncrementAttempts => StepEffectKind::IncrementAttempts,
            StepEffect::SetLastAttemptedAt => StepEffectKind::SetLastAttemptedAt,
            StepEffect::StoreResult(_) => StepEffectKind::StoreResult,
            StepEffect::MarkCompletedAt => StepEffectKind::MarkCompletedAt,
            StepEffect::SetBackoff(_) => StepEffectKind::SetBackoff,
            StepEffect::SetFailureRetryable(_) => StepEffectKind::SetFailureRetryable,
            StepEffect::ResetAttempts => StepEffectKind::ResetAttempts,
        }
    }
}

/// A [`StepEffect`] without its value, as the table lists it; the value comes from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepEffectKind {
    IncrementAttempts,
    SetLastAttemptedAt,
    StoreResult,
    MarkCompletedAt,
    SetBackoff,
    SetFailureRetryable,
    ResetAttempts,
}

impl StepEffectKind {
    pub(crate) const ALL: [StepEffectKind; 7] = [
        StepEffectKind::IncrementAttempts,
        StepEffectKind::SetLastAttemptedAt,
        StepEffectKind::StoreResult,
        StepEffectKind::MarkCompletedAt,
        StepEffectKind::SetBackoff,
        StepEffectKind::SetFailureRetryable,
        StepEffectKind::ResetAttempts,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            StepEffectKind::IncrementAttempts => "increment_attempts",
            StepEffectKind::SetLastAttemptedAt => "set_last_attempted_at",
            StepEffectKind::StoreResult => "store_result",
            StepEffectKind::MarkCompletedAt => "mark_completed_at",
            StepEffectKind::SetBackoff => "set_backoff",
            StepEffectKind::SetFailureRetryable => "set_failure_retryable",
            StepEffectKind::ResetAttempts => "reset_attempts",
        }
    }

    /// What the effect does to the step row, for docs.
    pub(crate) const fn description(self) -> &'static str {
        match self {
            StepEffectKind::IncrementAttempts => "`attempts` ← `attempts + 1`",
            StepEffectKind::SetLastAttemptedAt => "`last_attempted_at` ← transition time",
            StepEffectKind::StoreResult => "`results` ← the event's `result`",
            StepEffectKind::MarkCompletedAt => "`completed_at` ← transition time",
            StepEffectKind::SetBackoff => {
                "requested backoff (`backoff_request_seconds`) ← the error's \
                 `requested_backoff_ms`; null clears one left by an earlier failure"
            }
            StepEffectKind::SetFailureRetryable => {
                "whether the last failure allows retries ← the error's `retryable` (part of the \
                 `retryable` input of retry eligibility)"
            }
            StepEffectKind::ResetAttempts => "`attempts` ← 0",
        }
    }

    /// The effect with its value taken from `event`, or `None` if the event carries no such
    /// value (tests check that every rule's effects realize for every event it accepts).
    fn realize(self, event: &StepEvent) -> Option<StepEffect> {
        match (self, event) {
            (StepEffectKind::IncrementAttempts, _) => Some(StepEffect::IncrementAttempts),
            (StepEffectKind::SetLastAttemptedAt, _) => Some(StepEffect::SetLastAttemptedAt),
            (StepEffectKind::MarkCompletedAt, _) => Some(StepEffect::MarkCompletedAt),
            (StepEffectKind::ResetAttempts, _) => Some(StepEffect::ResetAttempts),
            (
                StepEffectKind::StoreResult,
                StepEvent::EnqueueForOrchestration { result }
                | StepEvent::CompleteManually { result },
            ) => Some(StepEffect::StoreResult(result.clone())),
            (StepEffectKind::SetBackoff, StepEvent::Fail { error }) => {
                Some(StepEffect::SetBackoff(error.requested_backoff))
            }
            (StepEffectKind::SetFailureRetryable, StepEvent::Fail { error }) => {
                Some(StepEffect::SetFailureRetryable(error.retryable))
            }
            (
                StepEffectKind::StoreResult
                | StepEffectKind::SetBackoff
                | StepEffectKind::SetFailureRetryable,
                _,
            ) => None,
        }
    }
}

impl fmt::Display for StepEffectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A step event that the table does not accept in the given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("step event `{event}` is not accepted in state `{from}`: {}", refusal(*.from))]
pub struct InvalidStepTransition {
    /// The state the step was in.
    pub from: StepState,
    /// The event that was refused.
    pub event: StepEventKind,
}

fn refusal(from: StepState) -> String {
    let accepted = StepStateMachine::new().accepted_events(from);
    if accepted.is_empty() {
        format!("`{from}` is terminal and nothing leaves it")
    } else {
        format!("it accepts {}", rule::backticked(&accepted))
    }
}

/// Why [`StepStateMachine::apply`] refused a transition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepTransitionError {
    /// The table has no such transition.
    #[error(transparent)]
    Invalid(#[from] InvalidStepTransition),
    /// The table has it, but its guard rejected it.
    #[error("step event `{event}` in state `{from}` was rejected: {error}")]
    GuardFailed {
        /// The state the step was in.
        from: StepState,
        /// The event that was refused.
        event: StepEventKind,
        /// The guard and why it failed.
        error: GuardError,
    },
}

pub(crate) type StepRule = Rule<StepState, StepEventKind, StepGuard, StepEffectKind>;

impl StepStateMachine {
    /// The step state machine. It holds no data: the table is static.
    pub const fn new() -> Self {
        StepStateMachine { _private: () }
    }

    /// The state `event` moves a step in `from` to, or an error naming both when the table has
    /// no such transition. Structural only: guards are not checked.
    ///
    /// Takes a [`StepEvent`], a `&StepEvent` or a [`StepEventKind`].
    pub fn transition(
        &self,
        from: StepState,
        event: impl Into<StepEventKind>,
    ) -> Result<StepState, InvalidStepTransition> {
        let event = event.into();
        find(from, event).map(|rule| rule.to)
    }

    /// The guard `event` must pass in `from` (`None` if it has none), or an error when the table
    /// has no such transition.
    pub fn guard(
        &self,
        from: StepState,
        event: impl Into<StepEventKind>,
    ) -> Result<Option<StepGuard>, InvalidStepTransition> {
        let event = event.into();
        find(from, event).map(|rule| rule.guard)
    }

    /// Applies `event` to a step in `from`, checking the transition's guard against `context`,
    /// and yields everything to record.
    pub fn apply(
        &self,
        from: StepState,
        event: StepEvent,
        context: &StepGuardContext,
    ) -> Result<StepTransitionRecord, StepTransitionError> {
        let kind = event.kind();
        let rule = find(from, kind)?;
        if let Some(guard) = rule.guard {
            guard
                .check(context)
                .map_err(|error| StepTransitionError::GuardFailed {
                    from,
                    event: kind,
                    error,
                })?;
        }
        Ok(record(rule, from, event))
    }

    /// Applies `event` to a step in `from` without checking its guard; the record names the
    /// guard the caller must enforce itself.
    pub fn apply_unguarded(
        &self,
        from: StepState,
        event: StepEvent,
    ) -> Result<StepTransitionRecord, InvalidStepTransition> {
        let rule = find(from, event.kind())?;
        Ok(record(rule, from, event))
    }

    /// The event kinds accepted in `state`, in [`StepEventKind::ALL`] order.
    pub fn accepted_events(&self, state: StepState) -> Vec<StepEventKind> {
        rule::accepted_events(STEP_RULES, &StepEventKind::ALL, state)
    }

    /// Who performs the transition `event` makes from `from`, or an error if there is none.
    pub fn actors(
        &self,
        from: StepState,
        event: StepEventKind,
    ) -> Result<&'static [Actor], InvalidStepTransition> {
        find(from, event).map(|rule| rule.actors)
    }

    /// Every lifecycle event name a step transition can publish.
    pub fn lifecycle_events(&self) -> Vec<&'static str> {
        rule::lifecycle_events(STEP_RULES)
    }

    /// Every step transition with its lifecycle event name, one per rule in table order:
    /// the names with the states they connect, for event catalogues and for checking a stored
    /// transition against the table.
    pub fn lifecycle_transitions(&self) -> Vec<LifecycleTransition<StepState>> {
        rule::lifecycle_transitions(STEP_RULES)
    }
}

fn find(from: StepState, event: StepEventKind) -> Result<&'static StepRule, InvalidStepTransition> {
    rule::find_rule(STEP_RULES, from, event).ok_or(InvalidStepTransition { from, event })
}

fn record(rule: &'static StepRule, from: StepState, event: StepEvent) -> StepTransitionRecord {
    let effects = rule
        .effects
        .iter()
        .filter_map(|kind| kind.realize(&event))
        .collect();
    StepTransitionRecord {
        from,
        to: rule.to,
        event,
        guard: rule.guard,
        effects,
        lifecycle_event: rule.lifecycle_event,
    }
}

const ORCHESTRATION: &[Actor] = &[Actor::Orchestration];
const WORKER: &[Actor] = &[Actor::Worker];
const OPERATOR: &[Actor] = &[Actor::Operator];
const FAILURE_EFFECTS: &[StepEffectKind] = &[
    StepEffectKind::SetBackoff,
    StepEffectKind::SetFailureRetryable,
];

/// The step transition table. The transition functions and the generated docs both read it.
pub(crate) const STEP_RULES: &[StepRule] = {
    use StepEventKind as E;
    use StepState as S;
    &[
        Rule {
            from: FromStates::Only(&[S::Pending]),
            events: &[E::Enqueue],
            to: S::Enqueued,
            guard: Some(StepGuard::DependenciesSatisfied),
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "step.enqueue_requested",
            when: "the step enqueuer sends a ready step to its worker queue",
        },
        Rule {
            from: FromStates::Only(&[S::Enqueued]),
            events: &[E::Start],
            to: S::InProgress,
            guard: Some(StepGuard::NotInProgress),
            effects: &[
                StepEffectKind::IncrementAttempts,
                StepEffectKind::SetLastAttemptedAt,
            ],
            actors: WORKER,
            lifecycle_event: "step.execution_requested",
            when: "a worker claims the step and starts its handler",
        },
        Rule {
            from: FromStates::Only(&[S::InProgress]),
            events: &[E::EnqueueForOrchestration],
            to: S::EnqueuedForOrchestration,
            guard: None,
            effects: &[StepEffectKind::StoreResult],
            actors: WORKER,
            lifecycle_event: "step.enqueued_for_orchestration",
            when: "the handler finished; the worker hands its result (success or failure) over",
        },
        Rule {
            from: FromStates::Only(&[S::EnqueuedForOrchestration]),
            events: &[E::Complete],
            to: S::Complete,
            guard: Some(StepGuard::ResultSucceeded),
            effects: &[StepEffectKind::MarkCompletedAt],
            actors: ORCHESTRATION,
            lifecycle_event: "step.completed",
            when: "the result processor accepts a successful result",
        },
        Rule {
            from: FromStates::Only(&[S::EnqueuedForOrchestration]),
            events: &[E::Fail],
            to: S::Error,
            guard: None,
            effects: FAILURE_EFFECTS,
            actors: ORCHESTRATION,
            lifecycle_event: "step.failed",
            when: "the result processor records a failed result",
        },
        Rule {
            from: FromStates::Only(&[S::Enqueued, S::InProgress]),
            events: &[E::Fail],
            to: S::Error,
            guard: None,
            effects: FAILURE_EFFECTS,
            actors: ORCHESTRATION,
            lifecycle_event: "step.failed",
            when: "enqueueing failed, the step timed out, or its worker crashed",
        },
        Rule {
            from: FromStates::Only(&[S::Error]),
            events: &[E::Retry],
            to: S::Pending,
            guard: Some(StepGuard::RetryEligible),
            effects: &[],
            actors: ORCHESTRATION,
            lifecycle_event: "step.retry_requested",
            when: "the step enqueuer finds the failed step retry-eligible",
        },
        Rule {
            from: FromStates::Only(&[S::Error]),
            events: &[E::ResetForRetry],
            to: S::Pending,
            guard: None,
            effects: &[StepEffectKind::ResetAttempts],
            actors: OPERATOR,
            lifecycle_event: "step.reset_for_retry",
            when: "an operator gives the failed step a fresh set of attempts",
        },
        Rule {
            from: FromStates::AnyNonTerminal,
            events: &[E::Cancel],
            to: S::Cancelled,
            guard: None,
            effects: &[],
            actors: &[Actor::Orchestration, Actor::Operator],
            lifecycle_event: "step.cancelled",
            when: "its task is cancelled, or an operator cancels the step",
        },
        Rule {
            from: FromStates::AnyNonTerminal,
            events: &[E::ResolveManually],
            to: S::ResolvedManually,
            guard: None,
            effects: &[],
            actors: OPERATOR,
            lifecycle_event: "step.resolved_manually",
            when: "an operator resolves the step without a result",
        },
        Rule {
            from: FromStates::AnyNonTerminal,
            events: &[E::CompleteManually],
            to: S::Complete,
            guard: None,
            effects: &[StepEffectKind::StoreResult, StepEffectKind::MarkCompletedAt],
            actors: OPERATOR,
            lifecycle_event: "step.completed",
            when: "an operator completes the step with a result of their own",
        },
    ]
};

#[cfg(test)]
mod tests;
