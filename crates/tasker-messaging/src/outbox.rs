//! The messaging backend as the engines use it, and the outbox that ties the messages a
//! PostgreSQL transaction sends, and the messages it consumed, to that transaction.
//!
//! An [`Outbox`] collects the messages announcing a transaction's state changes and the
//! receipts of the messages whose processing the transaction records, and [`Outbox::commit`]
//! settles them with the transaction:
//! - with PGMQ, inside it: one statement sends every message and acknowledges every consumed
//!   one ([`PgmqQueue::send_and_ack_in`]), then the commit. The state change, its messages
//!   and the consumption of the messages that caused it commit together or not at all;
//! - with RabbitMQ and in memory (which cannot join a PostgreSQL transaction): the commit,
//!   then one batch per queue, then one `ack_batch`. A message lost between the commit and its
//!   send (a crash) is sent again by orchestration's redrive of stale work; a consumed message
//!   not acknowledged comes back after its visibility timeout and finds its transition applied
//!   (a compare-and-set that now fails), so it is acknowledged then.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{PgConnection, Postgres, Transaction};

use crate::envelope::{EncodeError, Payload, QueueMessage};
use crate::error::QueueError;
use crate::pgmq::PgmqQueue;
use crate::queue::{MessageQueue, Receipt};
use crate::queue_name::QueueName;

/// The messaging backend, with the PGMQ handle when it is PGMQ.
#[derive(Debug, Clone)]
pub struct Messaging {
    /// The backend: queues, sends, receives, acknowledgements, signals.
    pub queue: Arc<dyn MessageQueue>,
    /// The same backend when it is PGMQ, for sends and acknowledgements inside a transaction.
    pub pgmq: Option<Arc<PgmqQueue>>,
}

/// Settling an outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A message could not be encoded; nothing was sent or committed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Sending or acknowledging failed: inside the transaction (nothing was committed) or
    /// after its commit (the commit stands; redrive and redelivery make up for it).
    #[error("could not send {sends} message(s) and acknowledge {acks}")]
    Send {
        /// Messages to send.
        sends: usize,
        /// Messages to acknowledge.
        acks: usize,
        /// What the backend reported.
        #[source]
        source: QueueError,
    },
    /// The transaction could not commit; nothing was sent (on PGMQ nothing at all happened).
    #[error("could not commit the transaction")]
    Commit(#[source] sqlx::Error),
}

impl OutboxError {
    /// Whether the failure may pass on a later try (a lost connection, a serialization failure,
    /// a backend that is reconnecting), as opposed to a bug or bad data.
    pub fn is_transient(&self) -> bool {
        match self {
            OutboxError::Encode(_) => false,
            OutboxError::Send { source, .. } => source.is_transient(),
            OutboxError::Commit(_) => true,
        }
    }
}

impl Messaging {
    /// A PGMQ backend: messages join the sender's transaction.
    pub fn pgmq(queue: Arc<PgmqQueue>) -> Self {
        Self {
            queue: queue.clone(),
            pgmq: Some(queue),
        }
    }

    /// A backend outside PostgreSQL: messages are sent and acknowledged after the commit.
    pub fn external(queue: Arc<dyn MessageQueue>) -> Self {
        Self { queue, pgmq: None }
    }

    /// The same backend with its sends and receives behind `breaker` (transactional sends
    /// and acknowledgements on PGMQ stay with the database transaction).
    pub fn guarded(&self, breaker: Arc<tasker_resilience::breaker::CircuitBreaker>) -> Self {
        Self {
            queue: Arc::new(crate::guarded::GuardedQueue::new(
                Arc::clone(&self.queue),
                breaker,
            )),
            pgmq: self.pgmq.clone(),
        }
    }

    /// Whether messages commit with the database transaction.
    pub fn is_transactional(&self) -> bool {
        self.pgmq.is_some()
    }

    /// An empty outbox for one transaction.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            messaging: self.clone(),
            pending: BTreeMap::new(),
            acks: Vec::new(),
        }
    }
}

/// Messages announcing one transaction's state changes, and the receipts of the messages it
/// consumed.
#[derive(Debug)]
pub struct Outbox {
    messaging: Messaging,
    pending: BTreeMap<QueueName, Vec<Payload>>,
    acks: Vec<Receipt>,
}

impl Outbox {
    /// Adds `message` for `queue`, to be sent with the transaction.
    pub fn push<M: QueueMessage>(
        &mut self,
        queue: &QueueName,
        message: &M,
    ) -> Result<(), EncodeError> {
        self.push_traced(queue, message, None)
    }

    /// [`Outbox::push`], with the `traceparent` of the span that sends it in the envelope.
    pub fn push_traced<M: QueueMessage>(
        &mut self,
        queue: &QueueName,
        message: &M,
        traceparent: Option<&str>,
    ) -> Result<(), EncodeError> {
        let payload = Payload::encode_traced(message, traceparent)?;
        self.pending.entry(queue.clone()).or_default().push(payload);
        Ok(())
    }

    /// Adds an encoded message for `queue`, to be sent with the transaction (for a queue that
    /// carries messages of several kinds, like `<namespace>_domain_events`).
    pub fn push_payload(&mut self, queue: &QueueName, payload: Payload) {
        self.pending.entry(queue.clone()).or_default().push(payload);
    }

    /// Adds a consumed message, to be acknowledged with the transaction.
    pub fn ack(&mut self, receipt: Receipt) {
        self.acks.push(receipt);
    }

    /// Whether nothing is to be sent or acknowledged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.acks.is_empty()
    }

    /// Commits `tx` with the outbox: sends and acknowledgements inside it on PGMQ, after it
    /// elsewhere (see the module docs). An error before the commit rolls everything back; an
    /// error after it (RabbitMQ, in memory) leaves the commit standing.
    pub async fn commit(self, tx: Transaction<'_, Postgres>) -> Result<(), OutboxError> {
        self.commit_deferred(tx).await?.finish().await
    }

    /// [`Outbox::commit`], returning what is left to do after the commit (RabbitMQ, in
    /// memory: the sends and acknowledgements) for the caller to finish when it suits it, e.g.
    /// while it starts its next transaction.
    pub async fn commit_deferred(
        self,
        mut tx: Transaction<'_, Postgres>,
    ) -> Result<AfterCommit, OutboxError> {
        if let Some(pgmq) = &self.messaging.pgmq {
            send_in(pgmq, &mut tx, &self.pending, &self.acks).await?;
            tx.commit().await.map_err(OutboxError::Commit)?;
            return Ok(AfterCommit(None));
        }
        tx.commit().await.map_err(OutboxError::Commit)?;
        Ok(AfterCommit(Some(self)))
    }

    /// Sends and acknowledges without a transaction of the caller's (on `conn` on PGMQ).
    pub async fn send_now(self, conn: &mut PgConnection) -> Result<(), OutboxError> {
        self.send_deferred(conn).await?.finish().await
    }

    /// [`Outbox::send_now`] on PGMQ (on `conn`, at once); elsewhere returns the sends and
    /// acknowledgements for the caller to finish when it suits it.
    pub async fn send_deferred(self, conn: &mut PgConnection) -> Result<AfterCommit, OutboxError> {
        match &self.messaging.pgmq {
            Some(pgmq) => {
                send_in(pgmq, conn, &self.pending, &self.acks).await?;
                Ok(AfterCommit(None))
            }
            None => Ok(AfterCommit(Some(self))),
        }
    }

    async fn send_after(self) -> Result<(), OutboxError> {
        let queue = &self.messaging.queue;
        for (name, payloads) in &self.pending {
            queue
                .send_batch(name, payloads)
                .await
                .map_err(|source| OutboxError::Send {
                    sends: payloads.len(),
                    acks: 0,
                    source,
                })?;
        }
        if !self.acks.is_empty() {
            match queue.ack_batch(&self.acks).await {
                Ok(outcomes) => log_refused(&outcomes),
                // Not acknowledged: the messages come back after their visibility timeout.
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "acknowledging {} message(s) failed",
                    self.acks.len()
                ),
            }
        }
        Ok(())
    }
}

/// Sends and acknowledgements left for after a commit.
#[derive(Debug)]
#[must_use = "the messages are sent and acknowledged only by finish()"]
pub struct AfterCommit(Option<Outbox>);

impl AfterCommit {
    /// Whether nothing is left to do (always so on PGMQ).
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(Outbox::is_empty)
    }

    /// Sends and acknowledges what the committed transaction left.
    pub async fn finish(self) -> Result<(), OutboxError> {
        match self.0 {
            Some(outbox) => outbox.send_after().await,
            None => Ok(()),
        }
    }
}

/// Sends and acknowledges on PGMQ in one statement (on `conn`, inside its transaction if it is
/// in one).
async fn send_in(
    pgmq: &PgmqQueue,
    conn: &mut PgConnection,
    pending: &BTreeMap<QueueName, Vec<Payload>>,
    acks: &[Receipt],
) -> Result<(), OutboxError> {
    if pending.is_empty() && acks.is_empty() {
        return Ok(());
    }
    let sends: Vec<(&QueueName, &[Payload])> = pending
        .iter()
        .map(|(queue, payloads)| (queue, payloads.as_slice()))
        .collect();
    let outcomes = pgmq
        .send_and_ack_in(conn, &sends, acks)
        .await
        .map_err(|source| OutboxError::Send {
            sends: pending.values().map(Vec::len).sum(),
            acks: acks.len(),
            source,
        })?;
    log_refused(&outcomes);
    Ok(())
}

/// Receipts no longer valid: the message was acknowledged already (a duplicate delivery) or
/// redelivered meanwhile; either way another consumer settles it.
fn log_refused(outcomes: &[Result<(), QueueError>]) {
    for error in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        tracing::debug!(
            error = error as &dyn std::error::Error,
            "a message could not be acknowledged"
        );
    }
}
