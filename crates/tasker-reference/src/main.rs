//! The reference workflow: one command that runs real tasks through the whole Tasker
//! foundation, in one process, on the running PostgreSQL.
//!
//! `cargo run -p tasker-reference -- [--tasks N] [--templates DIR]
//! [--messaging pgmq|rabbitmq|in-memory] [--workers K] [--concurrency C] [--bench]` loads the
//! configuration for `TASKER_ENV`, creates and migrates the database, resolves the handlers of
//! the templates shipped in `templates/` (linear, diamond, tree, an eight-step mixed DAG, a step
//! that succeeds on its second attempt and one that fails permanently) through the registry's
//! resolver chain and registers them through the template registry, submits N task requests
//! and runs them to completion with an in-process orchestrator and worker pool, then prints a
//! summary and checks every step's result. `--bench` measures end-to-end latency
//! and throughput instead (see [`mod@bench`]).
//!
//! The flow, module by module: [`setup`] (configuration, database, messaging) → [`catalog`]
//! (templates and handlers) → [`engine`] (the loops of [`orchestrator`] and [`worker`]) →
//! [`driver`] (requests, progress, verification against [`expected`]) → [`report`].
//!
//! Delivery guarantees, and where they come from:
//! - every task transition happens in a transaction that holds the task's row lock and leaves
//!   the task in a resting state; result processing is sharded by task in-process, and the
//!   compare-and-set transitions keep several processes safe too;
//! - work is batched across tasks: the orchestrator applies each kind of transition of a
//!   whole batch of tasks (and their steps) in one statement, and reads their readiness in
//!   one; a worker stores the results of a batch of steps in one transaction;
//! - on PGMQ the messages a transaction sends and the acknowledgements of the messages it
//!   consumed commit with it (`outbox`); on RabbitMQ and in memory they follow the commit, and
//!   the claim loop redrives steps left `enqueued` (or results left unreported) longer than
//!   twice the visibility timeout;
//! - a worker acknowledges a step message only with (or after) storing its result and sending
//!   the result message; a redelivered message whose step is still `in_progress` means its
//!   worker died, and the attempt is failed (retryably) and retried: the one case in which a
//!   handler runs twice for one step.
//!
//! Logs go to stderr, filtered by `TASKER_LOG` (default `warn`; `tasker_reference=debug`
//! shows batch timings).
//!
//! This binary depends on the `tasker-shared` facade only, never on the sub-crates directly,
//! and on nothing of the workspace besides: it shows what can be built on the foundation's
//! public API. It holds no SQL of its own.

mod bench;
mod catalog;
mod driver;
mod engine;
mod expected;
mod handlers;
mod orchestrator;
mod outbox;
mod report;
mod setup;
mod tracker;
mod worker;

#[cfg(test)]
mod tests;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::catalog::Catalog;
use crate::driver::DriveOptions;
use crate::engine::{Engine, EngineSettings};
use crate::orchestrator::OrchestratorSettings;
use crate::outbox::Messaging;
use crate::setup::Backend;
use crate::tracker::Tracker;
use crate::worker::WorkerSettings;

/// Runs real tasks through the Tasker foundation and reports what happened.
#[derive(Debug, Parser)]
#[command(name = "tasker-reference", version, about)]
struct Args {
    /// How many tasks to run (cycling through the templates).
    #[arg(long, default_value_t = 120)]
    tasks: usize,
    /// The directory of task templates to register and run.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))]
    templates: PathBuf,
    /// The messaging backend (default: `common.queues.backend` of the configuration).
    #[arg(long, value_enum)]
    messaging: Option<Backend>,
    /// Workers in the pool.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Orchestrator shards: result processors and claim loops working in parallel.
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Measure latency and throughput instead of running a mixed workload.
    #[arg(long)]
    bench: bool,
    /// This machine's `pgbench -N` transactions per second, to compare throughput with.
    #[arg(long, requires = "bench")]
    pgbench_tps: Option<f64>,
    /// Do not draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TASKER_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the tokio runtime: {error}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything a run needs, wired once.
struct Wiring {
    pool: sqlx::PgPool,
    messaging: Messaging,
    catalog: Arc<Catalog>,
    settings: EngineSettings,
    backend: Backend,
}

async fn wire(args: &Args) -> anyhow::Result<Wiring> {
    let (config, environment) = setup::load_config()?;
    let backend = args
        .messaging
        .unwrap_or_else(|| setup::configured_backend(&config));
    let shards = args.shards.max(1);
    let connections = u32::try_from(args.workers + 2 * shards + 8).unwrap_or(u32::MAX);
    let pool_config = setup::pool_config(&config, connections)?;
    tracing::info!(%environment, target = %pool_config.target(), backend = backend.as_str(), "starting");
    let pool = setup::database(&pool_config, config.common.database.url.expose()).await?;
    let chain = handlers::reference_chain(|_, handler| handler);
    let catalog = Arc::new(Catalog::register(&pool, &args.templates, &chain).await?);
    let messaging_config = setup::messaging_config(&config);
    let messaging = setup::messaging(
        backend,
        &setup::rabbitmq_settings(&config),
        &messaging_config,
        &pool,
    )
    .await?;
    let backoff = setup::backoff(&config);
    let settings = EngineSettings {
        workers: args.workers,
        orchestrator: OrchestratorSettings {
            backoff,
            claim_batch: 50,
            result_batch: 50,
            shards,
            messaging: messaging_config.clone(),
            redrive_after: messaging_config.visibility_timeout * 2,
        },
        worker: WorkerSettings {
            batch: 10,
            visibility_timeout: messaging_config.visibility_timeout,
            poll_interval: messaging_config.fallback_poll_interval,
            default_step_timeout: Duration::from_secs(60),
            backoff,
        },
    };
    Ok(Wiring {
        pool,
        messaging,
        catalog,
        settings,
        backend,
    })
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wiring = wire(&args).await?;
    if args.bench {
        let report = bench::run(&wiring, &args).await?;
        write_out(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let tracker = Arc::new(Tracker::default());
    let mut engine = Engine::start(
        wiring.pool.clone(),
        wiring.messaging.clone(),
        Arc::clone(&wiring.catalog),
        Arc::clone(&tracker),
        wiring.settings.clone(),
    )
    .await?;
    let templates: Vec<_> = wiring.catalog.entries().cloned().collect();
    let planned = driver::plan(&templates, args.tasks, uuid::Uuid::now_v7());
    let options = DriveOptions {
        concurrency: args.concurrency,
        stall_limit: Duration::from_secs(120),
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let driven = tokio::select! {
        driven = driver::drive(&mut engine, &tracker, &wiring.pool, planned, options) => driven,
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("listening for Ctrl-C")?;
            Err(anyhow::anyhow!("interrupted"))
        }
    };
    let stopped = engine.shutdown().await;
    let report = driven?;
    stopped.context("stopping the engine")?;
    let summary = report::summarize(&report);
    write_out(&report::render(&report, &summary, wiring.backend.as_str()))?;
    let incomplete = ["unfinished", "rejected"]
        .iter()
        .any(|state| summary.by_state.contains_key(*state));
    Ok(if summary.mismatched == 0 && !incomplete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
