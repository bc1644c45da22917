//! Starting and stopping the orchestration engine: its settings, its loops in one `JoinSet`,
//! and a graceful shutdown that lets each loop finish the transaction it is in.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tasker_db::readiness::BackoffParams;
use tasker_messaging::config::MessagingConfig;
use tasker_messaging::outbox::Messaging;
use tasker_messaging::queue_name::orchestration_queues;
use tasker_messaging::shutdown::{ShutdownTrigger, shutdown_pair};
use tasker_models::ids::ProcessorId;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{Doing as _, OrchestrationError};
use crate::orchestrator::Orchestrator;
use crate::staleness::{StalenessSettings, StalenessStats};

/// How the orchestrator works.
#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    /// This process: recorded on every transition the orchestrator writes.
    pub process_id: ProcessorId,
    /// The backoff policy of retried steps (the SQL functions' parameters).
    pub backoff: BackoffParams,
    /// Tasks claimed per claim transaction, and task requests taken per intake transaction.
    pub claim_batch: i32,
    /// Step results taken per transaction.
    pub result_batch: u16,
    /// Result loops and claim loops working in parallel (claims skip each other's locked
    /// tasks; two results of one task serialize on its lock).
    pub shards: usize,
    /// Consumer settings (visibility timeout, poll intervals).
    pub messaging: MessagingConfig,
    /// A step left `enqueued` (or its result unreported) longer than this has its message sent
    /// again. Lower means faster recovery from a lost message, and more duplicates of messages
    /// that were only slow.
    pub redrive_after: Duration,
    /// The circuit breaker of the readiness and claiming queries (`task_readiness`), or
    /// `None` for none. While it is open the claim loop skips its rounds instead of asking a
    /// failing database again.
    pub readiness_breaker: Option<std::sync::Arc<tasker_resilience::breaker::CircuitBreaker>>,
    /// The cache template lookups go through (cache-aside, `common.cache`), or `None` to read
    /// them from the database.
    pub template_cache: Option<tasker_cache::Cache>,
    /// How long a template stays in that cache (`common.cache.template_ttl_seconds`).
    pub template_ttl: Duration,
    /// Whether this orchestrator relays lifecycle events from the outbox to the namespaces'
    /// `_domain_events` queues (one relay runs at a time across orchestrators; the others
    /// wait their turn).
    pub relay_events: bool,
    /// The in-process bus relayed events are also published on, if any.
    pub events: Option<tasker_events::bus::Bus>,
    /// The staleness detector, or `None` for none (the composition root maps
    /// `orchestration.dlq` onto it).
    pub staleness: Option<StalenessSettings>,
    /// How long shutdown waits for the loops before aborting them.
    pub shutdown_grace: Duration,
    /// The longest one unit of work (a claim, a batch of requests or results, a
    /// finalization, a redrive) may wait on the database and the broker before it fails as
    /// transient and is tried again.
    pub operation_timeout: Duration,
    /// Where the orchestrator records tasks created, completed and failed, task durations,
    /// claim batch sizes, database operation latencies and connection waits
    /// ([`Metrics::disabled`](tasker_metrics::instruments::Metrics::disabled) by default).
    pub metrics: tasker_metrics::instruments::Metrics,
}

impl OrchestratorSettings {
    /// Settings with the given process id, backoff and consumer settings, and defaults for the
    /// rest (batches of 50, 2 shards, redrive after twice the visibility timeout, the
    /// consumers' operation timeout, no staleness detector, metrics disabled).
    pub fn new(
        process_id: ProcessorId,
        backoff: BackoffParams,
        messaging: MessagingConfig,
    ) -> Self {
        Self {
            process_id,
            backoff,
            claim_batch: 50,
            result_batch: 50,
            shards: 2,
            redrive_after: messaging.visibility_timeout * 2,
            staleness: None,
            readiness_breaker: None,
            relay_events: true,
            events: None,
            template_cache: None,
            template_ttl: Duration::from_secs(3600),
            operation_timeout: messaging.operation_timeout,
            messaging,
            shutdown_grace: Duration::from_secs(10),
            metrics: tasker_metrics::instruments::Metrics::disabled(),
        }
    }
}

/// Wakes a running engine's claim loop: tasks were created elsewhere in this process (the
/// HTTP API) and are ready to be claimed.
#[derive(Debug, Clone)]
pub struct ClaimWaker(Arc<Orchestrator>);

impl ClaimWaker {
    /// Tells the claim loop that tasks may be ready.
    pub fn wake(&self) {
        self.0.wake_claimer();
    }
}

/// A running orchestrator.
#[derive(Debug)]
pub struct RunningOrchestrator {
    orchestrator: Arc<Orchestrator>,
    loops: JoinSet<Result<(), OrchestrationError>>,
    trigger: ShutdownTrigger,
    grace: Duration,
    process_id: ProcessorId,
    staleness: watch::Receiver<StalenessStats>,
}

/// Creates the orchestration queues and starts the orchestrator's loops.
pub async fn start(
    pool: PgPool,
    messaging: Messaging,
    settings: OrchestratorSettings,
) -> Result<RunningOrchestrator, OrchestrationError> {
    for queue in &orchestration_queues() {
        messaging
            .queue
            .ensure_queue(queue)
            .await
            .doing_with(|| format!("creating queue {queue}"))?;
    }
    let grace = settings.shutdown_grace;
    let shards = settings.shards.max(1);
    let staleness_settings = settings.staleness.clone();
    let orchestrator = Arc::new(Orchestrator::new(pool, messaging, settings));
    let process_id = orchestrator.processor_id;
    let (trigger, shutdown) = shutdown_pair();
    let mut loops = JoinSet::new();
    // One intake loop: its batches are larger alone, and it is rarely the bottleneck.
    loops.spawn(Arc::clone(&orchestrator).run_requests(shutdown.clone()));
    for _ in 0..shards {
        loops.spawn(Arc::clone(&orchestrator).run_claims(shutdown.clone()));
    }
    loops.spawn(Arc::clone(&orchestrator).run_results(shutdown.clone()));
    if let Some(staleness) = staleness_settings {
        loops.spawn(Arc::clone(&orchestrator).run_staleness(staleness, shutdown.clone()));
    }
    if orchestrator.settings.relay_events {
        loops.spawn(
            Arc::clone(&orchestrator)
                .run_relay(orchestrator.settings.events.clone(), shutdown.clone()),
        );
    }
    loops.spawn(Arc::clone(&orchestrator).run_finalizer(shutdown));
    tracing::info!(%process_id, "the orchestrator is running");
    Ok(RunningOrchestrator {
        staleness: orchestrator.staleness.subscribe(),
        orchestrator,
        loops,
        trigger,
        grace,
        process_id,
    })
}

impl RunningOrchestrator {
    /// The process id the orchestrator records on its transitions.
    pub fn process_id(&self) -> ProcessorId {
        self.process_id
    }

    /// A handle that wakes this engine's claim loop.
    pub fn claim_waker(&self) -> ClaimWaker {
        ClaimWaker(Arc::clone(&self.orchestrator))
    }

    /// What the staleness detector did so far (zeros if it does not run).
    pub fn staleness(&self) -> StalenessStats {
        *self.staleness.borrow()
    }

    /// The staleness detector's counts, updated after each run: to wait for a run.
    pub fn watch_staleness(&self) -> watch::Receiver<StalenessStats> {
        self.staleness.clone()
    }

    /// Fails if a loop stopped (they stop only on shutdown, or on an error they cannot ride
    /// out).
    pub fn check_alive(&mut self) -> Result<(), OrchestrationError> {
        match self.loops.try_join_next() {
            None => Ok(()),
            Some(Ok(Ok(()))) => Err(OrchestrationError::invariant(
                "an orchestrator loop stopped before shutdown",
            )),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(OrchestrationError::invariant(
                "an orchestrator loop panicked",
            )),
        }
    }

    /// Stops every loop after the transaction it is in, and waits for them; what does not
    /// stop within the grace period is aborted (its transaction rolls back, and what it held
    /// comes back to the queues). Returns the first loop's failure, if any.
    pub async fn shutdown(mut self) -> Result<(), OrchestrationError> {
        self.trigger.trigger();
        let mut first_error = None;
        let joined = tokio::time::timeout(self.grace, async {
            while let Some(joined) = self.loops.join_next().await {
                match joined {
                    Ok(Err(error)) => {
                        first_error.get_or_insert(error);
                    }
                    Err(error) if error.is_panic() => {
                        first_error.get_or_insert(OrchestrationError::invariant(
                            "an orchestrator loop panicked",
                        ));
                    }
                    _ => {}
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!(grace = ?self.grace, "the orchestrator did not stop in time; aborting its loops");
            self.loops.shutdown().await;
        }
        first_error.map_or(Ok(()), Err)
    }
}
