//! The test harness: a fresh, migrated database per test (dropped afterwards, also when the
//! test fails), the messaging backends, handlers that count their invocations (and can stall
//! a step like a hung worker), and an engine with short timeouts.
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
use tasker_shared::registry::handler::{StepContext, StepHandler, StepOutcome};
use tasker_shared::registry::resolver::ResolverChain;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::engine::{Engine, EngineSettings, consumed_queues};
use crate::handlers::reference_chain;
use crate::orchestrator::OrchestratorSettings;
use crate::outbox::Messaging;
use crate::setup::{self, Backend, RabbitMqSettings};
use crate::tracker::Tracker;
use crate::worker::WorkerSettings;

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

/// An engine with `workers` workers and short timeouts.
pub(super) fn engine_settings(workers: usize) -> EngineSettings {
    let messaging = messaging_config();
    let backoff = BackoffParams {
        base_ms: 50,
        multiplier: 2.0,
        max_ms: 1_000,
    };
    EngineSettings {
        workers,
        orchestrator: OrchestratorSettings {
            backoff,
            claim_batch: 20,
            result_batch: 20,
            shards: 2,
            messaging: messaging.clone(),
            redrive_after: Duration::from_secs(10),
        },
        worker: WorkerSettings {
            batch: 4,
            visibility_timeout: messaging.visibility_timeout,
            poll_interval: messaging.fallback_poll_interval,
            default_step_timeout: Duration::from_secs(30),
            backoff,
        },
    }
}

/// An engine over `backend` with `workers` workers and a fresh tracker of its own.
pub(super) async fn start_engine(
    backend: Backend,
    pool: &PgPool,
    catalog: &Arc<Catalog>,
    workers: usize,
) -> anyhow::Result<(Arc<Tracker>, Engine)> {
    let messaging = messaging(backend, pool, catalog).await?;
    let tracker = Arc::new(Tracker::default());
    let engine = Engine::start(
        pool.clone(),
        messaging,
        Arc::clone(catalog),
        Arc::clone(&tracker),
        engine_settings(workers),
    )
    .await?;
    Ok((tracker, engine))
}

/// The messaging backend of a test. RabbitMQ's queue names are fixed, so tests on it hold
/// [`rabbitmq_lock`] for their whole run.
pub(super) async fn messaging(
    backend: Backend,
    pool: &PgPool,
    catalog: &Catalog,
) -> anyhow::Result<Messaging> {
    let url = std::env::var("RABBITMQ_URL").unwrap_or_else(|_| DEFAULT_RABBITMQ_URL.to_owned());
    let rabbitmq = RabbitMqSettings {
        redacted_url: "amqp://127.0.0.1:5672 (test broker)".to_owned(),
        url,
        prefetch: 20,
        heartbeat: Duration::from_secs(10),
    };
    let queues = consumed_queues(catalog);
    let messaging = setup::messaging(backend, &rabbitmq, &messaging_config(), pool)
        .await
        .context("connecting the messaging backend (is RabbitMQ running on 127.0.0.1:5672?)")?;
    if backend == Backend::Rabbitmq {
        // A test killed before it consumed its messages leaves them on the broker's fixed
        // queues; take them off before this test starts.
        for queue in &queues {
            messaging.queue.ensure_queue(queue).await?;
            let consumer = &messaging.queue;
            loop {
                let stale = consumer
                    .receive(queue, 100, Duration::from_secs(30))
                    .await?;
                if stale.is_empty() {
                    break;
                }
                for message in &stale {
                    consumer.ack(message.receipt()).await?;
                }
            }
        }
    }
    Ok(messaging)
}

/// Serialises the tests that use RabbitMQ, across test processes too (nextest runs each test
/// in its own process): the engine's queue names are fixed, and two engines on one broker
/// would take each other's messages. The lock is released when the file is dropped.
pub(super) async fn rabbitmq_lock() -> anyhow::Result<std::fs::File> {
    let path = std::env::temp_dir().join("tasker-reference-rabbitmq-tests.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        anyhow::Ok(file)
    })
    .await
    .context("waiting for the RabbitMQ test lock")?
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
