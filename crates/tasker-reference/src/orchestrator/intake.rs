//! The orchestration commands that arrive on queues: task requests (validated against their
//! template, created as tasks and started at once) and finalization requests (the finalizer
//! gives up on a task blocked by a permanent failure: `blocked_by_failures → error`).
//!
//! Requests are taken a batch at a time. One transaction creates the batch's tasks, starts the
//! new ones (`pending → initializing`, then settled: their first steps enqueued; the creator
//! holds them, nobody else has seen them yet) and acknowledges the requests; the claim loop is
//! left with retries, waits and tasks created elsewhere. A request that cannot become a task
//! (`create_many_from_requests` reports it on its own) is refused or retried by itself while
//! the rest of its batch commits; if the batch fails as a whole, its requests are taken one by
//! one, so one bad request cannot hold back the others.

use std::sync::Arc;

use anyhow::Context as _;
use tasker_shared::database::error::DbError;
use tasker_shared::database::task::{
    CreateTaskError, RequestToCreate, TaskCreation, TaskTransition, TaskTransitionError,
    create_many_from_requests, transition,
};
use tasker_shared::messaging::consumer::{Consumer, Delivery, Outcome};
use tasker_shared::messaging::messages::{TaskFinalizationMessage, TaskRequestMessage};
use tasker_shared::messaging::queue::{Nack, ReceivedMessage};
use tasker_shared::messaging::queue_name::{task_finalizations_queue, task_requests_queue};
use tasker_shared::models::ids::TaskId;
use tasker_shared::models::request::{JsonLimits, TaskRequest, ValidatedTaskRequest};
use tasker_shared::state_machine::{TaskEvent, TaskState};
use uuid::Uuid;

use super::settle::Unsettled;
use super::{Orchestrator, TaskInfo};
use crate::catalog::TemplateEntry;
use crate::tracker::{Shutdown, Submission};

/// A request that passed validation, with its delivery.
struct Accepted {
    received: ReceivedMessage,
    request_id: Uuid,
    entry: Arc<TemplateEntry>,
    validated: ValidatedTaskRequest,
}

/// Why a batch of requests was not created.
enum BatchFailure {
    /// Creating one of the tasks failed.
    Create(CreateTaskError),
    /// Anything else (settling, committing).
    Other(anyhow::Error),
}

impl Orchestrator {
    /// Consumes task requests until shutdown, a batch at a time: drains what is visible, then
    /// waits for a signal, the safety-net poll or shutdown.
    pub(crate) async fn run_requests(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let queue = task_requests_queue();
        let backend = Arc::clone(&self.messaging.queue);
        let mut subscription = backend
            .subscribe(std::slice::from_ref(&queue))
            .await
            .context("subscribing to task requests")?;
        let batch = u16::try_from(self.settings.claim_batch.max(1)).unwrap_or(u16::MAX);
        let poll = self.settings.messaging.fallback_poll_interval;
        let visibility = self.settings.messaging.visibility_timeout;
        loop {
            loop {
                let received = match backend.receive(&queue, batch, visibility).await {
                    Ok(received) => received,
                    Err(error) => {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            "receiving task requests failed"
                        );
                        break;
                    }
                };
                let count = received.len();
                if count > 0 {
                    self.intake(received).await;
                }
                if count < usize::from(batch) {
                    break;
                }
            }
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                signal = subscription.recv() => {
                    if signal.is_none() {
                        anyhow::bail!("the messaging backend closed the task request subscription");
                    }
                }
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Creates and starts the tasks a batch of requests asks for; refuses (dead-letters) the
    /// requests that cannot be.
    async fn intake(&self, received: Vec<ReceivedMessage>) {
        let mut accepted = Vec::with_capacity(received.len());
        for message in received {
            match self.accept(&message) {
                Ok((request_id, entry, validated)) => accepted.push(Accepted {
                    received: message,
                    request_id,
                    entry,
                    validated,
                }),
                Err((request_id, reason)) => self.reject(&message, request_id, reason).await,
            }
        }
        if accepted.is_empty() {
            return;
        }
        // A failure of the batch as a whole (the database refused a task, or starting them
        // failed) is retried one request at a time, so that only the culprit is refused.
        if let Err(failure) = self.create_or_refuse(&accepted).await {
            if accepted.len() == 1 {
                self.failed(&accepted[0], failure).await;
                return;
            }
            let reason = match &failure {
                BatchFailure::Create(error) => format!("{error}"),
                BatchFailure::Other(error) => format!("{error:#}"),
            };
            tracing::warn!(%reason, "creating a batch of tasks failed; creating them one by one");
            for item in &accepted {
                if let Err(failure) = self.create_or_refuse(std::slice::from_ref(item)).await {
                    self.failed(item, failure).await;
                }
            }
        }
    }

    /// [`Self::create_batch`], then refuses or retries, each on its own, the requests that
    /// cannot become tasks; the rest of the batch has gone ahead.
    async fn create_or_refuse(&self, items: &[Accepted]) -> Result<(), BatchFailure> {
        for (item, error) in self.create_batch(items).await? {
            self.failed(item, BatchFailure::Create(error)).await;
        }
        Ok(())
    }

    /// Decodes and validates a request against its template (no database work).
    #[expect(
        clippy::type_complexity,
        reason = "a private helper's (accepted, refused) pair"
    )]
    fn accept(
        &self,
        message: &ReceivedMessage,
    ) -> Result<(Uuid, Arc<TemplateEntry>, ValidatedTaskRequest), (Option<Uuid>, String)> {
        let decoded: TaskRequestMessage = message.decode().map_err(|error| {
            (
                None,
                format!("undecodable task request: {}", error.reason()),
            )
        })?;
        let request_id = decoded.request_id;
        let refuse = |reason: String| (Some(request_id), reason);
        let request: TaskRequest = serde_json::from_value(decoded.request)
            .map_err(|error| refuse(format!("the request is not a task request: {error}")))?;
        let Some(entry) = self.catalog.by_key(&request.routing_key()) else {
            return Err(refuse(format!(
                "template {} is not registered",
                request.routing_key()
            )));
        };
        let validated = request
            .validate_for(&entry.template, &JsonLimits::default())
            .map_err(|error| refuse(format!("invalid task request: {error}")))?;
        Ok((request_id, Arc::clone(entry), validated))
    }

    /// Dead-letters a request that can never become a task, and tells the tracker.
    async fn reject(&self, message: &ReceivedMessage, request_id: Option<Uuid>, reason: String) {
        tracing::warn!(?request_id, %reason, "refusing a task request");
        if let Some(request_id) = request_id {
            self.tracker.submitted(
                request_id,
                Submission::Rejected {
                    reason: reason.clone(),
                },
            );
        }
        let nack = Nack::DeadLetter { reason };
        if let Err(error) = self.messaging.queue.nack(message.receipt(), nack).await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "dead-lettering a task request failed"
            );
        }
    }

    /// A request whose task could not be created on its own: retried if the failure may pass,
    /// refused otherwise.
    async fn failed(&self, item: &Accepted, failure: BatchFailure) {
        let request_id = item.request_id;
        match failure {
            BatchFailure::Create(error) if may_pass(&error) => {
                tracing::warn!(%request_id, error = %error, "creating a task failed; retrying");
                self.requeue(item).await;
            }
            BatchFailure::Create(error) => {
                // With its causes: the requester learns what to change.
                let reason = format!(
                    "the task cannot be created: {:#}",
                    anyhow::Error::new(error)
                );
                self.reject(&item.received, Some(request_id), reason).await;
            }
            BatchFailure::Other(error) => {
                tracing::warn!(%request_id, error = format!("{error:#}"), "starting a task failed; retrying");
                self.requeue(item).await;
            }
        }
    }

    async fn requeue(&self, item: &Accepted) {
        if let Err(error) = self
            .messaging
            .queue
            .nack(item.received.receipt(), Nack::Requeue)
            .await
        {
            // It comes back after its visibility timeout anyway.
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "requeueing a task request failed"
            );
        }
    }

    /// Creates the tasks of `items`, starts the new ones and acknowledges their requests, in
    /// one transaction. Returns the requests that cannot become tasks, with why; their
    /// messages are left to the caller.
    async fn create_batch<'i>(
        &self,
        items: &'i [Accepted],
    ) -> Result<Vec<(&'i Accepted, CreateTaskError)>, BatchFailure> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("starting a task creation")
            .map_err(BatchFailure::Other)?;
        let requests: Vec<RequestToCreate<'_>> = items
            .iter()
            .map(|item| RequestToCreate {
                template: &item.entry.template,
                registered: &item.entry.registered,
                request: &item.validated,
            })
            .collect();
        let outcomes = create_many_from_requests(&mut tx, &requests, Some(self.processor_id))
            .await
            .map_err(|error| BatchFailure::Create(error.into()))?;
        // A request that cannot become a task is left out (its message untouched) and returned
        // to the caller; the others are created and started.
        let mut creations = Vec::with_capacity(items.len());
        let mut refused = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes) {
            match outcome {
                Ok(creation) => creations.push((item, creation)),
                Err(error) => refused.push((item, error)),
            }
        }
        let mut fresh = Vec::new();
        for (item, creation) in &creations {
            if let TaskCreation::Created { task_id, .. } = creation {
                // Settling reads it; the transaction is its only reader so far.
                self.tasks.remember(TaskInfo {
                    task_id: *task_id,
                    named_task_id: item.entry.registered.named_task_id,
                    namespace: item.validated.namespace.as_str().to_owned(),
                    template: item.entry.key(),
                    correlation_id: item.validated.correlation_id,
                    context: item.validated.context.clone(),
                });
                fresh.push(*task_id);
            }
        }
        let started = async {
            // The new tasks are this transaction's alone: they start from `pending`.
            let initialized = fresh
                .iter()
                .map(|task_id| Unsettled {
                    task_id: *task_id,
                    state: TaskState::Pending,
                    prefix: vec![TaskEvent::Initialize],
                })
                .collect();
            let mut outbox = self.messaging.outbox();
            let settled = self.settle_all(&mut tx, initialized, &mut outbox).await?;
            for (item, _) in &creations {
                outbox.ack(item.received.receipt().clone());
            }
            outbox.commit(tx).await.context("committing new tasks")?;
            anyhow::Ok(settled)
        }
        .await;
        let settled = match started {
            Ok(settled) => settled,
            Err(error) => {
                for task_id in &fresh {
                    self.tasks.forget(*task_id);
                }
                return Err(BatchFailure::Other(error));
            }
        };
        for (item, creation) in &creations {
            self.tracker.submitted(
                item.request_id,
                Submission::Created {
                    task_id: creation.task_id(),
                    existing: creation.is_existing(),
                },
            );
        }
        self.committed(&settled);
        Ok(refused)
    }

    /// Consumes finalization requests until shutdown.
    pub(crate) async fn run_finalizer(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let consumer = Consumer::new(
            Arc::clone(&self.messaging.queue),
            task_finalizations_queue(),
            self.settings.messaging.clone(),
        );
        let this = Arc::clone(&self);
        consumer
            .run(
                move |message: TaskFinalizationMessage, _delivery: Delivery| {
                    let this = Arc::clone(&this);
                    async move { this.give_up(TaskId::from_uuid(message.task_uuid)).await }
                },
                async move { shutdown.wait().await },
            )
            .await
            .context("consuming finalization requests")
    }

    /// Gives up on a task blocked by failures: the reference workflow has no operator to
    /// resolve it by hand.
    async fn give_up(&self, task_id: TaskId) -> Outcome {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%task_id, error = %error, "no database connection to finalize a task; retrying");
                return Outcome::Retry;
            }
        };
        let metadata = serde_json::json!({
            "reason": "the reference workflow gives up on tasks blocked by permanent failures"
        });
        let applied = transition(
            &mut conn,
            TaskTransition {
                task_id,
                expected: TaskState::BlockedByFailures,
                event: TaskEvent::GiveUp,
                processor_id: Some(self.processor_id),
                metadata: Some(&metadata),
            },
        )
        .await;
        match applied {
            Ok(applied) => {
                self.finished(task_id, applied.to);
                Outcome::Done
            }
            // Already finalized, or resolved otherwise: nothing to do.
            Err(TaskTransitionError::Conflict { .. } | TaskTransitionError::NotFound { .. }) => {
                Outcome::Done
            }
            Err(TaskTransitionError::Database(error)) if transient(&error) => Outcome::Retry,
            Err(error) => {
                tracing::warn!(%task_id, error = %error, "finalizing a task failed; retrying");
                Outcome::Retry
            }
        }
    }
}

/// Whether a creation failure may pass on a later try: a transient database error, or a
/// duplicate that vanished before it could be read.
fn may_pass(error: &CreateTaskError) -> bool {
    match error {
        CreateTaskError::Database(error) => transient(error),
        CreateTaskError::IdentityRace { .. } => true,
        _ => false,
    }
}

fn transient(error: &DbError) -> bool {
    error.is_transient() || matches!(error, DbError::Other(_))
}
