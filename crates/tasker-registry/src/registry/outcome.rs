//! What registering produces and lookups return: template identities, options, per-template
//! outcomes and stored templates.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tasker_models::ids::{NamedTaskId, NamespaceId};
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::template::{Problems, Strictness, ValidatedTemplate};

use super::diff::Difference;

/// A template's identity: `namespace/name:version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// The namespace.
    pub namespace: NamespaceName,
    /// The template's name.
    pub name: TaskName,
    /// The template's version.
    pub version: TemplateVersion,
}

impl TemplateKey {
    /// The identity of a template.
    #[must_use]
    pub fn of(template: &ValidatedTemplate) -> Self {
        let data = template.template();
        Self {
            namespace: data.namespace_name.clone(),
            name: data.name.clone(),
            version: data.version.clone(),
        }
    }

    pub(super) fn sort_key(&self) -> (&str, &str, &str) {
        (
            self.namespace.as_str(),
            self.name.as_str(),
            self.version.as_str(),
        )
    }
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.version)
    }
}

/// How to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegisterOptions {
    /// Overwrite a registered template whose content changed without a new version, instead
    /// of failing. Tasks already created from it keep their steps; new tasks get the new
    /// definition.
    pub force: bool,
    /// How template files are read: [`Strictness::Strict`] (the default) rejects unknown keys
    /// and the predecessor's tolerated values; [`Strictness::Lenient`] reports them as
    /// warnings.
    pub strictness: Strictness,
}

impl RegisterOptions {
    /// Strict, and overwriting changed templates.
    #[must_use]
    pub fn forced() -> Self {
        Self {
            force: true,
            ..Self::default()
        }
    }
}

/// What registering did to one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The identity was not registered; it is now.
    Created,
    /// The identity was registered with the same content; nothing was written.
    Unchanged,
    /// The identity was registered with other content, which a forced registration replaced.
    Replaced {
        /// Every field that differed, stored against new.
        differences: Vec<Difference>,
    },
}

impl Change {
    /// `created`, `unchanged` or `replaced`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
            Self::Replaced { .. } => "replaced",
        }
    }
}

/// One template of a registration.
#[derive(Debug, Clone)]
pub struct TemplateOutcome {
    /// The template.
    pub key: TemplateKey,
    /// The file it came from (`None` for templates registered from memory).
    pub source: Option<PathBuf>,
    /// Its row.
    pub named_task_id: NamedTaskId,
    /// What registering did.
    pub change: Change,
    /// Warnings the file raised (lenient mode).
    pub warnings: Problems,
}

/// What one registration did, template by template, in identity order.
#[derive(Debug, Clone, Default)]
pub struct RegistrationReport {
    /// One outcome per template.
    pub templates: Vec<TemplateOutcome>,
}

impl RegistrationReport {
    /// How many templates were created.
    #[must_use]
    pub fn created(&self) -> usize {
        self.count(|change| matches!(change, Change::Created))
    }

    /// How many templates were already registered unchanged.
    #[must_use]
    pub fn unchanged(&self) -> usize {
        self.count(|change| matches!(change, Change::Unchanged))
    }

    /// How many templates a forced registration replaced.
    #[must_use]
    pub fn replaced(&self) -> usize {
        self.count(|change| matches!(change, Change::Replaced { .. }))
    }

    /// The outcome of one template.
    #[must_use]
    pub fn get(&self, key: &TemplateKey) -> Option<&TemplateOutcome> {
        self.templates.iter().find(|outcome| &outcome.key == key)
    }

    fn count(&self, predicate: impl Fn(&Change) -> bool) -> usize {
        self.templates
            .iter()
            .filter(|outcome| predicate(&outcome.change))
            .count()
    }
}

impl fmt::Display for RegistrationReport {
    /// `3 template(s): 1 created, 1 unchanged, 1 replaced`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} template(s): {} created, {} unchanged, {} replaced",
            self.templates.len(),
            self.created(),
            self.unchanged(),
            self.replaced()
        )
    }
}

/// A registered template version, loaded back.
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    /// Its identity.
    pub key: TemplateKey,
    /// Its namespace's row.
    pub namespace_id: NamespaceId,
    /// Its row.
    pub named_task_id: NamedTaskId,
    /// The template (without environment overrides applied).
    pub template: ValidatedTemplate,
    /// When it was first registered.
    pub registered_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}
