//! Dead-letter entries: an investigation ledger for tasks that got stuck, not a message queue.
//! The task stays where it is; operators fix it through the normal APIs and then record a
//! resolution here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use tasker_state::TaskState;

use crate::ids::{DlqEntryId, TaskId};

/// One investigation (`tasks_dlq`); at most one pending entry per task.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DlqEntry {
    /// Primary key.
    pub id: DlqEntryId,
    /// The task under investigation.
    pub task_id: TaskId,
    /// The task's state when it was sent here.
    pub original_state: TaskState,
    /// Why it was sent here.
    pub reason: DlqReason,
    /// When it was sent here.
    pub dlq_timestamp: DateTime<Utc>,
    /// Where the investigation stands.
    pub resolution_status: DlqResolutionStatus,
    /// When it was resolved.
    pub resolution_timestamp: Option<DateTime<Utc>>,
    /// What was done.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The task (with steps and transitions) as it was when it was sent here.
    pub task_snapshot: serde_json::Value,
    /// Anything else worth keeping.
    pub metadata: Option<serde_json::Value>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl DlqEntry {
    /// Whether the investigation is still open.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.resolution_status == DlqResolutionStatus::Pending
    }

    /// How long the entry has been in the DLQ (until its resolution, if resolved).
    #[must_use]
    pub fn age(&self, now: DateTime<Utc>) -> TimeDelta {
        self.resolution_timestamp.unwrap_or(now) - self.dlq_timestamp
    }

    /// Whether the investigation is still open after `threshold`.
    #[must_use]
    pub fn is_stale(&self, now: DateTime<Utc>, threshold: TimeDelta) -> bool {
        self.is_pending() && self.age(now) >= threshold
    }
}

/// A string that is not a known DLQ enum value.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of: {expected}")]
pub struct UnknownDlqValue {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The database spelling.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownDlqValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownDlqValue {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: concat!($($text, ", "),+),
                    }),
                }
            }
        }
    };
}

string_enum!(
    /// Why a task was sent to the DLQ (`tasker.dlq_reason`).
    DlqReason, "dlq reason", {
        /// It stayed in a waiting or processing state past its threshold.
        StalenessTimeout => "staleness_timeout",
        /// A step ran out of attempts.
        MaxRetriesExceeded => "max_retries_exceeded",
        /// Its steps were found to depend on each other in a circle.
        DependencyCycleDetected => "dependency_cycle_detected",
        /// No worker could take its steps.
        WorkerUnavailable => "worker_unavailable",
        /// An operator sent it.
        ManualDlq => "manual_dlq",
    }
);

impl DlqReason {
    /// How urgent an investigation is, for ordering the investigation queue (higher first).
    #[must_use]
    pub const fn priority_weight(self) -> u32 {
        match self {
            Self::DependencyCycleDetected => 1000,
            Self::MaxRetriesExceeded => 500,
            Self::StalenessTimeout => 100,
            Self::WorkerUnavailable => 50,
            Self::ManualDlq => 10,
        }
    }
}

string_enum!(
    /// Where an investigation stands (`tasker.dlq_resolution_status`).
    DlqResolutionStatus, "dlq resolution status", {
        /// Open.
        Pending => "pending",
        /// An operator fixed the task.
        ManuallyResolved => "manually_resolved",
        /// The task cannot be saved.
        PermanentlyFailed => "permanently_failed",
        /// The task was cancelled.
        Cancelled => "cancelled",
    }
);
