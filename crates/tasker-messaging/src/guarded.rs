//! A [`MessageQueue`] whose sends and receives go through a circuit breaker
//! (`tasker_resilience`): while the backend keeps failing, calls fail fast with
//! [`QueueError::CircuitOpen`] instead of waiting on it, and trial calls find out when it
//! answers again.
//!
//! Only failures of the backend count ([`QueueError::is_transient`]): a missing queue, a
//! message too large or a stale receipt is the caller's problem and neither trips the breaker
//! nor counts as a success. Acknowledgements, queue management, depth, health and signals pass
//! through unguarded: an acknowledgement that cannot be made is redelivered anyway, and the
//! rest are not on the data path.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tasker_resilience::breaker::{BreakerError, CircuitBreaker};
use tasker_resilience::permit::ErrorClass;

use crate::envelope::Payload;
use crate::error::{Operation, QueueError};
use crate::queue::{
    BackendKind, HealthReport, MessageId, MessageQueue, Nack, QueueDepth, Receipt, ReceivedMessage,
};
use crate::queue_name::QueueName;
use crate::signal::Subscription;

/// `inner` behind `breaker`.
#[derive(Debug)]
pub struct GuardedQueue {
    inner: Arc<dyn MessageQueue>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedQueue {
    /// Guards `inner`'s sends and receives with `breaker`.
    pub fn new(inner: Arc<dyn MessageQueue>, breaker: Arc<CircuitBreaker>) -> Self {
        Self { inner, breaker }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    async fn guarded<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        let permit = self
            .breaker
            .permit()
            .map_err(|error| self.open(operation, &error))?;
        let outcome = call.await;
        match &outcome {
            Ok(_) => permit.success(),
            Err(error) if error.is_transient() => permit.error(ErrorClass::Dependency),
            Err(_) => permit.error(ErrorClass::Caller),
        }
        outcome
    }

    fn open(&self, operation: Operation, error: &BreakerError) -> QueueError {
        let next_trial_in = match error {
            BreakerError::Open { next_trial_in, .. } => *next_trial_in,
            // Every trial slot is taken: another call is finding out.
            BreakerError::HalfOpenBusy { .. } => Duration::ZERO,
        };
        QueueError::CircuitOpen {
            backend: self.inner.backend(),
            operation,
            component: error.component().to_owned(),
            next_trial_in,
        }
    }
}

#[async_trait]
impl MessageQueue for GuardedQueue {
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
        self.guarded(Operation::Send, self.inner.send(queue, payload))
            .await
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        self.guarded(Operation::SendBatch, self.inner.send_batch(queue, payloads))
            .await
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.guarded(
            Operation::Receive,
            self.inner.receive(queue, max, visibility_timeout),
        )
        .await
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.inner.ack(receipt).await
    }

    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.inner.ack_batch(receipts).await
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        self.inner.nack(receipt, action).await
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

#[cfg(test)]
mod tests;
