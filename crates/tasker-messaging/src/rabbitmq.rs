//! The RabbitMQ backend (AMQP 0-9-1 with lapin).
//!
//! - Queues are durable quorum queues; each ordinary queue `q` has a dead-letter exchange
//!   `q_dlx` and a dead-letter queue `q_dlq`, and dead-letters into them.
//! - Publishing uses publisher confirms with the mandatory flag: `send` returns once the broker
//!   has stored the message, and reports a missing queue instead of dropping the message.
//! - Consuming uses `basic.consume` with the configured prefetch; deliveries wait in a buffer
//!   until `receive` hands them out, and are acknowledged only when the caller acks them,
//!   never on hand-off. Hence `receive` may return fewer messages than the queue holds while
//!   deliveries are in transit.
//! - Visibility timeouts are kept by the backend (RabbitMQ has none): an expired message is
//!   given back to the broker with `basic.nack(requeue)` and delivered again. The read count is
//!   the quorum queue's `x-delivery-count` plus one.
//! - Dead-lettering publishes the message to the queue's dead-letter exchange with the reason,
//!   source and read count in the `x-tasker-dead-letter` header (confirmed), then acknowledges
//!   the original.
//! - A supervisor reconnects with backoff after the connection drops, declares the topology
//!   again, restarts the consumers and sends a catch-up signal. Messages received on the lost
//!   connection return to their queue; their receipts become invalid.
//! - TLS is not compiled in: `amqps://` URLs fail to connect.

mod link;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::types::AMQPValue;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Confirmation, PublisherConfirm};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use self::link::{
    Link, amqp_name, dead_letter_exchange, declare, is_not_found, open_channel, ready_count,
    start_consumer,
};
pub use self::state::ConnectionStatus;
use self::state::{DeliveryKey, InFlight, LinkState, Shared, lock};
use crate::config::{RabbitMqConfig, redact_url};
use crate::envelope::Payload;
use crate::error::{BackendError, Operation, QueueError};
use crate::queue::{
    BackendKind, DeadLetterInfo, Health, HealthReport, MessageId, MessageQueue, Nack, QueueDepth,
    Receipt, ReceiptToken, ReceivedMessage, check_size,
};
use crate::queue_name::QueueName;
use crate::signal::{SignalHub, Subscription};

/// The header carrying [`DeadLetterInfo`] (as JSON) on dead-lettered messages.
pub const DEAD_LETTER_HEADER: &str = "x-tasker-dead-letter";

/// The RabbitMQ backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not an AMQP URL.
    #[error("invalid AMQP URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What the parser reported.
        reason: String,
    },
    /// The queue prefix breaks its rules.
    #[error(transparent)]
    InvalidPrefix(#[from] crate::config::InvalidPrefix),
    /// The broker could not be reached in time.
    #[error(
        "could not connect to RabbitMQ at {url} within {waited:?}{}; is the broker running?",
        last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
    )]
    Unreachable {
        /// The URL, password redacted.
        url: String,
        /// How long it tried.
        waited: Duration,
        /// The last connection error.
        last_error: Option<String>,
    },
}

/// The RabbitMQ backend.
#[derive(Debug)]
pub struct RabbitMqQueue {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    reaper: JoinHandle<()>,
}

impl RabbitMqQueue {
    /// Connects to the broker at `config.url` and starts the supervisor and the reaper; fails
    /// when no connection is up within `config.reconnect_wait`.
    pub async fn connect(config: RabbitMqConfig) -> Result<Self, ConnectError> {
        RabbitMqConfig::validate_prefix(&config.queue_prefix)?;
        let mut uri =
            AMQPUri::from_str(&config.url).map_err(|reason| ConnectError::InvalidUrl {
                url: redact_url(&config.url),
                reason,
            })?;
        uri.query.heartbeat = Some(u16::try_from(config.heartbeat.as_secs()).unwrap_or(u16::MAX));
        let (broken_tx, broken_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let wait = config.reconnect_wait;
        let url = redact_url(&config.url);
        let shared = Arc::new(Shared {
            config,
            hub: SignalHub::default(),
            link: watch::Sender::new(LinkState::default()),
            status: watch::Sender::new(ConnectionStatus::default()),
            declared: Mutex::new(BTreeSet::new()),
            consumed: Mutex::new(BTreeSet::new()),
            buffers: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            reaper: Notify::new(),
            broken: broken_tx,
        });
        let supervisor = tokio::spawn(link::supervise(
            Arc::clone(&shared),
            uri,
            broken_rx,
            shutdown_rx.clone(),
        ));
        let reaper = tokio::spawn(state::reap(Arc::clone(&shared), shutdown_rx));
        let backend = Self {
            shared,
            shutdown,
            supervisor,
            reaper,
        };
        let mut link = backend.shared.link.subscribe();
        let up = tokio::time::timeout(wait, link.wait_for(|state| state.link.is_some())).await;
        if !matches!(up, Ok(Ok(_))) {
            return Err(ConnectError::Unreachable {
                url,
                waited: wait,
                last_error: backend.shared.link.borrow().last_error.clone(),
            });
        }
        Ok(backend)
    }

    /// The connection's status, to watch (tests wait for reconnects with it).
    pub fn connection_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.shared.status.subscribe()
    }

    /// The live link, waiting up to `reconnect_wait` while reconnecting.
    async fn link(&self, operation: Operation) -> Result<Arc<Link>, QueueError> {
        let wait = self.shared.config.reconnect_wait;
        let mut state = self.shared.link.subscribe();
        let up = tokio::time::timeout(wait, state.wait_for(|state| state.link.is_some())).await;
        match up {
            Ok(Ok(state)) => state.link.clone().ok_or(QueueError::Unavailable {
                backend: BackendKind::RabbitMq,
                operation,
                waited: wait,
            }),
            Ok(Err(_)) => Err(QueueError::Closed {
                backend: BackendKind::RabbitMq,
                operation,
            }),
            Err(_) => Err(QueueError::Unavailable {
                backend: BackendKind::RabbitMq,
                operation,
                waited: wait,
            }),
        }
    }

    fn amqp_error(
        &self,
        link: &Link,
        operation: Operation,
        queue: &QueueName,
        error: lapin::Error,
    ) -> QueueError {
        if is_not_found(&error) {
            return QueueError::QueueNotFound {
                queue: queue.clone(),
            };
        }
        // Anything else closes the channel or means the connection is failing: reconnect.
        self.shared.report_broken(link.generation);
        QueueError::backend(BackendKind::RabbitMq, operation, Some(queue), error)
    }

    /// Publishes on the confirm channel; the returned future resolves with the confirmation.
    async fn publish(
        &self,
        link: &Link,
        exchange: &str,
        routing_key: &QueueName,
        body: &[u8],
        properties: BasicProperties,
        operation: Operation,
    ) -> Result<PublisherConfirm, QueueError> {
        link.publish
            .basic_publish(
                exchange.into(),
                amqp_name(&self.shared.config.queue_prefix, routing_key)
                    .as_str()
                    .into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| self.amqp_error(link, operation, routing_key, e))
    }

    async fn confirmed(
        &self,
        link: &Link,
        confirm: PublisherConfirm,
        queue: &QueueName,
        operation: Operation,
    ) -> Result<(), QueueError> {
        match confirm
            .await
            .map_err(|e| self.amqp_error(link, operation, queue, e))?
        {
            Confirmation::Ack(None) => Ok(()),
            // Returned as unroutable: no queue of that name is bound.
            Confirmation::Ack(Some(_)) => Err(QueueError::QueueNotFound {
                queue: queue.clone(),
            }),
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(QueueError::backend(
                BackendKind::RabbitMq,
                operation,
                Some(queue),
                BackendError::Refused,
            )),
        }
    }

    /// Starts consuming `queues` (after checking they exist) so their deliveries fill the
    /// buffer and signal subscribers.
    async fn consume(&self, queues: &[QueueName], operation: Operation) -> Result<(), QueueError> {
        let link = self.link(operation).await?;
        for queue in queues {
            if link.channel(queue).is_some() {
                continue;
            }
            // A consumer on a missing queue would close its channel: check first.
            ready_count(&link.connection, &self.shared.config.queue_prefix, queue)
                .await
                .map_err(|e| self.amqp_error(&link, operation, queue, e))?;
            lock(&self.shared.consumed).insert(queue.clone());
            start_consumer(&self.shared, &link, queue)
                .await
                .map_err(|e| self.amqp_error(&link, operation, queue, e))?;
        }
        Ok(())
    }

    fn held(receipt: &Receipt) -> Result<DeliveryKey, QueueError> {
        match receipt.token {
            ReceiptToken::Amqp {
                generation,
                delivery_tag,
            } => Ok((generation, receipt.queue.clone(), delivery_tag)),
            _ => Err(invalid(receipt)),
        }
    }

    /// Settles a claimed delivery on the link it came from.
    async fn settle(
        &self,
        receipt: &Receipt,
        queue: &QueueName,
        operation: Operation,
        requeue: Option<bool>,
    ) -> Result<(), QueueError> {
        let (generation, _, tag) = Self::held(receipt)?;
        let link = self.link(operation).await?;
        if link.generation != generation {
            return Err(invalid(receipt));
        }
        let channel = link.channel(queue).ok_or_else(|| invalid(receipt))?;
        let settled = match requeue {
            None => channel.basic_ack(tag, BasicAckOptions::default()).await,
            Some(requeue) => {
                channel
                    .basic_nack(
                        tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue,
                        },
                    )
                    .await
            }
        };
        settled.map_err(|e| self.amqp_error(&link, operation, queue, e))
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: String) -> Result<(), QueueError> {
        let queue = &receipt.queue;
        if queue.is_dead_letter() {
            return Err(QueueError::NoDeadLetterQueue {
                queue: queue.clone(),
            });
        }
        let op = Operation::DeadLetter;
        let key = Self::held(receipt)?;
        let held = self.shared.claim(key).ok_or_else(|| invalid(receipt))?;
        let info = DeadLetterInfo {
            reason,
            source_queue: queue.to_string(),
            original_id: held.id,
            read_count: held.read_count,
            dead_lettered_at: Utc::now(),
        };
        let moved = async {
            let link = self.link(op).await?;
            let header = serde_json::to_string(&info).map_err(|e| {
                QueueError::backend(
                    BackendKind::RabbitMq,
                    op,
                    Some(queue),
                    BackendError::Malformed(e),
                )
            })?;
            let mut headers = held.properties.headers().clone().unwrap_or_default();
            headers.insert(
                DEAD_LETTER_HEADER.into(),
                AMQPValue::LongString(header.into()),
            );
            let properties = held.properties.clone().with_headers(headers);
            let confirm = self
                .publish(
                    &link,
                    &dead_letter_exchange(&self.shared.config.queue_prefix, queue),
                    queue,
                    &held.body,
                    properties,
                    op,
                )
                .await?;
            self.confirmed(&link, confirm, queue, op).await
        }
        .await;
        match moved {
            Ok(()) => self.settle(receipt, queue, op, None).await,
            Err(error) => {
                // Give the message back rather than hold it until the connection closes.
                let _ = self.settle(receipt, queue, op, Some(true)).await;
                Err(error)
            }
        }
    }

    fn to_received(
        &self,
        queue: &QueueName,
        generation: u64,
        delivery: lapin::message::Delivery,
        visibility: Duration,
    ) -> ReceivedMessage {
        let properties = delivery.properties;
        let headers = properties.headers().clone().unwrap_or_default();
        let id = properties
            .message_id()
            .as_ref()
            .and_then(|id| Uuid::parse_str(id.as_str()).ok())
            // Published outside Tasker without a message-id: a fresh id per delivery.
            .unwrap_or_else(Uuid::now_v7);
        let redeliveries = headers
            .inner()
            .get("x-delivery-count")
            .and_then(as_u64)
            .unwrap_or(u64::from(delivery.redelivered));
        let read_count = u32::try_from(redeliveries.saturating_add(1)).unwrap_or(u32::MAX);
        let dead_letter = headers
            .inner()
            .get(DEAD_LETTER_HEADER)
            .and_then(|value| match value {
                AMQPValue::LongString(text) => serde_json::from_slice(text.as_bytes()).ok(),
                _ => None,
            });
        let enqueued_at = properties
            .timestamp()
            .and_then(|seconds| i64::try_from(seconds).ok())
            .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single());
        let id = MessageId::Uuid(id);
        let tag = delivery.delivery_tag;
        lock(&self.shared.in_flight).insert(
            (generation, queue.clone(), tag),
            InFlight {
                queue: queue.clone(),
                id,
                deadline: Instant::now() + visibility,
                read_count,
                body: delivery.data.clone(),
                properties,
            },
        );
        ReceivedMessage {
            id,
            read_count,
            enqueued_at,
            body: delivery.data,
            dead_letter,
            receipt: Receipt {
                queue: queue.clone(),
                id,
                token: ReceiptToken::Amqp {
                    generation,
                    delivery_tag: tag,
                },
            },
        }
    }
}

fn invalid(receipt: &Receipt) -> QueueError {
    QueueError::ReceiptInvalid {
        queue: receipt.queue.clone(),
        id: receipt.id,
    }
}

fn as_u64(value: &AMQPValue) -> Option<u64> {
    match *value {
        AMQPValue::ShortShortUInt(n) => Some(u64::from(n)),
        AMQPValue::ShortUInt(n) => Some(u64::from(n)),
        AMQPValue::LongUInt(n) => Some(u64::from(n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::ShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(n).ok(),
        AMQPValue::LongLongInt(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

fn message_properties(id: Uuid) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(id.to_string().into())
        .with_timestamp(u64::try_from(Utc::now().timestamp()).unwrap_or(0))
}

impl Drop for RabbitMqQueue {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.supervisor.abort();
        self.reaper.abort();
        // Dropping the link aborts its consumer tasks, which hold the shared state.
        self.shared.set_link(|state| state.link = None);
        self.shared.hub.close();
    }
}

#[async_trait]
impl MessageQueue for RabbitMqQueue {
    fn backend(&self) -> BackendKind {
        BackendKind::RabbitMq
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let op = Operation::EnsureQueue;
        lock(&self.shared.declared).insert(queue.clone());
        let link = self.link(op).await?;
        declare(&link.connection, &self.shared.config.queue_prefix, queue)
            .await
            .map_err(|e| QueueError::backend(BackendKind::RabbitMq, op, Some(queue), e))
    }

    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let op = Operation::DeleteQueue;
        lock(&self.shared.declared).remove(queue);
        lock(&self.shared.consumed).remove(queue);
        let link = self.link(op).await?;
        // Our own consumer goes first: a queue deleted under it is cancelled by the broker,
        // which the consumer task would take for a broken link.
        link.stop_consuming(queue).await;
        let prefix = &self.shared.config.queue_prefix;
        let channel = open_channel(&link.connection)
            .await
            .map_err(|e| self.amqp_error(&link, op, queue, e))?;
        let mut names = vec![amqp_name(prefix, queue)];
        if let Some(dlq) = queue.dead_letter() {
            names.push(amqp_name(prefix, &dlq));
        }
        for name in &names {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(|e| self.amqp_error(&link, op, queue, e))?;
        }
        if queue.dead_letter().is_some() {
            channel
                .exchange_delete(
                    dead_letter_exchange(prefix, queue).as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await
                .map_err(|e| self.amqp_error(&link, op, queue, e))?;
        }
        let _ = channel.close(200, "deleted".into()).await;
        self.shared.forget_buffered(queue);
        Ok(())
    }

    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError> {
        check_size(
            queue,
            payload,
            self.shared.config.messaging.max_message_bytes,
        )?;
        let op = Operation::Send;
        let link = self.link(op).await?;
        let id = Uuid::now_v7();
        let confirm = self
            .publish(
                &link,
                "",
                queue,
                payload.as_str().as_bytes(),
                message_properties(id),
                op,
            )
            .await?;
        self.confirmed(&link, confirm, queue, op).await?;
        Ok(MessageId::Uuid(id))
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        for payload in payloads {
            check_size(
                queue,
                payload,
                self.shared.config.messaging.max_message_bytes,
            )?;
        }
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let op = Operation::SendBatch;
        let link = self.link(op).await?;
        let mut pending = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let id = Uuid::now_v7();
            let confirm = self
                .publish(
                    &link,
                    "",
                    queue,
                    payload.as_str().as_bytes(),
                    message_properties(id),
                    op,
                )
                .await?;
            pending.push((id, confirm));
        }
        let mut ids = Vec::with_capacity(pending.len());
        for (id, confirm) in pending {
            self.confirmed(&link, confirm, queue, op).await?;
            ids.push(MessageId::Uuid(id));
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let op = Operation::Receive;
        self.consume(std::slice::from_ref(queue), op).await?;
        let link = self.link(op).await?;
        let deliveries = self.shared.take(queue, link.generation, usize::from(max));
        let received: Vec<ReceivedMessage> = deliveries
            .into_iter()
            .map(|delivery| self.to_received(queue, link.generation, delivery, visibility_timeout))
            .collect();
        if !received.is_empty() {
            self.shared.reaper.notify_one();
        }
        Ok(received)
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let key = Self::held(receipt)?;
        let held = self.shared.claim(key).ok_or_else(|| invalid(receipt))?;
        self.settle(receipt, &held.queue, Operation::Ack, None)
            .await
    }

    /// Pipelined: every `basic.ack` frame is queued before any is awaited (AMQP sends no reply
    /// to an ack, so none costs a round trip). `multiple` is not used: it would also settle
    /// every lower delivery tag of the channel, including deliveries another caller holds or
    /// that `receive` is handing out at that moment.
    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let op = Operation::AckBatch;
        let link = self.link(op).await?;
        let mut outcomes: Vec<Option<Result<(), QueueError>>> = Vec::with_capacity(receipts.len());
        let mut acks = Vec::new();
        for (index, receipt) in receipts.iter().enumerate() {
            let claimed = Self::held(receipt).and_then(|key| {
                let (generation, tag) = (key.0, key.2);
                let held = self.shared.claim(key).ok_or_else(|| invalid(receipt))?;
                if generation != link.generation {
                    return Err(invalid(receipt));
                }
                let channel = link.channel(&held.queue).ok_or_else(|| invalid(receipt))?;
                Ok((channel, tag))
            });
            match claimed {
                Ok((channel, delivery_tag)) => {
                    outcomes.push(None);
                    acks.push(async move {
                        let acked = channel
                            .basic_ack(delivery_tag, BasicAckOptions::default())
                            .await;
                        (index, acked)
                    });
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        for (index, acked) in futures_util::future::join_all(acks).await {
            outcomes[index] =
                Some(acked.map_err(|e| self.amqp_error(&link, op, &receipts[index].queue, e)));
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every receipt has an outcome"))
            .collect())
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        match action {
            Nack::Requeue => {
                let key = Self::held(receipt)?;
                let held = self.shared.claim(key).ok_or_else(|| invalid(receipt))?;
                self.settle(receipt, &held.queue, Operation::Requeue, Some(true))
                    .await
            }
            Nack::DeadLetter { reason } => self.dead_letter(receipt, reason).await,
        }
    }

    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError> {
        let key = Self::held(receipt)?;
        let mut in_flight = lock(&self.shared.in_flight);
        let held = in_flight.get_mut(&key).ok_or_else(|| invalid(receipt))?;
        held.deadline += by;
        Ok(receipt.clone())
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError> {
        let op = Operation::Depth;
        let link = self.link(op).await?;
        let ready = ready_count(&link.connection, &self.shared.config.queue_prefix, queue)
            .await
            .map_err(|e| self.amqp_error(&link, op, queue, e))?;
        Ok(QueueDepth {
            ready: u64::from(ready) + self.shared.buffered(queue) as u64,
            in_flight: None,
        })
    }

    async fn health(&self) -> HealthReport {
        let state = self.shared.link.borrow().clone();
        let health = match state.link {
            Some(link) if link.connection.status().connected() => Health::Healthy,
            _ => Health::Unhealthy {
                reason: format!(
                    "not connected to RabbitMQ; reconnecting{}",
                    state
                        .last_error
                        .map(|error| format!(" (last error: {error})"))
                        .unwrap_or_default()
                ),
            },
        };
        HealthReport {
            backend: BackendKind::RabbitMq,
            health,
        }
    }

    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError> {
        let subscription = self
            .shared
            .hub
            .subscribe(queues)
            .ok_or(QueueError::Closed {
                backend: BackendKind::RabbitMq,
                operation: Operation::Subscribe,
            })?;
        self.consume(queues, Operation::Subscribe).await?;
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests;
