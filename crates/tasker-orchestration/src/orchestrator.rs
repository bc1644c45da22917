//! The orchestrator's state, shared by its loops: the adapters, the settings, the task facts
//! cache, the templates, the claim loop's wake-ups and the staleness detector's counts.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tasker_db::task::{TaskFacts, TaskFactsCache};
use tasker_messaging::error::QueueError;
use tasker_messaging::messages::{TaskReply, TaskReplyMessage};
use tasker_messaging::outbox::{AfterCommit, Messaging, Outbox, OutboxError};
use tasker_messaging::queue_name::{Namespace, QueueName, worker_queue};
use tasker_messaging::shutdown::Shutdown;
use tasker_messaging::signal::Subscription;
use tasker_models::ids::{ProcessorId, TaskId};
use tasker_state::TaskState;
use tokio::sync::{Notify, watch};

use crate::engine::OrchestratorSettings;
use crate::error::{Doing as _, OrchestrationError};
use crate::settle::Settled;
use crate::staleness::StalenessStats;
use crate::templates::Templates;
use tasker_registry::registry::TemplateRegistry;

/// The orchestrator's state, shared by its loops.
#[derive(Debug)]
pub(crate) struct Orchestrator {
    pub(crate) pool: PgPool,
    pub(crate) messaging: Messaging,
    pub(crate) templates: Templates,
    pub(crate) tasks: TaskFactsCache,
    pub(crate) settings: OrchestratorSettings,
    /// Recorded on every transition the orchestrator applies.
    pub(crate) processor_id: ProcessorId,
    /// Wakes the claim loop (new tasks, a retry to wait for).
    pub(crate) wake_claimer: Notify,
    /// When tasks waiting for a retry become due.
    retries: Mutex<BTreeSet<DateTime<Utc>>>,
    /// Worker queues known to exist.
    ensured: Mutex<BTreeSet<QueueName>>,
    /// What the staleness detector did (zeros while it does not run).
    pub(crate) staleness: watch::Sender<StalenessStats>,
}

/// What woke a consumer loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The queue may have messages (a signal, or the safety-net poll).
    Work,
    /// Shutdown was triggered.
    Shutdown,
}

/// Waits for a "queue has messages" signal on `subscription`, the safety-net `poll` or
/// shutdown. `what` names the queue in the error when the backend closes the subscription.
pub(crate) async fn wait_for_work(
    subscription: &mut Subscription,
    shutdown: &mut Shutdown,
    poll: Duration,
    what: &'static str,
) -> Result<Woken, OrchestrationError> {
    tokio::select! {
        () = shutdown.wait() => Ok(Woken::Shutdown),
        signal = subscription.recv() => match signal {
            Some(_) => Ok(Woken::Work),
            None => Err(OrchestrationError::invariant(format!(
                "the messaging backend closed the {what} subscription"
            ))),
        },
        () = tokio::time::sleep(poll) => Ok(Woken::Work),
    }
}

/// How long ago `task_id` was made: task ids are UUID v7, stamped with their creation time (in
/// milliseconds) when the task is created. Zero if the clock is behind the id.
pub(crate) fn age(task_id: TaskId) -> Duration {
    let Some((seconds, nanos)) = task_id
        .as_uuid()
        .get_timestamp()
        .map(|timestamp| timestamp.to_unix())
    else {
        return Duration::ZERO;
    };
    let created = std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
    std::time::SystemTime::now()
        .duration_since(created)
        .unwrap_or_default()
}

/// The worker queue of a task's namespace.
pub(crate) fn queue_of(task: &TaskFacts) -> Result<QueueName, OrchestrationError> {
    let namespace = Namespace::new(task.namespace.as_str())
        .doing_with(|| format!("naming the worker queue of task {}", task.task_id))?;
    Ok(worker_queue(&namespace))
}

/// A requester's reply queue, as a task recorded it; `None` (logged) if it is not a queue name.
pub(crate) fn reply_queue(task: &TaskFacts) -> Option<QueueName> {
    let reply_to = task.reply_to.as_deref()?;
    match QueueName::new(reply_to) {
        Ok(queue) => Some(queue),
        Err(error) => {
            tracing::warn!(task_id = %task.task_id, error = %error, "a task names an invalid reply queue; no reply is sent");
            None
        }
    }
}

impl Orchestrator {
    pub(crate) fn new(pool: PgPool, messaging: Messaging, settings: OrchestratorSettings) -> Self {
        Self {
            templates: Templates::new(match &settings.template_cache {
                Some(cache) => TemplateRegistry::new(pool.clone())
                    .with_cache(cache.clone(), settings.template_ttl),
                None => TemplateRegistry::new(pool.clone()),
            }),
            pool,
            messaging,
            tasks: TaskFactsCache::default(),
            processor_id: settings.process_id,
            settings,
            wake_claimer: Notify::new(),
            retries: Mutex::new(BTreeSet::new()),
            ensured: Mutex::new(BTreeSet::new()),
            staleness: watch::Sender::new(StalenessStats::default()),
        }
    }

    /// The task's facts, from the cache or the database.
    pub(crate) async fn task(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
    ) -> Result<std::sync::Arc<TaskFacts>, OrchestrationError> {
        self.tasks
            .find(conn, task_id)
            .await
            .doing_with(|| format!("reading task {task_id}"))?
            .doing_with(|| format!("task {task_id} does not exist"))
    }

    /// Creates `queue` unless this process knows it exists: tasks may name namespaces no
    /// worker has announced to this process.
    pub(crate) async fn ensure_queue(&self, queue: &QueueName) -> Result<(), OrchestrationError> {
        let known = self
            .ensured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(queue);
        if !known {
            self.messaging
                .queue
                .ensure_queue(queue)
                .await
                .doing_with(|| format!("creating queue {queue}"))?;
            self.ensured
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(queue.clone());
        }
        Ok(())
    }

    /// Commits `tx` with `outbox`. A send refused because its queue is gone (a requester
    /// deleted its reply queue while this process believed it existed) makes this process
    /// forget the queue, so the retry creates it again instead of failing the same way.
    pub(crate) async fn commit(
        &self,
        outbox: Outbox,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
        doing: &'static str,
    ) -> Result<AfterCommit, OrchestrationError> {
        match outbox.commit_deferred(tx).await {
            Ok(after) => Ok(after),
            Err(error) => {
                if let OutboxError::Send {
                    source: QueueError::QueueNotFound { queue },
                    ..
                } = &error
                {
                    self.ensured
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(queue);
                }
                Err(error).doing(doing)
            }
        }
    }

    /// Records a task that reached terminal `state`: completed or failed by namespace, and its
    /// duration since creation.
    pub(crate) fn finished(&self, task: &TaskFacts, state: TaskState) {
        let metrics = &self.settings.metrics.orchestration;
        match state {
            TaskState::Complete => metrics.task_completed(&task.namespace),
            TaskState::Error => metrics.task_failed(&task.namespace),
            // Cancelled and resolved manually are operators' decisions, not outcomes.
            _ => {}
        }
        metrics.task_duration(&task.namespace, age(task.task_id));
    }

    /// Begins a transaction, recording how long obtaining its connection took.
    pub(crate) async fn begin(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let began = std::time::Instant::now();
        let tx = self.pool.begin().await?;
        self.settings.metrics.db.acquire_wait(began.elapsed());
        Ok(tx)
    }

    pub(crate) fn retries(&self) -> MutexGuard<'_, BTreeSet<DateTime<Utc>>> {
        self.retries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the claim loop that tasks may be ready.
    pub(crate) fn wake_claimer(&self) {
        self.wake_claimer.notify_one();
    }

    /// Adds the "finished" reply for a task that reaches `state` in the outbox's transaction.
    pub(crate) async fn reply_finished(
        &self,
        task: &TaskFacts,
        state: TaskState,
        outbox: &mut Outbox,
    ) -> Result<(), OrchestrationError> {
        let (Some(queue), Some(request_id)) = (reply_queue(task), task.request_id) else {
            return Ok(());
        };
        self.ensure_queue(&queue).await?;
        let reply = TaskReplyMessage {
            request_id,
            reply: TaskReply::Finished {
                task_id: task.task_id,
                state,
            },
        };
        outbox
            .push(&queue, &reply)
            .doing("encoding a finished reply")
    }

    /// Learns what committed transactions did to their tasks. A task finished here reached
    /// its terminal state in that transaction (a compare-and-set only one transaction wins),
    /// so it is counted once, however often its messages were delivered.
    pub(crate) fn committed(&self, settled: &[(TaskId, Settled)]) {
        let mut wake = false;
        for (task_id, settled) in settled {
            match settled {
                Settled::Finished(state, task) => {
                    self.finished(task, *state);
                    self.tasks.forget(*task_id);
                }
                Settled::WaitingForRetry(at) => {
                    self.retries().insert(*at);
                    wake = true;
                }
                Settled::Blocked | Settled::InProcess | Settled::WaitingForDependencies => {}
            }
        }
        if wake {
            // The claim loop re-arms its timer for the earliest retry.
            self.wake_claimer();
        }
    }
}
