//! Step definitions: what a step runs (handler), its kind, its retry policy and its batch
//! configuration.

use std::fmt;

use crate::names::StepName;

use super::event::EventDeclaration;
use super::schema::JsonSchema;

/// One step of a template.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepDefinition {
    /// Unique within the template.
    pub name: StepName,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What runs the step.
    pub handler: HandlerDefinition,
    /// How the step takes part in the graph (`type` in YAML).
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// The external system the step talks to, for grouping and circuit breaking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_dependency: Option<String>,
    /// Steps that must finish first, in declaration order, without duplicates.
    pub dependencies: Vec<StepName>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Execution timeout; `None` uses the worker's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Domain events the step publishes.
    pub publishes_events: Vec<EventDeclaration>,
    /// Batch settings (on `batchable` steps and `batch_worker` templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_config: Option<BatchConfig>,
    /// JSON Schema of the step's result (documentation and tooling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_schema: Option<JsonSchema>,
    /// A grammar-defined virtual handler; opaque here, validated by its interpreter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composition: Option<serde_json::Value>,
}

/// What runs a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HandlerDefinition {
    /// The lookup key that resolvers interpret (a class path, a registered name...).
    pub callable: String,
    /// The method to call on the handler; `None` means `call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Names the resolver to use, bypassing the resolver chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// Configuration passed to the handler (stored as the step's `inputs`).
    pub initialization: serde_json::Map<String, serde_json::Value>,
}

/// The method a handler runs when none is named.
pub const DEFAULT_HANDLER_METHOD: &str = "call";

impl HandlerDefinition {
    /// The method to invoke: the declared one, or `call`.
    #[must_use]
    pub fn effective_method(&self) -> &str {
        self.method.as_deref().unwrap_or(DEFAULT_HANDLER_METHOD)
    }

    /// Whether the handler dispatches to a method other than `call`.
    #[must_use]
    pub fn uses_method_dispatch(&self) -> bool {
        self.effective_method() != DEFAULT_HANDLER_METHOD
    }

    /// Whether the template names a resolver.
    #[must_use]
    pub fn has_resolver_hint(&self) -> bool {
        self.resolver.is_some()
    }
}

/// How a step takes part in the task graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// An ordinary step.
    #[default]
    Standard,
    /// Decides at run time which of its dependent steps are created.
    Decision,
    /// Joins branches; its real parents are the declared ones that were actually created.
    DeferredConvergence,
    /// Splits work into batch workers at run time.
    Batchable,
    /// A template for workers that a batchable step instantiates; never run directly.
    BatchWorker,
}

impl StepType {
    pub(crate) const CHOICES: [(&'static str, Self); 5] = [
        ("standard", Self::Standard),
        ("decision", Self::Decision),
        ("deferred_convergence", Self::DeferredConvergence),
        ("batchable", Self::Batchable),
        ("batch_worker", Self::BatchWorker),
    ];

    /// The YAML spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Decision => "decision",
            Self::DeferredConvergence => "deferred_convergence",
            Self::Batchable => "batchable",
            Self::BatchWorker => "batch_worker",
        }
    }
}

impl fmt::Display for StepType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default `retry.max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Largest `retry.max_attempts`.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// Largest backoff delay, one hour.
pub const MAX_BACKOFF_LIMIT_MS: u64 = 3_600_000;

/// A step's retry policy.
///
/// `backoff_base_ms` and `max_backoff_ms` are `None` when the template leaves them out; the
/// orchestrator's global backoff settings apply then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RetryPolicy {
    /// Whether failures may be retried at all.
    pub retryable: bool,
    /// Attempts in total, including the first (1..=100).
    pub max_attempts: u32,
    /// How delays grow between attempts.
    pub backoff: BackoffKind,
    /// First delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// Largest delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retryable: true,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: BackoffKind::Exponential,
            backoff_base_ms: None,
            max_backoff_ms: None,
        }
    }
}

/// How retry delays grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// Retry immediately.
    None,
    /// base, 2×base, 3×base, ...
    Linear,
    /// base, 2×base, 4×base, ...
    #[default]
    Exponential,
    /// base, base, 2×base, 3×base, 5×base, ...
    Fibonacci,
}

impl BackoffKind {
    pub(crate) const CHOICES: [(&'static str, Self); 4] = [
        ("none", Self::None),
        ("linear", Self::Linear),
        ("exponential", Self::Exponential),
        ("fibonacci", Self::Fibonacci),
    ];
}

/// Limits of [`BatchConfig::batch_size`].
pub const BATCH_SIZE_RANGE: (u64, u64) = (1, 100_000);
/// Limits of [`BatchConfig::parallelism`].
pub const BATCH_PARALLELISM_RANGE: (u64, u64) = (1, 1_000);

/// How a batchable step splits its work.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchConfig {
    /// Items per worker (1..=100000, default 1000).
    pub batch_size: u32,
    /// Workers running at once (1..=1000, default 10).
    pub parallelism: u32,
    /// The field the cursor ranges over (default `id`).
    pub cursor_field: String,
    /// The `batch_worker` step that workers are instantiated from.
    pub worker_template: StepName,
    /// What a failing worker does to the batch.
    pub failure_strategy: FailureStrategy,
}

/// What a failing batch worker does to its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStrategy {
    /// The worker completes with failure metadata; the others carry on.
    #[default]
    ContinueOnFailure,
    /// The worker errors, which blocks the convergence step.
    FailFast,
    /// The worker is set aside for manual resolution.
    Isolate,
}

impl FailureStrategy {
    pub(crate) const CHOICES: [(&'static str, Self); 3] = [
        ("continue_on_failure", Self::ContinueOnFailure),
        ("fail_fast", Self::FailFast),
        ("isolate", Self::Isolate),
    ];
}
