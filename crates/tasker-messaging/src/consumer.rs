//! A consumer loop over one queue: receive a batch, decode each message, hand it to a handler,
//! and settle it by the handler's [`Outcome`].
//!
//! A message is acknowledged only after its handler returned [`Outcome::Done`], never when it
//! is handed over. A message that cannot be decoded is dead-lettered with the decode error as
//! its reason, and the consumer goes on with the next one. [`Consumer::run_once`] handles one
//! batch (tests call it directly); [`Consumer::run`] loops in the configured
//! [`DeploymentMode`] until its shutdown future completes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{DeploymentMode, MessagingConfig};
use crate::envelope::QueueMessage;
use crate::error::{Operation, QueueError};
use crate::queue::{MessageId, MessageQueue, Nack, ReceivedMessage};
use crate::queue_name::QueueName;

/// What a handler decided about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: acknowledge it.
    Done,
    /// Failed for now: requeue it to be received again.
    Retry,
    /// Can never be processed: dead-letter it with this reason.
    Reject {
        /// Why; recorded with the dead-lettered message.
        reason: String,
    },
}

/// Facts about the delivery handed to a handler with the decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue it came from.
    pub queue: QueueName,
    /// The message's id.
    pub id: MessageId,
    /// How many times it has been received, this time included.
    pub read_count: u32,
    /// When it was enqueued, where the backend records it.
    pub enqueued_at: Option<DateTime<Utc>>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Messages received.
    pub received: usize,
    /// Acknowledged after their handler succeeded.
    pub acked: usize,
    /// Requeued at their handler's request.
    pub requeued: usize,
    /// Dead-lettered: undecodable, or rejected by their handler.
    pub dead_lettered: usize,
    /// Settling (ack, nack) failed; those messages come back after their visibility timeout.
    pub settle_failures: usize,
}

/// Consumes one queue.
#[derive(Debug, Clone)]
pub struct Consumer {
    backend: Arc<dyn MessageQueue>,
    queue: QueueName,
    config: MessagingConfig,
}

impl Consumer {
    /// A consumer of `queue` on `backend`, with batch size, visibility timeout, deployment mode
    /// and poll intervals from `config`.
    pub fn new(backend: Arc<dyn MessageQueue>, queue: QueueName, config: MessagingConfig) -> Self {
        Self {
            backend,
            queue,
            config,
        }
    }

    /// `call` on the backend, failing as [`QueueError::TimedOut`] after the configured
    /// operation timeout: a backend that stopped answering never holds the consumer.
    async fn bounded<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        let after = self.config.operation_timeout;
        tokio::time::timeout(after, call).await.unwrap_or_else(|_| {
            Err(QueueError::TimedOut {
                backend: self.backend.backend(),
                operation,
                queue: Some(self.queue.clone()),
                after,
            })
        })
    }

    /// Receives one batch and settles every message in it.
    pub async fn run_once<M, H, F>(&self, handler: &mut H) -> Result<BatchReport, QueueError>
    where
        M: QueueMessage,
        H: FnMut(M, Delivery) -> F,
        F: Future<Output = Outcome>,
    {
        let messages = self
            .bounded(
                Operation::Receive,
                self.backend.receive(
                    &self.queue,
                    self.config.batch_size,
                    self.config.visibility_timeout,
                ),
            )
            .await?;
        let mut report = BatchReport {
            received: messages.len(),
            ..BatchReport::default()
        };
        for message in messages {
            self.handle(&message, handler, &mut report).await;
        }
        Ok(report)
    }

    async fn handle<M, H, F>(
        &self,
        message: &ReceivedMessage,
        handler: &mut H,
        report: &mut BatchReport,
    ) where
        M: QueueMessage,
        H: FnMut(M, Delivery) -> F,
        F: Future<Output = Outcome>,
    {
        let outcome = match message.decode::<M>() {
            Ok(decoded) => {
                let delivery = Delivery {
                    queue: self.queue.clone(),
                    id: message.id,
                    read_count: message.read_count,
                    enqueued_at: message.enqueued_at,
                };
                handler(decoded, delivery).await
            }
            Err(error) => {
                tracing::warn!(
                    queue = %self.queue,
                    id = %message.id,
                    error = %error.reason(),
                    "dead-lettering a message that cannot be decoded"
                );
                Outcome::Reject {
                    reason: error.reason(),
                }
            }
        };
        let receipt = message.receipt();
        let settled = match outcome {
            Outcome::Done => self
                .bounded(Operation::Ack, self.backend.ack(receipt))
                .await
                .map(|()| &mut report.acked),
            Outcome::Retry => self
                .bounded(
                    Operation::Requeue,
                    self.backend.nack(receipt, Nack::Requeue),
                )
                .await
                .map(|()| &mut report.requeued),
            Outcome::Reject { reason } => self
                .bounded(
                    Operation::DeadLetter,
                    self.backend.nack(receipt, Nack::DeadLetter { reason }),
                )
                .await
                .map(|()| &mut report.dead_lettered),
        };
        match settled {
            Ok(counter) => *counter += 1,
            Err(error) => {
                report.settle_failures += 1;
                tracing::warn!(
                    queue = %self.queue,
                    id = %message.id,
                    error = &error as &dyn std::error::Error,
                    "could not settle a message; it will be delivered again"
                );
            }
        }
    }

    /// Runs batches until the queue is drained (a batch smaller than the batch size).
    async fn drain<M, H, F>(&self, handler: &mut H) -> Result<(), QueueError>
    where
        M: QueueMessage,
        H: FnMut(M, Delivery) -> F,
        F: Future<Output = Outcome>,
    {
        loop {
            let report = self.run_once(handler).await?;
            if report.received < usize::from(self.config.batch_size) {
                return Ok(());
            }
        }
    }

    /// Consumes until `shutdown` completes, in the configured deployment mode: polling every
    /// `poll_interval`; event-driven on the backend's signals; or hybrid, on signals plus a poll
    /// every `fallback_poll_interval`. Backend errors are logged and retried at the next poll
    /// (or after the fallback interval in event-driven mode); the loop ends with an error only
    /// when the backend is shut down.
    pub async fn run<M, H, F>(
        &self,
        mut handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), QueueError>
    where
        M: QueueMessage,
        H: FnMut(M, Delivery) -> F,
        F: Future<Output = Outcome>,
    {
        let mode = self.config.deployment_mode;
        let mut subscription = match mode {
            DeploymentMode::Polling => None,
            DeploymentMode::EventDriven | DeploymentMode::Hybrid => Some(
                self.backend
                    .subscribe(std::slice::from_ref(&self.queue))
                    .await?,
            ),
        };
        let poll_every = match mode {
            DeploymentMode::Polling => Some(self.config.poll_interval),
            DeploymentMode::Hybrid => Some(self.config.fallback_poll_interval),
            DeploymentMode::EventDriven => None,
        };
        tokio::pin!(shutdown);
        loop {
            let retry_after: Option<Duration> = match self.drain(&mut handler).await {
                Ok(()) => None,
                Err(error @ QueueError::Closed { .. }) => return Err(error),
                Err(error) => {
                    tracing::warn!(
                        queue = %self.queue,
                        error = &error as &dyn std::error::Error,
                        "receiving failed; retrying"
                    );
                    Some(self.config.fallback_poll_interval)
                }
            };
            let wait = retry_after.or(poll_every);
            let tick = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tick => {}
                signal = next_signal(&mut subscription) => {
                    if signal.is_none() {
                        return Err(QueueError::Closed {
                            backend: self.backend.backend(),
                            operation: crate::error::Operation::Subscribe,
                        });
                    }
                }
            }
        }
    }
}

async fn next_signal(
    subscription: &mut Option<crate::signal::Subscription>,
) -> Option<crate::signal::QueueSignal> {
    match subscription {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
