//! What a task of a reference template must end with: every step's result, which steps fail
//! or never run, the task's final state and the attempts of each step, predicted from the
//! template and the task's context with the handlers' own arithmetic.

use std::collections::BTreeMap;

use serde_json::Value;
use tasker_shared::models::template::ValidatedTemplate;
use tasker_shared::state_machine::{StepState, TaskState};

use crate::handlers::{ComputeError, Operation, compute};

/// What one step must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepExpectation {
    /// `complete` with this result after `attempts` attempts.
    Value {
        /// The result.
        value: i64,
        /// The attempts it takes.
        attempts: i32,
    },
    /// `error` after one attempt, never retried.
    FailsPermanently,
    /// Never runs: `pending`, no attempts.
    NeverRuns,
}

impl StepExpectation {
    /// The state the step ends in.
    pub(crate) fn state(&self) -> StepState {
        match self {
            StepExpectation::Value { .. } => StepState::Complete,
            StepExpectation::FailsPermanently => StepState::Error,
            StepExpectation::NeverRuns => StepState::Pending,
        }
    }

    /// The attempts the step ends with.
    pub(crate) fn attempts(&self) -> i32 {
        match self {
            StepExpectation::Value { attempts, .. } => *attempts,
            StepExpectation::FailsPermanently => 1,
            StepExpectation::NeverRuns => 0,
        }
    }
}

/// What a task must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskExpectation {
    /// The final state: `complete`, or `error` after a permanent failure was given up on.
    pub(crate) state: TaskState,
    /// Every step, by name.
    pub(crate) steps: BTreeMap<String, StepExpectation>,
}

/// Why no expectation can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnpredictableTask {
    /// A step uses a handler that is not one of the reference handlers.
    #[error("step `{step}` uses `{callable}`, which is not a reference handler")]
    ForeignHandler {
        /// The step.
        step: String,
        /// Its callable.
        callable: String,
    },
    /// The arithmetic itself fails (not a declared failure).
    #[error("step `{step}` cannot compute its value")]
    Compute {
        /// The step.
        step: String,
        /// Why.
        #[source]
        source: ComputeError,
    },
}

/// Predicts the outcome of a task of `template` requested with `context`.
pub(crate) fn expect(
    template: &ValidatedTemplate,
    context: &Value,
) -> Result<TaskExpectation, UnpredictableTask> {
    let mut values: BTreeMap<String, Option<i64>> = BTreeMap::new();
    let mut steps = BTreeMap::new();
    let mut failed = false;
    for step in template.steps_in_order() {
        let name = step.name.as_str().to_owned();
        let callable = step.handler.callable.as_str();
        let operation = Operation::from_callable(callable).ok_or_else(|| {
            UnpredictableTask::ForeignHandler {
                step: name.clone(),
                callable: callable.to_owned(),
            }
        })?;
        let parents: Option<Vec<i64>> = step
            .dependencies
            .iter()
            .map(|parent| values.get(parent.as_str()).copied().flatten())
            .collect();
        let (expectation, value) = match parents {
            None => (StepExpectation::NeverRuns, None),
            Some(parents) => {
                match compute(operation, &step.handler.initialization, &parents, context) {
                    Ok(value) => {
                        let attempts = if operation == Operation::FlakyOnce {
                            2
                        } else {
                            1
                        };
                        (StepExpectation::Value { value, attempts }, Some(value))
                    }
                    Err(ComputeError::Declined { .. }) => {
                        failed = true;
                        (StepExpectation::FailsPermanently, None)
                    }
                    Err(source) => {
                        return Err(UnpredictableTask::Compute { step: name, source });
                    }
                }
            }
        };
        values.insert(name.clone(), value);
        steps.insert(name, expectation);
    }
    Ok(TaskExpectation {
        state: if failed {
            TaskState::Error
        } else {
            TaskState::Complete
        },
        steps,
    })
}
