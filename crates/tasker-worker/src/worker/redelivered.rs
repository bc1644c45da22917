//! A message whose step could not be started: a duplicate, a redelivery after the result was
//! stored, or a redelivery of an attempt that is `in_progress`, whose holder is this process,
//! another live process, or gone. And dead-lettering a message that cannot be processed.

use std::time::Duration;

use serde_json::json;
use tasker_db::lease;
use tasker_db::step::{self, StepTransitionError};
use tasker_messaging::messages::StepResultMessage;
use tasker_messaging::outbox::Outbox;
use tasker_messaging::queue::{Nack, ReceivedMessage};
use tasker_messaging::queue_name::step_results_queue;
use tasker_models::ids::StepId;
use tasker_state::{StepError, StepEvent, StepState};

use super::{Started, Worker};
use crate::error::{Doing as _, WorkerError};

/// What becomes of a message whose step could not be started.
pub(super) enum NotStarted {
    /// Run the step: it is this process's own attempt.
    Run,
    /// Settled (acknowledged, with any message it causes).
    Settled,
    /// Left unacknowledged for the live process that runs the attempt.
    Leave,
}

impl Worker {
    /// A message whose step could not be started: a duplicate, a redelivery after the result
    /// was stored, or a redelivery of an attempt that is `in_progress`. Its acknowledgement,
    /// and any result message it causes, join `outbox`.
    ///
    /// An `in_progress` attempt delivered again is
    /// - this process's own attempt that it lost track of (the commit that started it failed
    ///   as far as this process could see, but went through): run it now, as the attempt
    ///   already counted;
    /// - another live process's attempt (its lease lives: its connection to the broker
    ///   dropped, or a transaction of it failed): left alone, unacknowledged, so that it comes
    ///   back after its visibility timeout, to its holder or after the holder is gone;
    /// - an attempt whose process is gone (no live lease of the incarnation that started it):
    ///   declared lost (`worker_lost`), and orchestration retries the step.
    pub(super) async fn not_started(
        &self,
        conn: &mut sqlx::PgConnection,
        outbox: &mut Outbox,
        candidate: &Started,
        step_id: StepId,
        actual: StepState,
    ) -> Result<NotStarted, WorkerError> {
        if actual == StepState::InProgress
            && candidate.message.read_count > 1
            && !self.shared.running().contains(&step_id)
        {
            let holder = lease::attempt_holder(&mut *conn, step_id)
                .await
                .doing_with(|| format!("reading who runs step {step_id}"))?;
            if let Some(holder) = holder
                && holder.is_live()
            {
                if holder.processor_id == Some(self.id)
                    && holder.live_incarnation == Some(self.shared.lease.started_at)
                {
                    tracing::info!(%step_id, "resuming an attempt this process started but lost track of");
                    return Ok(NotStarted::Run);
                }
                tracing::debug!(%step_id, holder = ?holder.processor_id, "leaving a step message to the live process that runs its attempt");
                return Ok(NotStarted::Leave);
            }
        }
        match actual {
            // The result is stored but its message may not have been sent: send it again.
            StepState::EnqueuedForOrchestration => {
                outbox
                    .push(
                        &step_results_queue(),
                        &StepResultMessage::from(candidate.step_message),
                    )
                    .doing("encoding a step result message")?;
            }
            StepState::InProgress if candidate.message.read_count > 1 => {
                let metadata = json!({
                    "reason": "worker_lost",
                    "detail": "the step message was delivered again and the process that started the attempt holds no live lease: it stopped without storing a result",
                    "read_count": candidate.message.read_count,
                });
                let fail = step::StepTransition {
                    step_id,
                    expected: StepState::InProgress,
                    event: StepEvent::Fail {
                        error: StepError::retryable("the worker running this step was lost")
                            .with_requested_backoff(Duration::ZERO),
                    },
                    metadata: Some(metadata),
                };
                match step::transition(conn, fail, Some(self.id), self.shared.settings.backoff)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(%step_id, "declared a lost attempt failed; orchestration retries it");
                        outbox
                            .push(
                                &step_results_queue(),
                                &StepResultMessage::from(candidate.step_message),
                            )
                            .doing("encoding a step result message")?;
                    }
                    Err(StepTransitionError::Conflict { .. }) => {}
                    Err(error) => return Err(error).doing("declaring a lost attempt failed"),
                }
            }
            // A duplicate of a message whose step is running or done: nothing to do.
            _ => {}
        }
        outbox.ack(candidate.message.receipt().clone());
        Ok(NotStarted::Settled)
    }

    /// Moves a message that cannot be processed to its dead-letter queue.
    pub(super) async fn dead_letter(&self, message: &ReceivedMessage, reason: String) {
        tracing::warn!(id = %message.id, %reason, "dead-lettering a step message");
        let nack = Nack::DeadLetter { reason };
        if let Err(error) = self
            .shared
            .messaging
            .queue
            .nack(message.receipt(), nack)
            .await
        {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "dead-lettering a step message failed"
            );
        }
    }
}
