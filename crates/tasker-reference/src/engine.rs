//! The engine: the orchestrator's loops and the worker pool, spawned and owned in `JoinSet`s
//! and stopped together by one shutdown signal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use sqlx::PgPool;
use tasker_shared::messaging::envelope::Payload;
use tasker_shared::messaging::messages::{TaskPriority, TaskRequestMessage};
use tasker_shared::messaging::queue_name::{QueueName, orchestration_queues, task_requests_queue};
use tasker_shared::models::ids::ProcessorId;
use tasker_shared::models::request::TaskRequest;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, Id, JoinSet};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::orchestrator::{Orchestrator, OrchestratorSettings, TaskCache};
use crate::outbox::Messaging;
use crate::tracker::{Shutdown, ShutdownTrigger, Tracker, shutdown_pair};
use crate::worker::{Worker, WorkerSettings, WorkerShared, relay_signals};

/// Every queue the engine consumes: the orchestration queues and the catalog's worker queues.
pub(crate) fn consumed_queues(catalog: &Catalog) -> Vec<QueueName> {
    let mut queues = catalog.worker_queues();
    queues.extend(orchestration_queues());
    queues
}

/// How long shutdown waits for the loops before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the engine runs.
#[derive(Debug, Clone)]
pub(crate) struct EngineSettings {
    /// Workers started with the engine.
    pub(crate) workers: usize,
    /// The orchestrator's settings.
    pub(crate) orchestrator: OrchestratorSettings,
    /// Every worker's settings.
    pub(crate) worker: WorkerSettings,
}

/// A running orchestrator and worker pool.
#[derive(Debug)]
pub(crate) struct Engine {
    orchestrator: Arc<Orchestrator>,
    workers_shared: Arc<WorkerShared>,
    loops: JoinSet<anyhow::Result<()>>,
    workers: JoinSet<anyhow::Result<()>>,
    /// Each live worker's id and abort handle, by the task id of its loop.
    worker_handles: HashMap<Id, (ProcessorId, AbortHandle)>,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
}

impl Engine {
    /// Creates the queues and starts the orchestrator's loops and the workers.
    pub(crate) async fn start(
        pool: PgPool,
        messaging: Messaging,
        catalog: Arc<Catalog>,
        tracker: Arc<Tracker>,
        settings: EngineSettings,
    ) -> anyhow::Result<Engine> {
        for queue in &consumed_queues(&catalog) {
            messaging
                .queue
                .ensure_queue(queue)
                .await
                .with_context(|| format!("creating queue {queue}"))?;
        }
        let tasks = Arc::new(TaskCache::default());
        let orchestrator = Arc::new(Orchestrator::new(
            pool.clone(),
            messaging.clone(),
            Arc::clone(&catalog),
            Arc::clone(&tracker),
            Arc::clone(&tasks),
            settings.orchestrator,
        ));
        let workers_shared = Arc::new(WorkerShared {
            pool,
            messaging,
            catalog,
            tracker,
            tasks,
            settings: settings.worker,
            wake: Notify::new(),
        });
        let (trigger, shutdown) = shutdown_pair();
        let mut loops = JoinSet::new();
        // One intake loop: its batches are larger alone, and it is rarely the bottleneck.
        loops.spawn(Arc::clone(&orchestrator).run_requests(shutdown.clone()));
        for _ in 0..orchestrator.settings.shards.max(1) {
            loops.spawn(Arc::clone(&orchestrator).run_claims(shutdown.clone()));
        }
        loops.spawn(Arc::clone(&orchestrator).run_results(shutdown.clone()));
        loops.spawn(Arc::clone(&orchestrator).run_finalizer(shutdown.clone()));
        for queue in workers_shared.catalog.worker_queues() {
            loops.spawn(relay_signals(
                Arc::clone(&workers_shared),
                queue,
                shutdown.clone(),
            ));
        }
        let mut engine = Engine {
            orchestrator,
            workers_shared,
            loops,
            workers: JoinSet::new(),
            worker_handles: HashMap::new(),
            trigger,
            shutdown,
        };
        for _ in 0..settings.workers {
            engine.spawn_worker();
        }
        Ok(engine)
    }

    /// Starts one more worker and returns its id.
    pub(crate) fn spawn_worker(&mut self) -> ProcessorId {
        let worker = Worker::new(Arc::clone(&self.workers_shared));
        let id = worker.id;
        let handle = self.workers.spawn(worker.run(self.shutdown.clone()));
        self.worker_handles.insert(handle.id(), (id, handle));
        id
    }

    /// The ids of the live workers.
    #[cfg(test)]
    pub(crate) fn worker_ids(&self) -> Vec<ProcessorId> {
        self.worker_handles.values().map(|(id, _)| *id).collect()
    }

    /// Kills worker `id` on the spot, as a crash would: its running handlers are dropped and
    /// its messages are neither acknowledged nor given back. Returns whether it was running.
    #[cfg(test)]
    pub(crate) fn kill_worker(&mut self, id: ProcessorId) -> bool {
        let found = self
            .worker_handles
            .iter()
            .find(|(_, (worker, _))| *worker == id)
            .map(|(task, _)| *task);
        match found.and_then(|task| self.worker_handles.remove(&task)) {
            Some((_, handle)) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// Sends a task request to the orchestrator's request queue; returns the request's id.
    #[cfg(test)]
    pub(crate) async fn submit(&self, request: &TaskRequest) -> anyhow::Result<Uuid> {
        let ids = self.submit_all(std::slice::from_ref(request)).await?;
        ids.into_iter().next().context("one request id")
    }

    /// Sends task requests to the orchestrator's request queue in one batch; returns their ids
    /// in order.
    pub(crate) async fn submit_all(&self, requests: &[TaskRequest]) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::with_capacity(requests.len());
        let mut payloads = Vec::with_capacity(requests.len());
        for request in requests {
            let request_id = Uuid::now_v7();
            let message = TaskRequestMessage {
                request_id,
                correlation_id: request.correlation_id.into_uuid(),
                requested_at: Utc::now(),
                requester: Some("tasker-reference".to_owned()),
                priority: TaskPriority::Normal,
                request: serde_json::to_value(request).context("encoding a task request")?,
            };
            payloads.push(Payload::encode(&message).context("encoding a task request message")?);
            ids.push(request_id);
        }
        if !payloads.is_empty() {
            self.orchestrator
                .messaging
                .queue
                .send_batch(&task_requests_queue(), &payloads)
                .await
                .context("sending task requests")?;
        }
        Ok(ids)
    }

    /// Whether any loop has stopped (they only stop on shutdown or failure).
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(joined) = self.loops.try_join_next() {
            joined.context("an orchestrator loop panicked")??;
            anyhow::bail!("an orchestrator loop stopped before shutdown");
        }
        while let Some(joined) = self.workers.try_join_next_with_id() {
            match joined {
                Ok((id, result)) => {
                    self.worker_handles.remove(&id);
                    result.context("a worker stopped")?;
                }
                Err(error) if error.is_cancelled() => {}
                Err(error) => return Err(error).context("a worker panicked"),
            }
        }
        Ok(())
    }

    /// Stops every loop and worker and waits for them (aborting what does not stop in time).
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        self.trigger.trigger();
        let mut first_error = None;
        let joined = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(joined) = self.workers.join_next().await {
                match joined {
                    Ok(Err(error)) => {
                        first_error.get_or_insert(error.context("a worker failed"));
                    }
                    Err(error) if error.is_panic() => {
                        first_error
                            .get_or_insert(anyhow::Error::new(error).context("a worker panicked"));
                    }
                    _ => {}
                }
            }
            while let Some(joined) = self.loops.join_next().await {
                match joined {
                    Ok(Err(error)) => {
                        first_error.get_or_insert(error.context("an orchestrator loop failed"));
                    }
                    Err(error) if error.is_panic() => {
                        first_error.get_or_insert(
                            anyhow::Error::new(error).context("an orchestrator loop panicked"),
                        );
                    }
                    _ => {}
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("the engine did not stop within {SHUTDOWN_GRACE:?}; aborting its loops");
            self.workers.shutdown().await;
            self.loops.shutdown().await;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
