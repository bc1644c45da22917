//! The claim loop: claims ready tasks (new tasks, retries that are due, tasks whose
//! dependencies are satisfied) and settles each in the claiming transaction. It wakes when
//! tasks are created, when the earliest retry is due, and on the safety-net poll. It also
//! redrives messages that never arrived (lost between a commit and its send, or deleted):
//! step messages, step result messages and finalization requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tasker_db::claim::{ClaimRequest, claim_ready_tasks};
use tasker_db::step::StepScope;
use tasker_db::task::TaskScope;
use tasker_messaging::messages::{StepMessage, StepResultMessage, TaskFinalizationMessage};
use tasker_messaging::queue_name::{step_results_queue, task_finalizations_queue};
use tasker_messaging::retry::within;
use tasker_messaging::shutdown::Shutdown;
use tasker_resilience::permit::ErrorClass;
use tasker_state::{StepState, TaskState};
use tracing::Instrument as _;

use crate::error::{Doing as _, OrchestrationError};
use crate::orchestrator::{Orchestrator, queue_of};
use crate::settle::Unsettled;
use crate::spans;

/// Steps redriven per pass at most.
const REDRIVE_LIMIT: i64 = 500;

impl Orchestrator {
    /// Claims and settles ready tasks until shutdown.
    pub(crate) async fn run_claims(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let poll = self.settings.messaging.fallback_poll_interval;
        let mut last_redrive = Instant::now();
        loop {
            let limit = self.settings.operation_timeout;
            // While the readiness breaker is open the round is skipped: the loop waits for its
            // next wake-up instead of asking a failing database again.
            let breaker = self.settings.readiness_breaker.as_deref();
            match breaker.map(tasker_resilience::breaker::CircuitBreaker::permit) {
                Some(Err(open)) => {
                    tracing::debug!(error = %open, "claiming skipped: the readiness breaker is open");
                }
                permit => {
                    let claimed = within(limit, self.claim_all())
                        .await
                        .doing("claiming ready tasks")
                        .and_then(|claimed| claimed);
                    if let Some(Ok(permit)) = permit {
                        match &claimed {
                            Ok(_) => permit.success(),
                            Err(error) if error.is_transient() => {
                                permit.error(ErrorClass::Dependency);
                            }
                            Err(_) => permit.error(ErrorClass::Caller),
                        }
                    }
                    if let Err(error) = claimed {
                        tracing::warn!(error = format!("{error:#}"), "claiming ready tasks failed");
                    }
                }
            }
            if last_redrive.elapsed() >= self.settings.redrive_after / 2 {
                last_redrive = Instant::now();
                let redriven = within(limit, self.redrive())
                    .await
                    .doing("redriving stale steps")
                    .and_then(|redriven| redriven);
                if let Err(error) = redriven {
                    tracing::warn!(error = format!("{error:#}"), "redriving stale steps failed");
                }
            }
            let wake_at = self.next_wake(poll);
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                () = self.wake_claimer.notified() => {}
                () = tokio::time::sleep_until(wake_at.into()) => {}
            }
        }
    }

    /// The earliest pending retry, or the next safety-net poll.
    fn next_wake(&self, poll: Duration) -> Instant {
        let now = Instant::now();
        let mut retries = self.retries();
        let wall = Utc::now();
        // Retries due now are claimed by the pass that follows this wake.
        while let Some(first) = retries.first().copied() {
            if first > wall {
                break;
            }
            retries.pop_first();
        }
        let retry = retries.first().map(|at| {
            // A millisecond late: the claim compares with the database's clock.
            now + (*at - wall).to_std().unwrap_or_default() + Duration::from_millis(1)
        });
        match retry {
            Some(at) if at < now + poll => at,
            _ => now + poll,
        }
    }

    /// Claims batches until fewer than a batch are ready.
    async fn claim_all(&self) -> Result<usize, OrchestrationError> {
        let mut total = 0;
        loop {
            let claimed = self.claim_once().await?;
            total += claimed;
            if claimed < usize::try_from(self.settings.claim_batch).unwrap_or(1) {
                return Ok(total);
            }
        }
    }

    /// Claims one batch and settles it in the claiming transaction.
    async fn claim_once(&self) -> Result<usize, OrchestrationError> {
        let mut tx = self.begin().await.doing("starting a claim transaction")?;
        let mut request = ClaimRequest::new(self.settings.claim_batch, Some(self.processor_id));
        request.backoff = self.settings.backoff;
        let began = Instant::now();
        let claimed = claim_ready_tasks(&mut *tx, request, None)
            .await
            .doing("claiming ready tasks")?;
        let metrics = &self.settings.metrics;
        metrics.db.operation("claim_ready_tasks", began.elapsed());
        metrics.orchestration.claim_batch(claimed.len() as u64);
        if claimed.is_empty() {
            tx.rollback().await.doing("ending an empty claim")?;
            return Ok(0);
        }
        // A span for rounds that claimed something only: idle polls would drown the traces.
        let span = tracing::info_span!("claim.round", claimed = claimed.len());
        for task in &claimed {
            tasker_metrics::trace::link_task(&span, spans::trace_key(task.task_id));
        }
        async {
            let mut outbox = self.messaging.outbox();
            let tasks = claimed
                .iter()
                .map(|task| Unsettled {
                    task_id: task.task_id,
                    state: task.to_state,
                    prefix: Vec::new(),
                })
                .collect();
            let settled = self
                .settle_all(&mut tx, tasks, &mut outbox)
                .await
                .doing("settling claimed tasks")?;
            self.commit(outbox, tx, "committing claimed tasks")
                .await?
                .finish()
                .await
                .doing("sending after committing claimed tasks")?;
            self.committed(&settled);
            Ok(claimed.len())
        }
        .instrument(span)
        .await
    }

    /// Sends messages again that were lost between a commit and its send (RabbitMQ, in
    /// memory), deleted (any backend), or lost with the in-memory backend's process: the step
    /// message of steps `enqueued` longer than `redrive_after`, the result message of steps
    /// whose result waited as long for orchestration, and the finalization request of tasks
    /// `blocked_by_failures` as long. Duplicates are harmless: a worker's start, the recording
    /// of a result and the finalization are compare-and-sets.
    async fn redrive(&self) -> Result<(), OrchestrationError> {
        let stale_before = Utc::now()
            - chrono::Duration::from_std(self.settings.redrive_after).unwrap_or_default();
        let steps = StepScope::new()
            .for_unfinished_tasks()
            .in_state(StepState::Enqueued)
            .in_state(StepState::EnqueuedForOrchestration)
            .entered_state_before(stale_before)
            .limit(REDRIVE_LIMIT)
            .all(&self.pool)
            .await
            .doing("finding steps waiting for a message")?;
        let mut conn = self.pool.acquire().await.doing("acquiring a connection")?;
        for step in steps {
            let task = self.task(&mut conn, step.task_id).await?;
            let mut outbox = self.messaging.outbox();
            if step.state == StepState::Enqueued {
                let queue = queue_of(&task)?;
                self.ensure_queue(&queue).await?;
                let message = StepMessage {
                    task_id: step.task_id,
                    step_id: step.step_id,
                    correlation_id: task.correlation_id,
                };
                outbox
                    .push(&queue, &message)
                    .doing("encoding a step message")?;
            } else {
                let message = StepResultMessage {
                    task_id: step.task_id,
                    step_id: step.step_id,
                    correlation_id: task.correlation_id,
                };
                outbox
                    .push(&step_results_queue(), &message)
                    .doing("encoding a step result message")?;
            }
            outbox
                .send_now(&mut conn)
                .await
                .doing("redriving a message")?;
            tracing::info!(step_id = %step.step_id, task_id = %step.task_id, state = %step.state, "redrove a message");
        }
        let blocked = TaskScope::new()
            .in_state(TaskState::BlockedByFailures)
            .entered_state_before(stale_before)
            .limit(REDRIVE_LIMIT)
            .all(&self.pool)
            .await
            .doing("finding blocked tasks waiting for finalization")?;
        for task in blocked {
            let mut outbox = self.messaging.outbox();
            outbox
                .push(
                    &task_finalizations_queue(),
                    &TaskFinalizationMessage {
                        task_id: task.task_id,
                        correlation_id: task.correlation_id,
                    },
                )
                .doing("encoding a finalization request")?;
            outbox
                .send_now(&mut conn)
                .await
                .doing("redriving a finalization request")?;
            tracing::info!(task_id = %task.task_id, "redrove a finalization request");
        }
        Ok(())
    }
}
