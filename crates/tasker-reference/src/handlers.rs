//! The sample step handlers and the resolver chain that finds them.
//!
//! Every handler is arithmetic over integers, so a task's final results can be checked:
//! `Reference::Seed` reads the task's `value`, `Reference::Add` sums its dependencies' results
//! and adds `addend`, `Reference::Multiply` multiplies them and `factor`.
//! `Reference::FlakyOnce` adds like `Add` but fails retryably on its first attempt (asking for
//! a `retry_after_ms` backoff), and `Reference::AlwaysFails` fails permanently. [`compute`] is
//! the arithmetic, shared with [`crate::expected`], which predicts every step's result.
//!
//! A handler whose step declares the domain event [`VALUE_COMPUTED`] (the templates' seed
//! steps do) publishes it with the step's name and value when it succeeds; one whose step
//! declares [`STEP_ATTEMPTED`] publishes that first, whatever happens next (the declaration's
//! `condition` decides whether it is kept).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tasker_shared::registry::handler::{StepContext, StepFailure, StepHandler, StepOutcome};
use tasker_shared::registry::resolver::ResolverChain;

/// The domain event a reference handler publishes when its step declares it.
pub(crate) const VALUE_COMPUTED: &str = "reference.value_computed";

/// The domain event a reference handler publishes first when its step declares it.
pub(crate) const STEP_ATTEMPTED: &str = "reference.step_attempted";

/// Whether the step run by `context` declares the domain event `name`.
fn declares(context: &StepContext, name: &str) -> bool {
    context
        .events
        .declared()
        .iter()
        .any(|event| event.name == name)
}

/// What a reference handler computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// The task context's `value` plus the `offset` input (default 0).
    Seed,
    /// The sum of the dependencies' results plus the `addend` input (default 0).
    Add,
    /// The product of the dependencies' results times the `factor` input (default 1).
    Multiply,
    /// As [`Operation::Add`], after a retryable failure on the first attempt.
    FlakyOnce,
    /// A permanent failure with the `reason` input.
    AlwaysFails,
}

impl Operation {
    /// Every operation.
    pub(crate) const ALL: [Operation; 5] = [
        Operation::Seed,
        Operation::Add,
        Operation::Multiply,
        Operation::FlakyOnce,
        Operation::AlwaysFails,
    ];

    /// The callable templates name it by.
    pub(crate) const fn callable(self) -> &'static str {
        match self {
            Operation::Seed => "Reference::Seed",
            Operation::Add => "Reference::Add",
            Operation::Multiply => "Reference::Multiply",
            Operation::FlakyOnce => "Reference::FlakyOnce",
            Operation::AlwaysFails => "Reference::AlwaysFails",
        }
    }

    /// The operation a callable names, if it is one of the reference handlers.
    pub(crate) fn from_callable(callable: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.callable() == callable)
    }
}

/// Why a step's value could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ComputeError {
    /// The task context has no integer `value`.
    #[error("the task context has no integer `value` (request the task with {{\"value\": 5}})")]
    MissingValue,
    /// An input is not an integer.
    #[error("input `{key}` must be an integer, got {found}")]
    InputNotInteger {
        /// The input's name.
        key: &'static str,
        /// What it holds.
        found: String,
    },
    /// A dependency's result is not an integer.
    #[error("the result of a dependency must be an integer, got {found}")]
    ResultNotInteger {
        /// What it holds.
        found: String,
    },
    /// The arithmetic overflowed 64-bit integers.
    #[error("{operation} overflowed 64-bit integers")]
    Overflow {
        /// `addition` or `multiplication`.
        operation: &'static str,
    },
    /// The step always fails.
    #[error("{reason}")]
    Declined {
        /// The `reason` input.
        reason: String,
    },
}

fn integer_input(
    inputs: &Map<String, Value>,
    key: &'static str,
    default: i64,
) -> Result<i64, ComputeError> {
    match inputs.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_i64().ok_or_else(|| ComputeError::InputNotInteger {
            key,
            found: value.to_string(),
        }),
    }
}

/// Parses a dependency's result as an integer.
pub(crate) fn integer_result(value: &Value) -> Result<i64, ComputeError> {
    value
        .as_i64()
        .ok_or_else(|| ComputeError::ResultNotInteger {
            found: value.to_string(),
        })
}

/// The value a step computes from its inputs, its dependencies' values and the task context.
pub(crate) fn compute(
    operation: Operation,
    inputs: &Map<String, Value>,
    parents: &[i64],
    context: &Value,
) -> Result<i64, ComputeError> {
    match operation {
        Operation::Seed => {
            let value = context
                .get("value")
                .and_then(Value::as_i64)
                .ok_or(ComputeError::MissingValue)?;
            value
                .checked_add(integer_input(inputs, "offset", 0)?)
                .ok_or(ComputeError::Overflow {
                    operation: "addition",
                })
        }
        Operation::Add | Operation::FlakyOnce => parents
            .iter()
            .try_fold(integer_input(inputs, "addend", 0)?, |sum, value| {
                sum.checked_add(*value)
            })
            .ok_or(ComputeError::Overflow {
                operation: "addition",
            }),
        Operation::Multiply => parents
            .iter()
            .try_fold(integer_input(inputs, "factor", 1)?, |product, value| {
                product.checked_mul(*value)
            })
            .ok_or(ComputeError::Overflow {
                operation: "multiplication",
            }),
        Operation::AlwaysFails => Err(ComputeError::Declined {
            reason: inputs
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("declined")
                .to_owned(),
        }),
    }
}

/// A reference handler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arithmetic {
    operation: Operation,
}

impl Arithmetic {
    /// The handler of `operation`.
    pub(crate) const fn new(operation: Operation) -> Self {
        Self { operation }
    }
}

#[async_trait::async_trait]
impl StepHandler for Arithmetic {
    async fn call(&self, context: &StepContext) -> StepOutcome {
        if declares(context, STEP_ATTEMPTED) {
            let payload = json!({"step": context.step_name.as_str(), "attempt": context.attempt});
            if let Err(error) = context.publish(STEP_ATTEMPTED, payload) {
                return StepOutcome::permanent(
                    StepFailure::new(error.to_string()).with_kind("event"),
                );
            }
        }
        if self.operation == Operation::FlakyOnce && context.attempt <= 1 {
            let backoff = context
                .input("retry_after_ms")
                .and_then(Value::as_u64)
                .unwrap_or(20);
            return StepOutcome::retry_after(
                StepFailure::new("simulated transient failure on the first attempt")
                    .with_kind("transient"),
                Duration::from_millis(backoff),
            );
        }
        let mut parents = Vec::with_capacity(context.dependency_results.len());
        for result in context.dependency_results.values() {
            match integer_result(result) {
                Ok(value) => parents.push(value),
                Err(error) => {
                    return StepOutcome::permanent(
                        StepFailure::new(error.to_string()).with_kind("invalid_input"),
                    );
                }
            }
        }
        match compute(
            self.operation,
            &context.inputs,
            &parents,
            &context.task_context,
        ) {
            Ok(value) => {
                if declares(context, VALUE_COMPUTED) {
                    let payload = json!({"step": context.step_name.as_str(), "value": value});
                    if let Err(error) = context.publish(VALUE_COMPUTED, payload) {
                        return StepOutcome::permanent(
                            StepFailure::new(error.to_string()).with_kind("event"),
                        );
                    }
                }
                StepOutcome::success(json!(value))
            }
            Err(error @ ComputeError::Declined { .. }) => {
                StepOutcome::permanent(StepFailure::new(error.to_string()).with_kind("declined"))
            }
            Err(error) => StepOutcome::permanent(
                StepFailure::new(error.to_string()).with_kind("invalid_input"),
            ),
        }
    }
}

/// The reference handlers with their callables.
pub(crate) fn reference_handlers() -> Vec<(&'static str, Arc<dyn StepHandler>)> {
    Operation::ALL
        .into_iter()
        .map(|operation| {
            let handler: Arc<dyn StepHandler> = Arc::new(Arithmetic::new(operation));
            (operation.callable(), handler)
        })
        .collect()
}

/// A resolver chain whose explicit mapping holds the reference handlers, each passed through
/// `wrap` (tests wrap them to count invocations or to stall a step).
pub(crate) fn reference_chain(
    wrap: impl Fn(&'static str, Arc<dyn StepHandler>) -> Arc<dyn StepHandler>,
) -> ResolverChain {
    let mut chain = ResolverChain::new();
    for (callable, handler) in reference_handlers() {
        chain
            .explicit_mut()
            .register_shared(callable, wrap(callable, handler));
    }
    chain
}

/// A handler that takes `delay` before doing the work of `inner`: simulated work, so that
/// steps are running when a process is stopped or killed.
pub(crate) struct Delayed {
    /// The handler doing the work.
    pub(crate) inner: Arc<dyn StepHandler>,
    /// How long each call takes at least.
    pub(crate) delay: Duration,
}

#[async_trait::async_trait]
impl StepHandler for Delayed {
    async fn call(&self, context: &StepContext) -> StepOutcome {
        tokio::time::sleep(self.delay).await;
        self.inner.call(context).await
    }
}

impl std::fmt::Debug for Delayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delayed")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}
