//! The orchestration commands that arrive on queues: task requests (validated against their
//! template, created as tasks and started at once) and finalization requests (the finalizer
//! gives up on a task blocked by a permanent failure: `blocked_by_failures → error`).
//!
//! Requests are taken a batch at a time. One transaction creates the batch's tasks, starts the
//! new ones (`pending → initializing`, then settled: their first steps enqueued; the creator
//! holds them, nobody else has seen them yet), tells the requester of a request whose task
//! existed already (`created`, and `finished` if it had finished) and acknowledges the
//! requests; the claim loop is left with retries, waits and tasks created elsewhere. A request
//! that cannot become a task is refused by itself (a `refused` reply, then dead-lettered)
//! while the rest of its batch commits; if the batch fails as a whole, its requests are taken
//! one by one, so one bad request cannot hold back the others.

use std::sync::Arc;

use tasker_db::task::{
    CreateTaskError, RequestOrigin, RequestToCreate, TaskCreation, TaskTransition,
    TaskTransitionError, create_many_from_requests, transition,
};
use tasker_messaging::consumer::{Consumer, Delivery, Outcome};
use tasker_messaging::messages::{
    TaskFinalizationMessage, TaskReply, TaskReplyMessage, TaskRequestMessage,
};
use tasker_messaging::outbox::Outbox;
use tasker_messaging::queue::{Nack, ReceivedMessage};
use tasker_messaging::queue_name::{QueueName, task_finalizations_queue, task_requests_queue};
use tasker_messaging::retry::within;
use tasker_messaging::shutdown::Shutdown;
use tasker_models::ids::TaskId;
use tasker_models::request::{JsonLimits, ValidatedTaskRequest};
use tasker_state::{TaskEvent, TaskState};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::error::{Doing as _, OrchestrationError, database_may_pass, display_chain};
use crate::orchestrator::{Orchestrator, Woken, wait_for_work};
use crate::settle::Unsettled;
use crate::spans;
use crate::templates::{Missing, TemplateEntry};

/// A request that passed validation, with its delivery.
struct Accepted {
    received: ReceivedMessage,
    request_id: Uuid,
    reply_to: Option<QueueName>,
    entry: Arc<TemplateEntry>,
    validated: ValidatedTaskRequest,
}

/// What a request that passed its checks carries on: its id, reply queue, template and
/// validated request.
type Checked = (
    Uuid,
    Option<QueueName>,
    Arc<TemplateEntry>,
    ValidatedTaskRequest,
);

/// A request that did not pass.
enum NotAccepted {
    /// It can never become a task.
    Refused {
        request_id: Option<Uuid>,
        reply_to: Option<QueueName>,
        reason: String,
    },
    /// Its template could not be read; it may pass later.
    Retry(OrchestrationError),
}

/// Why a batch of requests was not created.
enum BatchFailure {
    /// Creating one of the tasks failed.
    Create(CreateTaskError),
    /// Anything else (settling, committing).
    Other(OrchestrationError),
}

impl Orchestrator {
    /// Consumes task requests until shutdown, a batch at a time: drains what is visible, then
    /// waits for a signal, the safety-net poll or shutdown.
    pub(crate) async fn run_requests(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let queue = task_requests_queue();
        let backend = Arc::clone(&self.messaging.queue);
        let mut subscription = backend
            .subscribe(std::slice::from_ref(&queue))
            .await
            .doing("subscribing to task requests")?;
        let batch = u16::try_from(self.settings.claim_batch.max(1)).unwrap_or(u16::MAX);
        let poll = self.settings.messaging.fallback_poll_interval;
        let visibility = self.settings.messaging.visibility_timeout;
        loop {
            loop {
                if shutdown.is_triggered() {
                    return Ok(());
                }
                let limit = self.settings.operation_timeout;
                let received = match within(limit, backend.receive(&queue, batch, visibility))
                    .await
                    .doing("receiving task requests")
                    .and_then(|received| received.doing("receiving task requests"))
                {
                    Ok(received) => received,
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "receiving task requests failed"
                        );
                        break;
                    }
                };
                let count = received.len();
                // Requests not taken in time come back after their visibility timeout.
                let span = tracing::info_span!("intake.batch", requests = count);
                if count > 0
                    && within(limit, self.intake(received).instrument(span))
                        .await
                        .is_err()
                {
                    tracing::warn!(
                        ?limit,
                        "taking task requests timed out waiting for the database or the broker; they will be redelivered"
                    );
                }
                if count < usize::from(batch) {
                    break;
                }
            }
            if wait_for_work(&mut subscription, &mut shutdown, poll, "task request").await?
                == Woken::Shutdown
            {
                return Ok(());
            }
        }
    }

    /// Creates and starts the tasks a batch of requests asks for; refuses (dead-letters) the
    /// requests that cannot be.
    async fn intake(&self, received: Vec<ReceivedMessage>) {
        let mut accepted = Vec::with_capacity(received.len());
        for message in received {
            match self.accept(message).await {
                Ok(item) => accepted.push(item),
                Err((
                    message,
                    NotAccepted::Refused {
                        request_id,
                        reply_to,
                        reason,
                    },
                )) => {
                    self.reject(&message, request_id, reply_to.as_ref(), reason)
                        .await;
                }
                Err((message, NotAccepted::Retry(error))) => {
                    tracing::warn!(error = %display_chain(&error), "reading a request's template failed; retrying");
                    self.requeue(&message).await;
                }
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
                BatchFailure::Create(error) => error.to_string(),
                BatchFailure::Other(error) => display_chain(error),
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

    /// Decodes a request and validates it against its template; a request not accepted comes
    /// back with why.
    async fn accept(
        &self,
        message: ReceivedMessage,
    ) -> Result<Accepted, (ReceivedMessage, NotAccepted)> {
        match self.check(&message).await {
            Ok((request_id, reply_to, entry, validated)) => Ok(Accepted {
                received: message,
                request_id,
                reply_to,
                entry,
                validated,
            }),
            Err(not_accepted) => Err((message, not_accepted)),
        }
    }

    /// [`Self::accept`]'s checks, on the borrowed message.
    async fn check(&self, message: &ReceivedMessage) -> Result<Checked, NotAccepted> {
        let decoded: TaskRequestMessage =
            message.decode().map_err(|error| NotAccepted::Refused {
                request_id: None,
                reply_to: None,
                reason: format!("undecodable task request: {}", error.reason()),
            })?;
        let request_id = decoded.request_id;
        let reply_to = decoded.reply_to;
        let refuse = |reason: String| NotAccepted::Refused {
            request_id: Some(request_id),
            reply_to: reply_to.clone(),
            reason,
        };
        let entry = match self.templates.for_request(&decoded.request).await {
            Ok(entry) => entry,
            Err(Missing::Refused(reason)) => return Err(refuse(reason)),
            Err(Missing::Failed(error)) => {
                return Err(NotAccepted::Retry(OrchestrationError::new(
                    "reading the template of a task request",
                    error,
                )));
            }
        };
        let validated = decoded
            .request
            .validate_for(&entry.template, &JsonLimits::default())
            .map_err(|error| refuse(format!("invalid task request: {error}")))?;
        Ok((request_id, reply_to, entry, validated))
    }

    /// Tells the requester why its request can never become a task, then dead-letters it
    /// (in that order: a crash in between redelivers the request, which is refused again).
    async fn reject(
        &self,
        message: &ReceivedMessage,
        request_id: Option<Uuid>,
        reply_to: Option<&QueueName>,
        reason: String,
    ) {
        tracing::warn!(?request_id, %reason, "refusing a task request");
        if let (Some(request_id), Some(queue)) = (request_id, reply_to) {
            let reply = TaskReplyMessage {
                request_id,
                reply: TaskReply::Refused {
                    reason: reason.clone(),
                },
            };
            let sent = match tasker_messaging::envelope::Payload::encode(&reply) {
                Ok(payload) => self.messaging.queue.send(queue, &payload).await.map(drop),
                Err(error) => {
                    tracing::warn!(error = %error, "encoding a refusal failed");
                    Ok(())
                }
            };
            if let Err(error) = sent {
                // Not dead-lettered: the request comes back and is refused again.
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "telling a requester of its refusal failed; the request comes back"
                );
                return;
            }
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
                self.requeue(&item.received).await;
            }
            BatchFailure::Create(error) => {
                // With its causes: the requester learns what to change.
                let reason = format!("the task cannot be created: {}", display_chain(&error));
                self.reject(
                    &item.received,
                    Some(request_id),
                    item.reply_to.as_ref(),
                    reason,
                )
                .await;
            }
            BatchFailure::Other(error) => {
                tracing::warn!(%request_id, error = %display_chain(&error), "starting a task failed; retrying");
                self.requeue(&item.received).await;
            }
        }
    }

    async fn requeue(&self, message: &ReceivedMessage) {
        if let Err(error) = self
            .messaging
            .queue
            .nack(message.receipt(), Nack::Requeue)
            .await
        {
            // It comes back after its visibility timeout anyway.
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "requeueing a task request failed"
            );
        }
    }

    /// Creates the tasks of `items`, starts the new ones, replies to their requesters and
    /// acknowledges their requests, in one transaction. Returns the requests that cannot
    /// become tasks, with why; their messages are left to the caller.
    async fn create_batch<'i>(
        &self,
        items: &'i [Accepted],
    ) -> Result<Vec<(&'i Accepted, CreateTaskError)>, BatchFailure> {
        let mut tx = self
            .begin()
            .await
            .doing("starting a task creation")
            .map_err(BatchFailure::Other)?;
        let requests: Vec<RequestToCreate<'_>> = items
            .iter()
            .map(|item| RequestToCreate {
                template: &item.entry.template,
                registered: &item.entry.registered,
                request: &item.validated,
                origin: Some(RequestOrigin {
                    request_id: item.request_id,
                    reply_to: item.reply_to.as_ref().map(QueueName::as_str),
                }),
            })
            .collect();
        let began = std::time::Instant::now();
        let outcomes = create_many_from_requests(&mut tx, &requests, Some(self.processor_id))
            .await
            .map_err(|error| BatchFailure::Create(error.into()))?;
        self.settings
            .metrics
            .db
            .operation("create_tasks", began.elapsed());
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
                self.tasks.remember(tasker_db::task::TaskFacts {
                    task_id: *task_id,
                    named_task_id: item.entry.registered.named_task_id,
                    namespace: item.validated.namespace.as_str().to_owned(),
                    template: item.entry.template.routing_key(),
                    correlation_id: item.validated.correlation_id,
                    context: item.validated.context.clone(),
                    request_id: Some(item.request_id),
                    reply_to: item
                        .reply_to
                        .as_ref()
                        .map(|queue| queue.as_str().to_owned()),
                });
                spans::task_created(
                    &tracing::Span::current(),
                    *task_id,
                    item.validated.namespace.as_str(),
                    &item.received,
                );
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
            for (item, creation) in &creations {
                self.reply_created(&mut tx, item, creation, &mut outbox)
                    .await?;
                outbox.ack(item.received.receipt().clone());
            }
            self.commit(outbox, tx, "committing new tasks")
                .await?
                .finish()
                .await
                .doing("sending after committing new tasks")?;
            Ok::<_, OrchestrationError>(settled)
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
        // Counted once committed: a redelivered request finds its task existing.
        for (item, creation) in &creations {
            if let TaskCreation::Created { .. } = creation {
                self.settings
                    .metrics
                    .orchestration
                    .task_created(item.validated.namespace.as_str());
            }
        }
        self.committed(&settled);
        Ok(refused)
    }

    /// For a request whose task existed already (a redelivery, or a duplicate), adds the
    /// `created` reply to the outbox, and the `finished` one if the task had finished.
    async fn reply_created(
        &self,
        conn: &mut sqlx::PgConnection,
        item: &Accepted,
        creation: &TaskCreation,
        outbox: &mut Outbox,
    ) -> Result<(), OrchestrationError> {
        let Some(queue) = &item.reply_to else {
            return Ok(());
        };
        // A new task's requester hears of it when it finishes (its task id comes with that
        // reply): one message per task instead of two, and nothing to wake the requester
        // while the task's first steps are starting.
        let TaskCreation::Existing { .. } = creation else {
            return Ok(());
        };
        self.ensure_queue(queue).await?;
        let task_id = creation.task_id();
        // A redelivery of the request that created the task is not a duplicate.
        let task = self.task(conn, task_id).await?;
        let duplicate = task.request_id != Some(item.request_id);
        let reply = TaskReplyMessage {
            request_id: item.request_id,
            reply: TaskReply::Created { task_id, duplicate },
        };
        outbox
            .push(queue, &reply)
            .doing("encoding a created reply")?;
        if let TaskCreation::Existing { state, .. } = creation
            && state.is_terminal()
        {
            let reply = TaskReplyMessage {
                request_id: item.request_id,
                reply: TaskReply::Finished {
                    task_id,
                    state: *state,
                },
            };
            outbox
                .push(queue, &reply)
                .doing("encoding a finished reply")?;
        }
        Ok(())
    }

    /// Consumes finalization requests until shutdown.
    pub(crate) async fn run_finalizer(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
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
                    async move { this.give_up(message.task_id).await }
                },
                async move { shutdown.wait().await },
            )
            .await
            .doing("consuming finalization requests")
    }

    /// Gives up on a task blocked by failures (`blocked_by_failures → error`) and tells its
    /// requester, in one transaction.
    async fn give_up(&self, task_id: TaskId) -> Outcome {
        let given_up = within(
            self.settings.operation_timeout,
            self.try_give_up(task_id)
                .instrument(spans::finalizing(task_id)),
        )
        .await
        .doing_with(|| format!("finalizing task {task_id}"))
        .and_then(|given_up| given_up);
        match given_up {
            Ok(()) => Outcome::Done,
            Err(error) => {
                tracing::warn!(%task_id, error = %display_chain(&error), "finalizing a task failed; retrying");
                Outcome::Retry
            }
        }
    }

    async fn try_give_up(&self, task_id: TaskId) -> Result<(), OrchestrationError> {
        let mut tx = self.begin().await.doing("starting a finalization")?;
        let metadata = serde_json::json!({
            "reason": "blocked by permanent failures; no operator resolved it"
        });
        let applied = transition(
            &mut tx,
            TaskTransition {
                task_id,
                expected: TaskState::BlockedByFailures,
                event: TaskEvent::GiveUp,
                processor_id: Some(self.processor_id),
                metadata: Some(&metadata),
            },
        )
        .await;
        let applied = match applied {
            Ok(applied) => applied,
            // Already finalized, or resolved otherwise: nothing to do.
            Err(TaskTransitionError::Conflict { .. } | TaskTransitionError::NotFound { .. }) => {
                return Ok(());
            }
            Err(error) => return Err(error).doing_with(|| format!("finalizing task {task_id}")),
        };
        let task = self.task(&mut tx, task_id).await?;
        let mut outbox = self.messaging.outbox();
        self.reply_finished(&task, applied.to, &mut outbox).await?;
        self.commit(outbox, tx, "committing a finalization")
            .await?
            .finish()
            .await
            .doing("sending after committing a finalization")?;
        // This transaction applied `give_up`, so it alone counts the failure.
        self.finished(&task, applied.to);
        self.tasks.forget(task_id);
        Ok(())
    }
}

/// Whether a creation failure may pass on a later try: a transient database error, or a
/// duplicate that vanished before it could be read.
fn may_pass(error: &CreateTaskError) -> bool {
    match error {
        CreateTaskError::Database(error) => database_may_pass(error),
        CreateTaskError::IdentityRace { .. } => true,
        _ => false,
    }
}
