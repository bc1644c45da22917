//! The test harness: a fresh, migrated database per test (dropped afterwards, also when the
//! test fails), the messaging backends (on RabbitMQ with the database's name as queue prefix,
//! so tests run in parallel), handlers that count their invocations (and can stall a step
//! like a hung worker), and engines with short timeouts.
//!
//! PostgreSQL and RabbitMQ must answer on 127.0.0.1 (`DATABASE_URL`, `RABBITMQ_URL` override
//! them): a missing service fails the test, in CI and everywhere else; nothing is skipped.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tasker_shared::database::migrate;
use tasker_shared::database::pool::PoolConfig;
use tasker_shared::database::readiness::BackoffParams;
use tasker_shared::messaging::config::{DeploymentMode, MessagingConfig};
use tasker_shared::models::ids::StepId;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::registry::handler::{StepContext, StepHandler, StepOutcome};
use tasker_shared::registry::resolver::ResolverChain;
use tokio::sync::watch;

use tasker_orchestration::client::{SubmissionEvent, Submitter, SubmitterSettings};
use tasker_orchestration::{OrchestratorSettings, RunningOrchestrator};
use tasker_shared::messaging::outbox::Messaging;
use tasker_shared::messaging::queue_name::orchestration_queues;
use tasker_shared::models::ids::{ProcessorId, TaskId};
use tasker_shared::state_machine::TaskState;
use tasker_worker::catalog::Catalog;
use tasker_worker::{RunningWorker, WorkerSettings};
use uuid::Uuid;

use crate::handlers::reference_chain;
use crate::setup::{self, Backend, RabbitMqSettings};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tasker_development";
const DEFAULT_RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The templates shipped with the binary.
pub(super) fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// Runs `test` with a pool over a fresh, migrated database, then drops the database whether
/// the test passed, failed or panicked (a panic is re-raised).
pub(super) async fn with_database<F, Fut>(test: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let name = format!("tasker_reference_it_{}", uuid::Uuid::now_v7().simple());
    let options = PgConnectOptions::from_str(&url)
        .with_context(|| format!("parsing DATABASE_URL {url:?}"))?
        .database(&name);
    let url = options.to_url_lossy().to_string();
    migrate::create_database_if_missing(&url)
        .await
        .context("creating the test database (is PostgreSQL running on 127.0.0.1:5432?)")?;
    let outcome = async {
        let mut config = PoolConfig::from_options(options);
        config.max_connections = 24;
        let pool = config.connect().await?;
        migrate::run(&pool).await?;
        let outcome = tokio::spawn(test(pool.clone())).await;
        pool.close().await;
        anyhow::Ok(outcome)
    }
    .await;
    migrate::drop_database_if_exists(&url)
        .await
        .context("dropping the test database")?;
    match outcome? {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(error.into()),
    }
}

/// Consumer settings with short timeouts: a redelivery after one second, polls every 100 ms.
pub(super) fn messaging_config() -> MessagingConfig {
    MessagingConfig {
        deployment_mode: DeploymentMode::Hybrid,
        visibility_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(100),
        fallback_poll_interval: Duration::from_millis(100),
        ..MessagingConfig::default()
    }
}

/// The retry backoff of the tests: 50 ms, doubling, at most 1 s.
pub(super) fn backoff() -> BackoffParams {
    BackoffParams {
        base_ms: 50,
        multiplier: 2.0,
        max_ms: 1_000,
    }
}

/// An orchestrator with short timeouts.
pub(super) fn orchestrator_settings() -> OrchestratorSettings {
    OrchestratorSettings {
        claim_batch: 20,
        result_batch: 20,
        redrive_after: Duration::from_secs(10),
        ..OrchestratorSettings::new(ProcessorId::new_v7(), backoff(), messaging_config())
    }
}

/// A worker process's settings: `workers` workers, short timeouts, a process id of its own.
pub(super) fn worker_settings(workers: usize) -> WorkerSettings {
    let messaging = messaging_config();
    WorkerSettings {
        process_id: ProcessorId::new_v7(),
        workers,
        shutdown_grace: Duration::from_secs(10),
        batch: 4,
        visibility_timeout: messaging.visibility_timeout,
        poll_interval: messaging.fallback_poll_interval,
        default_step_timeout: Duration::from_secs(30),
        backoff: backoff(),
        retry: tasker_shared::messaging::retry::RetryPolicy::default(),
        operation_timeout: Duration::from_secs(10),
        lease_ttl: Duration::from_secs(3),
        lease_renewal: Duration::from_secs(1),
        metrics: tasker_shared::metrics::instruments::Metrics::disabled(),
    }
}

/// A submitter's settings: a process id of its own, short timeouts.
pub(super) fn submitter_settings() -> SubmitterSettings {
    SubmitterSettings {
        process_id: ProcessorId::new_v7(),
        safety_interval: Duration::from_secs(1),
        visibility_timeout: Duration::from_secs(5),
        retry: tasker_shared::messaging::retry::RetryPolicy::default(),
        operation_timeout: Duration::from_secs(10),
    }
}

/// An orchestrator, a worker pool and a submitter, as separate engines of one test.
#[derive(Debug)]
pub(super) struct TestEngines {
    pub(super) pool: PgPool,
    pub(super) messaging: Messaging,
    pub(super) catalog: Arc<Catalog>,
    pub(super) orchestrator: Option<RunningOrchestrator>,
    pub(super) worker: Option<RunningWorker>,
    pub(super) submitter: Option<Submitter>,
}

impl TestEngines {
    /// Starts an orchestrator, `workers` workers and a submitter over `messaging`.
    pub(super) async fn start(
        pool: &PgPool,
        messaging: Messaging,
        catalog: &Arc<Catalog>,
        workers: usize,
        orchestrator: OrchestratorSettings,
    ) -> anyhow::Result<Self> {
        let mut engines = Self {
            pool: pool.clone(),
            messaging,
            catalog: Arc::clone(catalog),
            orchestrator: None,
            worker: None,
            submitter: None,
        };
        engines.orchestrator = Some(
            tasker_orchestration::start(pool.clone(), engines.messaging.clone(), orchestrator)
                .await?,
        );
        engines.start_workers(workers).await?;
        engines.submitter =
            Some(Submitter::open(pool.clone(), &engines.messaging, submitter_settings()).await?);
        Ok(engines)
    }

    /// Starts a worker pool (a new "process") in place of the current one, if any is gone.
    pub(super) async fn start_workers(&mut self, workers: usize) -> anyhow::Result<()> {
        self.worker = Some(
            tasker_worker::start(
                self.pool.clone(),
                self.messaging.clone(),
                Arc::clone(&self.catalog),
                worker_settings(workers),
            )
            .await?,
        );
        Ok(())
    }

    /// Kills the worker pool on the spot, as `kill -9` of its process would.
    pub(super) async fn kill_workers(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort().await;
        }
    }

    /// The submitter.
    pub(super) fn submitter(&mut self) -> anyhow::Result<&mut Submitter> {
        self.submitter.as_mut().context("the submitter is open")
    }

    /// Fails if an engine stopped.
    pub(super) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(orchestrator) = &mut self.orchestrator {
            orchestrator.check_alive()?;
        }
        if let Some(worker) = &mut self.worker {
            worker.check_alive()?;
        }
        Ok(())
    }

    /// Sends one request and waits until its task finishes; returns the task and its state.
    pub(super) async fn run_one(
        &mut self,
        request: &TaskRequest,
        limit: Duration,
    ) -> anyhow::Result<(TaskId, TaskState)> {
        let request_id = self
            .submitter()?
            .submit(std::slice::from_ref(request))
            .await?[0];
        self.wait_for(request_id, limit).await
    }

    /// Waits until request `request_id`'s task finishes.
    pub(super) async fn wait_for(
        &mut self,
        request_id: Uuid,
        limit: Duration,
    ) -> anyhow::Result<(TaskId, TaskState)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            anyhow::ensure!(
                !left.is_zero(),
                "request {request_id} did not finish within {limit:?}"
            );
            for event in self
                .submitter()?
                .next_events(left.min(Duration::from_secs(1)))
                .await?
            {
                match event {
                    SubmissionEvent::Finished {
                        request_id: id,
                        task_id,
                        state,
                    } if id == request_id => return Ok((task_id, state)),
                    SubmissionEvent::Refused {
                        request_id: id,
                        reason,
                    } if id == request_id => anyhow::bail!("request refused: {reason}"),
                    _ => {}
                }
            }
            self.check_alive()?;
        }
    }

    /// Stops everything, and on RabbitMQ deletes the test's queues.
    pub(super) async fn shutdown(mut self) -> anyhow::Result<()> {
        let submitter = self.submitter.take().map(Submitter::close);
        if let Some(submitter) = submitter {
            submitter.await?;
        }
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await?;
        }
        if let Some(orchestrator) = self.orchestrator.take() {
            orchestrator.shutdown().await?;
        }
        let mut queues = self.catalog.worker_queues();
        queues.extend(orchestration_queues());
        for queue in &queues {
            self.messaging.queue.delete_queue(queue).await?;
        }
        Ok(())
    }
}

/// The messaging backend of a test. On RabbitMQ the queue names carry the test database's
/// name, so concurrent tests never share a queue.
pub(super) async fn messaging(backend: Backend, pool: &PgPool) -> anyhow::Result<Messaging> {
    let url = std::env::var("RABBITMQ_URL").unwrap_or_else(|_| DEFAULT_RABBITMQ_URL.to_owned());
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or("tasker")
        .to_owned();
    let rabbitmq = RabbitMqSettings {
        redacted_url: "amqp://127.0.0.1:5672 (test broker)".to_owned(),
        url,
        prefetch: 20,
        heartbeat: Duration::from_secs(10),
        queue_prefix: format!("{database}."),
    };
    setup::messaging(
        backend,
        &rabbitmq,
        &messaging_config(),
        pool,
        &tasker_shared::metrics::instruments::Metrics::disabled(),
    )
    .await
    .context("connecting the messaging backend (is RabbitMQ running on 127.0.0.1:5672?)")
}

/// The shipped templates with counting handlers, registered.
pub(super) async fn catalog(
    pool: &PgPool,
    calls: &Arc<Calls>,
    stall: Option<&Arc<Stall>>,
) -> anyhow::Result<Arc<Catalog>> {
    catalog_from(pool, &templates_dir(), calls, stall).await
}

/// The templates under `dir` with counting handlers, registered.
pub(super) async fn catalog_from(
    pool: &PgPool,
    dir: &std::path::Path,
    calls: &Arc<Calls>,
    stall: Option<&Arc<Stall>>,
) -> anyhow::Result<Arc<Catalog>> {
    let chain = counting_chain(calls, stall);
    Ok(Arc::new(
        Catalog::register(
            &tasker_shared::registry::registry::TemplateRegistry::new(pool.clone()),
            dir,
            &[],
            &chain,
        )
        .await?,
    ))
}

/// Handler invocations per step.
#[derive(Debug, Default)]
pub(super) struct Calls {
    per_step: Mutex<HashMap<StepId, u32>>,
}

impl Calls {
    fn record(&self, step_id: StepId) {
        *self
            .per_step
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(step_id)
            .or_insert(0) += 1;
    }

    /// Invocations of `step_id`'s handler.
    pub(super) fn of(&self, step_id: StepId) -> u32 {
        self.per_step
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&step_id)
            .copied()
            .unwrap_or(0)
    }

    /// Invocations in total.
    pub(super) fn total(&self) -> u32 {
        self.per_step
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }
}

/// Makes the first attempt of one step hang, like a worker that stopped mid-step; the step
/// id is published once it hangs.
#[derive(Debug)]
pub(super) struct Stall {
    step: &'static str,
    reached: watch::Sender<Option<StepId>>,
}

impl Stall {
    /// Stalls the first attempt of every step named `step`.
    pub(super) fn new(step: &'static str) -> Arc<Self> {
        Arc::new(Self {
            step,
            reached: watch::Sender::new(None),
        })
    }

    /// Waits until a step hangs, and returns it.
    pub(super) async fn reached(&self, limit: Duration) -> anyhow::Result<StepId> {
        let mut receiver = self.reached.subscribe();
        let step = tokio::time::timeout(limit, receiver.wait_for(Option::is_some))
            .await
            .context("no step stalled in time")?
            .context("the stall is gone")?;
        step.context("a stalled step")
    }
}

/// A reference handler that counts its invocations (and may stall).
struct Counting {
    inner: Arc<dyn StepHandler>,
    calls: Arc<Calls>,
    stall: Option<Arc<Stall>>,
}

#[async_trait::async_trait]
impl StepHandler for Counting {
    async fn call(&self, context: &StepContext) -> StepOutcome {
        self.calls.record(context.step_id);
        if let Some(stall) = &self.stall
            && stall.step == context.step_name.as_str()
            && context.attempt == 1
        {
            stall.reached.send_replace(Some(context.step_id));
            std::future::pending::<()>().await;
        }
        self.inner.call(context).await
    }
}

/// The reference handlers, counting into `calls`, stalling as `stall` says.
pub(super) fn counting_chain(calls: &Arc<Calls>, stall: Option<&Arc<Stall>>) -> ResolverChain {
    reference_chain(|_, inner| {
        Arc::new(Counting {
            inner,
            calls: Arc::clone(calls),
            stall: stall.cloned(),
        })
    })
}
