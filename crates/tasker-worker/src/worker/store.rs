//! Storing a batch's results: in one transaction with their messages and acknowledgements on
//! PGMQ, in one statement with the messages after it elsewhere; and keeping them when the
//! store fails past its retries.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tasker_db::event_outbox::{self, NewDomainEvent};
use tasker_db::pool::begin_asynchronous_commit;
use tasker_db::step::{StepTransition, StepTransitionError, transition_batch};
use tasker_messaging::messages::StepResultMessage;
use tasker_messaging::outbox::AfterCommit;
use tasker_messaging::queue::{Nack, Receipt};
use tasker_messaging::queue_name::step_results_queue;
use tasker_state::{StepEvent, StepState};

use super::{BatchConn, Started, StepResult, Worker};
use crate::error::{Doing as _, WorkerError};

impl Worker {
    /// Keeps the results of a batch whose store failed past its retries, and releases its
    /// messages so that they come back at once (a release that fails leaves them to their
    /// visibility timeout).
    pub(super) async fn keep(
        &self,
        started: &[Started],
        results: BTreeMap<usize, StepResult>,
        receipts: &HashMap<usize, Receipt>,
    ) {
        let shared = &self.shared;
        {
            let mut unstored = shared.unstored();
            // A result whose message went elsewhere (this process was taken for gone meanwhile)
            // is not waited for beyond a few leases.
            let keep_for = shared.settings.lease_ttl * 10;
            unstored.retain(|_, (kept_at, _)| kept_at.elapsed() < keep_for);
            let now = Instant::now();
            for (index, result) in results {
                unstored.insert(started[index].step_message.step_id, (now, result));
            }
        }
        for (index, item) in started.iter().enumerate() {
            let receipt = receipts
                .get(&index)
                .unwrap_or_else(|| item.message.receipt());
            if let Err(error) = shared.messaging.queue.nack(receipt, Nack::Requeue).await {
                tracing::debug!(
                    error = &error as &dyn std::error::Error,
                    "releasing a step message failed; it comes back after its visibility timeout"
                );
            }
        }
        tracing::warn!(
            steps = started.len(),
            "storing step results failed past the retries; the results are kept and stored when their messages come back"
        );
    }

    /// Stores a batch's results with the domain events their handlers published, sends their
    /// messages and acknowledges the step messages: in one transaction on PGMQ; elsewhere the
    /// results (and their events, in one transaction when there are any) commit first and the
    /// messages follow. Returns what is left to send after the commit and how many results
    /// were stored.
    pub(super) async fn store(
        &self,
        started: &[Started],
        results: &BTreeMap<usize, StepResult>,
        receipts: &HashMap<usize, Receipt>,
        traceparents: &HashMap<usize, String>,
    ) -> Result<(AfterCommit, usize), WorkerError> {
        let shared = &self.shared;
        let has_events = results.values().any(|result| !result.events.is_empty());
        let waited = std::time::Instant::now();
        let mut conn = if shared.messaging.is_transactional() {
            BatchConn::Transaction(
                begin_asynchronous_commit(&shared.pool)
                    .await
                    .doing("starting a result transaction")?,
            )
        } else if has_events {
            // The events commit with their results; the messages leave the database after
            // the commit, so it is a durable one.
            BatchConn::Transaction(
                shared
                    .pool
                    .begin()
                    .await
                    .doing("starting a result transaction")?,
            )
        } else {
            BatchConn::Connection(
                shared
                    .pool
                    .acquire()
                    .await
                    .doing("acquiring a connection")?,
            )
        };
        let db = &shared.settings.metrics.db;
        db.acquire_wait(waited.elapsed());
        let stores = results
            .iter()
            .map(|(index, result)| {
                StepTransition::new(
                    started[*index].step_message.step_id,
                    StepState::InProgress,
                    StepEvent::EnqueueForOrchestration {
                        result: result.value.clone(),
                    },
                )
            })
            .collect();
        let began = std::time::Instant::now();
        let outcomes = transition_batch(conn.get(), stores, Some(self.id), shared.settings.backoff)
            .await
            .doing("storing step results")?;
        db.operation("store_results", began.elapsed());
        let mut outbox = shared.messaging.outbox();
        let mut stored = 0_usize;
        let mut events = Vec::new();
        for ((index, result), outcome) in results.iter().zip(outcomes) {
            let item = &started[*index];
            let traceparent = traceparents.get(index).map(String::as_str);
            match outcome {
                Ok(_) => {
                    stored += 1;
                    events.extend(result.events.iter().map(|event| NewDomainEvent {
                        domain_event_id: event.event_id,
                        task_id: item.step_message.task_id,
                        step_id: item.step_message.step_id,
                        name: event.name.clone(),
                        payload: event.payload.clone(),
                        occurred_at: event.published_at,
                    }));
                    outbox
                        .push_traced(
                            &step_results_queue(),
                            &StepResultMessage::from(item.step_message),
                            traceparent,
                        )
                        .doing("encoding a step result message")?;
                }
                // Stored by an earlier try whose commit succeeded unseen (with its events):
                // send its message.
                Err(StepTransitionError::Conflict {
                    actual: StepState::EnqueuedForOrchestration,
                    ..
                }) => {
                    outbox
                        .push_traced(
                            &step_results_queue(),
                            &StepResultMessage::from(item.step_message),
                            traceparent,
                        )
                        .doing("encoding a step result message")?;
                }
                // Declared lost meanwhile (this worker was too slow): the result is dropped.
                Err(error) => tracing::warn!(error = %error, "a step result could not be stored"),
            }
        }
        // After the transitions: a step's lifecycle event precedes the events it published.
        event_outbox::insert_domain_events(conn.get(), &events, Some(self.id.into_uuid()))
            .await
            .doing("writing published domain events")?;
        for (index, item) in started.iter().enumerate() {
            let receipt = receipts.get(&index).cloned();
            outbox.ack(receipt.unwrap_or_else(|| item.message.receipt().clone()));
        }
        let after = conn
            .finish_deferred(outbox)
            .await
            .map_err(|error| WorkerError::nested("committing step results", error))?;
        Ok((after, stored))
    }
}
