//! Settling a task: from its execution context, move it to its next resting state, enqueueing
//! its ready steps (retried failures first go back to `pending`) on the way.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_shared::database::context::{self, ExecutionStatus};
use tasker_shared::database::readiness::{self, StepReadiness};
use tasker_shared::database::step::{StepTransition, transition_batch};
use tasker_shared::database::task::{self, TaskTransition, TaskTransitionError};
use tasker_shared::messaging::messages::{StepMessage, TaskFinalizationMessage};
use tasker_shared::messaging::queue_name::task_finalizations_queue;
use tasker_shared::models::ids::{StepId, TaskId};
use tasker_shared::state_machine::{StepEvent, StepState, TaskEvent, TaskState};

use super::{Orchestrator, queue_of};
use crate::outbox::Outbox;

/// Where a settled task rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// A terminal state.
    Finished(TaskState),
    /// Blocked by a permanent failure; a finalization request was sent.
    Blocked,
    /// Waiting for a failed step's backoff, due at this time.
    WaitingForRetry(DateTime<Utc>),
    /// Steps are with the workers.
    InProcess,
    /// Nothing can run until other steps finish.
    WaitingForDependencies,
}

/// Settle rounds at most: enqueueing that finds nothing to enqueue re-evaluates once more.
const MAX_ROUNDS: usize = 3;

impl Orchestrator {
    /// Applies `event` to the task, which the caller's transaction holds in state `from`.
    pub(crate) async fn move_task(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        from: TaskState,
        event: TaskEvent,
    ) -> Result<TaskState, TaskTransitionError> {
        let applied = task::transition(
            conn,
            TaskTransition {
                task_id,
                expected: from,
                event,
                processor_id: Some(self.processor_id),
                metadata: None,
            },
        )
        .await?;
        Ok(applied.to)
    }

    /// Moves the task, held by the caller's transaction in `state` (`initializing`,
    /// `evaluating_results` or `enqueuing_steps`), to its next resting state.
    ///
    /// Each round reads the steps' readiness (`tasker.get_step_readiness_status`). While no
    /// step has failed, the task's execution status follows from it unambiguously, by the
    /// precedence documented on `ExecutionStatus` (ready steps, then steps in process, then all
    /// complete); once a step failed, the execution context (`tasker.get_task_execution_context`,
    /// the source of truth) decides. The readiness rows also give the steps to enqueue.
    pub(crate) async fn settle(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        mut state: TaskState,
        outbox: &mut Outbox,
    ) -> anyhow::Result<Settled> {
        let mut steps = self.readiness(conn, task_id).await?;
        for _ in 0..MAX_ROUNDS {
            if state == TaskState::EnqueuingSteps {
                let step_ids = self.enqueue_ready(conn, task_id, &steps, outbox).await?;
                let enqueued = !step_ids.is_empty();
                state = self
                    .move_task(conn, task_id, state, TaskEvent::StepsEnqueued { step_ids })
                    .await?;
                if enqueued {
                    return Ok(Settled::InProcess);
                }
                // Readiness and the execution context come from the same SQL function in one
                // transaction, so this means a step became unready in between: evaluate again
                // rather than leave the task in process with nothing in process.
                tracing::warn!(%task_id, "the task had ready steps but none could be enqueued");
                state = self
                    .move_task(conn, task_id, state, TaskEvent::AllStepsCompleted)
                    .await?;
                steps = self.readiness(conn, task_id).await?;
                continue;
            }
            let (status, ready, next_retry_at) = match status_without_failures(&steps) {
                Some(status) => (status, ready_count(&steps), None),
                None => {
                    let ctx = context::for_task(&mut *conn, task_id, self.settings.backoff, None)
                        .await
                        .with_context(|| {
                            format!("reading the execution context of task {task_id}")
                        })?
                        .with_context(|| format!("task {task_id} vanished while it was settled"))?;
                    (
                        ctx.execution_status,
                        u32::try_from(ctx.ready_steps).unwrap_or(0),
                        ctx.next_retry_at,
                    )
                }
            };
            let initializing = state == TaskState::Initializing;
            let event = match status {
                ExecutionStatus::HasReadySteps => TaskEvent::ReadyStepsFound { count: ready },
                ExecutionStatus::AllComplete if initializing && steps.is_empty() => {
                    TaskEvent::NoStepsFound
                }
                ExecutionStatus::AllComplete if !initializing => TaskEvent::AllStepsSuccessful,
                ExecutionStatus::BlockedByFailures if !initializing => {
                    TaskEvent::PermanentFailure {
                        reason: failure_reason(&steps),
                    }
                }
                ExecutionStatus::Processing if !initializing => TaskEvent::StepsStillProcessing,
                ExecutionStatus::WaitingForRetry if !initializing => TaskEvent::RetryScheduled {
                    retry_at: next_retry_at.unwrap_or_else(Utc::now),
                },
                _ => TaskEvent::NoDependenciesReady,
            };
            let retry_at = match &event {
                TaskEvent::RetryScheduled { retry_at } => Some(*retry_at),
                _ => None,
            };
            state = self.move_task(conn, task_id, state, event).await?;
            match state {
                TaskState::EnqueuingSteps => continue,
                TaskState::BlockedByFailures => {
                    let task = self.tasks.get(conn, task_id).await?;
                    outbox
                        .push(
                            conn,
                            &task_finalizations_queue(),
                            &TaskFinalizationMessage {
                                task_uuid: task_id.into_uuid(),
                                correlation_id: task.correlation_id.into_uuid(),
                            },
                        )
                        .await?;
                    return Ok(Settled::Blocked);
                }
                TaskState::WaitingForRetry => {
                    return Ok(Settled::WaitingForRetry(retry_at.unwrap_or_else(Utc::now)));
                }
                TaskState::StepsInProcess => return Ok(Settled::InProcess),
                TaskState::WaitingForDependencies => return Ok(Settled::WaitingForDependencies),
                terminal if terminal.is_terminal() => return Ok(Settled::Finished(terminal)),
                other => bail!("task {task_id} was left in `{other}` while settling"),
            }
        }
        bail!("task {task_id} did not settle within {MAX_ROUNDS} rounds")
    }

    async fn readiness(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
    ) -> anyhow::Result<Vec<StepReadiness>> {
        readiness::for_task(&mut *conn, task_id, self.settings.backoff, None)
            .await
            .with_context(|| format!("reading the step readiness of task {task_id}"))
    }

    /// Enqueues the task's ready steps: failed steps due for a retry go back to `pending`
    /// first; every ready step moves to `enqueued` and gets a step message. Returns the
    /// enqueued steps.
    async fn enqueue_ready(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        steps: &[StepReadiness],
        outbox: &mut Outbox,
    ) -> anyhow::Result<Vec<uuid::Uuid>> {
        let ready: Vec<&StepReadiness> = steps
            .iter()
            .filter(|step| step.ready_for_execution)
            .collect();
        let retries: Vec<StepTransition> = ready
            .iter()
            .filter(|step| step.current_state == StepState::Error)
            .map(|step| step_transition(step.step_id, StepState::Error, StepEvent::Retry))
            .collect();
        let mut pending: Vec<StepId> = ready
            .iter()
            .filter(|step| step.current_state == StepState::Pending)
            .map(|step| step.step_id)
            .collect();
        if !retries.is_empty() {
            let outcomes = transition_batch(
                conn,
                retries,
                Some(self.processor_id),
                self.settings.backoff,
            )
            .await
            .context("moving retried steps back to pending")?;
            for outcome in outcomes {
                match outcome {
                    Ok(applied) => pending.push(applied.step_id),
                    Err(error) => {
                        tracing::warn!(%task_id, error = %error, "a step could not be retried")
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let enqueues = pending
            .iter()
            .map(|step_id| step_transition(*step_id, StepState::Pending, StepEvent::Enqueue))
            .collect();
        let outcomes = transition_batch(
            conn,
            enqueues,
            Some(self.processor_id),
            self.settings.backoff,
        )
        .await
        .context("enqueueing ready steps")?;
        let task = self.tasks.get(conn, task_id).await?;
        let queue = queue_of(&task)?;
        self.ensure_queue(&queue).await?;
        let mut enqueued = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            match outcome {
                Ok(applied) => {
                    outbox
                        .push(
                            conn,
                            &queue,
                            &StepMessage {
                                task_uuid: task_id.into_uuid(),
                                step_uuid: applied.step_id.into_uuid(),
                                correlation_id: task.correlation_id.into_uuid(),
                            },
                        )
                        .await?;
                    enqueued.push(applied.step_id.into_uuid());
                }
                Err(error) => {
                    tracing::warn!(%task_id, error = %error, "a ready step could not be enqueued")
                }
            }
        }
        Ok(enqueued)
    }
}

/// The execution status when no step has failed or was cancelled, `None` otherwise (the
/// execution context decides then). Without failures `BlockedByFailures` and `WaitingForRetry`
/// are impossible, and the rest is `ExecutionStatus`'s documented precedence.
fn status_without_failures(steps: &[StepReadiness]) -> Option<ExecutionStatus> {
    if steps
        .iter()
        .any(|step| matches!(step.current_state, StepState::Error | StepState::Cancelled))
    {
        return None;
    }
    Some(if steps.iter().any(|step| step.ready_for_execution) {
        ExecutionStatus::HasReadySteps
    } else if steps.iter().any(|step| {
        matches!(
            step.current_state,
            StepState::Enqueued | StepState::InProgress | StepState::EnqueuedForOrchestration
        )
    }) {
        ExecutionStatus::Processing
    } else if steps.iter().all(|step| {
        matches!(
            step.current_state,
            StepState::Complete | StepState::ResolvedManually
        )
    }) {
        ExecutionStatus::AllComplete
    } else {
        ExecutionStatus::WaitingForDependencies
    })
}

fn ready_count(steps: &[StepReadiness]) -> u32 {
    u32::try_from(steps.iter().filter(|step| step.ready_for_execution).count()).unwrap_or(0)
}

/// Names the steps that failed for good, for the `permanent_failure` event.
fn failure_reason(steps: &[StepReadiness]) -> String {
    let failed: Vec<&str> = steps
        .iter()
        .filter(|step| {
            matches!(step.current_state, StepState::Error | StepState::Cancelled)
                && !step.retry_eligible
        })
        .map(|step| step.name.as_str())
        .collect();
    match failed.as_slice() {
        [] => "a step failed permanently".to_owned(),
        [one] => format!("step {one} failed permanently"),
        many => format!("steps {} failed permanently", many.join(", ")),
    }
}

/// A step transition without metadata.
pub(crate) fn step_transition(
    step_id: StepId,
    expected: StepState,
    event: StepEvent,
) -> StepTransition {
    StepTransition {
        step_id,
        expected,
        event,
        metadata: None,
    }
}
