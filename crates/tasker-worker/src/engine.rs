//! Starting and stopping the worker engine: the worker loops and the signal relays in
//! `JoinSet`s, a graceful shutdown that lets running handlers finish and store their results,
//! and an abort that drops everything as a crash would.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tasker_db::lease::{self, Lease, Renewal};
use tasker_db::task::TaskFactsCache;
use tasker_messaging::outbox::Messaging;
use tasker_messaging::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::catalog::Catalog;
use crate::error::{Doing as _, WorkerError};
use crate::worker::{Worker, WorkerSettings, WorkerShared, relay_signals};

/// A running worker engine.
#[derive(Debug)]
pub struct RunningWorker {
    workers: JoinSet<Result<(), WorkerError>>,
    relays: JoinSet<Result<(), WorkerError>>,
    trigger: ShutdownTrigger,
    settings: WorkerSettings,
    pool: PgPool,
    lease: Lease,
}

/// The role recorded on a worker process's lease.
const ROLE: &str = "worker";

/// Creates the catalog's worker queues and starts `settings.workers` workers on them.
pub async fn start(
    pool: PgPool,
    messaging: Messaging,
    catalog: Arc<Catalog>,
    settings: WorkerSettings,
) -> Result<RunningWorker, WorkerError> {
    for queue in &catalog.worker_queues() {
        messaging
            .queue
            .ensure_queue(queue)
            .await
            .doing_with(|| format!("creating queue {queue}"))?;
    }
    // The lease before any step is started: every attempt of this incarnation is covered.
    let lease = lease::acquire(&pool, settings.process_id, ROLE, settings.lease_ttl)
        .await
        .doing("taking the process's lease")?;
    let shared = Arc::new(WorkerShared {
        pool: pool.clone(),
        messaging,
        catalog,
        tasks: TaskFactsCache::default(),
        settings: settings.clone(),
        wake: Notify::new(),
        running: std::sync::Mutex::new(std::collections::HashSet::new()),
        unstored: std::sync::Mutex::new(std::collections::HashMap::new()),
        lease,
    });
    let (trigger, shutdown) = shutdown_pair();
    let mut relays = JoinSet::new();
    for queue in shared.catalog.worker_queues() {
        relays.spawn(relay_signals(Arc::clone(&shared), queue, shutdown.clone()));
    }
    relays.spawn(renew_lease(
        pool.clone(),
        lease,
        settings.clone(),
        shutdown.clone(),
    ));
    let mut workers = JoinSet::new();
    for _ in 0..settings.workers.max(1) {
        workers.spawn(Worker::new(Arc::clone(&shared)).run(shutdown.clone()));
    }
    let queues: Vec<String> = shared
        .catalog
        .worker_queues()
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(process_id = %settings.process_id, workers = settings.workers.max(1), queues = %queues.join(", "), "the worker is running");
    Ok(RunningWorker {
        workers,
        relays,
        trigger,
        settings,
        pool,
        lease,
    })
}

/// Renews the process's lease every `lease_renewal` until shutdown. A renewal that fails is
/// tried again at the next beat (logged when the lease starts and stops failing); the lease
/// taken over by another process under the same id stops the engine, since two processes
/// with one id cannot tell their attempts apart.
async fn renew_lease(
    pool: PgPool,
    lease: Lease,
    settings: WorkerSettings,
    mut shutdown: Shutdown,
) -> Result<(), WorkerError> {
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            () = tokio::time::sleep(settings.lease_renewal) => {}
        }
        let renewal = tokio::time::timeout(
            settings.lease_renewal.max(Duration::from_millis(100)),
            lease::renew(&pool, &lease, ROLE, settings.lease_ttl),
        )
        .await;
        match renewal {
            Ok(Ok(Renewal::Renewed(_))) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(failed_for = ?since.elapsed(), "renewing the process's lease works again");
                }
            }
            Ok(Ok(Renewal::TakenOver { by_incarnation_at })) => {
                return Err(WorkerError::invariant(format!(
                    "another process took the lease of process id {} at {by_incarnation_at}: \
                     two processes run with one id (set a distinct --process-id or TASKER_PROCESS_ID)",
                    lease.processor_id
                )));
            }
            Ok(Err(error)) => {
                if failing_since.is_none() {
                    failing_since = Some(tokio::time::Instant::now());
                    tracing::warn!(error = &error as &dyn std::error::Error, ttl = ?settings.lease_ttl, "renewing the process's lease failed; retrying at every beat");
                }
            }
            Err(_) => {
                if failing_since.is_none() {
                    failing_since = Some(tokio::time::Instant::now());
                    tracing::warn!(timeout = ?settings.lease_renewal, ttl = ?settings.lease_ttl, "renewing the process's lease timed out waiting for the database; retrying at every beat");
                }
            }
        }
    }
}

impl RunningWorker {
    /// Fails if a worker or relay stopped (they stop only on shutdown, or on an error they
    /// cannot ride out).
    pub fn check_alive(&mut self) -> Result<(), WorkerError> {
        for set in [&mut self.workers, &mut self.relays] {
            match set.try_join_next() {
                None => {}
                Some(Ok(Ok(()))) => {
                    return Err(WorkerError::invariant(
                        "a worker loop stopped before shutdown",
                    ));
                }
                Some(Ok(Err(error))) => return Err(error),
                Some(Err(error)) => return Err(error).doing("a worker loop panicked"),
            }
        }
        Ok(())
    }

    /// Stops taking steps, lets the running handlers finish and their results be stored and
    /// reported, and waits for that up to the grace period; then aborts what is left (its
    /// messages come back after their visibility timeout and are retried as lost attempts).
    pub async fn shutdown(mut self) -> Result<(), WorkerError> {
        self.trigger.trigger();
        let grace = self.settings.shutdown_grace;
        let mut first_error = None;
        let joined = tokio::time::timeout(grace, async {
            for set in [&mut self.workers, &mut self.relays] {
                while let Some(joined) = set.join_next().await {
                    match joined {
                        Ok(Err(error)) => {
                            first_error.get_or_insert(error);
                        }
                        Err(error) if error.is_panic() => {
                            first_error.get_or_insert(
                                Err::<(), _>(error)
                                    .doing("a worker loop panicked")
                                    .unwrap_err(),
                            );
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!(?grace, "the workers did not stop in time; aborting them");
            self.workers.shutdown().await;
            self.relays.shutdown().await;
        } else if let Err(error) = lease::release(&self.pool, &self.lease).await {
            // It expires by itself.
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "giving up the process's lease failed"
            );
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every worker on the spot, as a crash would: running handlers are dropped and
    /// their messages are neither acknowledged nor given back.
    pub async fn abort(mut self) {
        self.workers.shutdown().await;
        self.relays.shutdown().await;
    }
}
