//! The error of every [`crate::queue::MessageQueue`] operation.
//!
//! One enum serves the whole interface because callers handle the same few cases whatever the
//! operation (a missing queue, an oversized message, a receipt that no longer holds its
//! message, a backend failure) and the failing operation is recorded as data.

use std::fmt;
use std::time::Duration;

use crate::queue::{BackendKind, MessageId};
use crate::queue_name::QueueName;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Creating a queue and its dead-letter queue.
    EnsureQueue,
    /// Deleting a queue and its dead-letter queue.
    DeleteQueue,
    /// Sending one message.
    Send,
    /// Sending a batch.
    SendBatch,
    /// Receiving messages.
    Receive,
    /// Acknowledging a message.
    Ack,
    /// Acknowledging several messages at once.
    AckBatch,
    /// Returning a message to its queue.
    Requeue,
    /// Moving a message to its dead-letter queue.
    DeadLetter,
    /// Extending a message's visibility timeout.
    ExtendVisibility,
    /// Reading a queue's depth.
    Depth,
    /// Subscribing to signals.
    Subscribe,
    /// Connecting to the broker or database.
    Connect,
}

impl Operation {
    /// A lowercase verb phrase for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnsureQueue => "ensure the queue",
            Self::DeleteQueue => "delete the queue",
            Self::Send => "send a message",
            Self::SendBatch => "send a batch",
            Self::Receive => "receive messages",
            Self::Ack => "acknowledge a message",
            Self::AckBatch => "acknowledge a batch",
            Self::Requeue => "requeue a message",
            Self::DeadLetter => "dead-letter a message",
            Self::ExtendVisibility => "extend a visibility timeout",
            Self::Depth => "read the queue depth",
            Self::Subscribe => "subscribe to signals",
            Self::Connect => "connect",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The underlying library's error.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// PostgreSQL, through sqlx.
    #[error("postgres error")]
    Postgres(#[from] sqlx::Error),
    /// The pgmq client.
    #[error("pgmq error")]
    Pgmq(#[from] pgmq::PgmqError),
    /// The AMQP client.
    #[error("amqp error")]
    Amqp(#[from] lapin::Error),
    /// The broker refused a published message (a negative publisher confirm).
    #[error("the broker refused the message (negative publisher confirm)")]
    Refused,
    /// The database has no pgmq: its schema and functions are missing.
    #[error(
        "pgmq is not installed in this database; run the migrations (`cargo xtask db migrate`) \
         or `CREATE EXTENSION pgmq`"
    )]
    PgmqNotInstalled,
    /// A stored message could not be read back (e.g. a dead-letter record that is not ours).
    #[error("stored message is malformed")]
    Malformed(#[source] serde_json::Error),
}

/// A [`crate::queue::MessageQueue`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue does not exist.
    #[error("queue `{queue}` does not exist; create it with ensure_queue before using it")]
    QueueNotFound {
        /// The queue.
        queue: QueueName,
    },
    /// The payload is larger than the configured maximum.
    #[error(
        "message of {size} bytes for queue `{queue}` exceeds the limit of {limit} bytes; \
         send identifiers and keep the data in the database, or raise max_message_bytes"
    )]
    TooLarge {
        /// The queue.
        queue: QueueName,
        /// The payload's size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The receipt no longer holds its message: it was acknowledged, or its visibility timeout
    /// expired and another consumer received it, or the connection that delivered it was lost.
    #[error(
        "message {id} on queue `{queue}` is no longer held by this receipt (already acknowledged, \
         redelivered after its visibility timeout, or delivered on a lost connection); \
         it will be or was processed again"
    )]
    ReceiptInvalid {
        /// The queue.
        queue: QueueName,
        /// The message.
        id: MessageId,
    },
    /// Dead-lettering was asked of a dead-letter queue.
    #[error(
        "queue `{queue}` is a dead-letter queue and has no dead-letter queue of its own; acknowledge or requeue instead"
    )]
    NoDeadLetterQueue {
        /// The dead-letter queue.
        queue: QueueName,
    },
    /// The backend's connection is down and did not come back in time.
    #[error("{backend} is unavailable: could not {operation} within {waited:?} while reconnecting")]
    Unavailable {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// How long it waited.
        waited: Duration,
    },
    /// The backend did not answer within the configured operation timeout.
    #[error(
        "{backend} did not answer within {after:?} when asked to {operation}{}; \
         the database or the broker may be unreachable (operation_timeout)",
        on_queue(queue.as_ref())
    )]
    TimedOut {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// The queue, if the operation had one.
        queue: Option<QueueName>,
        /// The limit that passed.
        after: Duration,
    },
    /// The circuit breaker of the messaging backend is open: it kept failing, so calls fail
    /// fast until a trial call finds it answering again.
    #[error(
        "{backend} is failing: the `{component}` circuit breaker is open, so it was not asked \
         to {operation}; the next trial call is due in {next_trial_in:?}"
    )]
    CircuitOpen {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// The breaker's component name.
        component: String,
        /// When a trial call is due.
        next_trial_in: Duration,
    },
    /// The backend was shut down.
    #[error("{backend} backend is shut down; could not {operation}")]
    Closed {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
    },
    /// The backend reported an error.
    #[error("{backend} could not {operation}{}", on_queue(queue.as_ref()))]
    Backend {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// The queue, when the operation had one.
        queue: Option<QueueName>,
        /// The library's error.
        #[source]
        source: BackendError,
    },
}

impl QueueError {
    /// Whether trying again may succeed: the connection was lost or refused, the database
    /// terminated the session, the broker is reconnecting or refused a publish. Errors about the
    /// request itself (a missing queue, a message too large, a spent receipt) and a backend
    /// shut down on purpose are not.
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Unavailable { .. }
            | QueueError::TimedOut { .. }
            | QueueError::CircuitOpen { .. } => true,
            QueueError::Backend { source, .. } => match source {
                BackendError::Postgres(_)
                | BackendError::Pgmq(_)
                | BackendError::Amqp(_)
                | BackendError::Refused => true,
                BackendError::PgmqNotInstalled | BackendError::Malformed(_) => false,
            },
            QueueError::QueueNotFound { .. }
            | QueueError::TooLarge { .. }
            | QueueError::ReceiptInvalid { .. }
            | QueueError::NoDeadLetterQueue { .. }
            | QueueError::Closed { .. } => false,
        }
    }

    pub(crate) fn backend(
        backend: BackendKind,
        operation: Operation,
        queue: Option<&QueueName>,
        source: impl Into<BackendError>,
    ) -> Self {
        Self::Backend {
            backend,
            operation,
            queue: queue.cloned(),
            source: source.into(),
        }
    }
}

fn on_queue(queue: Option<&QueueName>) -> String {
    queue.map_or_else(String::new, |queue| format!(" on queue `{queue}`"))
}
