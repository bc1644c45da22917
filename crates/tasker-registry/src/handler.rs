//! Step handlers: the async code that runs one step of a task, what it receives
//! ([`StepContext`]) and what it returns ([`StepOutcome`]).
//!
//! A handler never reports failure through a Rust `Result`: whether a failure may be retried is
//! a decision only the handler can make, so it is part of the outcome. A handler that panics is
//! a bug; whoever runs handlers should catch the panic and record it as a permanent failure.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tasker_models::names::{NamespaceName, StepName, TaskName, TemplateVersion};
use tasker_models::template::DEFAULT_HANDLER_METHOD;

mod events;

pub use events::{DeclarationError, DeclaredEvent, PublishError, PublishedEvent, StepEvents};

/// The code that runs one step.
///
/// Handlers are shared between concurrent executions (`Arc<dyn StepHandler>`), so they hold
/// configuration, clients and pools, never per-execution state. A step may run more than once
/// (retries, and redelivery after a worker died mid-step), so a handler with side effects
/// should make them idempotent, for example keyed by [`StepContext::step_id`].
#[async_trait::async_trait]
pub trait StepHandler: Send + Sync {
    /// Runs the step.
    async fn call(&self, context: &StepContext) -> StepOutcome;

    /// Whether the handler implements `method` (the template's `handler.method`, read from
    /// [`StepContext::method`] by [`StepHandler::call`]). The default supports only `call`.
    /// [`ResolverChain::resolve`](crate::resolver::ResolverChain::resolve) rejects a step whose method
    /// the handler does not support, so the mismatch is found before any task runs.
    fn supports_method(&self, method: &str) -> bool {
        method == DEFAULT_HANDLER_METHOD
    }
}

/// Everything a handler may read about the step it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StepContext {
    /// The task the step belongs to.
    pub task_id: TaskId,
    /// The step.
    pub step_id: StepId,
    /// Correlates the task with everything it causes, across processes.
    pub correlation_id: CorrelationId,
    /// The template's namespace.
    pub namespace: NamespaceName,
    /// The template's name.
    pub task_name: TaskName,
    /// The template's version.
    pub version: TemplateVersion,
    /// The step's name in the template.
    pub step_name: StepName,
    /// The method to run (the template's `handler.method`, `call` when it names none).
    pub method: String,
    /// Which execution this is: 1 for the first, 2 for the first retry, ...
    pub attempt: u32,
    /// The most attempts the step's retry policy allows (including the first).
    pub max_attempts: u32,
    /// The step's inputs: the template's `handler.initialization` (with the environment's
    /// overrides applied), as stored with the step.
    pub inputs: Map<String, Value>,
    /// The results of the step's dependencies, by step name. Only completed dependencies have a
    /// result; a dependency resolved manually without one is absent.
    pub dependency_results: BTreeMap<StepName, Value>,
    /// The task's context: the JSON object the task was requested with.
    pub task_context: Value,
    /// The domain events the step declares (`publishes_events`) and those published in this
    /// run; see [`StepContext::publish`].
    pub events: StepEvents,
}

impl StepContext {
    /// The input named `key`, if the step has one.
    #[must_use]
    pub fn input(&self, key: &str) -> Option<&Value> {
        self.inputs.get(key)
    }

    /// The input named `key`, deserialized.
    ///
    /// # Errors
    /// [`ContextValueError::Missing`] if there is no such input, [`ContextValueError::Invalid`]
    /// if it does not deserialize into `T`.
    pub fn input_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, ContextValueError> {
        decode(ValueSource::Input, key, self.inputs.get(key))
    }

    /// The result of the dependency named `step`, if it has one.
    #[must_use]
    pub fn dependency_result(&self, step: &str) -> Option<&Value> {
        self.dependency_results
            .iter()
            .find(|(name, _)| name.as_str() == step)
            .map(|(_, result)| result)
    }

    /// The result of the dependency named `step`, deserialized.
    ///
    /// # Errors
    /// [`ContextValueError::Missing`] if the dependency has no result,
    /// [`ContextValueError::Invalid`] if it does not deserialize into `T`.
    pub fn dependency_result_as<T: DeserializeOwned>(
        &self,
        step: &str,
    ) -> Result<T, ContextValueError> {
        decode(
            ValueSource::DependencyResult,
            step,
            self.dependency_result(step),
        )
    }

    /// The value at `key` of the task's context, deserialized.
    ///
    /// # Errors
    /// [`ContextValueError::Missing`] if the context has no such key,
    /// [`ContextValueError::Invalid`] if it does not deserialize into `T`.
    pub fn task_context_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, ContextValueError> {
        decode(ValueSource::TaskContext, key, self.task_context.get(key))
    }

    /// Publishes a domain event the step declares (`publishes_events`), checked against the
    /// declared schema now. The event is held until the step's outcome is known: the worker
    /// keeps it if a declaration's `condition` matches the outcome (`success`, `failure`, ...)
    /// and writes it in the transaction that stores the step's result, so an attempt whose
    /// result is not stored leaves no event. Keep payloads small: identifiers and what the
    /// event says, not the task's context.
    ///
    /// # Errors
    /// [`PublishError::Undeclared`] for a name the step does not declare,
    /// [`PublishError::InvalidPayload`] for a payload that breaks the declared schema (each
    /// violation with its place in the payload and in the schema).
    pub fn publish(&self, name: &str, payload: Value) -> Result<(), PublishError> {
        self.events.publish(name, payload)
    }

    /// Whether a retryable failure of this attempt would still be retried.
    #[must_use]
    pub fn has_attempts_left(&self) -> bool {
        self.attempt < self.max_attempts
    }
}

/// Where a value a handler asked for lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// The step's inputs.
    Input,
    /// A dependency's result.
    DependencyResult,
    /// The task's context.
    TaskContext,
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Input => "input",
            Self::DependencyResult => "result of dependency",
            Self::TaskContext => "task context key",
        })
    }
}

/// Why a value a handler asked for could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextValueError {
    /// There is no such value.
    #[error("{source_kind} `{key}` is missing")]
    Missing {
        /// Where it was looked for.
        source_kind: ValueSource,
        /// The input name, dependency step name or context key.
        key: String,
    },
    /// The value has another shape than the handler expects.
    #[error("{source_kind} `{key}` has an unexpected shape")]
    Invalid {
        /// Where it was found.
        source_kind: ValueSource,
        /// The input name, dependency step name or context key.
        key: String,
        /// The deserializer's complaint.
        #[source]
        source: serde_json::Error,
    },
}

fn decode<T: DeserializeOwned>(
    source_kind: ValueSource,
    key: &str,
    value: Option<&Value>,
) -> Result<T, ContextValueError> {
    let value = value.ok_or_else(|| ContextValueError::Missing {
        source_kind,
        key: key.to_owned(),
    })?;
    T::deserialize(value).map_err(|source| ContextValueError::Invalid {
        source_kind,
        key: key.to_owned(),
        source,
    })
}

/// What running a step gave.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The step completed; `result` is stored and handed to its dependents.
    Success {
        /// The step's result.
        result: Value,
    },
    /// The step failed, and running it again may succeed (a timeout, an unavailable service).
    /// It is retried if its retry policy allows another attempt, otherwise it fails for good.
    RetryableFailure {
        /// What went wrong.
        error: StepFailure,
        /// The delay before the next attempt the handler asks for (for example an HTTP
        /// `Retry-After`); `None` leaves it to the retry policy's backoff.
        requested_backoff: Option<Duration>,
    },
    /// The step failed, and running it again cannot help (invalid input, a declined payment).
    PermanentFailure {
        /// What went wrong.
        error: StepFailure,
    },
}

impl StepOutcome {
    /// A success with `result`.
    #[must_use]
    pub fn success(result: Value) -> Self {
        Self::Success { result }
    }

    /// A retryable failure; the retry policy chooses the delay.
    #[must_use]
    pub fn retryable(error: impl Into<StepFailure>) -> Self {
        Self::RetryableFailure {
            error: error.into(),
            requested_backoff: None,
        }
    }

    /// A retryable failure that asks to wait `backoff` before the next attempt.
    #[must_use]
    pub fn retry_after(error: impl Into<StepFailure>, backoff: Duration) -> Self {
        Self::RetryableFailure {
            error: error.into(),
            requested_backoff: Some(backoff),
        }
    }

    /// A permanent failure.
    #[must_use]
    pub fn permanent(error: impl Into<StepFailure>) -> Self {
        Self::PermanentFailure {
            error: error.into(),
        }
    }

    /// Whether the step completed.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }

    /// The failure, unless the step completed.
    #[must_use]
    pub fn failure(&self) -> Option<&StepFailure> {
        match self {
            Self::Success { .. } => None,
            Self::RetryableFailure { error, .. } | Self::PermanentFailure { error } => Some(error),
        }
    }
}

impl From<ContextValueError> for StepOutcome {
    /// A value the step needs is missing or malformed: running it again cannot help.
    fn from(error: ContextValueError) -> Self {
        Self::permanent(StepFailure::from_error(&error).with_kind("invalid_input"))
    }
}

/// A handler's description of a failure, stored with the step (so it must not hold secrets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepFailure {
    /// What went wrong, for people.
    pub message: String,
    /// A stable, machine-readable classification (`timeout`, `invalid_input`, ...), for
    /// metrics and for the operator deciding what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Structured details (an upstream status code, the rejected field ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl StepFailure {
    /// A failure with a message only.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: None,
            details: None,
        }
    }

    /// A failure described by an error and its chain of sources, joined with `: `.
    #[must_use]
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }

    /// Sets the classification.
    #[must_use]
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Sets the structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(kind) = &self.kind {
            write!(f, "[{kind}] ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<&str> for StepFailure {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<String> for StepFailure {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

/// A handler made from an async closure; see [`handler_fn`].
pub struct FnHandler<F> {
    function: F,
}

/// Makes a handler from an async closure over an owned [`StepContext`] (the context is cloned
/// for each call, which costs a copy of its JSON; write a type that implements [`StepHandler`]
/// for hot paths). The handler supports only the `call` method.
///
/// ```
/// use tasker_registry::handler::{StepOutcome, handler_fn};
///
/// let double = handler_fn(|context| async move {
///     match context.input_as::<i64>("value") {
///         Ok(value) => StepOutcome::success(serde_json::json!(value * 2)),
///         Err(error) => error.into(),
///     }
/// });
/// # let _ = double;
/// ```
pub fn handler_fn<F, Fut>(function: F) -> FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync,
    Fut: Future<Output = StepOutcome> + Send,
{
    FnHandler { function }
}

#[async_trait::async_trait]
impl<F, Fut> StepHandler for FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync,
    Fut: Future<Output = StepOutcome> + Send,
{
    async fn call(&self, context: &StepContext) -> StepOutcome {
        (self.function)(context.clone()).await
    }
}

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnHandler").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
