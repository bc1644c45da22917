//! The composition root's first half: the configuration for `TASKER_ENV`, mapped onto each
//! adapter's and engine's own settings; the database (created if missing, migrated, pooled);
//! and the messaging backend.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use tasker_orchestration::OrchestratorSettings;
use tasker_orchestration::client::SubmitterSettings;
use tasker_orchestration::staleness::StalenessSettings;
use tasker_shared::cache::Cache;
use tasker_shared::config::ConfigLoader;
use tasker_shared::config::event_system::DeploymentMode as ConfiguredMode;
use tasker_shared::config::tasker::TaskerConfig;
use tasker_shared::database::pool::PoolConfig;
use tasker_shared::database::readiness::BackoffParams;
use tasker_shared::database::stale::StalenessThresholds;
use tasker_shared::database::{health, migrate};
use tasker_shared::messaging::config::{
    DeploymentMode, MessagingConfig, PgmqConfig, RabbitMqConfig,
};
use tasker_shared::messaging::instrumented::InstrumentedQueue;
use tasker_shared::messaging::memory::InMemoryQueue;
use tasker_shared::messaging::outbox::Messaging;
use tasker_shared::messaging::pgmq::PgmqQueue;
use tasker_shared::messaging::queue::MessageQueue;
use tasker_shared::messaging::queue_name::QueueName;
use tasker_shared::messaging::rabbitmq::RabbitMqQueue;
use tasker_shared::messaging::retry::RetryPolicy;
use tasker_shared::metrics::instruments::Metrics;
use tasker_shared::models::ids::ProcessorId;
use tasker_shared::registry::registry::TemplateRegistry;
use tasker_shared::resilience::registry::CircuitBreakers;
use tasker_worker::WorkerSettings;

/// The messaging backends the reference workflow can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// PostgreSQL with pgmq: messages commit with the state changes they announce.
    Pgmq,
    /// RabbitMQ (quorum queues).
    Rabbitmq,
    /// In this process's memory.
    InMemory,
}

impl Backend {
    /// The spelling on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Backend::Pgmq => "pgmq",
            Backend::Rabbitmq => "rabbitmq",
            Backend::InMemory => "in-memory",
        }
    }
}

/// Loads the configuration for `TASKER_ENV` (default `development`).
pub(crate) fn load_config() -> anyhow::Result<(TaskerConfig, String)> {
    let loaded = ConfigLoader::builder()
        .load()
        .context("loading the Tasker configuration (see `cargo xtask config check`)")?;
    Ok((loaded.config, loaded.environment))
}

/// The backend the configuration names.
pub(crate) fn configured_backend(config: &TaskerConfig) -> Backend {
    use tasker_shared::config::common::MessagingBackend;
    match config.common.queues.backend {
        MessagingBackend::Pgmq => Backend::Pgmq,
        MessagingBackend::RabbitMq => Backend::Rabbitmq,
    }
}

/// The database's pool settings from the configuration, with at least `min_connections`
/// connections allowed (every worker and loop of the engine holds one at times).
pub(crate) fn pool_config(
    config: &TaskerConfig,
    min_connections: u32,
) -> anyhow::Result<PoolConfig> {
    let database = &config.common.database;
    let mut pool = PoolConfig::from_url(database.url.expose())
        .with_context(|| format!("common.database.url {}", database.url.redacted()))?;
    pool.max_connections = database.pool.max_connections.max(min_connections);
    pool.min_connections = database.pool.min_connections.min(pool.max_connections);
    pool.acquire_timeout = Duration::from_secs(u64::from(database.pool.acquire_timeout_seconds));
    // A connection given up on (a timeout) is checked within the same limit when released.
    pool.release_timeout = Some(pool.acquire_timeout);
    // A session whose process gave up on it mid-transaction (or vanished) is ended by the
    // server once no unit of work could still be using it, freeing its locks.
    let processing = config
        .orchestration
        .event_systems
        .orchestration
        .timing
        .processing_timeout_seconds
        .max(
            config
                .worker
                .event_systems
                .worker
                .timing
                .processing_timeout_seconds,
        );
    pool.idle_in_transaction_timeout = Some(Duration::from_secs(u64::from(processing)));
    pool.idle_timeout = Some(Duration::from_secs(u64::from(
        database.pool.idle_timeout_seconds,
    )));
    pool.max_lifetime = Some(Duration::from_secs(u64::from(
        database.pool.max_lifetime_seconds,
    )));
    pool.statement_timeout = (database.statement_timeout_ms > 0)
        .then(|| Duration::from_millis(database.statement_timeout_ms));
    pool.application_name = database.application_name.clone();
    Ok(pool)
}

/// Creates the database if it is missing, connects and applies the migrations (which install
/// pgmq's SQL too).
pub(crate) async fn database(pool: &PoolConfig, url: &str) -> anyhow::Result<PgPool> {
    let target = pool.target();
    // A server that accepts connections but never answers must not hang the start.
    if migrate::create_database_if_missing_within(url, pool.acquire_timeout)
        .await
        .with_context(|| format!("creating {target} if it is missing"))?
    {
        tracing::info!(%target, "created the database");
    }
    let connected = pool
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let report = migrate::run(&connected)
        .await
        .with_context(|| format!("migrating {target}"))?;
    for migration in &report.applied {
        tracing::info!(version = migration.version, description = %migration.description, "applied a migration");
    }
    // Advisory: a server whose setting cannot be read is used all the same.
    if let Ok(false) = health::autovacuum_enabled(&connected).await {
        tracing::warn!(
            %target,
            "autovacuum is off on this server: table statistics are never refreshed, so query \
             plans chosen while the tables were small stay in use as they grow (run ANALYZE \
             regularly, or set autovacuum = on)"
        );
    }
    Ok(connected)
}

/// The consumer settings from the configuration.
pub(crate) fn messaging_config(config: &TaskerConfig) -> MessagingConfig {
    let system = &config.orchestration.event_systems.orchestration;
    MessagingConfig {
        deployment_mode: match system.deployment_mode {
            ConfiguredMode::Polling => DeploymentMode::Polling,
            ConfiguredMode::EventDriven => DeploymentMode::EventDriven,
            ConfiguredMode::Hybrid => DeploymentMode::Hybrid,
        },
        visibility_timeout: Duration::from_secs(u64::from(
            config.common.queues.default_visibility_timeout_seconds,
        )),
        poll_interval: Duration::from_millis(u64::from(config.common.queues.pgmq.poll_interval_ms)),
        fallback_poll_interval: Duration::from_secs(u64::from(
            system.timing.fallback_polling_interval_seconds,
        )),
        operation_timeout: Duration::from_secs(u64::from(system.timing.processing_timeout_seconds)),
        ..MessagingConfig::default()
    }
}

/// How transient failures are retried: the orchestration event system's retries and backoff.
///
/// At least one retry more than the pool has connections: when the server terminates every
/// session at once (a failover, an operator), each try may draw another dead pooled connection
/// before a fresh one, and each failed try discards the one it drew.
pub(crate) fn retry_policy(config: &TaskerConfig, pool: &PoolConfig) -> RetryPolicy {
    let processing = &config.orchestration.event_systems.orchestration.processing;
    RetryPolicy {
        max_retries: processing.max_retries.max(pool.max_connections + 1),
        initial_delay: Duration::from_millis(u64::from(processing.backoff.initial_delay_ms)),
        max_delay: Duration::from_millis(u64::from(processing.backoff.max_delay_ms)),
        multiplier: processing.backoff.multiplier,
        jitter: processing.backoff.jitter_percent,
    }
}

/// The retry backoff from the configuration, as the SQL functions take it.
pub(crate) fn backoff(config: &TaskerConfig) -> BackoffParams {
    let backoff = &config.common.backoff;
    let base_seconds = backoff
        .default_backoff_seconds
        .first()
        .copied()
        .unwrap_or(1);
    BackoffParams {
        base_ms: i64::from(base_seconds) * 1000,
        multiplier: backoff.backoff_multiplier,
        max_ms: i64::from(backoff.max_backoff_seconds) * 1000,
    }
}

/// The staleness detector from `orchestration.dlq`, or `None` when it is off. The
/// configuration has no threshold for the states an orchestrator leaves within its own
/// transaction (`initializing`, `enqueuing_steps`, `evaluating_results`): tasker-db's default
/// applies to them.
pub(crate) fn staleness_settings(config: &TaskerConfig) -> Option<StalenessSettings> {
    let dlq = &config.orchestration.dlq;
    let detection = &dlq.staleness_detection;
    if !(dlq.enabled && detection.enabled) {
        return None;
    }
    let int = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    let thresholds = &detection.thresholds;
    Some(StalenessSettings {
        interval: Duration::from_secs(u64::from(detection.detection_interval_seconds)),
        batch_size: int(detection.batch_size),
        thresholds: StalenessThresholds {
            waiting_for_dependencies_minutes: int(thresholds.waiting_for_dependencies_minutes),
            waiting_for_retry_minutes: int(thresholds.waiting_for_retry_minutes),
            steps_in_process_minutes: int(thresholds.steps_in_process_minutes),
            max_lifetime_minutes: int(thresholds.task_max_lifetime_hours.saturating_mul(60)),
            ..StalenessThresholds::DEFAULT
        },
        dry_run: detection.dry_run,
        open_dlq_entries: detection.actions.auto_move_to_dlq,
        transition_to_error: detection.actions.auto_transition_to_error,
        event_channel: detection
            .actions
            .emit_events
            .then(|| detection.actions.event_channel.clone()),
    })
}

/// Where RabbitMQ is and how to talk to it.
#[derive(Clone)]
pub(crate) struct RabbitMqSettings {
    /// The AMQP URL (it may hold a password: never printed).
    pub(crate) url: String,
    /// The URL with its password masked.
    pub(crate) redacted_url: String,
    /// Unacknowledged deliveries per consumer.
    pub(crate) prefetch: u16,
    /// The AMQP heartbeat.
    pub(crate) heartbeat: Duration,
    /// Put before every queue name on the broker.
    pub(crate) queue_prefix: String,
}

impl std::fmt::Debug for RabbitMqSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqSettings")
            .field("url", &self.redacted_url)
            .field("prefetch", &self.prefetch)
            .field("heartbeat", &self.heartbeat)
            .field("queue_prefix", &self.queue_prefix)
            .finish()
    }
}

/// The RabbitMQ settings of the configuration. The queue prefix defaults to the database's
/// name and a dot: every database is its own deployment, on one broker as on one server.
pub(crate) fn rabbitmq_settings(config: &TaskerConfig, pool: &PoolConfig) -> RabbitMqSettings {
    let rabbitmq = &config.common.queues.rabbitmq;
    let queue_prefix = if rabbitmq.queue_prefix.is_empty() {
        format!("{}.", pool.target().database)
    } else {
        rabbitmq.queue_prefix.clone()
    };
    RabbitMqSettings {
        url: rabbitmq.url.expose().to_owned(),
        redacted_url: rabbitmq.url.redacted(),
        prefetch: rabbitmq.prefetch_count,
        heartbeat: Duration::from_secs(u64::from(rabbitmq.heartbeat_seconds)),
        queue_prefix,
    }
}

/// Connects the messaging backend. On RabbitMQ one connection serves every queue: each
/// consumed queue gets a channel of its own on it, and receipts name their queue.
pub(crate) async fn messaging(
    backend: Backend,
    rabbitmq: &RabbitMqSettings,
    settings: &MessagingConfig,
    pool: &PgPool,
    metrics: &Metrics,
) -> anyhow::Result<Messaging> {
    // PGMQ records its own traffic (its transactional operations bypass the queue trait);
    // the other backends are wrapped.
    let instrumented = |queue: Arc<dyn MessageQueue>| -> Arc<dyn MessageQueue> {
        Arc::new(InstrumentedQueue::new(queue, metrics.messaging.clone()))
    };
    Ok(match backend {
        Backend::Pgmq => {
            let pgmq = PgmqQueue::new(
                pool.clone(),
                PgmqConfig {
                    messaging: settings.clone(),
                    ..PgmqConfig::default()
                },
            )
            .await
            .with_metrics(metrics.messaging.clone());
            Messaging::pgmq(Arc::new(pgmq))
        }
        Backend::Rabbitmq => {
            let queue = RabbitMqQueue::connect(RabbitMqConfig {
                messaging: settings.clone(),
                url: rabbitmq.url.clone(),
                prefetch: rabbitmq.prefetch,
                heartbeat: rabbitmq.heartbeat,
                // The prefix names the deployment (the database, by default): an operator
                // sees whose connections these are.
                connection_name: format!("tasker-reference {}", rabbitmq.queue_prefix),
                queue_prefix: rabbitmq.queue_prefix.clone(),
                ..RabbitMqConfig::default()
            })
            .await
            .with_context(|| format!("connecting to RabbitMQ at {}", rabbitmq.redacted_url))?;
            Messaging::external(instrumented(Arc::new(queue)))
        }
        Backend::InMemory => {
            Messaging::external(instrumented(Arc::new(InMemoryQueue::new(settings))))
        }
    })
}

/// What a process of any role runs on: the configuration mapped onto the adapters.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// The database.
    pub(crate) pool: PgPool,
    /// The messaging backend.
    pub(crate) messaging: Messaging,
    /// Which backend it is.
    pub(crate) backend: Backend,
    /// This process.
    pub(crate) process_id: ProcessorId,
    /// The consumer settings.
    pub(crate) messaging_config: MessagingConfig,
    /// The retry backoff.
    pub(crate) backoff: BackoffParams,
    /// How transient failures of sends and stores are retried.
    pub(crate) retry: RetryPolicy,
    /// How often a worker process renews its lease
    /// (`worker.event_systems.worker.timing.health_check_interval_seconds`); the lease lasts
    /// [`LEASE_BEATS`] renewals.
    pub(crate) lease_renewal: Duration,
    /// The longest a worker's batch may wait on the database and the broker
    /// (`worker.event_systems.worker.timing.processing_timeout_seconds`).
    pub(crate) worker_processing_timeout: Duration,
    /// The longest an orchestrator's or a submitter's batch may wait on them
    /// (`orchestration.event_systems.orchestration.timing.processing_timeout_seconds`).
    pub(crate) processing_timeout: Duration,
    /// The orchestrator's staleness detector, if it runs.
    pub(crate) staleness: Option<StalenessSettings>,
    /// One circuit breaker per component (`common.circuit_breakers`).
    pub(crate) breakers: CircuitBreakers,
    /// The cache (`common.cache`), behind the `cache` breaker.
    pub(crate) cache: Cache,
    /// How long a template stays cached (`common.cache.template_ttl_seconds`).
    pub(crate) template_ttl: Duration,
    /// Where the engines and adapters record (`common.telemetry.metrics_exporter`).
    pub(crate) metrics: Metrics,
    /// Where this process serves `GET /metrics`, if it does
    /// (`common.telemetry.metrics_listen`).
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    /// The processing pool's settings (the web pool is derived from them).
    pub(crate) pool_config: PoolConfig,
    /// The orchestrator's HTTP API (`orchestration.web`).
    pub(crate) web: tasker_shared::config::web::WebConfig,
}

/// Renewals a worker's lease outlives: a process is taken for gone after missing this many.
pub(crate) const LEASE_BEATS: u32 = 3;

/// Loads the configuration and connects the database (created and migrated if needed) and
/// the messaging backend, with a pool of at least `connections`.
pub(crate) async fn wire(common: &crate::CommonArgs, connections: u32) -> anyhow::Result<Wiring> {
    let (config, environment) = load_config()?;
    let backend = common
        .messaging
        .unwrap_or_else(|| configured_backend(&config));
    let process_id = common
        .process_id
        .map_or_else(ProcessorId::new_v7, ProcessorId::from_uuid);
    let pool_config = pool_config(&config, connections)?;
    tracing::info!(%environment, %process_id, target = %pool_config.target(), backend = backend.as_str(), "starting");
    let (metrics, metrics_listen) = crate::metrics::install(&config.common.telemetry)?;
    let pool = database(&pool_config, config.common.database.url.expose()).await?;
    let messaging_config = messaging_config(&config);
    let messaging = messaging(
        backend,
        &rabbitmq_settings(&config, &pool_config),
        &messaging_config,
        &pool,
        &metrics,
    )
    .await?;
    let breakers = crate::breakers::circuit_breakers(&config.common.circuit_breakers, &metrics)?;
    Ok(Wiring {
        pool,
        messaging,
        backend,
        process_id,
        messaging_config,
        backoff: backoff(&config),
        retry: retry_policy(&config, &pool_config),
        lease_renewal: Duration::from_secs(u64::from(
            config
                .worker
                .event_systems
                .worker
                .timing
                .health_check_interval_seconds,
        )),
        worker_processing_timeout: Duration::from_secs(u64::from(
            config
                .worker
                .event_systems
                .worker
                .timing
                .processing_timeout_seconds,
        )),
        processing_timeout: Duration::from_secs(u64::from(
            config
                .orchestration
                .event_systems
                .orchestration
                .timing
                .processing_timeout_seconds,
        )),
        staleness: staleness_settings(&config),
        cache: crate::caching::cache(
            &config.common.cache,
            &pool_config.target().database,
            &breakers,
        )?,
        breakers,
        template_ttl: Duration::from_secs(u64::from(config.common.cache.template_ttl_seconds)),
        metrics,
        metrics_listen,
        pool_config,
        web: config.orchestration.web.clone(),
    })
}

impl Wiring {
    /// The messaging backend as the engines use it: sends and receives behind the `messaging`
    /// circuit breaker. (Submitters use [`Wiring::messaging`] as it is: a requester waits for
    /// the broker rather than failing fast.)
    /// The template registry, cache-aside through the configured cache: registering
    /// templates invalidates their cached copies for every process sharing the cache.
    pub(crate) fn template_registry(&self) -> TemplateRegistry {
        TemplateRegistry::new(self.pool.clone()).with_cache(self.cache.clone(), self.template_ttl)
    }

    pub(crate) fn engine_messaging(&self) -> Messaging {
        self.messaging.guarded(self.breakers.get("messaging"))
    }

    /// The orchestrator's settings, with `shards` result and claim loops.
    pub(crate) fn orchestrator_settings(&self, shards: usize) -> OrchestratorSettings {
        OrchestratorSettings {
            shards: shards.max(1),
            staleness: self.staleness.clone(),
            readiness_breaker: Some(self.breakers.get("task_readiness")),
            template_cache: Some(self.cache.clone()),
            template_ttl: self.template_ttl,
            metrics: self.metrics.clone(),
            ..OrchestratorSettings::new(
                self.process_id,
                self.backoff,
                self.messaging_config.clone(),
            )
        }
    }

    /// The worker engine's settings, with `workers` workers.
    pub(crate) fn worker_settings(&self, workers: usize) -> WorkerSettings {
        WorkerSettings {
            process_id: self.process_id,
            workers: workers.max(1),
            shutdown_grace: Duration::from_secs(30),
            batch: 10,
            visibility_timeout: self.messaging_config.visibility_timeout,
            poll_interval: self.messaging_config.fallback_poll_interval,
            default_step_timeout: Duration::from_secs(60),
            backoff: self.backoff,
            retry: self.retry,
            lease_ttl: self.lease_renewal * LEASE_BEATS,
            lease_renewal: self.lease_renewal,
            operation_timeout: self.worker_processing_timeout,
            metrics: self.metrics.clone(),
        }
    }

    /// Starts this process's metrics: the sampler (with the depths of `queues`) and the
    /// `GET /metrics` listener, as configured.
    pub(crate) async fn serve_metrics(
        &self,
        queues: Vec<QueueName>,
    ) -> anyhow::Result<crate::metrics::Serving> {
        let sampled = Arc::new(crate::metrics::Sampled::new(
            self.metrics.clone(),
            self.pool.clone(),
            self.cache.clone(),
            self.breakers.clone(),
        ));
        crate::metrics::Serving::start(sampled, self.metrics_listen, self.messaging.clone(), queues)
            .await
    }

    /// A submitter's settings: the database is read for missing replies as often as the
    /// consumers poll.
    pub(crate) fn submitter_settings(&self) -> SubmitterSettings {
        SubmitterSettings {
            process_id: self.process_id,
            safety_interval: self.messaging_config.fallback_poll_interval,
            visibility_timeout: self.messaging_config.visibility_timeout,
            retry: self.retry,
            operation_timeout: self.processing_timeout,
        }
    }
}
