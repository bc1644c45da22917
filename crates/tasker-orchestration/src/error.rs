//! The orchestration engine's error: what it was doing, and the typed error of the layer that
//! failed underneath (database, queue, outbox, state machine).

use std::borrow::Cow;

use tasker_db::error::DbError;
use tasker_db::step::StepTransitionError;
use tasker_db::task::{TaskBatchError, TaskTransitionError};
use tasker_messaging::envelope::EncodeError;
use tasker_messaging::error::QueueError;
use tasker_messaging::outbox::OutboxError;
use tasker_registry::registry::LookupError;
use tasker_state::InvalidTaskTransition;

/// An operation of the engine failed: `doing` names it, the source says why.
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct OrchestrationError {
    doing: Cow<'static, str>,
    #[source]
    source: Option<Box<Cause>>,
}

/// What failed underneath an [`OrchestrationError`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// A database call.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The driver, outside tasker-db's classification (beginning a transaction, committing).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// The messaging backend.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Encoding a message.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Committing a transaction with its messages.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A task transition.
    #[error(transparent)]
    TaskTransition(#[from] TaskTransitionError),
    /// A batch of task transitions.
    #[error(transparent)]
    TaskBatch(#[from] TaskBatchError),
    /// A step transition.
    #[error(transparent)]
    StepTransition(#[from] StepTransitionError),
    /// The state machine refused an event.
    #[error(transparent)]
    StateMachine(#[from] InvalidTaskTransition),
    /// A template lookup.
    #[error(transparent)]
    Template(#[from] LookupError),
    /// A task of the engine panicked or was cancelled.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    /// A task's namespace does not name a queue.
    #[error(transparent)]
    Namespace(#[from] tasker_messaging::queue_name::NamespaceError),
    /// The database or the broker did not answer in time.
    #[error(transparent)]
    TimedOut(#[from] tasker_messaging::retry::TimedOut),
    /// A nested operation of the engine.
    #[error(transparent)]
    Engine(Box<OrchestrationError>),
}

impl OrchestrationError {
    /// `cause` as the failure of `doing`.
    pub(crate) fn new(doing: &'static str, cause: impl Into<Cause>) -> Self {
        Self {
            doing: Cow::Borrowed(doing),
            source: Some(Box::new(cause.into())),
        }
    }

    /// A broken expectation with no underlying error.
    pub(crate) fn invariant(doing: impl Into<Cow<'static, str>>) -> Self {
        Self {
            doing: doing.into(),
            source: None,
        }
    }

    /// What failed underneath, if anything did.
    pub fn cause(&self) -> Option<&Cause> {
        self.source.as_deref()
    }

    /// Whether trying again later may succeed: the database or the broker failed, as opposed
    /// to a broken invariant or bad data.
    pub fn is_transient(&self) -> bool {
        match self.source.as_deref() {
            Some(
                Cause::Database(error)
                | Cause::TaskBatch(TaskBatchError::Database(error))
                | Cause::TaskTransition(TaskTransitionError::Database(error)),
            ) => database_may_pass(error),
            Some(Cause::Sqlx(_)) => true,
            Some(Cause::Queue(error)) => error.is_transient(),
            Some(Cause::TimedOut(_)) => true,
            Some(Cause::Outbox(error)) => error.is_transient(),
            Some(Cause::Engine(inner)) => inner.is_transient(),
            _ => false,
        }
    }
}

/// Whether a database failure may pass on a later try: a transient one (a lost connection, a
/// serialization failure, ...), or one tasker-db could not classify.
pub(crate) fn database_may_pass(error: &DbError) -> bool {
    error.is_transient() || matches!(error, DbError::Other(_))
}

/// Any error with its causes, `: `-separated, skipping a cause whose text its parent already
/// shows (a transparent wrapper): for log lines and refusal reasons.
pub(crate) fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

impl From<OrchestrationError> for Cause {
    fn from(error: OrchestrationError) -> Self {
        Cause::Engine(Box::new(error))
    }
}

/// Names the operation a fallible call belongs to (anyhow's `Context`, with typed causes).
pub(crate) trait Doing<T> {
    /// Wraps the error as "while `doing`".
    fn doing(self, doing: &'static str) -> Result<T, OrchestrationError>;
    /// [`Doing::doing`] with a message built only on failure.
    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, OrchestrationError>;
}

impl<T, E: Into<Cause>> Doing<T> for Result<T, E> {
    fn doing(self, doing: &'static str) -> Result<T, OrchestrationError> {
        self.map_err(|error| OrchestrationError::new(doing, error))
    }

    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, OrchestrationError> {
        self.map_err(|error| OrchestrationError {
            doing: Cow::Owned(doing()),
            source: Some(Box::new(error.into())),
        })
    }
}

impl<T> Doing<T> for Option<T> {
    fn doing(self, doing: &'static str) -> Result<T, OrchestrationError> {
        self.ok_or_else(|| OrchestrationError::invariant(doing))
    }

    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, OrchestrationError> {
        self.ok_or_else(|| OrchestrationError::invariant(doing()))
    }
}
