//! The requester's side of orchestration: [`Submitter`] sends task requests and follows them
//! to their end, whichever orchestrator process does the work.
//!
//! Each submitter has a reply queue of its own (`replies_<id>`), named in every request it
//! sends. Orchestration answers there: `finished` (with the task's id) in the transaction that
//! moves the task to a terminal state, `refused` for a request that can never become a task,
//! and `created` for a request whose task existed already (a duplicate, or a redelivery), in
//! the transaction that finds it. A new task gets no `created` reply: its requester learns its
//! id with `finished`, one message per task instead of two. The replies are delivered at least
//! once; the submitter reports each request's events once. The database is the safety net: every `safety_interval`, the submitter reads the
//! tasks of its unanswered requests (by request id) and of its unfinished tasks (by id), so a
//! reply lost between a commit and its send (RabbitMQ, a crash) or sent elsewhere (a request
//! deduplicated into another requester's task) delays an event, never loses it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tasker_db::task::{self, TaskRecord};
use tasker_messaging::envelope::Payload;
use tasker_messaging::messages::{TaskReply, TaskReplyMessage, TaskRequestMessage};
use tasker_messaging::outbox::Messaging;
use tasker_messaging::pgmq::PgmqQueue;
use tasker_messaging::queue::MessageQueue;
use tasker_messaging::queue_name::{QueueName, reply_queue, task_requests_queue};
use tasker_messaging::retry::{RetryPolicy, within};
use tasker_messaging::signal::Subscription;
use tasker_models::ids::{ProcessorId, TaskId};
use tasker_models::request::TaskRequest;
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::{Doing as _, OrchestrationError, display_chain};

/// Sends `requests` to orchestration in one batch, asking for replies on `reply_to` if given;
/// returns their request ids, in order. Without a reply queue nobody is told what becomes of
/// them (fire and forget).
///
/// A send that fails transiently (a terminated connection, a broker reconnecting) or gets no
/// answer within `timeout` is retried by `retry`; a retried batch keeps its request ids, so a
/// request that did arrive the first time is recognised as the same request, not a duplicate.
pub async fn send_requests(
    queue: &dyn MessageQueue,
    requests: &[TaskRequest],
    reply_to: Option<&QueueName>,
    retry: &RetryPolicy,
    timeout: Duration,
) -> Result<Vec<Uuid>, OrchestrationError> {
    let mut ids = Vec::with_capacity(requests.len());
    let mut payloads = Vec::with_capacity(requests.len());
    // The caller's span (if traced) is linked from each task's first span.
    let traceparent = tasker_metrics::trace::current_traceparent();
    for request in requests {
        let message = TaskRequestMessage {
            request_id: Uuid::now_v7(),
            requested_at: Utc::now(),
            reply_to: reply_to.cloned(),
            request: request.clone(),
        };
        payloads.push(
            Payload::encode_traced(&message, traceparent.as_deref())
                .doing("encoding a task request")?,
        );
        ids.push(message.request_id);
    }
    if !payloads.is_empty() {
        let requests_queue = task_requests_queue();
        retry
            .run(
                "sending task requests",
                OrchestrationError::is_transient,
                || async {
                    within(timeout, queue.send_batch(&requests_queue, &payloads))
                        .await
                        .doing("sending task requests")?
                        .doing("sending task requests")
                },
            )
            .await?;
    }
    Ok(ids)
}

/// How a submitter waits.
#[derive(Debug, Clone)]
pub struct SubmitterSettings {
    /// Names the submitter's reply queue.
    pub process_id: ProcessorId,
    /// How often the database is read for requests and tasks whose replies did not come.
    pub safety_interval: Duration,
    /// How long a received reply stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// How sends of requests are retried after a transient failure.
    pub retry: RetryPolicy,
    /// The longest a send, or a read of the replies or the database, may wait on the
    /// database and the broker before it fails as transient.
    pub operation_timeout: Duration,
}

/// What became of a submitted request; each is reported once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionEvent {
    /// The request's task exists, before it finished: reported for a request whose task
    /// existed already, and by the database safety net; a new task's id comes with
    /// [`SubmissionEvent::Finished`].
    Created {
        /// The request.
        request_id: Uuid,
        /// Its task.
        task_id: TaskId,
        /// Another request created the task (same identity): nothing runs for this one.
        duplicate: bool,
    },
    /// The request can never become a task.
    Refused {
        /// The request.
        request_id: Uuid,
        /// Why.
        reason: String,
    },
    /// The request's task reached a terminal state.
    Finished {
        /// The request.
        request_id: Uuid,
        /// Its task.
        task_id: TaskId,
        /// The terminal state.
        state: TaskState,
    },
}

#[derive(Debug)]
struct Pending {
    task_id: Option<TaskId>,
}

/// Sends task requests and follows them to their end; see the module docs.
#[derive(Debug)]
pub struct Submitter {
    pool: PgPool,
    queue: Arc<dyn MessageQueue>,
    /// On PGMQ, replies are popped (read and deleted in one statement).
    pgmq: Option<Arc<PgmqQueue>>,
    replies: QueueName,
    subscription: Subscription,
    settings: SubmitterSettings,
    /// Requests not finished (nor refused), by request id.
    pending: HashMap<Uuid, Pending>,
    /// The pending requests' tasks.
    by_task: HashMap<TaskId, Uuid>,
    last_check: Instant,
}

impl Submitter {
    /// Creates the submitter's reply queue and subscribes to it.
    pub async fn open(
        pool: PgPool,
        messaging: &Messaging,
        settings: SubmitterSettings,
    ) -> Result<Self, OrchestrationError> {
        let queue = Arc::clone(&messaging.queue);
        let replies = reply_queue(settings.process_id.into_uuid());
        for name in [&replies, &task_requests_queue()] {
            queue
                .ensure_queue(name)
                .await
                .doing_with(|| format!("creating queue {name}"))?;
        }
        let subscription = queue
            .subscribe(std::slice::from_ref(&replies))
            .await
            .doing("subscribing to the reply queue")?;
        Ok(Self {
            pool,
            queue,
            pgmq: messaging.pgmq.clone(),
            replies,
            subscription,
            settings,
            pending: HashMap::new(),
            by_task: HashMap::new(),
            last_check: Instant::now(),
        })
    }

    /// The queue replies come to.
    pub fn reply_queue(&self) -> &QueueName {
        &self.replies
    }

    /// Requests sent and not yet finished or refused.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sends `requests` in one batch; returns their request ids, in order.
    pub async fn submit(
        &mut self,
        requests: &[TaskRequest],
    ) -> Result<Vec<Uuid>, OrchestrationError> {
        let ids = send_requests(
            &*self.queue,
            requests,
            Some(&self.replies),
            &self.settings.retry,
            self.settings.operation_timeout,
        )
        .await?;
        for id in &ids {
            self.pending.insert(*id, Pending { task_id: None });
        }
        Ok(ids)
    }

    /// Waits up to `wait` for news of the pending requests and returns it (empty if none came
    /// in time). Replies are read as they arrive; the database is read every
    /// `safety_interval`.
    pub async fn next_events(
        &mut self,
        wait: Duration,
    ) -> Result<Vec<SubmissionEvent>, OrchestrationError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // A transient failure (a terminated connection) leaves the replies where they are
            // and the database as it is: they are read on the next round.
            let limit = self.settings.operation_timeout;
            let read = within(limit, self.read_replies())
                .await
                .doing("reading replies")
                .and_then(|read| read);
            let mut events = match read {
                Ok(events) => events,
                Err(error) if error.is_transient() => {
                    tracing::warn!(error = %display_chain(&error), "reading replies failed; retrying");
                    Vec::new()
                }
                Err(error) => return Err(error),
            };
            if self.last_check.elapsed() >= self.settings.safety_interval
                && !self.pending.is_empty()
            {
                let checked = within(limit, self.check_database())
                    .await
                    .doing("reading the database for missing replies")
                    .and_then(|checked| checked);
                match checked {
                    Ok(found) => events.extend(found),
                    Err(error) if error.is_transient() => {
                        tracing::warn!(error = %display_chain(&error), "reading the database failed; retrying");
                    }
                    Err(error) => return Err(error),
                }
            }
            if !events.is_empty() {
                return Ok(events);
            }
            let check_at =
                tokio::time::Instant::from_std(self.last_check + self.settings.safety_interval);
            tokio::select! {
                signal = self.subscription.recv() => {
                    if signal.is_none() {
                        return Err(OrchestrationError::invariant(
                            "the messaging backend closed the reply subscription",
                        ));
                    }
                }
                () = tokio::time::sleep_until(check_at.min(deadline)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Deletes the reply queue. Replies still to come for pending requests are lost; their
    /// tasks run on regardless.
    pub async fn close(self) -> Result<(), OrchestrationError> {
        self.queue
            .delete_queue(&self.replies)
            .await
            .doing("deleting the reply queue")
    }

    async fn read_replies(&mut self) -> Result<Vec<SubmissionEvent>, OrchestrationError> {
        let mut events = Vec::new();
        loop {
            let received = match &self.pgmq {
                Some(pgmq) => {
                    let mut conn = self
                        .pool
                        .acquire()
                        .await
                        .doing("acquiring a connection for replies")?;
                    // Its own transaction: the replies are gone once read.
                    pgmq.pop_in(&mut conn, &self.replies, 100)
                        .await
                        .doing("receiving replies")?
                }
                None => self
                    .queue
                    .receive(&self.replies, 100, self.settings.visibility_timeout)
                    .await
                    .doing("receiving replies")?,
            };
            let count = received.len();
            let mut receipts = Vec::with_capacity(count);
            for message in received {
                match message.decode::<TaskReplyMessage>() {
                    Ok(reply) => events.extend(self.apply(reply.request_id, reply.reply)),
                    Err(error) => {
                        tracing::warn!(reason = %error.reason(), "ignoring an undecodable reply");
                    }
                }
                receipts.push(message.receipt().clone());
            }
            if !receipts.is_empty() && self.pgmq.is_none() {
                // Not acknowledged: delivered again, and ignored as a repeat.
                if let Err(error) = self.queue.ack_batch(&receipts).await {
                    tracing::debug!(
                        error = &error as &dyn std::error::Error,
                        "acknowledging replies failed"
                    );
                }
            }
            if count < 100 {
                return Ok(events);
            }
        }
    }

    /// Turns a reply into an event, unless it repeats one already reported.
    fn apply(&mut self, request_id: Uuid, reply: TaskReply) -> Option<SubmissionEvent> {
        let pending = self.pending.get_mut(&request_id)?;
        match reply {
            TaskReply::Created { task_id, duplicate } => {
                if pending.task_id.is_some() {
                    return None;
                }
                pending.task_id = Some(task_id);
                self.by_task.insert(task_id, request_id);
                Some(SubmissionEvent::Created {
                    request_id,
                    task_id,
                    duplicate,
                })
            }
            TaskReply::Refused { reason } => {
                self.pending.remove(&request_id);
                Some(SubmissionEvent::Refused { request_id, reason })
            }
            TaskReply::Finished { task_id, state } => {
                self.pending.remove(&request_id);
                self.by_task.remove(&task_id);
                Some(SubmissionEvent::Finished {
                    request_id,
                    task_id,
                    state,
                })
            }
        }
    }

    /// The safety net: what the database knows of the pending requests and their tasks.
    async fn check_database(&mut self) -> Result<Vec<SubmissionEvent>, OrchestrationError> {
        self.last_check = Instant::now();
        let unanswered: Vec<Uuid> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.task_id.is_none())
            .map(|(id, _)| *id)
            .collect();
        let mut events = Vec::new();
        if !unanswered.is_empty() {
            let found = task::by_request_ids(&self.pool, &unanswered)
                .await
                .doing("reading the tasks of unanswered requests")?;
            for record in found {
                if let Some(request_id) = record.request_uuid {
                    events.extend(self.found(request_id, &record, false));
                }
            }
        }
        let tasks: Vec<TaskId> = self.by_task.keys().copied().collect();
        if !tasks.is_empty() {
            let found = task::get_many(&self.pool, &tasks)
                .await
                .doing("reading the states of pending tasks")?;
            for record in found {
                if let Some(request_id) = self.by_task.get(&record.task_id).copied() {
                    events.extend(self.found(request_id, &record, true));
                }
            }
        }
        if !events.is_empty() {
            tracing::debug!(
                events = events.len(),
                "the database told what replies did not"
            );
        }
        Ok(events)
    }

    /// Events for what the database shows of a request's task.
    fn found(
        &mut self,
        request_id: Uuid,
        record: &TaskRecord,
        known: bool,
    ) -> Vec<SubmissionEvent> {
        let mut events = Vec::new();
        if !known {
            events.extend(self.apply(
                request_id,
                TaskReply::Created {
                    task_id: record.task_id,
                    duplicate: false,
                },
            ));
        }
        if record.state.is_terminal() {
            events.extend(self.apply(
                request_id,
                TaskReply::Finished {
                    task_id: record.task_id,
                    state: record.state,
                },
            ));
        }
        events
    }
}
