//! Step results. On PGMQ, result loops take batches out of the queue inside the transaction
//! that records them and settles their tasks (`pop_in`: no visibility timeout, no
//! acknowledgement; a rollback puts them back). Elsewhere a dispatcher receives them (on
//! signals, with a poll as safety net) and routes each to the shard of its task, and each shard
//! records a batch and settles its tasks in one transaction, then acknowledges the messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::PgConnection;
use tasker_db::step::{self, StepTransition, StepTransitionError, transition_batch};
use tasker_messaging::messages::StepResultMessage;
use tasker_messaging::outbox::{AfterCommit, Outbox};
use tasker_messaging::pgmq::PgmqQueue;
use tasker_messaging::queue::{Nack, ReceivedMessage};
use tasker_messaging::queue_name::{QueueName, step_results_queue};
use tasker_messaging::retry::within;
use tasker_messaging::shutdown::Shutdown;
use tasker_models::ids::{StepId, TaskId};
use tasker_state::{StepEvent, StepState, TaskEvent, TaskState};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::error::{Doing as _, OrchestrationError};
use crate::orchestrator::{Orchestrator, Woken, wait_for_work};
use crate::settle::{Settled, Unsettled};
use crate::spans;

/// A decoded result message with its delivery.
#[derive(Debug)]
struct Delivery {
    message: StepResultMessage,
    received: ReceivedMessage,
}

/// Deliveries a shard's channel holds before the dispatcher waits.
const SHARD_BUFFER: usize = 256;

impl Orchestrator {
    /// Consumes step results until shutdown: on PGMQ, `shards` loops each take batches out of
    /// the queue inside the transaction that records them; elsewhere a dispatcher receives
    /// them and routes them to the shards.
    pub(crate) async fn run_results(
        self: Arc<Self>,
        shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let Some(pgmq) = self.messaging.pgmq.clone() else {
            return self.dispatch_results(shutdown).await;
        };
        let mut loops = JoinSet::new();
        for _ in 0..self.settings.shards.max(1) {
            loops.spawn(Arc::clone(&self).pop_results(Arc::clone(&pgmq), shutdown.clone()));
        }
        while let Some(joined) = loops.join_next().await {
            joined.doing("a result loop panicked")??;
        }
        Ok(())
    }

    /// One PGMQ result loop: takes a batch out of the queue and records it in one
    /// transaction, until the queue is drained; then waits for a signal, the safety-net poll
    /// or shutdown. Loops take different messages (`FOR UPDATE SKIP LOCKED`); two results of
    /// one task in different loops serialize on the task's lock.
    async fn pop_results(
        self: Arc<Self>,
        pgmq: Arc<PgmqQueue>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let queue = step_results_queue();
        let mut subscription = self
            .messaging
            .queue
            .subscribe(std::slice::from_ref(&queue))
            .await
            .doing("subscribing to step results")?;
        let batch = self.settings.result_batch.max(1);
        let poll = self.settings.messaging.fallback_poll_interval;
        loop {
            loop {
                let started = std::time::Instant::now();
                let popped = within(
                    self.settings.operation_timeout,
                    self.pop_batch(&pgmq, &queue, batch),
                )
                .await
                .doing("taking step results")
                .and_then(|popped| popped);
                match popped {
                    Ok(0) => break,
                    Ok(count) => {
                        tracing::debug!(
                            results = count,
                            elapsed_us = started.elapsed().as_micros() as u64,
                            "processed step results"
                        );
                        if count < usize::from(batch) {
                            break;
                        }
                    }
                    // Rolled back: the messages are back in the queue.
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "processing step results failed; they will be taken again"
                        );
                        break;
                    }
                }
            }
            if wait_for_work(&mut subscription, &mut shutdown, poll, "step result").await?
                == Woken::Shutdown
            {
                return Ok(());
            }
        }
    }

    /// Takes up to `max` results out of the queue, records them and settles their tasks, in
    /// one transaction; returns how many were taken.
    async fn pop_batch(
        &self,
        pgmq: &PgmqQueue,
        queue: &QueueName,
        max: u16,
    ) -> Result<usize, OrchestrationError> {
        let mut tx = self.begin().await.doing("starting a result transaction")?;
        let received = pgmq
            .pop_in(&mut tx, queue, max)
            .await
            .doing("taking step results")?;
        if received.is_empty() {
            return Ok(0);
        }
        let span = tracing::info_span!("results.batch", results = received.len());
        let kept = spans::results_received(&span, received.iter());
        let taken = async {
            let mut messages = Vec::with_capacity(received.len());
            for message in &received {
                match message.decode::<StepResultMessage>() {
                    Ok(decoded) => messages.push(decoded),
                    Err(error) => {
                        let reason = error.reason();
                        tracing::warn!(%reason, "dead-lettering an undecodable step result");
                        pgmq.dead_letter_in(&mut tx, message, reason)
                            .await
                            .doing("dead-lettering a step result")?;
                    }
                }
            }
            let mut outbox = self.messaging.outbox();
            let settled = self.record(&mut tx, messages.iter(), &mut outbox).await?;
            self.commit(outbox, tx, "committing step results")
                .await?
                .finish()
                .await
                .doing("sending after committing step results")?;
            self.committed(&settled);
            Ok(received.len())
        }
        .instrument(span)
        .await;
        drop(kept);
        taken
    }

    /// Receives step results until shutdown, routing them to the shards (backends that cannot
    /// consume inside a transaction).
    async fn dispatch_results(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let queue = step_results_queue();
        let backend = Arc::clone(&self.messaging.queue);
        let mut subscription = backend
            .subscribe(std::slice::from_ref(&queue))
            .await
            .doing("subscribing to step results")?;
        let mut shards = JoinSet::new();
        let mut senders = Vec::with_capacity(self.settings.shards.max(1));
        for _ in 0..self.settings.shards.max(1) {
            let (sender, receiver) = mpsc::channel(SHARD_BUFFER);
            senders.push(sender);
            shards.spawn(Arc::clone(&self).run_shard(receiver));
        }
        let poll = self.settings.messaging.fallback_poll_interval;
        let visibility = self.settings.messaging.visibility_timeout;
        loop {
            // Drain what is visible, then wait for a signal, the safety-net poll or shutdown.
            loop {
                let received = match within(
                    self.settings.operation_timeout,
                    backend.receive(&queue, self.settings.result_batch, visibility),
                )
                .await
                .doing("receiving step results")
                .and_then(|received| received.doing("receiving step results"))
                {
                    Ok(received) => received,
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "receiving step results failed"
                        );
                        break;
                    }
                };
                let count = received.len();
                for message in received {
                    match message.decode::<StepResultMessage>() {
                        Ok(decoded) => {
                            let shard = shard_of(decoded.task_id.into_uuid(), senders.len());
                            let delivery = Delivery {
                                message: decoded,
                                received: message,
                            };
                            if senders[shard].send(delivery).await.is_err() {
                                return Err(OrchestrationError::invariant(format!(
                                    "result shard {shard} stopped"
                                )));
                            }
                        }
                        Err(error) => {
                            let reason = error.reason();
                            tracing::warn!(%reason, "dead-lettering an undecodable step result");
                            if let Err(error) = backend
                                .nack(message.receipt(), Nack::DeadLetter { reason })
                                .await
                            {
                                tracing::warn!(
                                    error = &error as &dyn std::error::Error,
                                    "dead-lettering failed"
                                );
                            }
                        }
                    }
                }
                if count < usize::from(self.settings.result_batch) {
                    break;
                }
            }
            if wait_for_work(&mut subscription, &mut shutdown, poll, "step result").await?
                == Woken::Shutdown
            {
                break;
            }
        }
        drop(senders);
        while let Some(joined) = shards.join_next().await {
            joined.doing("a result shard panicked")?;
        }
        Ok(())
    }

    /// Processes the deliveries routed to one shard until the dispatcher stops. The messages a
    /// batch sends after its commit (and its acknowledgements) go out while the next batch is
    /// recorded: publisher confirms are not waited for in turn.
    async fn run_shard(self: Arc<Self>, mut receiver: mpsc::Receiver<Delivery>) {
        let max = usize::from(self.settings.result_batch).max(1);
        // At most one batch's sends in flight; dropped (aborted) with the shard.
        let mut sending = JoinSet::new();
        let limit = self.settings.operation_timeout;
        let finish = move |after: AfterCommit| async move {
            // Not sent: the redrive sends it again; not acknowledged: it comes back.
            match within(limit, after.finish()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(
                    error = format!("{error:#}"),
                    "sending after a commit failed"
                ),
                Err(timed_out) => tracing::warn!(
                    error = %timed_out,
                    "sending after a commit timed out"
                ),
            }
        };
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < max {
                match receiver.try_recv() {
                    Ok(delivery) => batch.push(delivery),
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let processed = within(
                self.settings.operation_timeout,
                self.process_results(&batch),
            )
            .await
            .doing("processing step results")
            .and_then(|processed| processed);
            tracing::debug!(
                results = batch.len(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "processed step results"
            );
            while sending.join_next().await.is_some() {}
            match processed {
                Ok(after) => {
                    sending.spawn(finish(after));
                }
                // Not acknowledged: the messages come back after their visibility timeout.
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "processing step results failed; they will be redelivered"
                ),
            }
        }
        while sending.join_next().await.is_some() {}
    }

    /// Records the results of a batch and settles their tasks in one transaction; returns the
    /// sends and acknowledgements left for after its commit.
    async fn process_results(&self, batch: &[Delivery]) -> Result<AfterCommit, OrchestrationError> {
        let span = tracing::info_span!("results.batch", results = batch.len());
        let kept = spans::results_received(&span, batch.iter().map(|delivery| &delivery.received));
        let processed = self.process_results_in(batch).instrument(span).await;
        drop(kept);
        processed
    }

    async fn process_results_in(
        &self,
        batch: &[Delivery],
    ) -> Result<AfterCommit, OrchestrationError> {
        let mut tx = self.begin().await.doing("starting a result transaction")?;
        let mut outbox = self.messaging.outbox();
        let settled = self
            .record(
                &mut tx,
                batch.iter().map(|delivery| &delivery.message),
                &mut outbox,
            )
            .await?;
        for delivery in batch {
            outbox.ack(delivery.received.receipt().clone());
        }
        let after = self.commit(outbox, tx, "committing step results").await?;
        self.committed(&settled);
        Ok(after)
    }

    /// Records reported results in the caller's transaction and settles their tasks; the
    /// messages the settling sends join `outbox`.
    ///
    /// Each reported step is completed optimistically (`complete` is guarded by "the stored
    /// result succeeded", evaluated in the statement); only steps whose guard fails are read,
    /// to fail them with the error their result reports. A step already in `error` was declared
    /// lost by a worker and only needs its task evaluated; any other state means the message
    /// is a duplicate.
    async fn record<'m>(
        &self,
        tx: &mut PgConnection,
        messages: impl Iterator<Item = &'m StepResultMessage>,
        outbox: &mut Outbox,
    ) -> Result<Vec<(TaskId, Settled)>, OrchestrationError> {
        let mut reported: BTreeMap<StepId, TaskId> = BTreeMap::new();
        for message in messages {
            reported.insert(message.step_id, message.task_id);
        }
        // One statement locks the reported steps' tasks first, in id order, as every other path
        // does (task row before its step rows), so that the steps are decided on under the
        // task lock and this transaction cannot deadlock with a claim or a settle of the same
        // task; then completes each step optimistically.
        let completions = reported
            .keys()
            .map(|step_id| {
                StepTransition::new(
                    *step_id,
                    StepState::EnqueuedForOrchestration,
                    StepEvent::Complete,
                )
            })
            .collect();
        let began = std::time::Instant::now();
        let (outcomes, states) = step::transition_batch_locking_tasks(
            &mut *tx,
            completions,
            Some(self.processor_id),
            self.settings.backoff,
        )
        .await
        .doing("completing reported steps")?;
        self.settings
            .metrics
            .db
            .operation("complete_steps", began.elapsed());
        // Per task, the step whose result is reported in the task's transition event.
        let mut events: BTreeMap<TaskId, TaskEvent> = BTreeMap::new();
        let mut unsuccessful = Vec::new();
        for ((step_id, task_id), outcome) in reported.iter().zip(outcomes) {
            match outcome {
                // The step's own task (the one locked), whatever the message said.
                Ok(applied) => {
                    events
                        .entry(applied.task_id)
                        .or_insert(TaskEvent::StepCompleted {
                            step_id: step_id.into_uuid(),
                        });
                }
                Err(StepTransitionError::GuardFailed { .. }) => unsuccessful.push(*step_id),
                Err(StepTransitionError::Conflict {
                    actual: StepState::Error,
                    ..
                }) => {
                    events.insert(
                        *task_id,
                        TaskEvent::StepFailed {
                            step_id: step_id.into_uuid(),
                        },
                    );
                }
                Err(
                    StepTransitionError::Conflict { .. } | StepTransitionError::NotFound { .. },
                ) => {}
                Err(error) => {
                    return Err(error).doing_with(|| format!("completing step {step_id}"));
                }
            }
        }
        if !unsuccessful.is_empty() {
            let mut failures = Vec::with_capacity(unsuccessful.len());
            for step_id in &unsuccessful {
                let record = step::get(&mut *tx, *step_id)
                    .await
                    .doing_with(|| format!("reading step {step_id}"))?
                    .doing_with(|| format!("step {step_id} vanished"))?;
                failures.push(StepTransition::new(
                    *step_id,
                    StepState::EnqueuedForOrchestration,
                    StepEvent::Fail {
                        error: record.reported_failure(),
                    },
                ));
                events.insert(
                    record.task_id,
                    TaskEvent::StepFailed {
                        step_id: step_id.into_uuid(),
                    },
                );
            }
            let outcomes = transition_batch(
                &mut *tx,
                failures,
                Some(self.processor_id),
                self.settings.backoff,
            )
            .await
            .doing("failing reported steps")?;
            for outcome in outcomes {
                outcome.doing("failing a reported step")?;
            }
        }

        // Under the locks taken above, each task records its result event as the head of its
        // chain.
        let mut evaluating = Vec::with_capacity(events.len());
        for (task_id, event) in events {
            match states.get(&task_id) {
                Some(&TaskState::StepsInProcess) => evaluating.push(Unsettled {
                    task_id,
                    state: TaskState::StepsInProcess,
                    prefix: vec![event],
                }),
                // Blocked, given up or cancelled meanwhile: the result is recorded, and the
                // task's state is someone else's decision.
                actual => {
                    tracing::debug!(%task_id, ?actual, "step results recorded; the task is not in process");
                }
            }
        }
        self.settle_all(tx, evaluating, outbox).await
    }
}

fn shard_of(task: uuid::Uuid, shards: usize) -> usize {
    // UUID v7 ends in random bits: a good spread without hashing.
    let bits = task.as_u128() as u64;
    (bits % shards.max(1) as u64) as usize
}
