//! Typed identifiers: one newtype over [`Uuid`] per entity, so a step id can never be passed
//! where a task id is expected.
//!
//! Every id is generated as a UUID v7 (time-ordered, matching the database defaults) with
//! `new_v7()`, and converts losslessly from and to [`Uuid`] for the database layer. On the wire
//! an id is the plain hyphenated UUID string (`#[serde(transparent)]`).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUID v7) id.
            #[must_use]
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID, for example one read from the database.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Consumes the id, returning the underlying UUID.
            #[must_use]
            pub const fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|source| IdParseError {
                    kind: stringify!($name),
                    source,
                })
            }
        }
    };
}

/// The input could not be parsed as an id.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind}: expected a UUID")]
pub struct IdParseError {
    kind: &'static str,
    #[source]
    source: uuid::Error,
}

define_id!(
    /// A task namespace (`task_namespaces.task_namespace_uuid`).
    NamespaceId
);
define_id!(
    /// A registered task template (`named_tasks.named_task_uuid`).
    NamedTaskId
);
define_id!(
    /// A step name registered across all templates (`named_steps.named_step_uuid`).
    NamedStepId
);
define_id!(
    /// A task: one run of a template (`tasks.task_uuid`).
    TaskId
);
define_id!(
    /// A workflow step of a task (`workflow_steps.workflow_step_uuid`).
    StepId
);
define_id!(
    /// A dependency edge between two workflow steps (`workflow_step_edges.workflow_step_edge_uuid`).
    EdgeId
);
define_id!(
    /// A task state transition (`task_transitions.task_transition_uuid`).
    TaskTransitionId
);
define_id!(
    /// A step state transition (`workflow_step_transitions.workflow_step_transition_uuid`).
    StepTransitionId
);
define_id!(
    /// A step result audit entry (`workflow_step_result_audit.workflow_step_result_audit_uuid`).
    StepResultAuditId
);
define_id!(
    /// A dead-letter investigation entry (`tasks_dlq.dlq_entry_uuid`).
    DlqEntryId
);
define_id!(
    /// Correlates a task with everything it causes, across processes (`tasks.correlation_id`).
    ///
    /// Callers may supply their own (any UUID version); `new_v7()` generates one.
    CorrelationId
);
define_id!(
    /// An orchestration or worker process, recorded for audit only.
    ProcessorId
);

#[cfg(test)]
mod tests;
