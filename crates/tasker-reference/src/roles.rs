//! The roles a process plays, each composed from the same pieces: `run` (orchestrator, workers
//! and submitter in one process), `orchestrator`, `worker` and `submit`. Long-running roles
//! stop gracefully on SIGINT or SIGTERM; a second signal aborts.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tasker_orchestration::client::{Submitter, send_requests};
use tasker_shared::messaging::queue_name::orchestration_queues;
use tasker_worker::catalog::Catalog;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::driver::{self, RunReport};
use crate::handlers::{Delayed, reference_chain};
use crate::setup::{self, Wiring};
use crate::{OrchestratorArgs, RunArgs, SubmitArgs, WorkerArgs, bench, report, write_out};

/// SIGINT and SIGTERM, as one stream.
pub(crate) struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    /// Waits for the next signal and names it.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Connections a role's pool needs at least.
fn connections(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Registers the templates under `dir` of `namespaces` (all if empty) with their handlers,
/// each taking at least `delay`.
async fn catalog(
    wiring: &Wiring,
    dir: &std::path::Path,
    namespaces: &[String],
    delay: std::time::Duration,
) -> anyhow::Result<Arc<Catalog>> {
    let chain = reference_chain(|_, handler| {
        if delay.is_zero() {
            handler
        } else {
            Arc::new(Delayed {
                inner: handler,
                delay,
            })
        }
    });
    let catalog = Catalog::register(&wiring.template_registry(), dir, namespaces, &chain).await?;
    Ok(Arc::new(catalog))
}

/// A running engine, as a long-running role serves it.
trait Running {
    fn check_alive(&mut self) -> anyhow::Result<()>;
    fn shutdown(self) -> impl std::future::Future<Output = anyhow::Result<()>>;
}

impl Running for tasker_orchestration::RunningOrchestrator {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        Ok(tasker_orchestration::RunningOrchestrator::check_alive(
            self,
        )?)
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        Ok(tasker_orchestration::RunningOrchestrator::shutdown(self).await?)
    }
}

impl Running for tasker_worker::RunningWorker {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        Ok(tasker_worker::RunningWorker::check_alive(self)?)
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        Ok(tasker_worker::RunningWorker::shutdown(self).await?)
    }
}

/// Serves `running` until SIGINT or SIGTERM (or its failure), then stops it gracefully (a
/// second signal aborts) and says so on stdout.
async fn serve_until_signal(
    signals: &mut Signals,
    role: &'static str,
    mut running: impl Running + Send,
) -> anyhow::Result<ExitCode> {
    let served = serve(signals, &mut || running.check_alive()).await;
    if let Ok(name) = &served {
        tracing::info!(
            signal = name,
            "{role} stopping; work in progress finishes first"
        );
    }
    stop_gracefully(signals, running.shutdown()).await?;
    served?;
    write_out(&format!("{role} stopped\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for a signal while the engines run; fails as soon as one of them fails.
async fn serve(
    signals: &mut Signals,
    check_alive: &mut (dyn FnMut() -> anyhow::Result<()> + Send),
) -> anyhow::Result<&'static str> {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            name = signals.recv() => return Ok(name),
            _ = tick.tick() => check_alive()?,
        }
    }
}

/// Runs `stop` (a graceful shutdown) unless a second signal comes first.
async fn stop_gracefully(
    signals: &mut Signals,
    stop: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        stopped = stop => stopped,
        name = signals.recv() => anyhow::bail!("{name} again: aborting"),
    }
}

/// `orchestrator`: the orchestration engine until a signal.
pub(crate) async fn orchestrator(args: OrchestratorArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new()?;
    let wiring = setup::wire(&args.common, connections(2 * args.shards + 6)).await?;
    let running = tasker_orchestration::start(
        wiring.pool.clone(),
        wiring.engine_messaging(),
        wiring.orchestrator_settings(args.shards),
    )
    .await?;
    // After the start, which creates the queues whose depths it samples.
    let serving = wiring
        .serve_metrics(orchestration_queues().to_vec())
        .await?;
    let api = match crate::web::start(&wiring, running.claim_waker()).await {
        Ok(api) => api,
        Err(error) => {
            let _ = running.shutdown().await;
            let _ = serving.stop().await;
            return Err(error);
        }
    };
    write_out(&format!(
        "orchestrator ready: process {} on {}\n",
        wiring.process_id,
        wiring.backend.as_str()
    ))?;
    let served = serve_until_signal(
        &mut signals,
        "orchestrator",
        WithApi {
            engine: running,
            api,
        },
    )
    .await;
    serving.stop().await?;
    served
}

/// An engine and the API server in front of it: the server stops first (requests in flight
/// finish), then the engine.
struct WithApi<R> {
    engine: R,
    api: Option<crate::web::WebServer>,
}

impl<R: Running + Send> Running for WithApi<R> {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.engine.check_alive()
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        let api = match self.api {
            Some(api) => api.shutdown(API_GRACE).await,
            None => Ok(()),
        };
        let engine = self.engine.shutdown().await;
        api.context("stopping the API")?;
        engine
    }
}

/// How long requests in flight may take to finish when the API stops.
const API_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// `worker`: the worker engine for the chosen namespaces until a signal.
pub(crate) async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new()?;
    let wiring = setup::wire(&args.common, connections(args.workers + 4)).await?;
    let delay = std::time::Duration::from_millis(args.step_delay_ms);
    let catalog = catalog(&wiring, &args.templates.templates, &args.namespaces, delay).await?;
    let queues: Vec<String> = catalog
        .worker_queues()
        .iter()
        .map(ToString::to_string)
        .collect();
    let worker_queues = catalog.worker_queues();
    let running = tasker_worker::start(
        wiring.pool.clone(),
        wiring.engine_messaging(),
        catalog,
        wiring.worker_settings(args.workers),
    )
    .await?;
    let serving = wiring.serve_metrics(worker_queues).await?;
    write_out(&format!(
        "worker ready: process {} on {}, queues {}\n",
        wiring.process_id,
        wiring.backend.as_str(),
        queues.join(", ")
    ))?;
    let served = serve_until_signal(&mut signals, "worker", running).await;
    serving.stop().await?;
    served
}

/// `submit`: sends requests; with `--wait`, follows them and reports.
pub(crate) async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if args.api == crate::SubmitApi::Http {
        return crate::http_submit::submit(&args).await;
    }
    let templates = driver::load_templates(&args.templates.templates)?;
    let wiring = setup::wire(&args.common, connections(4)).await?;
    if args.bench {
        write_out(&bench::submit(&wiring, &templates, args.pgbench_tps).await?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let planned = driver::plan(&templates, args.tasks, uuid::Uuid::now_v7());
    if !args.wait {
        for chunk in planned.chunks(100) {
            let requests: Vec<_> = chunk.iter().map(|item| item.request.clone()).collect();
            send_requests(
                &*wiring.messaging.queue,
                &requests,
                None,
                &wiring.retry,
                wiring.processing_timeout,
            )
            .await?;
        }
        write_out(&format!("sent {} task request(s)\n", planned.len()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut submitter = Submitter::open(
        wiring.pool.clone(),
        &wiring.messaging,
        wiring.submitter_settings(),
    )
    .await?;
    let options = args.follow.drive_options();
    let driven = interruptible(driver::drive(
        &mut submitter,
        &wiring.pool,
        planned,
        options,
        &mut || Ok(()),
    ))
    .await;
    let closed = submitter.close().await;
    let report = driven?;
    closed.context("closing the submitter")?;
    finish(&report, &wiring)
}

/// `run`: everything in one process.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let shards = args.shards.max(1);
    let wiring = setup::wire(&args.common, connections(args.workers + 2 * shards + 10)).await?;
    let catalog = catalog(
        &wiring,
        &args.templates.templates,
        &[],
        std::time::Duration::ZERO,
    )
    .await?;
    if args.bench {
        let report = bench::run(&wiring, &catalog, &args).await?;
        write_out(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (mut engines, mut submitter) = Engines::start(&wiring, &catalog, &args).await?;
    let mut queues = orchestration_queues().to_vec();
    queues.extend(catalog.worker_queues());
    let serving = wiring.serve_metrics(queues).await?;
    let api = match crate::web::start(&wiring, engines.orchestrator.claim_waker()).await {
        Ok(api) => api,
        Err(error) => {
            let _ = engines.shutdown(submitter).await;
            let _ = serving.stop().await;
            return Err(error);
        }
    };
    let templates: Vec<_> = catalog
        .entries()
        .map(|entry| Arc::new(entry.template.clone()))
        .collect();
    let planned = driver::plan(&templates, args.tasks, uuid::Uuid::now_v7());
    let options = args.follow.drive_options();
    let driven = interruptible(driver::drive(
        &mut submitter,
        &wiring.pool,
        planned,
        options,
        &mut || engines.check_alive(),
    ))
    .await;
    let api_stopped = match api {
        Some(api) => api.shutdown(API_GRACE).await,
        None => Ok(()),
    };
    let stopped = engines.shutdown(submitter).await;
    let served = serving.stop().await;
    let report = driven?;
    stopped.context("stopping the engines")?;
    served?;
    api_stopped.context("the API")?;
    finish(&report, &wiring)
}

/// Prints the summary; exit 1 if any task ended wrongly or not at all.
fn finish(report: &RunReport, wiring: &Wiring) -> anyhow::Result<ExitCode> {
    let summary = report::summarize(report);
    write_out(&report::render(report, &summary, wiring.backend.as_str()))?;
    let incomplete = ["unfinished", "rejected"]
        .iter()
        .any(|state| summary.by_state.contains_key(*state));
    Ok(
        if summary.mismatched == 0 && !incomplete && report.stall.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `driven`, unless SIGINT or SIGTERM comes first.
async fn interruptible<T>(
    driven: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut signals = Signals::new()?;
    tokio::select! {
        driven = driven => driven,
        name = signals.recv() => anyhow::bail!("interrupted by {name}"),
    }
}

/// An orchestrator and a worker pool in this process.
pub(crate) struct Engines {
    orchestrator: tasker_orchestration::RunningOrchestrator,
    worker: tasker_worker::RunningWorker,
}

impl Engines {
    /// Starts both engines, and a submitter to feed them.
    pub(crate) async fn start(
        wiring: &Wiring,
        catalog: &Arc<Catalog>,
        args: &RunArgs,
    ) -> anyhow::Result<(Self, Submitter)> {
        let orchestrator = tasker_orchestration::start(
            wiring.pool.clone(),
            wiring.engine_messaging(),
            wiring.orchestrator_settings(args.shards),
        )
        .await?;
        let worker = tasker_worker::start(
            wiring.pool.clone(),
            wiring.engine_messaging(),
            Arc::clone(catalog),
            wiring.worker_settings(args.workers),
        )
        .await?;
        let submitter = Submitter::open(
            wiring.pool.clone(),
            &wiring.messaging,
            wiring.submitter_settings(),
        )
        .await?;
        Ok((
            Self {
                orchestrator,
                worker,
            },
            submitter,
        ))
    }

    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        self.orchestrator.check_alive()?;
        self.worker.check_alive()?;
        Ok(())
    }

    /// Stops the submitter (its reply queue is deleted), the workers, then the orchestrator.
    pub(crate) async fn shutdown(self, submitter: Submitter) -> anyhow::Result<()> {
        let closed = submitter.close().await;
        let worker = self.worker.shutdown().await;
        let orchestrator = self.orchestrator.shutdown().await;
        closed.context("closing the submitter")?;
        worker.context("stopping the workers")?;
        orchestrator.context("stopping the orchestrator")?;
        Ok(())
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines").finish_non_exhaustive()
    }
}
