//! The messaging backend as the engine uses it, and the outbox that ties a message to the
//! transaction whose state change it announces.
//!
//! With PGMQ a message is sent inside the transaction (`PgmqQueue::send_in`), so the state
//! change and its message commit together. RabbitMQ and the in-memory backend cannot join a
//! PostgreSQL transaction: their messages are collected and sent after the commit, and a step
//! whose message was lost that way (a crash between commit and send) is sent again by the
//! orchestrator's redrive of stale `enqueued` steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use sqlx::PgConnection;
use tasker_shared::messaging::envelope::{Payload, QueueMessage};
use tasker_shared::messaging::pgmq::PgmqQueue;
use tasker_shared::messaging::queue::MessageQueue;
use tasker_shared::messaging::queue_name::QueueName;

/// The messaging backend, with the PGMQ handle when it is PGMQ.
#[derive(Debug, Clone)]
pub(crate) struct Messaging {
    /// The backend: sends, queue creation, and consumption of queues without a dedicated
    /// consumer.
    pub(crate) queue: Arc<dyn MessageQueue>,
    /// The same backend when it is PGMQ, for sends inside a transaction.
    pub(crate) pgmq: Option<Arc<PgmqQueue>>,
    /// Dedicated backend instances (connections) consuming one queue each.
    consumers: Arc<BTreeMap<QueueName, Arc<dyn MessageQueue>>>,
}

impl Messaging {
    /// A PGMQ backend: messages join the sender's transaction.
    pub(crate) fn pgmq(queue: Arc<PgmqQueue>) -> Self {
        Self {
            queue: queue.clone(),
            pgmq: Some(queue),
            consumers: Arc::default(),
        }
    }

    /// A backend outside PostgreSQL: messages are sent after the commit. `consumers` are
    /// dedicated instances for the queues they are keyed by; receipts are only valid on the
    /// instance that received the message.
    pub(crate) fn external(
        queue: Arc<dyn MessageQueue>,
        consumers: BTreeMap<QueueName, Arc<dyn MessageQueue>>,
    ) -> Self {
        Self {
            queue,
            pgmq: None,
            consumers: Arc::new(consumers),
        }
    }

    /// The backend instance that consumes `queue`: receive, ack, nack and extend through it.
    pub(crate) fn consumer(&self, queue: &QueueName) -> Arc<dyn MessageQueue> {
        self.consumers
            .get(queue)
            .map_or_else(|| Arc::clone(&self.queue), Arc::clone)
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
            sent: 0,
        }
    }
}

/// Messages announcing one transaction's state changes.
#[derive(Debug)]
pub(crate) struct Outbox {
    messaging: Messaging,
    pending: BTreeMap<QueueName, Vec<Payload>>,
    sent: usize,
}

impl Outbox {
    /// Sends `message` to `queue` inside the transaction `conn` belongs to (PGMQ), or keeps it
    /// for [`Outbox::flush`] after the commit.
    pub(crate) async fn push<M: QueueMessage>(
        &mut self,
        conn: &mut PgConnection,
        queue: &QueueName,
        message: &M,
    ) -> anyhow::Result<()> {
        let payload = Payload::encode(message).context("encoding a message")?;
        match &self.messaging.pgmq {
            Some(pgmq) => {
                pgmq.send_in(conn, queue, &payload)
                    .await
                    .with_context(|| format!("sending to {queue} inside the transaction"))?;
                self.sent += 1;
            }
            None => self.pending.entry(queue.clone()).or_default().push(payload),
        }
        Ok(())
    }

    /// Sends what waited for the commit, one batch per queue. Call it after the commit only.
    pub(crate) async fn flush(self) -> anyhow::Result<()> {
        for (queue, payloads) in self.pending {
            self.messaging
                .queue
                .send_batch(&queue, &payloads)
                .await
                .with_context(|| format!("sending {} message(s) to {queue}", payloads.len()))?;
        }
        Ok(())
    }
}
