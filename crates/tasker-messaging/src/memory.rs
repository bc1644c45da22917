//! The in-memory backend: for tests and for the embedded mode of the reference workflow.
//!
//! It keeps the semantics of the others, visibility timeouts included: time is tokio's clock,
//! so tests can run it under a paused clock and skip through timeouts without sleeping.
//! Messages live in this process only and are lost when it exits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::MessagingConfig;
use crate::envelope::Payload;
use crate::error::{Operation, QueueError};
use crate::queue::{
    BackendKind, DeadLetterInfo, Health, HealthReport, MessageId, MessageQueue, Nack, QueueDepth,
    Receipt, ReceiptToken, ReceivedMessage, check_size,
};
use crate::queue_name::QueueName;
use crate::signal::{SignalCause, SignalHub, Subscription};

#[derive(Debug)]
struct Stored {
    body: String,
    enqueued_at: DateTime<Utc>,
    visible_at: Instant,
    read_count: u32,
    /// The delivery number of the latest receive; 0 before the first.
    delivery: u64,
    dead_letter: Option<DeadLetterInfo>,
}

#[derive(Debug, Default)]
struct MemQueue {
    next_id: i64,
    messages: BTreeMap<i64, Stored>,
}

impl MemQueue {
    fn push(&mut self, body: String, dead_letter: Option<DeadLetterInfo>) -> i64 {
        self.next_id += 1;
        self.messages.insert(
            self.next_id,
            Stored {
                body,
                enqueued_at: Utc::now(),
                visible_at: Instant::now(),
                read_count: 0,
                delivery: 0,
                dead_letter,
            },
        );
        self.next_id
    }
}

#[derive(Debug, Default)]
struct MemState {
    queues: HashMap<QueueName, MemQueue>,
    next_delivery: u64,
}

impl MemState {
    fn queue_mut(&mut self, queue: &QueueName) -> Result<&mut MemQueue, QueueError> {
        self.queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::QueueNotFound {
                queue: queue.clone(),
            })
    }

    /// The held message, if `receipt` still holds it.
    fn held(&mut self, receipt: &Receipt) -> Result<&mut Stored, QueueError> {
        let (MessageId::Sequence(id), ReceiptToken::Memory { delivery }) =
            (receipt.id, &receipt.token)
        else {
            return Err(invalid(receipt));
        };
        let queue = self.queue_mut(&receipt.queue)?;
        match queue.messages.get_mut(&id) {
            Some(stored) if stored.delivery == *delivery => Ok(stored),
            _ => Err(invalid(receipt)),
        }
    }
}

fn invalid(receipt: &Receipt) -> QueueError {
    QueueError::ReceiptInvalid {
        queue: receipt.queue.clone(),
        id: receipt.id,
    }
}

/// The in-memory backend.
#[derive(Debug)]
pub struct InMemoryQueue {
    state: Mutex<MemState>,
    hub: SignalHub,
    max_message_bytes: usize,
}

impl InMemoryQueue {
    /// An empty backend with `config`'s message size limit.
    pub fn new(config: &MessagingConfig) -> Self {
        Self {
            state: Mutex::new(MemState::default()),
            hub: SignalHub::default(),
            max_message_bytes: config.max_message_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // No critical section can panic half-way, so a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for InMemoryQueue {
    fn drop(&mut self) {
        self.hub.close();
    }
}

#[async_trait]
impl MessageQueue for InMemoryQueue {
    fn backend(&self) -> BackendKind {
        BackendKind::InMemory
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.queues.entry(queue.clone()).or_default();
        if let Some(dlq) = queue.dead_letter() {
            state.queues.entry(dlq).or_default();
        }
        Ok(())
    }

    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.queues.remove(queue);
        if let Some(dlq) = queue.dead_letter() {
            state.queues.remove(&dlq);
        }
        Ok(())
    }

    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError> {
        check_size(queue, payload, self.max_message_bytes)?;
        let id = self
            .lock()
            .queue_mut(queue)?
            .push(payload.as_str().to_owned(), None);
        self.hub.notify(queue, SignalCause::Sent);
        Ok(MessageId::Sequence(id))
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        for payload in payloads {
            check_size(queue, payload, self.max_message_bytes)?;
        }
        let ids: Vec<MessageId> = {
            let mut state = self.lock();
            let target = state.queue_mut(queue)?;
            payloads
                .iter()
                .map(|payload| MessageId::Sequence(target.push(payload.as_str().to_owned(), None)))
                .collect()
        };
        if !ids.is_empty() {
            self.hub.notify(queue, SignalCause::Sent);
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let target = state
            .queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::QueueNotFound {
                queue: queue.clone(),
            })?;
        let mut received = Vec::new();
        for (id, stored) in target
            .messages
            .iter_mut()
            .filter(|(_, stored)| stored.visible_at <= now)
            .take(usize::from(max))
        {
            state.next_delivery += 1;
            stored.delivery = state.next_delivery;
            stored.read_count += 1;
            stored.visible_at = now + visibility_timeout;
            received.push(ReceivedMessage {
                id: MessageId::Sequence(*id),
                read_count: stored.read_count,
                enqueued_at: Some(stored.enqueued_at),
                body: stored.body.clone().into_bytes(),
                dead_letter: stored.dead_letter.clone(),
                receipt: Receipt {
                    queue: queue.clone(),
                    id: MessageId::Sequence(*id),
                    token: ReceiptToken::Memory {
                        delivery: stored.delivery,
                    },
                },
            });
        }
        Ok(received)
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.held(receipt)?;
        if let (Ok(queue), MessageId::Sequence(id)) = (state.queue_mut(&receipt.queue), receipt.id)
        {
            queue.messages.remove(&id);
        }
        Ok(())
    }

    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut state = self.lock();
        Ok(receipts
            .iter()
            .map(|receipt| {
                state.held(receipt)?;
                if let (Ok(queue), MessageId::Sequence(id)) =
                    (state.queue_mut(&receipt.queue), receipt.id)
                {
                    queue.messages.remove(&id);
                }
                Ok(())
            })
            .collect())
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        match action {
            Nack::Requeue => {
                self.lock().held(receipt)?.visible_at = Instant::now();
                self.hub.notify(&receipt.queue, SignalCause::Sent);
                Ok(())
            }
            Nack::DeadLetter { reason } => {
                let Some(dlq) = receipt.queue.dead_letter() else {
                    return Err(QueueError::NoDeadLetterQueue {
                        queue: receipt.queue.clone(),
                    });
                };
                let mut state = self.lock();
                state.held(receipt)?;
                if !state.queues.contains_key(&dlq) {
                    return Err(QueueError::QueueNotFound { queue: dlq });
                }
                let MessageId::Sequence(id) = receipt.id else {
                    return Err(invalid(receipt));
                };
                let stored = state
                    .queue_mut(&receipt.queue)?
                    .messages
                    .remove(&id)
                    .ok_or_else(|| invalid(receipt))?;
                let info = DeadLetterInfo {
                    reason,
                    source_queue: receipt.queue.to_string(),
                    original_id: receipt.id,
                    read_count: stored.read_count,
                    dead_lettered_at: Utc::now(),
                };
                state.queue_mut(&dlq)?.push(stored.body, Some(info));
                drop(state);
                self.hub.notify(&dlq, SignalCause::Sent);
                Ok(())
            }
        }
    }

    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError> {
        let mut state = self.lock();
        let stored = state.held(receipt)?;
        stored.visible_at += by;
        Ok(receipt.clone())
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        let target = state.queue_mut(queue)?;
        let total = target.messages.len() as u64;
        let ready = target
            .messages
            .values()
            .filter(|stored| stored.visible_at <= now)
            .count() as u64;
        Ok(QueueDepth {
            ready,
            in_flight: Some(total - ready),
        })
    }

    async fn health(&self) -> HealthReport {
        HealthReport {
            backend: BackendKind::InMemory,
            health: Health::Healthy,
        }
    }

    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError> {
        self.hub.subscribe(queues).ok_or(QueueError::Closed {
            backend: BackendKind::InMemory,
            operation: Operation::Subscribe,
        })
    }
}
