//! A worker: receives step messages in batches, starts the steps (`enqueued → in_progress`),
//! runs their handlers (resolved through the registry's resolver chain when the templates were
//! registered), stores the results (`in_progress → enqueued_for_orchestration`), sends the
//! result messages and only then acknowledges the step messages.
//!
//! While handlers run, the worker extends its messages' visibility, and the process renews its
//! lease (`tasker_db::lease`). A message delivered again for a step still `in_progress` is
//! declared lost (`in_progress → error`, retryable, no backoff, on orchestration's behalf, and
//! reported) only when the process that started the attempt holds no live lease: it died
//! mid-step. That is the one case in which a handler runs twice for one successful step
//! execution. A live holder's attempt is left to it (see [`Worker::not_started`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Doing as _, WorkerError};
use futures_util::FutureExt as _;
use serde_json::Value;
use sqlx::PgPool;
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepRecord, StepTransitionError, transition_batch};
use tasker_messaging::messages::StepMessage;
use tasker_messaging::queue::{Receipt, ReceivedMessage};
use tasker_messaging::queue_name::QueueName;
use tasker_metrics::trace;
use tasker_models::ids::{ProcessorId, StepId, TaskId};
use tasker_registry::handler::{PublishedEvent, StepFailure, StepOutcome};
use tasker_state::{StepEvent, StepState};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use tasker_db::lease::Lease;
use tasker_db::step::StepTransition;
use tasker_db::task::{TaskFacts, TaskFactsCache};
use tasker_messaging::outbox::{AfterCommit, Messaging, Outbox};
use tasker_messaging::retry::{RetryPolicy, within};
use tasker_messaging::shutdown::Shutdown;

use crate::catalog::{Catalog, TemplateEntry};

use self::handler::{panic_message, step_context, stored_result};

mod handler;
mod redelivered;
mod store;

use self::redelivered::NotStarted;

/// How workers work.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This process: recorded on the steps its workers start and the transitions they write.
    pub process_id: ProcessorId,
    /// Workers (concurrent step batches) in the process.
    pub workers: usize,
    /// How long shutdown waits for running handlers before aborting them (their messages
    /// come back after the visibility timeout).
    pub shutdown_grace: Duration,
    /// Messages taken per receive.
    pub batch: u16,
    /// How long a received message stays invisible; extended while its handler runs.
    pub visibility_timeout: Duration,
    /// The safety-net poll (redeliveries after a visibility timeout send no signal).
    pub poll_interval: Duration,
    /// A handler running longer than its step's `timeout_seconds` (or this, when the step has
    /// none) fails retryably.
    pub default_step_timeout: Duration,
    /// The backoff parameters the step transitions' guards use.
    pub backoff: BackoffParams,
    /// How a transient failure to store results is retried.
    pub retry: RetryPolicy,
    /// How long the process's lease lasts unless renewed: a step message delivered again for
    /// an attempt of this process is left to it while its lease lives, and the attempt is
    /// declared lost only after the lease expired.
    pub lease_ttl: Duration,
    /// How often the lease is renewed (well below `lease_ttl`).
    pub lease_renewal: Duration,
    /// The longest receiving and starting a batch, or one try at storing its results, may
    /// wait on the database and the broker before it fails as transient.
    pub operation_timeout: Duration,
    /// Where workers record step durations by handler, database operation latencies and
    /// connection waits ([`Metrics::disabled`](tasker_metrics::instruments::Metrics::disabled)
    /// for none).
    pub metrics: tasker_metrics::instruments::Metrics,
}

/// What every worker of the process shares.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    pub(crate) pool: PgPool,
    pub(crate) messaging: Messaging,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) tasks: TaskFactsCache,
    pub(crate) settings: WorkerSettings,
    /// Wakes one idle worker: the queues have messages.
    pub(crate) wake: Notify,
    /// The steps this process's workers hold (started, not yet stored), so that a message
    /// redelivered for one of them is told from a step this process lost track of.
    pub(crate) running: Mutex<HashSet<StepId>>,
    /// Results of handlers that ran here but could not be stored (the database failed past
    /// the retries): when the step's message comes back to this process, the kept result is
    /// stored instead of running the handler again.
    pub(crate) unstored: Mutex<HashMap<StepId, (Instant, StepResult)>>,
    /// This incarnation's lease: an attempt started under this process's id by an earlier
    /// incarnation (a process restarted with the same configured id) is not its own.
    pub(crate) lease: Lease,
}

/// The steps of a batch a worker holds: in [`WorkerShared::running`] while it lives.
struct Holding<'a> {
    shared: &'a WorkerShared,
    steps: Vec<StepId>,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let mut running = self.shared.running();
        for step in &self.steps {
            running.remove(step);
        }
    }
}

impl WorkerShared {
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<StepId>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks `steps` as held by this process.
    fn hold(&self, steps: impl IntoIterator<Item = StepId>) {
        self.running().extend(steps);
    }

    fn unstored(&self) -> std::sync::MutexGuard<'_, HashMap<StepId, (Instant, StepResult)>> {
        self.unstored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a handler's run gave, to store: the result and the domain events its outcome keeps
/// (written in the transaction that stores the result, or not at all).
#[derive(Debug, Clone)]
pub(crate) struct StepResult {
    pub(crate) value: Value,
    pub(crate) events: Vec<PublishedEvent>,
}

/// The steps a batch started, with the rows of their tasks' steps.
struct Taken {
    started: Vec<Started>,
    steps: HashMap<TaskId, Vec<StepRecord>>,
}

/// The connection a batch is started or stored on: a transaction (that the messages join, on
/// PGMQ), or a plain connection whose statements commit on their own.
enum BatchConn {
    Transaction(sqlx::Transaction<'static, sqlx::Postgres>),
    Connection(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl BatchConn {
    fn get(&mut self) -> &mut sqlx::PgConnection {
        match self {
            BatchConn::Transaction(tx) => tx,
            BatchConn::Connection(conn) => conn,
        }
    }

    /// Commits (sending and acknowledging inside the transaction), or sends and acknowledges
    /// on the plain connection.
    async fn finish(self, outbox: Outbox) -> Result<(), WorkerError> {
        self.finish_deferred(outbox)
            .await?
            .finish()
            .await
            .doing("sending after a commit")
    }

    /// [`BatchConn::finish`], leaving the sends and acknowledgements that follow a commit
    /// (RabbitMQ, in memory) to the caller.
    async fn finish_deferred(self, outbox: Outbox) -> Result<AfterCommit, WorkerError> {
        match self {
            BatchConn::Transaction(tx) => outbox.commit_deferred(tx).await.doing("committing"),
            BatchConn::Connection(mut conn) => {
                outbox.send_deferred(&mut conn).await.doing("sending")
            }
        }
    }
}

/// A step this batch started.
struct Started {
    message: ReceivedMessage,
    step_message: StepMessage,
    /// The `traceparent` of the orchestrator's `step.enqueue` span, if it traced the step.
    traceparent: Option<String>,
    task: Arc<TaskFacts>,
    entry: Arc<TemplateEntry>,
}

/// Relays the backend's "queue has messages" signals for `queue` to the workers, waking one
/// idle worker per signal, until shutdown.
pub(crate) async fn relay_signals(
    shared: Arc<WorkerShared>,
    queue: QueueName,
    mut shutdown: Shutdown,
) -> Result<(), WorkerError> {
    let mut subscription = shared
        .messaging
        .queue
        .subscribe(std::slice::from_ref(&queue))
        .await
        .doing_with(|| format!("subscribing to {queue}"))?;
    loop {
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            signal = subscription.recv() => match signal {
                Some(_) => shared.wake.notify_one(),
                None => {
                    return Err(WorkerError::invariant(format!(
                        "the messaging backend closed the subscription to {queue}"
                    )));
                }
            },
        }
    }
}

/// One worker.
#[derive(Debug)]
pub(crate) struct Worker {
    shared: Arc<WorkerShared>,
    /// Recorded as `worker_id` on the steps it starts (the process's id).
    pub(crate) id: ProcessorId,
    queues: Vec<QueueName>,
}

impl Worker {
    /// A worker of every namespace of the catalog.
    pub(crate) fn new(shared: Arc<WorkerShared>) -> Self {
        let queues = shared.catalog.worker_queues();
        Self {
            id: shared.settings.process_id,
            shared,
            queues,
        }
    }

    /// Receives and runs steps until shutdown.
    ///
    /// An idle worker waits to be woken ([`relay_signals`] wakes one per "queue has messages"
    /// signal) or for its safety-net poll. A worker that receives a full batch wakes another
    /// before running it, so readers grow with the backlog and an idle queue is read by one
    /// worker per signal, not by the whole pool.
    pub(crate) async fn run(self, mut shutdown: Shutdown) -> Result<(), WorkerError> {
        let shared = &self.shared;
        // The sends and acknowledgements of the previous batch (RabbitMQ, in memory) complete
        // while the next one runs: publisher confirms are not waited for in turn. At most one
        // batch's are in flight; they are dropped with the worker, as a crash would.
        let mut sending = JoinSet::new();
        loop {
            for queue in &self.queues {
                loop {
                    if shutdown.is_triggered() {
                        while sending.join_next().await.is_some() {}
                        return Ok(());
                    }
                    let taking = within(shared.settings.operation_timeout, self.take(queue))
                        .await
                        .doing_with(|| format!("receiving and starting steps from {queue}"))
                        .and_then(|taken| taken);
                    let (count, taken) = match taking {
                        Ok(taken) => taken,
                        Err(error) => {
                            // Messages read in a transaction that failed are visible again;
                            // others come back after their visibility timeout.
                            tracing::warn!(%queue, error = format!("{error:#}"), "taking steps failed");
                            break;
                        }
                    };
                    if let Some(taken) = taken {
                        let span = tracing::info_span!(
                            "worker.batch",
                            messaging.source.name = queue.as_str(),
                            steps = taken.started.len(),
                        );
                        match self.execute(taken).instrument(span).await {
                            Ok(after) if after.is_empty() => {}
                            Ok(after) => {
                                while sending.join_next().await.is_some() {}
                                let limit = shared.settings.operation_timeout;
                                sending.spawn(async move {
                                    // Not sent: the redrive sends it again; not acknowledged:
                                    // it comes back and finds its result stored.
                                    if let Err(error) = within(limit, after.finish())
                                        .await
                                        .doing("sending step results")
                                        .and_then(|sent| sent.doing("sending step results"))
                                    {
                                        tracing::warn!(
                                            error = format!("{error:#}"),
                                            "sending step results failed"
                                        );
                                    }
                                });
                            }
                            // Unacknowledged messages come back after their visibility timeout.
                            Err(error) => tracing::warn!(
                                error = format!("{error:#}"),
                                "a batch of steps failed"
                            ),
                        }
                    }
                    if count < usize::from(shared.settings.batch) {
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.wait() => {
                    while sending.join_next().await.is_some() {}
                    return Ok(());
                }
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(shared.settings.poll_interval) => {}
            }
        }
    }

    /// Receives a batch of step messages and starts their steps (`enqueued → in_progress`), in
    /// one transaction on PGMQ (the read joins it, so a failure leaves the messages visible,
    /// and the transaction commits without waiting for the WAL flush: losing it in a crash
    /// only means the steps are started again). Messages whose step cannot be started are
    /// settled here. Returns how many messages were received and what was started.
    async fn take(&self, queue: &QueueName) -> Result<(usize, Option<Taken>), WorkerError> {
        let shared = &self.shared;
        let (batch, visibility) = (shared.settings.batch, shared.settings.visibility_timeout);
        let (mut conn, received) = match &shared.messaging.pgmq {
            Some(pgmq) => {
                let waited = Instant::now();
                let mut tx = shared.pool.begin().await.doing("starting a transaction")?;
                shared.settings.metrics.db.acquire_wait(waited.elapsed());
                let received = pgmq
                    .receive_in(&mut tx, queue, batch, visibility)
                    .await
                    .doing("receiving steps")?;
                (BatchConn::Transaction(tx), received)
            }
            None => {
                let received = shared
                    .messaging
                    .queue
                    .receive(queue, batch, visibility)
                    .await
                    .doing("receiving steps")?;
                if received.is_empty() {
                    return Ok((0, None));
                }
                let waited = Instant::now();
                let conn = shared
                    .pool
                    .acquire()
                    .await
                    .doing("acquiring a connection")?;
                shared.settings.metrics.db.acquire_wait(waited.elapsed());
                (BatchConn::Connection(conn), received)
            }
        };
        let count = received.len();
        if count == 0 {
            return Ok((0, None));
        }
        if count >= usize::from(batch) {
            shared.wake.notify_one();
        }
        let began = Instant::now();
        // Dead-lettered after the transaction: on PGMQ its read holds the messages' rows.
        let mut dead = Vec::new();
        let mut candidates = Vec::with_capacity(received.len());
        for message in received {
            let (step_message, traceparent) = match message.decode_traced::<StepMessage>() {
                Ok(decoded) => (decoded.message, decoded.traceparent),
                Err(error) => {
                    dead.push((message, error.reason()));
                    continue;
                }
            };
            let task_id = step_message.task_id;
            // A database failure fails the batch: its messages come back.
            let Some(task) = shared
                .tasks
                .find(conn.get(), task_id)
                .await
                .doing_with(|| format!("reading task {task_id}"))?
            else {
                dead.push((message, format!("task {task_id} does not exist")));
                continue;
            };
            let Some(entry) = shared.catalog.get(task.named_task_id).cloned() else {
                let reason = format!(
                    "task {} runs {}, which this worker has no handlers for",
                    task.task_id, task.template
                );
                dead.push((message, reason));
                continue;
            };
            candidates.push(Started {
                message,
                step_message,
                traceparent,
                task,
                entry,
            });
        }
        // Two messages for one step in one batch (a message sent again by the redrive while
        // the first was still queued): one statement cannot move a step twice, so the second
        // is a duplicate, acknowledged below with the batch.
        let mut seen = std::collections::HashSet::new();
        let mut duplicates = Vec::new();
        candidates.retain(|candidate| {
            let first = seen.insert(candidate.step_message.step_id);
            if !first {
                duplicates.push(candidate.message.receipt().clone());
            }
            first
        });

        // Start every step in one statement; the compare-and-set picks out duplicates.
        let starts = candidates
            .iter()
            .map(|started| {
                StepTransition::new(
                    started.step_message.step_id,
                    StepState::Enqueued,
                    StepEvent::Start {
                        worker_id: self.id.into_uuid(),
                    },
                )
            })
            .collect::<Vec<_>>();
        let outcomes = if starts.is_empty() {
            Vec::new()
        } else {
            let transitioned = Instant::now();
            let outcomes =
                transition_batch(conn.get(), starts, Some(self.id), shared.settings.backoff)
                    .await
                    .doing("starting steps")?;
            shared
                .settings
                .metrics
                .db
                .operation("start_steps", transitioned.elapsed());
            outcomes
        };
        let mut started = Vec::with_capacity(candidates.len());
        // Messages whose step was not started are acknowledged with the transaction (after
        // any result message they cause is sent).
        let mut outbox = shared.messaging.outbox();
        for receipt in duplicates {
            outbox.ack(receipt);
        }
        for (candidate, outcome) in candidates.into_iter().zip(outcomes) {
            match outcome {
                Ok(_) => started.push(candidate),
                Err(StepTransitionError::Conflict {
                    actual, step_id, ..
                }) => match self
                    .not_started(conn.get(), &mut outbox, &candidate, step_id, actual)
                    .await?
                {
                    NotStarted::Run => started.push(candidate),
                    NotStarted::Settled => {}
                    // Not acknowledged: it comes back after its visibility timeout.
                    NotStarted::Leave => {}
                },
                Err(StepTransitionError::NotFound { step_id }) => {
                    dead.push((candidate.message, format!("step {step_id} does not exist")));
                }
                Err(error) => {
                    tracing::warn!(error = %error, "a step could not be started");
                    outbox.ack(candidate.message.receipt().clone());
                }
            }
        }

        // Inputs, attempts and the dependencies' results, for every started step at once.
        let mut task_ids: Vec<TaskId> = started.iter().map(|s| s.task.task_id).collect();
        task_ids.sort();
        task_ids.dedup();
        let steps = if task_ids.is_empty() {
            HashMap::new()
        } else {
            step::for_tasks(conn.get(), &task_ids)
                .await
                .doing("reading the started steps")?
        };
        conn.finish(outbox).await?;
        for (message, reason) in dead {
            self.dead_letter(&message, reason).await;
        }
        tracing::debug!(
            steps = started.len(),
            elapsed_us = began.elapsed().as_micros() as u64,
            "started steps"
        );
        shared.hold(started.iter().map(|item| item.step_message.step_id));
        let taken = (!started.is_empty()).then_some(Taken { started, steps });
        Ok((count, taken))
    }

    /// Runs the handlers of started steps concurrently (keeping their messages invisible
    /// meanwhile), then stores every result, sends the result messages and acknowledges the
    /// step messages in one transaction.
    async fn execute(&self, taken: Taken) -> Result<AfterCommit, WorkerError> {
        let shared = &self.shared;
        let began = Instant::now();
        let Taken { started, steps } = taken;
        // Held until the batch is stored, or given up (the guard forgets them on every path).
        let _holding = Holding {
            shared,
            steps: started
                .iter()
                .map(|item| item.step_message.step_id)
                .collect(),
        };
        let mut runs = JoinSet::new();
        let mut receipts: HashMap<usize, Receipt> = HashMap::new();
        let mut results = BTreeMap::new();
        // The `traceparent` of each step's `step.execute` span, for its result message.
        let mut traceparents: HashMap<usize, String> = HashMap::new();
        for (index, item) in started.iter().enumerate() {
            let step_id = item.step_message.step_id;
            let task_steps = steps.get(&item.task.task_id).map_or(&[][..], Vec::as_slice);
            let Some(record) = task_steps.iter().find(|s| s.step_id == step_id) else {
                return Err(WorkerError::invariant(format!(
                    "started step {step_id} vanished"
                )));
            };
            let (context, timeout) = step_context(item, record, task_steps)?;
            let Some(handler) = item.entry.handlers.get(record.name.as_str()) else {
                return Err(WorkerError::invariant(format!(
                    "template {} has no handler for step {}",
                    item.entry.key(),
                    record.name
                )));
            };
            receipts.insert(index, item.message.receipt().clone());
            // Ran here before, and its result could not be stored: store that result.
            if let Some((_, kept)) = shared.unstored().remove(&step_id) {
                tracing::info!(%step_id, "storing a result kept from a failed store");
                results.insert(index, kept);
                continue;
            }
            let callable = handler.callable().to_owned();
            let handler = Arc::clone(handler.handler());
            let timeout = timeout.unwrap_or(shared.settings.default_step_timeout);
            let will_retry = context.has_attempts_left();
            let metrics = shared.settings.metrics.orchestration.clone();
            let span = execute_span(item, record, context.attempt);
            if let Some(traceparent) = trace::traceparent(&span) {
                traceparents.insert(index, traceparent);
            }
            runs.spawn(
                async move {
                    let started_at = Instant::now();
                    let run =
                        AssertUnwindSafe(tokio::time::timeout(timeout, handler.call(&context)));
                    let outcome = match run.catch_unwind().await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(_)) => StepOutcome::retryable(format!(
                            "the handler did not finish within {timeout:?}"
                        )),
                        // A panicking handler is a bug in the handler: running it again cannot help.
                        Err(panic) => StepOutcome::permanent(
                            StepFailure::new(format!(
                                "the handler panicked: {}",
                                panic_message(&*panic)
                            ))
                            .with_kind("panic"),
                        ),
                    };
                    let elapsed = started_at.elapsed();
                    // Every run counts, whatever its outcome (a timeout or a panic included).
                    metrics.step_duration(&callable, elapsed);
                    // Published before a timeout or panic too: `failure` and `always` events stay.
                    let events = context.events.take(&outcome, will_retry);
                    (index, outcome, events, elapsed, context.attempt)
                }
                .instrument(span),
            );
        }

        // Wait for the handlers, keeping the messages invisible meanwhile.
        let heartbeat = shared.settings.visibility_timeout / 2;
        let mut next_beat = tokio::time::Instant::now() + heartbeat;
        while !runs.is_empty() {
            tokio::select! {
                joined = runs.join_next() => match joined {
                    Some(Ok((index, outcome, events, elapsed, attempt))) => {
                        let value = stored_result(&outcome, elapsed, attempt, self.id);
                        results.insert(index, StepResult { value, events });
                    }
                    Some(Err(error)) => {
                        return Err(error).doing("a step handler task was cancelled");
                    }
                    None => {}
                },
                () = tokio::time::sleep_until(next_beat) => {
                    next_beat += heartbeat;
                    for (index, receipt) in &mut receipts {
                        if results.contains_key(index) {
                            continue;
                        }
                        match shared.messaging.queue.extend_visibility(receipt, heartbeat * 2).await {
                            Ok(extended) => *receipt = extended,
                            Err(error) => tracing::warn!(error = &error as &dyn std::error::Error, "extending a step message's visibility failed"),
                        }
                    }
                }
            }
        }

        // Store every result, send its message and acknowledge every step message of the
        // batch in one transaction on PGMQ; elsewhere the results are stored in one statement
        // (its own transaction) and the messages follow it.
        //
        // On PGMQ the transaction commits without waiting for the WAL flush, as the one that
        // started the steps did: everything it writes (the results, their messages, the
        // acknowledgements) lives in the same database, so a server crash that loses it loses
        // all of it, and the step messages come back, find their steps `in_progress` and are
        // retried as a lost attempt, the documented redelivery. Whoever reads the results
        // commits synchronously, which flushes this commit too. Elsewhere the messages leave
        // the database, so the commit must be durable before they are sent and acknowledged.
        // A store that fails transiently (a terminated connection) is tried again: the worker
        // is alive, and its results must not be taken for a lost worker's.
        //
        // When the retries are used up, the results are kept and the messages released at
        // once: the process's lease keeps other processes from declaring the attempts lost,
        // and a message back here stores its kept result without running the handler again.
        let stored = shared
            .settings
            .retry
            .run(
                "storing step results",
                WorkerError::is_transient,
                || async {
                    within(
                        shared.settings.operation_timeout,
                        self.store(&started, &results, &receipts, &traceparents),
                    )
                    .await
                    .doing("storing step results")?
                },
            )
            .await;
        let (after, stored) = match stored {
            Ok(stored) => stored,
            Err(error) if error.is_transient() => {
                self.keep(&started, results, &receipts).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        tracing::debug!(
            steps = started.len(),
            stored,
            elapsed_us = began.elapsed().as_micros() as u64,
            "stored step results"
        );
        Ok(after)
    }
}

/// `step.execute`: one step's handler run, the child of the orchestrator's `step.enqueue` span
/// that sent its message (or of its task's trace root). A disabled span with tracing off.
fn execute_span(item: &Started, record: &StepRecord, attempt: u32) -> tracing::Span {
    if !trace::is_enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "step.execute",
        tasker.namespace = item.task.namespace.as_str(),
        tasker.template = item.task.template.as_str(),
        tasker.task_id = %item.task.task_id,
        tasker.step_id = %record.step_id,
        tasker.step_name = record.name.as_str(),
        tasker.attempt = attempt,
    );
    trace::follow(
        &span,
        item.task.task_id.into_uuid().into_bytes(),
        item.traceparent.as_deref(),
    );
    span
}
