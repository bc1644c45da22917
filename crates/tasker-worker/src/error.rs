//! The worker engine's errors: [`WorkerError`] for its loops (what it was doing, and the typed
//! error of the layer underneath), and [`CatalogError`] for loading and registering the
//! templates it serves.

use std::borrow::Cow;
use std::path::PathBuf;

use tasker_db::error::DbError;
use tasker_db::step::StepTransitionError;
use tasker_messaging::envelope::EncodeError;
use tasker_messaging::error::QueueError;
use tasker_messaging::outbox::OutboxError;

/// An operation of a worker failed: `doing` names it, the source says why.
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct WorkerError {
    doing: Cow<'static, str>,
    #[source]
    source: Option<Box<Cause>>,
}

/// What failed underneath a [`WorkerError`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// A database call.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The driver, outside tasker-db's classification (beginning a transaction).
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
    /// A step transition.
    #[error(transparent)]
    StepTransition(#[from] StepTransitionError),
    /// A step handler's task panicked or was cancelled.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    /// The database or the broker did not answer in time.
    #[error(transparent)]
    TimedOut(#[from] tasker_messaging::retry::TimedOut),
    /// A nested operation.
    #[error(transparent)]
    Engine(Box<WorkerError>),
    /// A template's step name or namespace breaks the naming rules.
    #[error(transparent)]
    Name(#[from] tasker_models::names::InvalidName),
}

impl WorkerError {
    /// A broken expectation with no underlying error.
    pub(crate) fn invariant(doing: impl Into<Cow<'static, str>>) -> Self {
        Self {
            doing: doing.into(),
            source: None,
        }
    }

    /// `error` as a step of a larger operation.
    pub(crate) fn nested(doing: &'static str, error: WorkerError) -> Self {
        Self {
            doing: Cow::Borrowed(doing),
            source: Some(Box::new(Cause::Engine(Box::new(error)))),
        }
    }

    /// Whether trying again may succeed: the database or the broker failed, as opposed to a
    /// broken invariant or bad data.
    pub fn is_transient(&self) -> bool {
        match self.source.as_deref() {
            Some(Cause::Database(error)) => {
                error.is_transient() || matches!(error, DbError::Other(_))
            }
            Some(Cause::Sqlx(_)) => true,
            Some(Cause::Queue(error)) => error.is_transient(),
            Some(Cause::TimedOut(_)) => true,
            Some(Cause::Outbox(error)) => error.is_transient(),
            Some(Cause::StepTransition(StepTransitionError::Database(_))) => true,
            Some(Cause::Engine(inner)) => inner.is_transient(),
            _ => false,
        }
    }

    /// What failed underneath, if anything did.
    pub fn cause(&self) -> Option<&Cause> {
        self.source.as_deref()
    }
}

/// Names the operation a fallible call belongs to.
pub(crate) trait Doing<T> {
    /// Wraps the error as "while `doing`".
    fn doing(self, doing: &'static str) -> Result<T, WorkerError>;
    /// [`Doing::doing`] with a message built only on failure.
    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, WorkerError>;
}

impl<T, E: Into<Cause>> Doing<T> for Result<T, E> {
    fn doing(self, doing: &'static str) -> Result<T, WorkerError> {
        self.map_err(|error| WorkerError {
            doing: Cow::Borrowed(doing),
            source: Some(Box::new(error.into())),
        })
    }

    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, WorkerError> {
        self.map_err(|error| WorkerError {
            doing: Cow::Owned(doing()),
            source: Some(Box::new(error.into())),
        })
    }
}

impl<T> Doing<T> for Option<T> {
    fn doing(self, doing: &'static str) -> Result<T, WorkerError> {
        self.ok_or_else(|| WorkerError::invariant(doing))
    }

    fn doing_with(self, doing: impl FnOnce() -> String) -> Result<T, WorkerError> {
        self.ok_or_else(|| WorkerError::invariant(doing()))
    }
}

/// The templates a worker serves could not be loaded or registered.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The directory could not be read.
    #[error("could not read templates from {}", dir.display())]
    Read {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: tasker_models::template::TemplateError,
    },
    /// Templates failed to load, or steps have no handler; every problem is listed.
    #[error("the templates in {} cannot run:\n{problems}", dir.display())]
    Invalid {
        /// The directory.
        dir: PathBuf,
        /// One line per problem.
        problems: String,
    },
    /// No template serves the worker's namespaces.
    #[error(
        "no templates (*.yaml, *.yml) {} in {}; point the worker at a directory of task templates",
        if namespaces.is_empty() { String::new() } else { format!("of namespace(s) {}", namespaces.join(", ")) },
        dir.display()
    )]
    Empty {
        /// The directory.
        dir: PathBuf,
        /// The namespaces asked for (empty: any).
        namespaces: Vec<String>,
    },
    /// A namespace asked for is not a valid namespace.
    #[error("namespace {name:?} cannot be served")]
    Namespace {
        /// The namespace.
        name: String,
        /// Why.
        #[source]
        source: tasker_messaging::queue_name::NamespaceError,
    },
    /// The registry refused the templates.
    #[error("could not register the templates in {}", dir.display())]
    Register {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: tasker_registry::registry::RegisterError,
    },
    /// Reading back a registered template failed.
    #[error("could not read the rows of template {key}")]
    Lookup {
        /// The template.
        key: String,
        /// Why.
        #[source]
        source: tasker_registry::registry::LookupError,
    },
}
