//! The PGMQ backend: queues are pgmq tables in PostgreSQL, reached through the caller's pool.
//!
//! - Send and notify happen in one statement, hence one transaction: the notification (on
//!   channel `tasker_queue_<queue>`, carrying queue, message id and count) is delivered when
//!   the message becomes visible, never before.
//! - Reads return at once (there is no hidden long-poll). By default a read commits without
//!   waiting for the WAL flush ([`ReadCommit`](crate::config::ReadCommit)): all it writes is
//!   the visibility deadline and read count, whose loss in a crash is a redelivery.
//! - pgmq counts visibility timeouts in whole seconds; a timeout is rounded up, so a message
//!   is never visible earlier than asked.
//! - Extending a visibility timeout adds to the message's current deadline.
//! - Dead-lettering moves the message, in one transaction, to `<queue>_dlq`, wrapped with the
//!   reason, its source and its read count (pgmq has no dead-letter queue of its own).
//! - Acknowledging deletes or archives, per [`AckMode`]; a batch of acknowledgements is one
//!   statement per queue, and can join the caller's transaction (`ack_batch_in`), as sends
//!   can (`send_in`, `send_batch_in`).
//! - Receipts: ack goes by message id, as pgmq does, so a late ack after the message was
//!   redelivered still removes it; requeue, dead-letter and extend check the read count and
//!   refuse a receipt whose message was received again since.

mod in_transaction;
mod listener;
mod sql;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;
use tokio::sync::{Mutex, watch};

use self::listener::Listener;
pub use self::listener::{LISTENER_APPLICATION_NAME, ListenerStatus};
use crate::config::{AckMode, PgmqConfig};
use crate::envelope::Payload;
use crate::error::{BackendError, Operation, QueueError};
use crate::queue::{
    BackendKind, DeadLetterInfo, Health, HealthReport, MessageId, MessageQueue, Nack, QueueDepth,
    Receipt, ReceiptToken, ReceivedMessage,
};
use crate::queue_name::QueueName;
use crate::signal::{SignalHub, Subscription};
use tasker_metrics::instruments::Metrics;
use tasker_metrics::messaging::MessagingMetrics;

/// How long `subscribe` waits for the listener to LISTEN on new queues before returning anyway
/// (the listener's catch-up signal covers anything sent meanwhile once it connects).
const SUBSCRIBE_SYNC_WAIT: Duration = Duration::from_secs(5);

/// `messaging.system` of this backend's recordings.
const SYSTEM: &str = "pgmq";

/// A message in a dead-letter queue: the original message, wrapped.
#[derive(Serialize)]
struct DeadLetterOut<'a> {
    dead_letter: &'a DeadLetterInfo,
    message: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterIn {
    dead_letter: DeadLetterInfo,
    message: Box<RawValue>,
}

/// The PGMQ backend.
#[derive(Debug)]
pub struct PgmqQueue {
    pool: PgPool,
    client: ::pgmq::PGMQueueExt,
    config: PgmqConfig,
    hub: SignalHub,
    listener: Mutex<Option<Listener>>,
    /// The installed pgmq's column layout, read on first use.
    layout: std::sync::OnceLock<sql::Layout>,
    /// Where sends, receives, acknowledgements and dead letters are counted (the trait's
    /// methods and the transactional ones alike; see [`PgmqQueue::with_metrics`]).
    metrics: MessagingMetrics,
}

impl PgmqQueue {
    /// A backend on `pool`, whose database must have pgmq installed (tasker-db's migrations
    /// install it). No connection is made until the first operation.
    pub async fn new(pool: PgPool, config: PgmqConfig) -> Self {
        let client = ::pgmq::PGMQueueExt::new_with_pool(pool.clone()).await;
        Self {
            pool,
            client,
            config,
            hub: SignalHub::default(),
            listener: Mutex::new(None),
            layout: std::sync::OnceLock::new(),
            metrics: Metrics::disabled().messaging,
        }
    }

    /// Records this backend's traffic into `metrics`: messages sent, received, acknowledged
    /// and dead-lettered by queue, and the latency of sends and receives, for the trait's
    /// methods and the transactional ones (`send_in`, `pop_in`, ...) alike. Transactional
    /// operations are counted when their statement succeeds; a transaction rolled back later
    /// is not subtracted. Do not also wrap this backend in an
    /// [`InstrumentedQueue`](crate::instrumented::InstrumentedQueue): it would count twice.
    #[must_use]
    pub fn with_metrics(mut self, metrics: MessagingMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The installed pgmq's column layout, read once (on the connection about to be used) and
    /// remembered; a database without pgmq is reported as such, not as a missing queue (the
    /// backend's own statements name the queue tables, and a missing schema looks like a
    /// missing table).
    async fn layout(
        &self,
        executor: impl sqlx::PgExecutor<'_>,
        operation: Operation,
        queue: &QueueName,
    ) -> Result<sql::Layout, QueueError> {
        if let Some(layout) = self.layout.get() {
            return Ok(*layout);
        }
        match sql::layout(executor)
            .await
            .map_err(|e| self.error(operation, queue, e))?
        {
            Some(layout) => Ok(*self.layout.get_or_init(|| layout)),
            None => Err(QueueError::backend(
                BackendKind::Pgmq,
                operation,
                Some(queue),
                BackendError::PgmqNotInstalled,
            )),
        }
    }

    /// Reads up to `max` messages on `connection`, hiding them for `visibility_timeout`; with
    /// `asynchronous`, the transaction it belongs to commits without waiting for the WAL flush.
    async fn read(
        &self,
        connection: &mut sqlx::PgConnection,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
        asynchronous: bool,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let layout = self
            .layout(&mut *connection, Operation::Receive, queue)
            .await?;
        let messages = sql::read(
            &mut *connection,
            layout,
            queue,
            whole_seconds(visibility_timeout),
            i32::from(max),
            asynchronous,
        )
        .await
        .map_err(|e| self.error(Operation::Receive, queue, e))?;
        messages
            .into_iter()
            .map(|message| self.to_received(queue, message))
            .collect()
    }

    /// The LISTEN connection's status, once a subscription started it.
    pub async fn listener_status(&self) -> Option<watch::Receiver<ListenerStatus>> {
        self.listener.lock().await.as_ref().map(Listener::status)
    }

    /// A pooled connection for an operation that is its own transaction.
    async fn connection(
        &self,
        operation: Operation,
        queue: &QueueName,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, QueueError> {
        self.pool
            .acquire()
            .await
            .map_err(|e| self.error(operation, queue, e))
    }

    fn error(&self, operation: Operation, queue: &QueueName, error: sqlx::Error) -> QueueError {
        if is_undefined_table(&error) {
            return QueueError::QueueNotFound {
                queue: queue.clone(),
            };
        }
        QueueError::backend(BackendKind::Pgmq, operation, Some(queue), error)
    }

    fn pgmq_error(
        &self,
        operation: Operation,
        queue: &QueueName,
        error: ::pgmq::PgmqError,
    ) -> QueueError {
        match error {
            ::pgmq::PgmqError::DatabaseError(error) => self.error(operation, queue, error),
            other => QueueError::backend(BackendKind::Pgmq, operation, Some(queue), other),
        }
    }

    /// The message id and read count a receipt holds, or `ReceiptInvalid` for another
    /// backend's receipt.
    fn held(receipt: &Receipt) -> Result<(i64, i32, DateTime<Utc>), QueueError> {
        match (receipt.id, &receipt.token) {
            (
                MessageId::Sequence(id),
                ReceiptToken::Pgmq {
                    read_count,
                    visible_until,
                },
            ) => Ok((id, *read_count, *visible_until)),
            _ => Err(invalid(receipt)),
        }
    }

    fn to_received(
        &self,
        queue: &QueueName,
        message: ::pgmq::Message<Box<RawValue>>,
    ) -> Result<ReceivedMessage, QueueError> {
        let (body, dead_letter) = if queue.is_dead_letter() {
            match serde_json::from_str::<DeadLetterIn>(message.message.get()) {
                Ok(wrapped) => (
                    wrapped.message.get().as_bytes().to_vec(),
                    Some(wrapped.dead_letter),
                ),
                // Sent to the DLQ by someone else: deliver it as it is.
                Err(_) => (message.message.get().as_bytes().to_vec(), None),
            }
        } else {
            (message.message.get().as_bytes().to_vec(), None)
        };
        Ok(ReceivedMessage {
            id: MessageId::Sequence(message.msg_id),
            read_count: u32::try_from(message.read_ct).unwrap_or(0),
            enqueued_at: Some(message.enqueued_at),
            body,
            dead_letter,
            receipt: Receipt {
                queue: queue.clone(),
                id: MessageId::Sequence(message.msg_id),
                token: ReceiptToken::Pgmq {
                    read_count: message.read_ct,
                    visible_until: message.vt,
                },
            },
        })
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: String) -> Result<(), QueueError> {
        let queue = &receipt.queue;
        let Some(dlq) = queue.dead_letter() else {
            return Err(QueueError::NoDeadLetterQueue {
                queue: queue.clone(),
            });
        };
        let (id, read_count, _) = Self::held(receipt)?;
        let op = Operation::DeadLetter;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.error(op, queue, e))?;
        // Setting the deadline locks the row and returns it; a far deadline is harmless, the row
        // is deleted below in the same transaction.
        let row: ::pgmq::Message<Box<RawValue>> = match self
            .client
            .set_vt_with_cxn(queue.as_str(), id, 3600, &mut *tx)
            .await
        {
            Ok(row) => row,
            Err(::pgmq::PgmqError::DatabaseError(sqlx::Error::RowNotFound)) => {
                return Err(invalid(receipt));
            }
            Err(error) => return Err(self.pgmq_error(op, queue, error)),
        };
        if row.read_ct != read_count {
            return Err(invalid(receipt));
        }
        let info = DeadLetterInfo {
            reason,
            source_queue: queue.to_string(),
            original_id: receipt.id,
            read_count: u32::try_from(row.read_ct).unwrap_or(0),
            dead_lettered_at: Utc::now(),
        };
        let wrapped = serde_json::to_string(&DeadLetterOut {
            dead_letter: &info,
            message: &row.message,
        })
        .map_err(|e| {
            QueueError::backend(
                BackendKind::Pgmq,
                op,
                Some(queue),
                BackendError::Malformed(e),
            )
        })?;
        sql::send(&mut *tx, &dlq, &wrapped)
            .await
            .map_err(|e| self.error(op, &dlq, e))?;
        self.client
            .delete_with_cxn(queue.as_str(), id, &mut *tx)
            .await
            .map_err(|e| self.pgmq_error(op, queue, e))?;
        tx.commit().await.map_err(|e| self.error(op, queue, e))?;
        self.metrics.dead_lettered(SYSTEM, queue.as_str());
        Ok(())
    }
}

fn invalid(receipt: &Receipt) -> QueueError {
    QueueError::ReceiptInvalid {
        queue: receipt.queue.clone(),
        id: receipt.id,
    }
}

/// `42P01 undefined_table`: pgmq reports a missing queue this way.
fn is_undefined_table(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "42P01")
}

/// pgmq's visibility timeout in whole seconds, rounded up.
fn whole_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

impl Drop for PgmqQueue {
    fn drop(&mut self) {
        self.hub.close();
    }
}

#[async_trait]
impl MessageQueue for PgmqQueue {
    fn backend(&self) -> BackendKind {
        BackendKind::Pgmq
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let op = Operation::EnsureQueue;
        for name in std::iter::once(queue.clone()).chain(queue.dead_letter()) {
            self.client
                .create_with_cxn(name.as_str(), &self.pool)
                .await
                .map_err(|e| self.pgmq_error(op, &name, e))?;
        }
        Ok(())
    }

    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let op = Operation::DeleteQueue;
        for name in std::iter::once(queue.clone()).chain(queue.dead_letter()) {
            let mut connection = self.connection(op, &name).await?;
            if sql::queue_exists(&mut *connection, &name)
                .await
                .map_err(|e| self.error(op, &name, e))?
            {
                self.client
                    .drop_queue_with_cxn(name.as_str(), &mut *connection)
                    .await
                    .map_err(|e| self.pgmq_error(op, &name, e))?;
            }
        }
        Ok(())
    }

    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError> {
        // On a connection of its own, the statement is its own transaction.
        let mut connection = self.connection(Operation::Send, queue).await?;
        self.send_in(&mut connection, queue, payload).await
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        let mut connection = self.connection(Operation::SendBatch, queue).await?;
        self.send_batch_in(&mut connection, queue, payloads).await
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut connection = self.connection(Operation::Receive, queue).await?;
        self.receive_in(&mut connection, queue, max, visibility_timeout)
            .await
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let (id, _, _) = Self::held(receipt)?;
        let archive = self.config.ack_mode == AckMode::Archive;
        self.layout(&self.pool, Operation::Ack, &receipt.queue)
            .await?;
        let removed = sql::remove_batch(&self.pool, &receipt.queue, &[id], archive)
            .await
            .map_err(|e| self.error(Operation::Ack, &receipt.queue, e))?;
        if removed.contains(&id) {
            self.metrics.acked(SYSTEM, receipt.queue.as_str(), 1);
            Ok(())
        } else {
            Err(invalid(receipt))
        }
    }

    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let Some(first) = receipts.first() else {
            return Ok(Vec::new());
        };
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(|e| self.error(Operation::AckBatch, &first.queue, e))?;
        self.ack_batch_in(&mut connection, receipts).await
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        match action {
            Nack::DeadLetter { reason } => self.dead_letter(receipt, reason).await,
            Nack::Requeue => {
                let (id, read_count, _) = Self::held(receipt)?;
                // Deadline "now" by the database's clock: visible at once.
                let row: Result<::pgmq::Message<Box<RawValue>>, _> = self
                    .client
                    .set_vt_with_cxn(receipt.queue.as_str(), id, 0, &self.pool)
                    .await;
                match row {
                    Ok(row) if row.read_ct == read_count => Ok(()),
                    Ok(_) | Err(::pgmq::PgmqError::DatabaseError(sqlx::Error::RowNotFound)) => {
                        Err(invalid(receipt))
                    }
                    Err(error) => Err(self.pgmq_error(Operation::Requeue, &receipt.queue, error)),
                }
            }
        }
    }

    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError> {
        let (id, read_count, visible_until) = Self::held(receipt)?;
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let deadline = visible_until
            .checked_add_signed(by)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let row = sql::set_deadline(&self.pool, &receipt.queue, id, deadline)
            .await
            .map_err(|e| self.error(Operation::ExtendVisibility, &receipt.queue, e))?;
        match row {
            Some((current, visible_until)) if current == read_count => Ok(Receipt {
                queue: receipt.queue.clone(),
                id: receipt.id,
                token: ReceiptToken::Pgmq {
                    read_count,
                    visible_until,
                },
            }),
            _ => Err(invalid(receipt)),
        }
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError> {
        let metrics = self
            .client
            .metrics_with_cxn(queue.as_str(), &self.pool)
            .await
            .map_err(|e| self.pgmq_error(Operation::Depth, queue, e))?;
        let total = u64::try_from(metrics.queue_length).unwrap_or(0);
        let ready = u64::try_from(metrics.queue_visible_length).unwrap_or(0);
        Ok(QueueDepth {
            ready,
            in_flight: Some(total.saturating_sub(ready)),
        })
    }

    async fn health(&self) -> HealthReport {
        let health = match sql::pgmq_installed(&self.pool).await {
            Err(error) => Health::Unhealthy {
                reason: format!("database unreachable: {error}"),
            },
            Ok(false) => Health::Unhealthy {
                reason: "pgmq is not installed in the database; run the migrations".to_owned(),
            },
            Ok(true) => match self.listener_status().await {
                Some(status) if !status.borrow().connected => Health::Degraded {
                    reason: "the LISTEN connection is down and reconnecting; signals are paused"
                        .to_owned(),
                },
                _ => Health::Healthy,
            },
        };
        HealthReport {
            backend: BackendKind::Pgmq,
            health,
        }
    }

    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError> {
        let subscription = self.hub.subscribe(queues).ok_or(QueueError::Closed {
            backend: BackendKind::Pgmq,
            operation: Operation::Subscribe,
        })?;
        let version = *self.hub.changes().borrow();
        let mut status = {
            let mut listener = self.listener.lock().await;
            listener
                .get_or_insert_with(|| {
                    Listener::start(&self.pool, self.hub.clone(), self.config.listener_backoff)
                })
                .status()
        };
        // Return once the new queues are LISTENed to, so that nothing sent after this returns
        // goes unsignalled. While disconnected, the catch-up signal on connect covers it.
        let synced = tokio::time::timeout(
            SUBSCRIBE_SYNC_WAIT,
            status.wait_for(|status| status.connected && status.synced_version >= version),
        )
        .await;
        if !matches!(synced, Ok(Ok(_))) {
            tracing::warn!(
                ?queues,
                "the LISTEN connection is not up yet; signals start with a catch-up once it is"
            );
        }
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests;
