//! The in-process orchestrator: turns task requests into tasks, claims ready tasks, enqueues
//! their ready steps, applies the step results workers report, and finalizes tasks.
//!
//! Its loops, each owned by the engine's `JoinSet` and stopped by the shutdown signal:
//! - [`intake`]: consumes task requests a batch at a time (creating the tasks and settling the
//!   new ones in the same transaction) and finalization requests (giving up on tasks blocked by
//!   permanent failures);
//! - [`claim`]: claims ready tasks (retries that are due, waits that are over, tasks created
//!   elsewhere) and settles them;
//! - [`results`]: consumes step results, routes them by task to shards, and in one transaction
//!   per batch records the results and settles each task;
//! - [`settle`]: the decision shared by all of them: from its steps' readiness (and, after a
//!   failure, its execution context), move each task of a batch to its next resting state,
//!   enqueueing the ready steps of the whole batch on the way.
//!
//! Work is batched across tasks: each kind of statement (step transitions, readiness, the
//! tasks' transitions, sends, acknowledgements) runs once per batch, not once per task, and a
//! task's transitions of one transaction are recorded as one chain (one update of its row).
//!
//! A task is only ever moved inside a transaction that holds its row lock (taken by the claim,
//! by its creation, or by `step::transition_batch_locking_tasks` before its steps are read), and every transaction
//! leaves it in a resting state (`steps_in_process`, `waiting_for_*`, `blocked_by_failures` or
//! terminal), so intermediate states are never visible to other transactions.

pub(crate) mod claim;
pub(crate) mod intake;
pub(crate) mod results;
pub(crate) mod settle;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tasker_shared::database::readiness::BackoffParams;
use tasker_shared::database::task::{self, TaskRecord};
use tasker_shared::messaging::config::MessagingConfig;
use tasker_shared::messaging::queue_name::{Namespace, QueueName, worker_queue};
use tasker_shared::models::ids::{CorrelationId, NamedTaskId, ProcessorId, TaskId};
use tasker_shared::state_machine::TaskState;
use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::outbox::Messaging;
use crate::tracker::Tracker;

use self::settle::Settled;

/// How the orchestrator works.
#[derive(Debug, Clone)]
pub(crate) struct OrchestratorSettings {
    /// The backoff policy of retried steps (the SQL functions' parameters).
    pub(crate) backoff: BackoffParams,
    /// Tasks claimed per claim transaction.
    pub(crate) claim_batch: i32,
    /// Step results taken per receive.
    pub(crate) result_batch: u16,
    /// Result shards (results of one task always go to the same shard), and claim loops
    /// (claims skip each other's locked tasks).
    pub(crate) shards: usize,
    /// Consumer settings (deployment mode, visibility timeout, poll intervals).
    pub(crate) messaging: MessagingConfig,
    /// A step `enqueued` for longer than this has its message sent again (backends that cannot
    /// send inside the transaction only).
    pub(crate) redrive_after: Duration,
}

/// What the engine needs of a task; none of it changes during the task's life.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskInfo {
    /// The task.
    pub(crate) task_id: TaskId,
    /// Its template.
    pub(crate) named_task_id: NamedTaskId,
    /// Its template's namespace (which names its worker queue).
    pub(crate) namespace: String,
    /// `namespace/name:version` of its template.
    pub(crate) template: String,
    /// Correlates everything the task causes.
    pub(crate) correlation_id: CorrelationId,
    /// The context it was requested with.
    pub(crate) context: serde_json::Value,
}

impl From<TaskRecord> for TaskInfo {
    fn from(task: TaskRecord) -> Self {
        Self {
            task_id: task.task_id,
            named_task_id: task.named_task_id,
            template: format!(
                "{}/{}:{}",
                task.namespace_name, task.task_name, task.task_version
            ),
            namespace: task.namespace_name,
            correlation_id: task.correlation_id,
            context: task.context,
        }
    }
}

/// Tasks' immutable facts, read once per task (or remembered from its creation).
#[derive(Debug, Default)]
pub(crate) struct TaskCache {
    tasks: Mutex<HashMap<TaskId, Arc<TaskInfo>>>,
}

/// Entries kept at most; the cache is cleared when it would grow beyond.
const TASK_CACHE_LIMIT: usize = 50_000;

/// The worker queue of a task's namespace: a task's steps go there whether or not this
/// process has the task's template (another process's workers may).
pub(crate) fn queue_of(task: &TaskInfo) -> anyhow::Result<QueueName> {
    let namespace = Namespace::new(task.namespace.as_str())
        .with_context(|| format!("task {} has no valid queue namespace", task.task_id))?;
    Ok(worker_queue(&namespace))
}

impl TaskCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, Arc<TaskInfo>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task, from the cache or the database.
    pub(crate) async fn get(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
    ) -> anyhow::Result<Arc<TaskInfo>> {
        self.find(conn, task_id)
            .await?
            .with_context(|| format!("task {task_id} does not exist"))
    }

    /// The task, from the cache or the database; `None` if there is no such task.
    pub(crate) async fn find(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
    ) -> anyhow::Result<Option<Arc<TaskInfo>>> {
        if let Some(task) = self.lock().get(&task_id) {
            return Ok(Some(Arc::clone(task)));
        }
        let Some(task) = task::get(&mut *conn, task_id)
            .await
            .with_context(|| format!("reading task {task_id}"))?
        else {
            return Ok(None);
        };
        Ok(Some(self.remember(task.into())))
    }

    /// Remembers a task (its creator knows it without reading it).
    pub(crate) fn remember(&self, task: TaskInfo) -> Arc<TaskInfo> {
        let task = Arc::new(task);
        let mut tasks = self.lock();
        if tasks.len() >= TASK_CACHE_LIMIT {
            tasks.clear();
        }
        tasks.insert(task.task_id, Arc::clone(&task));
        task
    }

    /// Forgets a finished task.
    pub(crate) fn forget(&self, task_id: TaskId) {
        self.lock().remove(&task_id);
    }
}

/// The orchestrator's state, shared by its loops.
#[derive(Debug)]
pub(crate) struct Orchestrator {
    pub(crate) pool: PgPool,
    pub(crate) messaging: Messaging,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) tasks: Arc<TaskCache>,
    pub(crate) settings: OrchestratorSettings,
    /// Recorded on every transition the orchestrator applies.
    pub(crate) processor_id: ProcessorId,
    /// Wakes the claim loop (new tasks).
    wake_claimer: Notify,
    /// When tasks waiting for a retry become due.
    retries: Mutex<BTreeSet<DateTime<Utc>>>,
    /// Worker queues known to exist.
    ensured: Mutex<BTreeSet<QueueName>>,
}

impl Orchestrator {
    /// An orchestrator over its adapters.
    pub(crate) fn new(
        pool: PgPool,
        messaging: Messaging,
        catalog: Arc<Catalog>,
        tracker: Arc<Tracker>,
        tasks: Arc<TaskCache>,
        settings: OrchestratorSettings,
    ) -> Self {
        Self {
            pool,
            messaging,
            catalog,
            tracker,
            tasks,
            settings,
            processor_id: ProcessorId::new_v7(),
            wake_claimer: Notify::new(),
            retries: Mutex::new(BTreeSet::new()),
            ensured: Mutex::new(BTreeSet::new()),
        }
    }

    /// Creates `queue` unless this process knows it exists: tasks of templates this process
    /// did not register may name other namespaces.
    pub(crate) async fn ensure_queue(&self, queue: &QueueName) -> anyhow::Result<()> {
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
                .with_context(|| format!("creating queue {queue}"))?;
            self.ensured
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(queue.clone());
        }
        Ok(())
    }

    fn retries(&self) -> MutexGuard<'_, BTreeSet<DateTime<Utc>>> {
        self.retries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the claim loop that tasks may be ready.
    pub(crate) fn wake_claimer(&self) {
        self.wake_claimer.notify_one();
    }

    /// Reports what committed transactions did to their tasks.
    pub(crate) fn committed(&self, settled: &[(TaskId, Settled)]) {
        let mut wake = false;
        for (task_id, settled) in settled {
            match settled {
                Settled::Finished(state) => {
                    self.tasks.forget(*task_id);
                    self.tracker.finished(*task_id, *state);
                }
                Settled::Blocked => self.tracker.blocked(*task_id),
                Settled::WaitingForRetry(at) => {
                    self.retries().insert(*at);
                    wake = true;
                }
                Settled::InProcess | Settled::WaitingForDependencies => {}
            }
        }
        if wake {
            // The claim loop re-arms its timer for the earliest retry.
            self.wake_claimer();
        }
    }

    /// Finishes a task outside a settle (the finalizer's give-up).
    pub(crate) fn finished(&self, task_id: TaskId, state: TaskState) {
        self.tasks.forget(task_id);
        self.tracker.finished(task_id, state);
    }
}
