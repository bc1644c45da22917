//! A message lost between the commit and the send (a broker down at that moment, on a backend
//! that cannot send inside the transaction) is sent again, and the task completes with one
//! handler invocation per step: a lost step message by the orchestrator's redrive of steps
//! `enqueued` too long; a lost result message by the redelivery of the step message its worker
//! did not acknowledge (the next worker finds the result stored and sends it again), or by the
//! redrive of results that waited too long, whichever comes first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use async_trait::async_trait;
use serde_json::json;
use sqlx::PgPool;
use tasker_shared::database::step::{self, StepScope};
use tasker_shared::messaging::envelope::Payload;
use tasker_shared::messaging::error::{Operation, QueueError};
use tasker_shared::messaging::memory::InMemoryQueue;
use tasker_shared::messaging::queue::{
    BackendKind, HealthReport, MessageId, MessageQueue, Nack, QueueDepth, Receipt, ReceivedMessage,
};
use tasker_shared::messaging::queue_name::QueueName;
use tasker_shared::messaging::signal::Subscription;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::{StepState, TaskState};

use tasker_shared::messaging::outbox::Messaging;

use super::harness::{
    Calls, TestEngines, catalog, messaging_config, orchestrator_settings, with_database,
};
use super::history::check_step_history;

/// The in-memory backend, except that the first batch sent to a queue whose name starts with
/// `prefix` fails.
#[derive(Debug)]
struct LosesFirstBatch {
    inner: InMemoryQueue,
    prefix: &'static str,
    lost: AtomicBool,
}

#[async_trait]
impl MessageQueue for LosesFirstBatch {
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
        self.inner.send(queue, payload).await
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        if queue.as_str().starts_with(self.prefix) && !self.lost.swap(true, Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                backend: BackendKind::InMemory,
                operation: Operation::Send,
                waited: Duration::ZERO,
            });
        }
        self.inner.send_batch(queue, payloads).await
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(queue, max, visibility_timeout).await
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

async fn lost_message(pool: PgPool, prefix: &'static str) -> anyhow::Result<()> {
    let calls = Arc::new(Calls::default());
    let catalog = catalog(&pool, &calls, None).await?;
    let backend = Arc::new(LosesFirstBatch {
        inner: InMemoryQueue::new(&messaging_config()),
        prefix,
        lost: AtomicBool::new(false),
    });
    let messaging = Messaging::external(backend.clone());
    let mut settings = orchestrator_settings();
    settings.redrive_after = Duration::from_millis(300);
    let mut engines = TestEngines::start(&pool, messaging, &catalog, 2, settings).await?;
    let request = TaskRequest::new("reference", "linear", "1.0.0", json!({"value": 5}));
    let outcome = engines.run_one(&request, Duration::from_secs(60)).await;
    let stopped = engines.shutdown().await;
    let (task_id, state) = outcome.context("the task did not finish after a message was lost")?;
    stopped?;

    ensure!(
        backend.lost.load(Ordering::SeqCst),
        "a step message batch was lost"
    );
    ensure!(state == TaskState::Complete, "the task completed");
    let steps = StepScope::new().for_task(task_id).all(&pool).await?;
    for step in &steps {
        ensure!(
            step.state == StepState::Complete,
            "step {} completed",
            step.name
        );
        ensure!(
            step.attempts == 1,
            "step {} took {} attempts",
            step.name,
            step.attempts
        );
        ensure!(
            calls.of(step.step_id) == 1,
            "step {} ran {} time(s)",
            step.name,
            calls.of(step.step_id)
        );
        let history = step::history(&pool, step.step_id).await?;
        check_step_history(&history, step.state)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_step_message_is_redriven() -> anyhow::Result<()> {
    with_database(|pool| lost_message(pool, "worker_")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_result_message_is_sent_again() -> anyhow::Result<()> {
    with_database(|pool| lost_message(pool, "orchestration_step_results")).await
}

/// A finalization request lost after its commit (RabbitMQ, in memory): the task blocked by a
/// permanent failure is finalized all the same, by the redrive of tasks blocked too long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_finalization_request_is_redriven() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog(&pool, &calls, None).await?;
        let backend = Arc::new(LosesFirstBatch {
            inner: InMemoryQueue::new(&messaging_config()),
            prefix: "orchestration_task_finalizations",
            lost: AtomicBool::new(false),
        });
        let messaging = Messaging::external(backend.clone());
        let mut settings = orchestrator_settings();
        settings.redrive_after = Duration::from_millis(300);
        let mut engines = TestEngines::start(&pool, messaging, &catalog, 2, settings).await?;
        let request = TaskRequest::new(
            "reference",
            "permanent_failure",
            "1.0.0",
            json!({"value": 5}),
        );
        let outcome = engines.run_one(&request, Duration::from_secs(60)).await;
        let stopped = engines.shutdown().await;
        let (_, state) = outcome.context("the blocked task was not finalized")?;
        stopped?;
        ensure!(
            backend.lost.load(Ordering::SeqCst),
            "a finalization request was lost"
        );
        ensure!(state == TaskState::Error, "the task was given up: {state}");
        Ok(())
    })
    .await
}

/// A step message deleted from PGMQ (by hand, or by anything else): the step left `enqueued`
/// is sent again by the redrive, and runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_step_message_is_redriven_on_pgmq() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog(&pool, &calls, None).await?;
        let messaging = super::harness::messaging(crate::setup::Backend::Pgmq, &pool).await?;
        let mut settings = orchestrator_settings();
        settings.redrive_after = Duration::from_millis(300);
        let mut engines =
            TestEngines::start(&pool, messaging.clone(), &catalog, 2, settings).await?;
        // No worker yet: the first step message waits in its queue, and is deleted there.
        engines.kill_workers().await;
        let request = TaskRequest::new("reference", "linear", "1.0.0", json!({"value": 5}));
        let request_id = engines.submitter()?.submit(&[request]).await?[0];
        let queue = catalog.worker_queues()[0].clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let deleted = loop {
            let received = messaging
                .queue
                .receive(&queue, 10, Duration::from_secs(30))
                .await?;
            if let Some(message) = received.first() {
                messaging.queue.ack(message.receipt()).await?;
                break message.id;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "no step message arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        engines.start_workers(2).await?;
        let outcome = engines.wait_for(request_id, Duration::from_secs(60)).await;
        let stopped = engines.shutdown().await;
        let (task_id, state) =
            outcome.with_context(|| format!("after deleting message {deleted}"))?;
        stopped?;
        ensure!(state == TaskState::Complete, "the task completed");
        let steps = StepScope::new().for_task(task_id).all(&pool).await?;
        for step in &steps {
            ensure!(
                calls.of(step.step_id) == 1 && step.attempts == 1,
                "step {} ran once",
                step.name
            );
        }
        Ok(())
    })
    .await
}
