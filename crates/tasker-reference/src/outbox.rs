//! The messaging backend as the engine uses it, and the outbox that ties the messages a
//! transaction sends, and the messages it consumed, to that transaction.
//!
//! An [`Outbox`] collects the messages announcing a transaction's state changes and the
//! receipts of the messages whose processing the transaction records, and
//! [`Outbox::commit`] settles them with the transaction:
//! - with PGMQ, inside it: one statement sends every message and acknowledges every consumed
//!   one (`send_and_ack_in`), then the commit. The state change, its messages and the consumption of the messages that caused
//!   it commit together or not at all;
//! - with RabbitMQ and in memory (which cannot join a PostgreSQL transaction): the commit,
//!   then one batch per queue, then one `ack_batch`. A message lost between the commit and its
//!   send (a crash) is sent again by the orchestrator's redrive of stale steps; a consumed
//!   message not acknowledged comes back after its visibility timeout and finds its
//!   transition applied (a compare-and-set that now fails), so it is acknowledged then.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use sqlx::{PgConnection, Postgres, Transaction};
use tasker_shared::messaging::envelope::{Payload, QueueMessage};
use tasker_shared::messaging::pgmq::PgmqQueue;
use tasker_shared::messaging::queue::{MessageQueue, Receipt};
use tasker_shared::messaging::queue_name::QueueName;

/// The messaging backend, with the PGMQ handle when it is PGMQ.
#[derive(Debug, Clone)]
pub(crate) struct Messaging {
    /// The backend: queues, sends, receives, acknowledgements, signals.
    pub(crate) queue: Arc<dyn MessageQueue>,
    /// The same backend when it is PGMQ, for sends and acknowledgements inside a transaction.
    pub(crate) pgmq: Option<Arc<PgmqQueue>>,
}

impl Messaging {
    /// A PGMQ backend: messages join the sender's transaction.
    pub(crate) fn pgmq(queue: Arc<PgmqQueue>) -> Self {
        Self {
            queue: queue.clone(),
            pgmq: Some(queue),
        }
    }

    /// A backend outside PostgreSQL: messages are sent and acknowledged after the commit.
    pub(crate) fn external(queue: Arc<dyn MessageQueue>) -> Self {
        Self { queue, pgmq: None }
    }

    /// Whether messages commit with the database transaction.
    pub(crate) fn is_transactional(&self) -> bool {
        self.pgmq.is_some()
    }

    /// An empty outbox for one transaction.
    pub(crate) fn outbox(&self) -> Outbox {
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
pub(crate) struct Outbox {
    messaging: Messaging,
    pending: BTreeMap<QueueName, Vec<Payload>>,
    acks: Vec<Receipt>,
}

impl Outbox {
    /// Adds `message` for `queue`, to be sent with the transaction.
    pub(crate) fn push<M: QueueMessage>(
        &mut self,
        queue: &QueueName,
        message: &M,
    ) -> anyhow::Result<()> {
        let payload = Payload::encode(message).context("encoding a message")?;
        self.pending.entry(queue.clone()).or_default().push(payload);
        Ok(())
    }

    /// Adds a consumed message, to be acknowledged with the transaction.
    pub(crate) fn ack(&mut self, receipt: Receipt) {
        self.acks.push(receipt);
    }

    /// Commits `tx` with the outbox: sends and acknowledgements inside it on PGMQ, after it
    /// elsewhere (see the module docs). An error before the commit rolls everything back; an
    /// error after it (RabbitMQ, in memory) leaves the commit standing, and the redrive or the
    /// visibility timeout make up for what was not sent or acknowledged.
    pub(crate) async fn commit(self, tx: Transaction<'_, Postgres>) -> anyhow::Result<()> {
        self.commit_deferred(tx).await?.finish().await
    }

    /// [`Outbox::commit`], returning what is left to do after the commit (RabbitMQ, in
    /// memory: the sends and acknowledgements) for the caller to finish when it suits it, e.g.
    /// while it starts its next transaction.
    pub(crate) async fn commit_deferred(
        self,
        mut tx: Transaction<'_, Postgres>,
    ) -> anyhow::Result<AfterCommit> {
        if let Some(pgmq) = &self.messaging.pgmq {
            send_in(pgmq, &mut tx, &self.pending, &self.acks).await?;
            tx.commit().await.context("committing")?;
            return Ok(AfterCommit(None));
        }
        tx.commit().await.context("committing")?;
        Ok(AfterCommit(Some(self)))
    }

    /// Sends and acknowledges without a transaction of the caller's (on `conn` on PGMQ).
    pub(crate) async fn send_now(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        self.send_deferred(conn).await?.finish().await
    }

    /// [`Outbox::send_now`] on PGMQ (on `conn`, at once); elsewhere returns the sends and
    /// acknowledgements for the caller to finish when it suits it.
    pub(crate) async fn send_deferred(
        self,
        conn: &mut PgConnection,
    ) -> anyhow::Result<AfterCommit> {
        match &self.messaging.pgmq {
            Some(pgmq) => {
                send_in(pgmq, conn, &self.pending, &self.acks).await?;
                Ok(AfterCommit(None))
            }
            None => Ok(AfterCommit(Some(self))),
        }
    }

    async fn send_after(self) -> anyhow::Result<()> {
        let queue = &self.messaging.queue;
        for (name, payloads) in &self.pending {
            queue
                .send_batch(name, payloads)
                .await
                .with_context(|| format!("sending {} message(s) to {name}", payloads.len()))?;
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
pub(crate) struct AfterCommit(Option<Outbox>);

impl AfterCommit {
    /// Whether nothing is left to do (always so on PGMQ).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Sends and acknowledges what the committed transaction left.
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
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
) -> anyhow::Result<()> {
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
        .with_context(|| {
            format!(
                "sending {} message(s) and acknowledging {}",
                pending.values().map(Vec::len).sum::<usize>(),
                acks.len()
            )
        })?;
    log_refused(&outcomes);
    Ok(())
}

/// Receipts no longer valid: the message was acknowledged already (a duplicate delivery) or
/// redelivered meanwhile; either way another consumer settles it.
fn log_refused(outcomes: &[Result<(), tasker_shared::messaging::error::QueueError>]) {
    for error in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        tracing::debug!(
            error = error as &dyn std::error::Error,
            "a message could not be acknowledged"
        );
    }
}
