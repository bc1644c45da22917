//! The permission model: a closed vocabulary of `resource:action` permissions, and the grants a
//! credential carries (`resource:action`, or `resource:*` for every action on a resource).
//!
//! A grant is parsed once, when the credential is verified; anything outside the vocabulary is
//! an [`UnknownGrant`] with the reason. There is no global wildcard: `*` grants nothing and is
//! refused like any other unknown grant.

use std::fmt;

/// A resource of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Tasks.
    Tasks,
    /// Workflow steps.
    Steps,
    /// The dead-letter queue of stale or failed tasks.
    Dlq,
    /// Task templates.
    Templates,
    /// The system: configuration, handlers, analytics.
    System,
    /// Workers.
    Worker,
}

impl Resource {
    /// Every resource, in vocabulary order.
    pub const ALL: [Self; 6] = [
        Self::Tasks,
        Self::Steps,
        Self::Dlq,
        Self::Templates,
        Self::System,
        Self::Worker,
    ];

    /// The name used in permissions (`tasks`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::Steps => "steps",
            Self::Dlq => "dlq",
            Self::Templates => "templates",
            Self::System => "system",
            Self::Worker => "worker",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|resource| resource.as_str() == name)
    }
}

macro_rules! permissions {
    ($($variant:ident = ($resource:ident, $text:literal): $doc:literal,)*) => {
        /// One permission of the closed vocabulary, written `resource:action`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in vocabulary order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The resource it is about.
            pub fn resource(self) -> Resource {
                match self {
                    $(Self::$variant => Resource::$resource,)*
                }
            }

            /// The permission as written (`tasks:create`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            /// What it allows, for documentation.
            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $doc,)*
                }
            }
        }
    };
}

permissions! {
    TasksCreate = (Tasks, "tasks:create"): "Create tasks.",
    TasksRead = (Tasks, "tasks:read"): "Read a task, its steps and its audit trail.",
    TasksList = (Tasks, "tasks:list"): "List tasks.",
    TasksCancel = (Tasks, "tasks:cancel"): "Cancel tasks.",
    TasksContextRead = (Tasks, "tasks:context_read"): "Read a task's context.",
    StepsRead = (Steps, "steps:read"): "Read steps.",
    StepsResolve = (Steps, "steps:resolve"): "Resolve steps manually.",
    DlqRead = (Dlq, "dlq:read"): "Read dead-letter entries.",
    DlqUpdate = (Dlq, "dlq:update"): "Update dead-letter investigations.",
    DlqStats = (Dlq, "dlq:stats"): "Read dead-letter statistics.",
    TemplatesRead = (Templates, "templates:read"): "Read and list templates.",
    TemplatesValidate = (Templates, "templates:validate"): "Validate and register templates.",
    SystemConfigRead = (System, "system:config_read"): "Read the (redacted) configuration.",
    SystemHandlersRead = (System, "system:handlers_read"): "Read the registered handlers.",
    SystemAnalyticsRead = (System, "system:analytics_read"): "Read analytics.",
    WorkerConfigRead = (Worker, "worker:config_read"): "Read a worker's configuration.",
    WorkerTemplatesRead = (Worker, "worker:templates_read"): "Read a worker's templates.",
}

impl Permission {
    /// Parses `resource:action`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|permission| permission.as_str() == text)
    }

    /// The action part (`create` of `tasks:create`).
    pub fn action(self) -> &'static str {
        self.as_str()
            .split_once(':')
            .map_or("", |(_, action)| action)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a credential grants: one permission, or every action on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grant {
    /// Exactly this permission.
    Permission(Permission),
    /// `resource:*`: every permission of the resource.
    Resource(Resource),
}

impl Grant {
    /// Parses a grant: `resource:action` of the vocabulary, or `resource:*` of a known
    /// resource. Nothing else: no bare `*`, no `*:action`, no partial wildcards, no
    /// whitespace.
    pub fn parse(text: &str) -> Result<Self, UnknownGrant> {
        let unknown = |reason| UnknownGrant {
            grant: text.to_owned(),
            reason,
        };
        let Some((resource, action)) = text.split_once(':') else {
            return Err(unknown(UnknownGrantReason::NotResourceAction));
        };
        let Some(resource) = Resource::from_name(resource) else {
            return Err(unknown(UnknownGrantReason::UnknownResource));
        };
        if action == "*" {
            return Ok(Self::Resource(resource));
        }
        Permission::ALL
            .iter()
            .copied()
            .find(|permission| permission.resource() == resource && permission.action() == action)
            .map(Self::Permission)
            .ok_or_else(|| unknown(UnknownGrantReason::UnknownAction))
    }

    /// Whether this grant allows `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match self {
            Self::Permission(granted) => granted == permission,
            Self::Resource(resource) => permission.resource() == resource,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permission(permission) => permission.fmt(f),
            Self::Resource(resource) => write!(f, "{}:*", resource.as_str()),
        }
    }
}

/// A grant outside the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {grant:?}: {reason}")]
pub struct UnknownGrant {
    /// The grant as written (never a secret: permissions are not credentials).
    pub grant: String,
    /// Why it is not in the vocabulary.
    pub reason: UnknownGrantReason,
}

/// Why a grant is not in the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnknownGrantReason {
    /// No `:` separates a resource and an action (this includes a bare `*`).
    #[error("not of the form `resource:action` or `resource:*`")]
    NotResourceAction,
    /// The resource is not one of `tasks`, `steps`, `dlq`, `templates`, `system`, `worker`.
    #[error("the resource is not one of tasks, steps, dlq, templates, system, worker")]
    UnknownResource,
    /// The action is neither `*` nor an action of the resource.
    #[error("the action is neither `*` nor an action of the resource")]
    UnknownAction,
}

/// The grants of one credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(Vec<Grant>);

impl Grants {
    /// Grants from a list.
    pub fn new(grants: Vec<Grant>) -> Self {
        Self(grants)
    }

    /// Every permission of the vocabulary (for anonymous access when authentication is
    /// disabled).
    pub fn everything() -> Self {
        Self(Resource::ALL.into_iter().map(Grant::Resource).collect())
    }

    /// Parses every grant; the unknown ones are returned beside the known ones, so the caller
    /// decides (strict validation refuses the credential; lenient drops and logs them).
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> (Self, Vec<UnknownGrant>) {
        let mut grants = Vec::new();
        let mut unknown = Vec::new();
        for text in texts {
            match Grant::parse(text) {
                Ok(grant) => grants.push(grant),
                Err(error) => unknown.push(error),
            }
        }
        (Self(grants), unknown)
    }

    /// Whether any grant allows `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.0.iter().any(|grant| grant.allows(permission))
    }

    /// The grants.
    pub fn iter(&self) -> impl Iterator<Item = Grant> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests;
