//! The registry records: namespaces, registered templates (named tasks) and step names.

use chrono::{DateTime, Utc};

use crate::identity::IdentityStrategy;
use crate::ids::{NamedStepId, NamedTaskId, NamespaceId};
use crate::names::{NamespaceName, StepName, TaskName, TemplateVersion};

/// A task namespace (`task_namespaces`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Namespace {
    /// Primary key.
    pub id: NamespaceId,
    /// Unique name.
    pub name: NamespaceName,
    /// Free text.
    pub description: Option<String>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A registered task template (`named_tasks`), unique by namespace, name and version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedTask {
    /// Primary key.
    pub id: NamedTaskId,
    /// The namespace it is registered in.
    pub namespace_id: NamespaceId,
    /// Template name.
    pub name: TaskName,
    /// Template version.
    pub version: TemplateVersion,
    /// Free text.
    pub description: Option<String>,
    /// The whole template as JSON (what [`crate::template::ValidatedTemplate::to_json`]
    /// produces); load it with [`crate::template::ValidatedTemplate::from_json_value`].
    pub configuration: serde_json::Value,
    /// How tasks of this template are deduplicated.
    pub identity_strategy: IdentityStrategy,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A step name shared by every template that uses it (`named_steps`, globally unique).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedStep {
    /// Primary key.
    pub id: NamedStepId,
    /// Unique name.
    pub name: StepName,
    /// Free text.
    pub description: Option<String>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}
