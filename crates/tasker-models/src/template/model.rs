//! The typed task template: plain data produced by the loader once every check has passed.
//!
//! Serializing a [`TaskTemplate`] gives the JSON stored as `named_tasks.configuration`; it uses
//! the canonical key names only and loads back without warnings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::identity::IdentityStrategy;
use crate::names::{NamespaceName, StepName, TaskName, TemplateVersion};

use super::event::DomainEventDefinition;
use super::schema::JsonSchema;
use super::step::{BackoffKind, StepDefinition};

/// A task template: a named, versioned DAG of steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskTemplate {
    /// Template name, unique with namespace and version.
    pub name: TaskName,
    /// Namespace (also part of queue names).
    pub namespace_name: NamespaceName,
    /// Semantic version.
    pub version: TemplateVersion,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How requests for this template are deduplicated (default `strict`).
    pub identity_strategy: IdentityStrategy,
    /// Authoring metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// External systems the template relies on.
    pub system_dependencies: SystemDependencies,
    /// Domain events the template declares.
    pub domain_events: Vec<DomainEventDefinition>,
    /// JSON Schema every task context must satisfy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<JsonSchema>,
    /// The steps, in declaration order.
    pub steps: Vec<StepDefinition>,
    /// Per-environment step overrides, by environment name.
    pub environments: BTreeMap<String, EnvironmentOverrides>,
    /// Staleness thresholds and what happens to stale tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleConfig>,
}

/// Authoring metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct TemplateMetadata {
    /// Who wrote the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// An absolute URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// When the template was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the template was last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The system a template's steps talk to by default, and others it uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SystemDependencies {
    /// Default `default`.
    pub primary: String,
    /// Others.
    pub secondary: Vec<String>,
}

impl Default for SystemDependencies {
    fn default() -> Self {
        Self {
            primary: "default".to_owned(),
            secondary: Vec::new(),
        }
    }
}

/// Limits of the `max_duration_minutes` threshold (30 days).
pub const MAX_DURATION_MINUTES_RANGE: (u64, u64) = (1, 43_200);
/// Limits of the per-state thresholds (7 days).
pub const STATE_THRESHOLD_MINUTES_RANGE: (u64, u64) = (1, 10_080);

/// Staleness thresholds of a template's tasks. The SQL staleness functions read these keys
/// from `named_tasks.configuration.lifecycle` directly, so their names are part of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LifecycleConfig {
    /// Longest a task may run in total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<u32>,
    /// Longest a task may wait for dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_dependencies_minutes: Option<u32>,
    /// Longest a task may wait for a retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_retry_minutes: Option<u32>,
    /// Longest a task may have steps in process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps_in_process_minutes: Option<u32>,
    /// What happens to a stale task (default `dlq`).
    pub staleness_action: StalenessAction,
    /// Fail the task when a threshold passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_fail_on_timeout: Option<bool>,
    /// Move the task to the DLQ when a threshold passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_dlq_on_timeout: Option<bool>,
}

/// What happens to a stale task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StalenessAction {
    /// Open a DLQ investigation.
    #[default]
    Dlq,
    /// Move the task to `error`.
    Error,
    /// Only report it.
    None,
}

impl StalenessAction {
    pub(crate) const CHOICES: [(&'static str, Self); 3] = [
        ("dlq", Self::Dlq),
        ("error", Self::Error),
        ("none", Self::None),
    ];
}

/// The overrides of one environment.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct EnvironmentOverrides {
    /// Applied in order; later overrides win.
    pub steps: Vec<StepOverride>,
}

/// The environment name whose overrides apply to every step.
pub const ALL_STEPS: &str = "ALL";

/// Changes to one step (or all steps) in one environment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepOverride {
    /// The step, or every step.
    pub name: OverrideTarget,
    /// Handler changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerOverride>,
    /// Replaces the timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Replaces the given retry fields; the others keep their values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
}

/// Which steps an override changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(into = "String")]
pub enum OverrideTarget {
    /// Every step (written `ALL`).
    All,
    /// One step.
    Step(StepName),
}

impl OverrideTarget {
    /// Whether the override applies to a step.
    #[must_use]
    pub fn matches(&self, step: &StepName) -> bool {
        match self {
            Self::All => true,
            Self::Step(name) => name == step,
        }
    }
}

impl From<OverrideTarget> for String {
    fn from(target: OverrideTarget) -> Self {
        match target {
            OverrideTarget::All => ALL_STEPS.to_owned(),
            OverrideTarget::Step(name) => name.into(),
        }
    }
}

/// Handler changes in an override.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct HandlerOverride {
    /// Merged into the step's initialization; these keys win.
    pub initialization: serde_json::Map<String, serde_json::Value>,
}

/// Retry changes in an override: only the given fields change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RetryOverride {
    /// Replaces `retryable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Replaces `max_attempts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Replaces `backoff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffKind>,
    /// Replaces `backoff_base_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// Replaces `max_backoff_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}
