//! Settling tasks: from their steps' readiness (and, after a failure, their execution context),
//! move each to its next resting state, enqueueing the ready steps of all of them on the way
//! (retried failures first go back to `pending`). A batch of tasks costs a fixed number of
//! statements, whatever its size: one readiness read, one statement per kind of task
//! transition, one per kind of step transition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_db::context::{self, ExecutionStatus};
use tasker_db::readiness::{self, StepReadiness};
use tasker_db::step::{StepTransition, transition_batch};
use tasker_db::task::{self, TaskFacts, TaskTransition, TaskTransitionChain, TaskTransitionError};
use tasker_messaging::messages::{StepMessage, TaskFinalizationMessage};
use tasker_messaging::outbox::Outbox;
use tasker_messaging::queue_name::task_finalizations_queue;
use tasker_models::ids::{StepId, TaskId};
use tasker_state::{StepEvent, StepState, TaskEvent, TaskState, TaskStateMachine};

use crate::error::{Doing as _, OrchestrationError};
use crate::orchestrator::{Orchestrator, queue_of};
use crate::spans;

/// Where a settled task rests.
#[derive(Debug, Clone)]
pub(crate) enum Settled {
    /// A terminal state, reached in this transaction, with the task's facts (for its metrics).
    Finished(TaskState, Arc<TaskFacts>),
    /// Blocked by a permanent failure; a finalization request was sent.
    Blocked,
    /// Waiting for a failed step's backoff, due at this time.
    WaitingForRetry(DateTime<Utc>),
    /// Steps are with the workers.
    InProcess,
    /// Nothing can run until other steps finish.
    WaitingForDependencies,
}

/// A task to settle: held by the caller's transaction in `state`, with the events that
/// happened to it since (recorded in the same chain as its settling).
#[derive(Debug, Clone)]
pub(crate) struct Unsettled {
    /// The task.
    pub(crate) task_id: TaskId,
    /// The state its row is in.
    pub(crate) state: TaskState,
    /// Events to record before settling (e.g. `initialize`, or the step result that made it
    /// evaluate), leading it to `initializing`, `evaluating_results` or `enqueuing_steps`.
    pub(crate) prefix: Vec<TaskEvent>,
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

    /// Moves each task, held by the caller's transaction in its given state, through its
    /// `prefix` events and on to its next resting state, enqueueing the ready steps of all of
    /// them on the way, and records every task's transitions as one chain.
    ///
    /// The prefix leads each task to the state it is settled from (`initializing`,
    /// `evaluating_results` or `enqueuing_steps`). The steps of every task are read in one
    /// statement (`readiness::for_tasks`). While no step has failed, a task's execution status
    /// follows from them unambiguously, by the precedence documented on `ExecutionStatus`
    /// (ready steps, then steps in process, then all complete); once a step failed, the
    /// execution context (`context::for_task`, the source of truth) decides. The ready steps of
    /// every task are enqueued in one statement (retried failures go back to `pending` in one
    /// more), and every task's chain (prefix, decision and, for those that enqueued,
    /// `steps_enqueued`) is applied in one more: one update of each task's row.
    pub(crate) async fn settle_all(
        &self,
        conn: &mut PgConnection,
        tasks: Vec<Unsettled>,
        outbox: &mut Outbox,
    ) -> Result<Vec<(TaskId, Settled)>, OrchestrationError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let machine = TaskStateMachine::new();
        let ids: Vec<TaskId> = tasks.iter().map(|task| task.task_id).collect();
        let began = Instant::now();
        let mut readiness = readiness::for_tasks(&mut *conn, &ids, self.settings.backoff, None)
            .await
            .doing("reading the step readiness of a batch of tasks")?;
        self.settings
            .metrics
            .db
            .operation("step_readiness", began.elapsed());
        let mut plans = Vec::with_capacity(tasks.len());
        let mut enqueuing = Vec::new();
        for task in tasks {
            let task_id = task.task_id;
            let mut from = task.state;
            for event in &task.prefix {
                from = machine
                    .apply(from, event.clone())
                    .doing_with(|| format!("settling task {task_id}"))?
                    .to;
            }
            let steps = readiness.remove(&task_id).unwrap_or_default();
            let mut events = task.prefix;
            let mut rest = None;
            if from != TaskState::EnqueuingSteps {
                let event = self.decide(conn, task_id, from, &steps).await?;
                let to = machine
                    .apply(from, event.clone())
                    .doing_with(|| format!("settling task {task_id}"))?
                    .to;
                rest = self.rest(conn, task_id, to, &event, outbox).await?;
                events.push(event);
            }
            if rest.is_none() {
                enqueuing.push((task_id, steps));
            }
            plans.push((task_id, task.state, events, rest));
        }

        let mut enqueued = self.enqueue_ready(conn, &enqueuing, outbox).await?;
        let chains = plans
            .iter_mut()
            .map(|(task_id, state, events, rest)| {
                if rest.is_none() {
                    let step_ids = enqueued.remove(task_id).unwrap_or_default();
                    let nothing = step_ids.is_empty();
                    events.push(TaskEvent::StepsEnqueued { step_ids });
                    if nothing {
                        // Readiness is read under the task's lock, so this means a step became
                        // unready in between: evaluate again rather than leave the task in
                        // process with nothing in process.
                        tracing::warn!(%task_id, "the task had ready steps but none could be enqueued");
                        events.push(TaskEvent::AllStepsCompleted);
                    } else {
                        *rest = Some(Settled::InProcess);
                    }
                }
                TaskTransitionChain {
                    task_id: *task_id,
                    expected: *state,
                    events: std::mem::take(events),
                    processor_id: Some(self.processor_id),
                    metadata: None,
                }
            })
            .collect();
        let began = Instant::now();
        let outcomes = task::transition_chains(conn, chains)
            .await
            .doing("recording the transitions of a batch of tasks")?;
        self.settings
            .metrics
            .db
            .operation("transition_tasks", began.elapsed());
        let mut settled = Vec::with_capacity(plans.len());
        for ((task_id, _, _, rest), outcome) in plans.into_iter().zip(outcomes) {
            outcome.doing_with(|| format!("settling task {task_id}"))?;
            match rest {
                Some(rest) => settled.push((task_id, rest)),
                None => {
                    let rest = self
                        .settle(conn, task_id, TaskState::EvaluatingResults, outbox)
                        .await?;
                    settled.push((task_id, rest));
                }
            }
        }
        Ok(settled)
    }

    /// [`Orchestrator::settle_all`] for one task, bounded to a few rounds (the rare case of a
    /// task that found nothing to enqueue).
    async fn settle(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        mut state: TaskState,
        outbox: &mut Outbox,
    ) -> Result<Settled, OrchestrationError> {
        for _ in 0..MAX_ROUNDS {
            let steps = readiness::for_task(&mut *conn, task_id, self.settings.backoff, None)
                .await
                .doing_with(|| format!("reading the step readiness of task {task_id}"))?;
            if state != TaskState::EnqueuingSteps {
                let event = self.decide(conn, task_id, state, &steps).await?;
                let to = self
                    .move_task(conn, task_id, state, event.clone())
                    .await
                    .doing("settling a task")?;
                if let Some(rest) = self.rest(conn, task_id, to, &event, outbox).await? {
                    return Ok(rest);
                }
            }
            let step_ids = self
                .enqueue_ready(conn, &[(task_id, steps)], outbox)
                .await?
                .remove(&task_id)
                .unwrap_or_default();
            let nothing = step_ids.is_empty();
            state = self
                .move_task(
                    conn,
                    task_id,
                    TaskState::EnqueuingSteps,
                    TaskEvent::StepsEnqueued { step_ids },
                )
                .await
                .doing("settling a task")?;
            if !nothing {
                return Ok(Settled::InProcess);
            }
            state = self
                .move_task(conn, task_id, state, TaskEvent::AllStepsCompleted)
                .await
                .doing("settling a task")?;
        }
        Err(OrchestrationError::invariant(format!(
            "task {task_id} did not settle within {MAX_ROUNDS} rounds"
        )))
    }

    /// Decides from the task's steps which event moves it on: to a resting state, or to
    /// `enqueuing_steps`.
    async fn decide(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        state: TaskState,
        steps: &[StepReadiness],
    ) -> Result<TaskEvent, OrchestrationError> {
        let (status, ready, next_retry_at) = match status_without_failures(steps) {
            Some(status) => (status, ready_count(steps), None),
            None => {
                let ctx = context::for_task(&mut *conn, task_id, self.settings.backoff, None)
                    .await
                    .doing_with(|| format!("reading the execution context of task {task_id}"))?
                    .doing_with(|| format!("task {task_id} vanished while it was settled"))?;
                (
                    ctx.execution_status,
                    u32::try_from(ctx.ready_steps).unwrap_or(0),
                    ctx.next_retry_at,
                )
            }
        };
        let initializing = state == TaskState::Initializing;
        Ok(match status {
            ExecutionStatus::HasReadySteps => TaskEvent::ReadyStepsFound { count: ready },
            ExecutionStatus::AllComplete if initializing && steps.is_empty() => {
                TaskEvent::NoStepsFound
            }
            ExecutionStatus::AllComplete if !initializing => TaskEvent::AllStepsSuccessful,
            ExecutionStatus::BlockedByFailures if !initializing => TaskEvent::PermanentFailure {
                reason: failure_reason(steps),
            },
            ExecutionStatus::Processing if !initializing => TaskEvent::StepsStillProcessing,
            ExecutionStatus::WaitingForRetry if !initializing => TaskEvent::RetryScheduled {
                retry_at: next_retry_at.unwrap_or_else(Utc::now),
            },
            _ => TaskEvent::NoDependenciesReady,
        })
    }

    /// Where a task that `event` moved to `to` rests (`None`: it is `enqueuing_steps`, its
    /// ready steps are next). A blocked task's finalization request joins the outbox.
    async fn rest(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
        to: TaskState,
        event: &TaskEvent,
        outbox: &mut Outbox,
    ) -> Result<Option<Settled>, OrchestrationError> {
        Ok(Some(match to {
            TaskState::EnqueuingSteps => return Ok(None),
            TaskState::BlockedByFailures => {
                let task = self.task(conn, task_id).await?;
                outbox
                    .push(
                        &task_finalizations_queue(),
                        &TaskFinalizationMessage {
                            task_id,
                            correlation_id: task.correlation_id,
                        },
                    )
                    .doing("encoding a finalization request")?;
                Settled::Blocked
            }
            TaskState::WaitingForRetry => Settled::WaitingForRetry(match event {
                TaskEvent::RetryScheduled { retry_at } => *retry_at,
                _ => Utc::now(),
            }),
            TaskState::StepsInProcess => Settled::InProcess,
            TaskState::WaitingForDependencies => Settled::WaitingForDependencies,
            terminal if terminal.is_terminal() => {
                let task = self.task(conn, task_id).await?;
                self.reply_finished(&task, terminal, outbox).await?;
                Settled::Finished(terminal, task)
            }
            other => {
                return Err(OrchestrationError::invariant(format!(
                    "task {task_id} was left in `{other}` while settling"
                )));
            }
        }))
    }

    /// Enqueues the ready steps of every given task: failed steps due for a retry go back to
    /// `pending` first (one statement for all), then every ready step moves to `enqueued`
    /// (one statement for all) and gets a step message. Returns the enqueued steps by task.
    async fn enqueue_ready(
        &self,
        conn: &mut PgConnection,
        tasks: &[(TaskId, Vec<StepReadiness>)],
        outbox: &mut Outbox,
    ) -> Result<HashMap<TaskId, Vec<uuid::Uuid>>, OrchestrationError> {
        let ready: Vec<&StepReadiness> = tasks
            .iter()
            .flat_map(|(_, steps)| steps.iter())
            .filter(|step| step.ready_for_execution)
            .collect();
        let retries: Vec<StepTransition> = ready
            .iter()
            .filter(|step| step.current_state == StepState::Error)
            .map(|step| StepTransition::new(step.step_id, StepState::Error, StepEvent::Retry))
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
            .doing("moving retried steps back to pending")?;
            for outcome in outcomes {
                match outcome {
                    Ok(applied) => pending.push(applied.step_id),
                    Err(error) => tracing::warn!(error = %error, "a step could not be retried"),
                }
            }
        }
        let mut enqueued: HashMap<TaskId, Vec<uuid::Uuid>> = HashMap::new();
        if pending.is_empty() {
            return Ok(enqueued);
        }
        // Step names, for the `step.enqueue` spans only.
        let names: HashMap<StepId, &str> = if tasker_metrics::trace::is_enabled() {
            ready
                .iter()
                .map(|step| (step.step_id, step.name.as_str()))
                .collect()
        } else {
            HashMap::new()
        };
        let enqueues = pending
            .iter()
            .map(|step_id| StepTransition::new(*step_id, StepState::Pending, StepEvent::Enqueue))
            .collect();
        let outcomes = transition_batch(
            conn,
            enqueues,
            Some(self.processor_id),
            self.settings.backoff,
        )
        .await
        .doing("enqueueing ready steps")?;
        for outcome in outcomes {
            match outcome {
                Ok(applied) => {
                    let task = self.task(conn, applied.task_id).await?;
                    let queue = queue_of(&task)?;
                    self.ensure_queue(&queue).await?;
                    let traceparent = spans::step_enqueued(
                        applied.task_id,
                        applied.step_id,
                        names.get(&applied.step_id).copied(),
                        queue.as_str(),
                    );
                    outbox
                        .push_traced(
                            &queue,
                            &StepMessage {
                                task_id: applied.task_id,
                                step_id: applied.step_id,
                                correlation_id: task.correlation_id,
                            },
                            traceparent.as_deref(),
                        )
                        .doing("encoding a step message")?;
                    enqueued
                        .entry(applied.task_id)
                        .or_default()
                        .push(applied.step_id.into_uuid());
                }
                Err(error) => tracing::warn!(error = %error, "a ready step could not be enqueued"),
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
