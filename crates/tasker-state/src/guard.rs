//! Step guards: pure predicates over a context the caller reads from the database.
//!
//! A guard never reads anything itself. The caller fills a [`StepGuardContext`] with what it
//! knows (or evaluates the same predicate in SQL and uses [`crate::StepStateMachine::apply_unguarded`]).
//! A guard whose input is missing fails closed, naming the missing field.

use std::fmt;

use crate::retry::{RetryContext, RetryIneligible, is_retry_eligible};

/// A data guard on a step transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepGuard {
    /// `enqueue`: every parent step is `complete` or `resolved_manually`.
    DependenciesSatisfied,
    /// `start`: no worker already holds the step.
    NotInProgress,
    /// `complete`: the stored result succeeded.
    ResultSucceeded,
    /// `retry`: the step is retry-eligible ([`crate::is_retry_eligible`]).
    RetryEligible,
}

impl StepGuard {
    /// Every step guard.
    pub const ALL: [StepGuard; 4] = [
        StepGuard::DependenciesSatisfied,
        StepGuard::NotInProgress,
        StepGuard::ResultSucceeded,
        StepGuard::RetryEligible,
    ];

    /// The snake_case name used in messages and docs.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepGuard::DependenciesSatisfied => "dependencies_satisfied",
            StepGuard::NotInProgress => "not_in_progress",
            StepGuard::ResultSucceeded => "result_succeeded",
            StepGuard::RetryEligible => "retry_eligible",
        }
    }

    /// What the guard requires, for docs.
    pub const fn description(self) -> &'static str {
        match self {
            StepGuard::DependenciesSatisfied => {
                "every parent step is `complete` or `resolved_manually`"
            }
            StepGuard::NotInProgress => "no worker already holds the step (no competing claim)",
            StepGuard::ResultSucceeded => "the stored result reports success",
            StepGuard::RetryEligible => {
                "retry-eligible: first attempt, or retryable with attempts < max_attempts; and \
                 the backoff has elapsed"
            }
        }
    }

    /// Checks the guard against what the caller knows.
    pub fn check(self, context: &StepGuardContext) -> Result<(), GuardError> {
        match self {
            StepGuard::DependenciesSatisfied => match context.dependencies {
                None => Err(GuardError::DependencyStatusMissing),
                Some(status) if status.all_satisfied() => Ok(()),
                Some(DependencyStatus { total, satisfied }) => {
                    Err(GuardError::DependenciesUnsatisfied { total, satisfied })
                }
            },
            StepGuard::NotInProgress => {
                if context.in_progress {
                    Err(GuardError::AlreadyInProgress)
                } else {
                    Ok(())
                }
            }
            StepGuard::ResultSucceeded => match context.result_success {
                None => Err(GuardError::NoResult),
                Some(false) => Err(GuardError::ResultFailed),
                Some(true) => Ok(()),
            },
            StepGuard::RetryEligible => match &context.retry {
                None => Err(GuardError::RetryContextMissing),
                Some(retry) => is_retry_eligible(retry).map_err(GuardError::RetryIneligible),
            },
        }
    }
}

impl fmt::Display for StepGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the step guards need to know, supplied by the caller.
///
/// Fill in what the transition at hand needs; the rest may stay at its default. A guard whose
/// field is `None` fails with an error naming the field.
///
/// ```
/// use tasker_state::{DependencyStatus, StepEvent, StepGuardContext, StepState, StepStateMachine};
///
/// let context = StepGuardContext {
///     dependencies: Some(DependencyStatus { total: 2, satisfied: 2 }),
///     ..StepGuardContext::default()
/// };
/// let record = StepStateMachine::new().apply(StepState::Pending, StepEvent::Enqueue, &context)?;
/// assert_eq!(record.to, StepState::Enqueued);
/// # Ok::<(), tasker_state::StepTransitionError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepGuardContext {
    /// The step's parents and how many of them are `complete` or `resolved_manually`
    /// ([`StepGuard::DependenciesSatisfied`]).
    pub dependencies: Option<DependencyStatus>,
    /// Whether a worker already holds the step, as the persisted row says (for example a live
    /// claim that raced ahead of this one) ([`StepGuard::NotInProgress`]).
    pub in_progress: bool,
    /// Whether the stored result succeeded; `None` if no result is stored
    /// ([`StepGuard::ResultSucceeded`]).
    pub result_success: Option<bool>,
    /// What retry eligibility depends on ([`StepGuard::RetryEligible`]).
    pub retry: Option<RetryContext>,
}

/// A step's dependencies: how many parents it has and how many are `complete` or
/// `resolved_manually`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DependencyStatus {
    /// Parent steps.
    pub total: u32,
    /// Parent steps that are `complete` or `resolved_manually`.
    pub satisfied: u32,
}

impl DependencyStatus {
    /// Every parent is satisfied (true for a step without parents).
    pub fn all_satisfied(self) -> bool {
        self.satisfied >= self.total
    }
}

/// A step guard that rejected a transition, naming the guard and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuardError {
    /// Some parents are not `complete` or `resolved_manually` yet.
    #[error(
        "guard `dependencies_satisfied` failed: {} of {total} parent step(s) are not complete or \
         resolved_manually",
        .total.saturating_sub(*.satisfied)
    )]
    DependenciesUnsatisfied {
        /// Parent steps.
        total: u32,
        /// Parent steps that are `complete` or `resolved_manually`.
        satisfied: u32,
    },
    /// The caller supplied no dependency status.
    #[error(
        "guard `dependencies_satisfied` failed: no dependency status was supplied (set \
         `StepGuardContext::dependencies`)"
    )]
    DependencyStatusMissing,
    /// A worker already holds the step.
    #[error("guard `not_in_progress` failed: a worker already holds the step")]
    AlreadyInProgress,
    /// No result is stored, so there is nothing to complete with.
    #[error(
        "guard `result_succeeded` failed: no result is stored for the step (the worker's \
         `enqueue_for_orchestration` stores it)"
    )]
    NoResult,
    /// The stored result reports a failure.
    #[error(
        "guard `result_succeeded` failed: the stored result reports a failure (send `fail` \
         instead of `complete`)"
    )]
    ResultFailed,
    /// The caller supplied no retry context.
    #[error(
        "guard `retry_eligible` failed: no retry context was supplied (set \
         `StepGuardContext::retry`)"
    )]
    RetryContextMissing,
    /// The step is not retry-eligible (yet).
    #[error("guard `retry_eligible` failed: {0}")]
    RetryIneligible(RetryIneligible),
}

impl GuardError {
    /// The guard that failed.
    pub fn guard(&self) -> StepGuard {
        match self {
            GuardError::DependenciesUnsatisfied { .. } | GuardError::DependencyStatusMissing => {
                StepGuard::DependenciesSatisfied
            }
            GuardError::AlreadyInProgress => StepGuard::NotInProgress,
            GuardError::NoResult | GuardError::ResultFailed => StepGuard::ResultSucceeded,
            GuardError::RetryContextMissing | GuardError::RetryIneligible(_) => {
                StepGuard::RetryEligible
            }
        }
    }
}

#[cfg(test)]
mod tests;
