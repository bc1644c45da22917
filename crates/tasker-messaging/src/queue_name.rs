//! Validated queue names and namespaces, and the one place that spells Tasker's queue names.
//!
//! A [`QueueName`] is the only way a name reaches SQL (pgmq turns it into the table names
//! `pgmq.q_<name>` and `pgmq.a_<name>`) or AMQP. The rules:
//!
//! - lowercase ASCII letters, digits and `_`, starting with a letter
//!   ([`Alphabet::Lowercase`]). pgmq lowercases table names, so `Orders` and `orders` would
//!   share a table there while RabbitMQ kept them apart; refusing upper case keeps both
//!   backends equal;
//! - at most [`QueueName::MAX_LEN`] (43) characters, so that the dead-letter twin
//!   `<name>_dlq` fits pgmq's limit of 47 ([`QueueName::MAX_DLQ_LEN`]); a dead-letter name itself
//!   may use those 47.
//!
//! A [`Namespace`] is tasker-models' [`NamespaceName`]: the namespace rule has one
//! implementation, which template validation, these queue names and the database's check on
//! `task_namespaces` share.
//!
//! The functions [`worker_queue`], [`step_results_queue`], [`task_requests_queue`],
//! [`task_finalizations_queue`] and [`domain_events_queue`] are the only spelling of Tasker's
//! queue names; they cannot fail, because a [`Namespace`] is short enough for every pattern.

use std::fmt;

use tasker_models::names::{Alphabet, InvalidName, NameError, NamespaceName, check_name};

/// The suffix of a dead-letter queue's name.
pub const DEAD_LETTER_SUFFIX: &str = "_dlq";

/// A validated queue name; see the module docs for the rules. Serialized as its text; a name
/// that breaks the rules does not deserialize.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

impl TryFrom<String> for QueueName {
    type Error = QueueNameError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<QueueName> for String {
    fn from(name: QueueName) -> Self {
        name.0
    }
}

impl QueueName {
    /// The longest name of an ordinary queue: pgmq's 47 less the `_dlq` suffix.
    pub const MAX_LEN: usize = 43;
    /// The longest name of a dead-letter queue (pgmq's limit: `template_pgmq_q_` + 47 = 63, the
    /// PostgreSQL identifier limit).
    pub const MAX_DLQ_LEN: usize = 47;

    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, QueueNameError> {
        let name = name.into();
        let limit = if name.ends_with(DEAD_LETTER_SUFFIX) {
            Self::MAX_DLQ_LEN
        } else {
            Self::MAX_LEN
        };
        match check_name(&name, Alphabet::Lowercase, limit) {
            Ok(()) => Ok(Self(name)),
            Err(problem) => Err(QueueNameError { name, problem }),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a dead-letter queue (its name ends with `_dlq`).
    pub fn is_dead_letter(&self) -> bool {
        self.0.ends_with(DEAD_LETTER_SUFFIX)
    }

    /// The dead-letter queue of this queue, `<name>_dlq`; `None` for a dead-letter queue, which
    /// has none of its own.
    pub fn dead_letter(&self) -> Option<QueueName> {
        if self.is_dead_letter() {
            None
        } else {
            // At most 43 + 4 = 47 characters of the same alphabet: valid by construction.
            Some(Self(format!("{}{DEAD_LETTER_SUFFIX}", self.0)))
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueName({:?})", self.0)
    }
}

impl AsRef<str> for QueueName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for QueueName {
    type Err = QueueNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A namespace whose queues Tasker names (`worker_<namespace>_queue`,
/// `<namespace>_domain_events`): tasker-models' [`NamespaceName`], whose rule is the queue
/// names' alphabet ([`Alphabet::Lowercase`]) at most [`NamespaceName::MAX_LEN`] (29)
/// characters, so that every derived name and its dead-letter twin fit: 47 less
/// `_domain_events_dlq` (18), the longest suffix.
pub type Namespace = NamespaceName;

/// A namespace failed validation: tasker-models' [`InvalidName`]; [`InvalidName::reason`] says
/// which rule it breaks.
pub type NamespaceError = InvalidName;

/// A queue name failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue name {name:?}: {problem}")]
pub struct QueueNameError {
    /// The rejected name.
    pub name: String,
    /// Why it was rejected (part of the message, not a source: it is no failure underneath).
    pub problem: NameError,
}

/// The queue on which orchestration sends steps to the workers of `namespace`:
/// `worker_<namespace>_queue`.
pub fn worker_queue(namespace: &Namespace) -> QueueName {
    derived(format!("worker_{namespace}_queue"))
}

/// The queue on which workers report step results to orchestration.
pub fn step_results_queue() -> QueueName {
    derived("orchestration_step_results".to_owned())
}

/// The queue of task requests for orchestration.
pub fn task_requests_queue() -> QueueName {
    derived("orchestration_task_requests".to_owned())
}

/// The queue of task finalization requests for orchestration.
pub fn task_finalizations_queue() -> QueueName {
    derived("orchestration_task_finalizations".to_owned())
}

/// The queue of the domain events of `namespace`: `<namespace>_domain_events`.
pub fn domain_events_queue(namespace: &Namespace) -> QueueName {
    derived(format!("{namespace}_domain_events"))
}

/// The reply queue of requester `requester` (`replies_<32 hex digits>`), where orchestration
/// tells it what became of its task requests.
pub fn reply_queue(requester: uuid::Uuid) -> QueueName {
    derived(format!("replies_{}", requester.simple()))
}

/// The three queues orchestration consumes.
pub fn orchestration_queues() -> [QueueName; 3] {
    [
        step_results_queue(),
        task_requests_queue(),
        task_finalizations_queue(),
    ]
}

/// Builds a name from a validated namespace and fixed text. The longest is
/// `<29>_domain_events` = 43 characters, so this is valid by construction; the unit tests check
/// the longest namespace against every pattern.
fn derived(name: String) -> QueueName {
    debug_assert!(
        check_name(&name, Alphabet::Lowercase, QueueName::MAX_LEN).is_ok(),
        "derived queue name {name:?} must be valid"
    );
    QueueName(name)
}

#[cfg(test)]
mod tests;
