//! A [`MessageQueue`] that records what passes through it into tasker-metrics' messaging
//! instruments: messages sent, received, acknowledged and dead-lettered by queue, and the
//! latency of sends and receives.
//!
//! It wraps any backend through the trait. PGMQ's transactional operations (`send_in`,
//! `pop_in`, ...) do not go through the trait, so [`PgmqQueue`](crate::pgmq::PgmqQueue)
//! records them itself ([`PgmqQueue::with_metrics`](crate::pgmq::PgmqQueue::with_metrics)), its
//! trait methods included: wrap the other backends in an [`InstrumentedQueue`], never a PGMQ
//! one (it would count twice).
//!
//! Only successful calls are recorded; failures show in the circuit breaker and the logs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tasker_metrics::messaging::MessagingMetrics;

use crate::envelope::Payload;
use crate::error::QueueError;
use crate::queue::{
    BackendKind, HealthReport, MessageId, MessageQueue, Nack, QueueDepth, Receipt, ReceivedMessage,
};
use crate::queue_name::QueueName;
use crate::signal::Subscription;

/// `inner`, recording into `metrics`.
#[derive(Debug)]
pub struct InstrumentedQueue {
    inner: Arc<dyn MessageQueue>,
    metrics: MessagingMetrics,
    system: &'static str,
}

impl InstrumentedQueue {
    /// Records `inner`'s traffic into `metrics`, with `messaging.system` its backend's name.
    pub fn new(inner: Arc<dyn MessageQueue>, metrics: MessagingMetrics) -> Self {
        let system = inner.backend().as_str();
        Self {
            inner,
            metrics,
            system,
        }
    }
}

#[async_trait]
impl MessageQueue for InstrumentedQueue {
    fn backend(&self) -> BackendKind {
        self.inner.backend()
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        self.inner.ensure_queue(queue).await
    }

    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        self.inner.delete_queue(queue).await
    }

    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError> {
        let began = Instant::now();
        let id = self.inner.send(queue, payload).await?;
        record_sent(&self.metrics, self.system, queue, 1, began.elapsed());
        Ok(id)
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        let began = Instant::now();
        let ids = self.inner.send_batch(queue, payloads).await?;
        record_sent(
            &self.metrics,
            self.system,
            queue,
            ids.len(),
            began.elapsed(),
        );
        Ok(ids)
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let began = Instant::now();
        let received = self.inner.receive(queue, max, visibility_timeout).await?;
        record_received(
            &self.metrics,
            self.system,
            queue,
            received.len(),
            began.elapsed(),
        );
        Ok(received)
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.inner.ack(receipt).await?;
        self.metrics.acked(self.system, receipt.queue().as_str(), 1);
        Ok(())
    }

    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let outcomes = self.inner.ack_batch(receipts).await?;
        record_acked(&self.metrics, self.system, receipts, &outcomes);
        Ok(outcomes)
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        let dead_letter = matches!(action, Nack::DeadLetter { .. });
        self.inner.nack(receipt, action).await?;
        if dead_letter {
            self.metrics
                .dead_lettered(self.system, receipt.queue().as_str());
        }
        Ok(())
    }

    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError> {
        self.inner.extend_visibility(receipt, by).await
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError> {
        self.inner.depth(queue).await
    }

    async fn health(&self) -> HealthReport {
        self.inner.health().await
    }

    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError> {
        self.inner.subscribe(queues).await
    }
}

/// Counts `count` messages sent to `queue` and the send's latency (nothing for an empty batch).
pub(crate) fn record_sent(
    metrics: &MessagingMetrics,
    system: &'static str,
    queue: &QueueName,
    count: usize,
    latency: Duration,
) {
    if count == 0 {
        return;
    }
    metrics.sent(system, queue.as_str(), count as u64);
    metrics.operation_latency(system, queue.as_str(), "send", latency);
}

/// Counts `count` messages received from `queue` and the receive's latency (an empty receive
/// is a latency too: a poll that found nothing).
pub(crate) fn record_received(
    metrics: &MessagingMetrics,
    system: &'static str,
    queue: &QueueName,
    count: usize,
    latency: Duration,
) {
    if count > 0 {
        metrics.received(system, queue.as_str(), count as u64);
    }
    metrics.receive_latency(system, queue.as_str(), latency);
}

/// Counts the receipts acknowledged (outcome `Ok`), one recording per run of receipts of the
/// same queue.
pub(crate) fn record_acked(
    metrics: &MessagingMetrics,
    system: &'static str,
    receipts: &[Receipt],
    outcomes: &[Result<(), QueueError>],
) {
    let mut run: Option<(&QueueName, u64)> = None;
    for (receipt, outcome) in receipts.iter().zip(outcomes) {
        if outcome.is_err() {
            continue;
        }
        match &mut run {
            Some((queue, count)) if *queue == receipt.queue() => *count += 1,
            _ => {
                if let Some((queue, count)) = run {
                    metrics.acked(system, queue.as_str(), count);
                }
                run = Some((receipt.queue(), 1));
            }
        }
    }
    if let Some((queue, count)) = run {
        metrics.acked(system, queue.as_str(), count);
    }
}

#[cfg(test)]
mod tests;
