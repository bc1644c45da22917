//! The [`MessageQueue`] trait every backend implements, and the values it passes.
//!
//! Delivery is at least once: a received message stays invisible to other consumers for its
//! visibility timeout; unless it is acknowledged in that time it is delivered again, with a
//! higher read count. Consumers therefore process idempotently (Tasker's messages carry
//! identifiers, and the database decides what a step's state is).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{DecodeError, Payload, QueueMessage, Traced, decode};
use crate::error::QueueError;
use crate::queue_name::QueueName;
use crate::signal::Subscription;

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// PostgreSQL with pgmq.
    Pgmq,
    /// RabbitMQ over AMQP 0-9-1.
    RabbitMq,
    /// In this process's memory.
    InMemory,
}

impl BackendKind {
    /// The backend's name in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pgmq => "pgmq",
            Self::RabbitMq => "rabbitmq",
            Self::InMemory => "in_memory",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a message within its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageId {
    /// pgmq's and the in-memory backend's increasing id.
    Sequence(i64),
    /// The UUID v7 the RabbitMQ backend stamps on each message (AMQP `message-id`).
    Uuid(Uuid),
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sequence(id) => write!(f, "{id}"),
            Self::Uuid(id) => write!(f, "{id}"),
        }
    }
}

/// Proof that a consumer holds a received message; needed to ack, nack or extend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub(crate) queue: QueueName,
    pub(crate) id: MessageId,
    pub(crate) token: ReceiptToken,
}

/// The backend's handle on one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReceiptToken {
    /// The delivery number of the in-memory message.
    Memory { delivery: u64 },
    /// pgmq's read count at this delivery, and the deadline pgmq set.
    Pgmq {
        read_count: i32,
        visible_until: DateTime<Utc>,
    },
    /// The AMQP delivery tag on the channel of connection `generation`.
    Amqp { generation: u64, delivery_tag: u64 },
}

impl Receipt {
    /// The queue the message was received from.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// The message's id.
    pub fn id(&self) -> MessageId {
        self.id
    }
}

/// Why and from where a message was dead-lettered; present on messages received from a
/// dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterInfo {
    /// The reason given to [`Nack::DeadLetter`].
    pub reason: String,
    /// The queue the message was taken from.
    pub source_queue: String,
    /// Its id there.
    pub original_id: MessageId,
    /// How many times it had been received when it was dead-lettered.
    pub read_count: u32,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// A message taken from a queue. Its body is the payload as sent.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The message's id.
    pub id: MessageId,
    /// How many times the message has been received, this time included (1 on first delivery).
    pub read_count: u32,
    /// When it was enqueued, where the backend records it.
    pub enqueued_at: Option<DateTime<Utc>>,
    /// The payload as sent (normally an envelope; see [`ReceivedMessage::decode`]).
    pub body: Vec<u8>,
    /// Set on messages received from a dead-letter queue.
    pub dead_letter: Option<DeadLetterInfo>,
    pub(crate) receipt: Receipt,
}

impl ReceivedMessage {
    /// The receipt to ack, nack or extend this message with.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The queue it was received from.
    pub fn queue(&self) -> &QueueName {
        &self.receipt.queue
    }

    /// Decodes the envelope in the body.
    pub fn decode<M: QueueMessage>(&self) -> Result<M, DecodeError> {
        decode(&self.body)
    }

    /// Decodes the envelope in the body, with the trace context it was sent with.
    pub fn decode_traced<M: QueueMessage>(&self) -> Result<Traced<M>, DecodeError> {
        crate::envelope::decode_traced(&self.body)
    }
}

/// What to do with a message the consumer gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nack {
    /// Make it visible again at once, to be received again.
    Requeue,
    /// Move it to the queue's dead-letter queue, recording the reason and its read count.
    DeadLetter {
        /// Why it cannot be processed; shown to whoever inspects the dead-letter queue.
        reason: String,
    },
}

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages that can be received now.
    pub ready: u64,
    /// Messages received and not yet acknowledged (or delayed), where the backend knows it.
    /// RabbitMQ reports only ready messages, so this is `None` there.
    pub in_flight: Option<u64>,
}

/// The state of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Everything works.
    Healthy,
    /// Messages flow, but something is impaired (e.g. signals are down while their connection
    /// reconnects, so event-driven consumers rely on their safety-net poll).
    Degraded {
        /// What is impaired.
        reason: String,
    },
    /// Messages cannot flow.
    Unhealthy {
        /// Why.
        reason: String,
    },
}

/// A backend's health, for health endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The backend.
    pub backend: BackendKind,
    /// Its state.
    pub health: Health,
}

/// A message queue backend: PGMQ, RabbitMQ or in memory.
///
/// One trait rather than an enum over the backends: code that uses queues (and the conformance
/// suite) is written once against `&dyn MessageQueue`, and cross-cutting behaviour (metrics, a
/// circuit breaker) wraps the trait instead of re-matching every backend in every method.
/// `docs/design/messaging.md` records the decision.
#[async_trait]
pub trait MessageQueue: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> BackendKind;

    /// Creates `queue` and its dead-letter queue if they do not exist (idempotent).
    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError>;

    /// Deletes `queue` and its dead-letter queue with every message in them (idempotent: a
    /// queue that does not exist is already deleted). Receipts of its messages become invalid.
    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError>;

    /// Sends one message and returns its id. When this returns `Ok`, the message is durably
    /// stored (committed, or confirmed by the broker).
    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError>;

    /// Sends several messages, in order, and returns their ids in the same order. The PGMQ
    /// and in-memory backends store all or none; RabbitMQ publishes each with its own
    /// confirmation and reports the first failure.
    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError>;

    /// Receives up to `max` visible messages, oldest first, hiding them from other consumers
    /// for `visibility_timeout`. Never waits for messages to arrive: an empty queue returns an
    /// empty vector at once (use a [`Subscription`] to learn when to receive).
    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Acknowledges a processed message: it will not be delivered again.
    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError>;

    /// Acknowledges several processed messages, of one queue or several, in as few round trips
    /// as the backend allows: PGMQ deletes (or archives) each queue's messages in one
    /// statement, RabbitMQ pipelines the acknowledgements, the in-memory backend takes its lock
    /// once.
    ///
    /// Returns each receipt's outcome in input order: `Ok`, or the error [`MessageQueue::ack`]
    /// would have returned for that receipt alone (a receipt no longer valid, or another
    /// backend's). `Err` means the backend failed: some of the messages may be acknowledged and
    /// others not, and those come back after their visibility timeout, as after a failed `ack`.
    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError>;

    /// Gives a message back: requeue it, or move it to its dead-letter queue.
    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError>;

    /// Keeps a message invisible for `by` longer than its current deadline, and returns the
    /// receipt to use from now on.
    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError>;

    /// How many messages `queue` holds.
    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError>;

    /// The backend's health; never fails, an unreachable backend is reported as unhealthy.
    async fn health(&self) -> HealthReport;

    /// Subscribes to "queue has messages" signals for `queues`. Signals are hints: a consumer
    /// receives after each one, and a signal may arrive when another consumer already took the
    /// messages. After a lost connection the backend sends a catch-up signal for every
    /// subscribed queue, so nothing waits for the next poll.
    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError>;
}

/// Refuses a payload over `limit` bytes.
pub(crate) fn check_size(
    queue: &QueueName,
    payload: &Payload,
    limit: usize,
) -> Result<(), QueueError> {
    if payload.len() > limit {
        return Err(QueueError::TooLarge {
            queue: queue.clone(),
            size: payload.len(),
            limit,
        });
    }
    Ok(())
}
