//! The reference workflow and the composition root of the engines: one binary that runs real
//! tasks through the whole Tasker foundation, as one process or as many.
//!
//! `cargo run -p tasker-reference -- [run] [--tasks N] [--templates DIR]
//! [--messaging pgmq|rabbitmq|in-memory] [--workers K] [--concurrency C] [--bench]` loads the
//! configuration for `TASKER_ENV`, creates and migrates the database, resolves the handlers of
//! the templates shipped in `templates/` (linear, diamond, tree, an eight-step mixed DAG, a step
//! that succeeds on its second attempt and one that fails permanently) through the registry's
//! resolver chain and registers them, submits N task requests and runs them to completion with
//! an orchestrator and a worker pool in this process, then prints a summary and checks every
//! step's result. `--bench` measures end-to-end latency and throughput instead (see
//! [`mod@bench`]).
//!
//! The same engines run as separate processes, any number of each against one database:
//! - `orchestrator [--shards S]`: task intake, claiming, result processing, finalization and
//!   redrive, until SIGINT or SIGTERM;
//! - `worker [--namespaces a,b] [--workers K] [--templates DIR]`: registers the templates of
//!   the namespaces it serves and runs their steps, until SIGINT or SIGTERM;
//! - `submit [--tasks N] [--wait]`: sends task requests; with `--wait` it follows them to the
//!   end through the replies orchestration addresses to it, whichever process does the work,
//!   shows the progress bar, prints the summary and checks every result. With
//!   `--api http [--api-url URL]` the requests are posted to an orchestrator's HTTP API
//!   instead (credentials from `TASKER_API_TOKEN` or `TASKER_API_KEY`; see docs/api.md), and
//!   `--wait` reads each task through the API until it finishes.
//!
//! Each process has an id (`--process-id` or `TASKER_PROCESS_ID`, else generated) that appears
//! in its log lines and on the transitions it writes. A long-running process shuts down
//! gracefully on SIGINT or SIGTERM: it stops taking work, finishes what is running and
//! exits 0; a second signal aborts at once.
//!
//! The flow, module by module: [`setup`] (configuration, database, messaging, engine settings)
//! → [`roles`] (which engines a process runs) → [`driver`] (requests, progress, verification
//! against [`expected`]) → [`report`].
//!
//! Logs go to stderr in `common.telemetry.log_format`, filtered by `RUST_LOG` if set, else
//! `TASKER_LOG` if set, else `common.telemetry.log_filter`; with `common.telemetry.enabled`
//! spans are exported over OTLP (see [`telemetry`] and docs/observability.md).
//!
//! This binary depends on the `tasker-shared` facade and the two engines, which are not part
//! of the facade, and on nothing else of the workspace. It holds no SQL of its own.

mod bench;
mod breakers;
mod caching;
mod driver;
mod expected;
mod handlers;
mod http_submit;
mod metrics;
mod report;
mod roles;
mod setup;
mod telemetry;
mod web;

#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::setup::Backend;

/// Runs real tasks through the Tasker foundation, in one process or many.
#[derive(Debug, Parser)]
#[command(
    name = "tasker-reference",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `run`, with these options.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Orchestrator, workers and submitter in this process (the default).
    Run(RunArgs),
    /// An orchestrator process, until SIGINT or SIGTERM.
    Orchestrator(OrchestratorArgs),
    /// A worker process, until SIGINT or SIGTERM.
    Worker(WorkerArgs),
    /// Sends task requests, and with `--wait` follows them to the end.
    Submit(SubmitArgs),
}

/// Options every role takes.
#[derive(Debug, Clone, Args)]
struct CommonArgs {
    /// The messaging backend (default: `common.queues.backend` of the configuration).
    #[arg(long, value_enum)]
    messaging: Option<Backend>,
    /// This process's id, recorded on its transitions and shown in its logs (default: a new
    /// one).
    #[arg(long, env = "TASKER_PROCESS_ID")]
    process_id: Option<uuid::Uuid>,
}

/// The templates to run.
#[derive(Debug, Clone, Args)]
struct TemplateArgs {
    /// The directory of task templates.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))]
    templates: PathBuf,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    templates: TemplateArgs,
    /// How many tasks to run (cycling through the templates).
    #[arg(long, default_value_t = 120)]
    tasks: usize,
    /// Workers in the pool.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    #[command(flatten)]
    follow: FollowArgs,
    /// Orchestrator shards: result loops and claim loops working in parallel.
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Measure latency and throughput instead of running a mixed workload.
    #[arg(long)]
    bench: bool,
    /// This machine's `pgbench -N` transactions per second, to compare throughput with.
    #[arg(long, requires = "bench")]
    pgbench_tps: Option<f64>,
}

/// How a run follows its tasks to their end.
#[derive(Debug, Clone, Args)]
struct FollowArgs {
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Do not draw the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Give up when no task finished for this many seconds (then the stuck tasks and the
    /// summary so far are printed, and the exit status is 1).
    #[arg(long, default_value_t = 120)]
    stall_limit: u64,
}

impl FollowArgs {
    /// The driver's options: the progress bar only on a terminal.
    fn drive_options(&self) -> driver::DriveOptions {
        use std::io::IsTerminal as _;
        driver::DriveOptions {
            concurrency: self.concurrency,
            stall_limit: Duration::from_secs(self.stall_limit),
            progress: !self.no_progress && std::io::stderr().is_terminal(),
        }
    }
}

#[derive(Debug, Clone, Args)]
struct OrchestratorArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Result loops and claim loops working in parallel.
    #[arg(long, default_value_t = 2)]
    shards: usize,
}

#[derive(Debug, Clone, Args)]
struct WorkerArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    templates: TemplateArgs,
    /// The namespaces to serve, comma-separated (default: every namespace of the templates).
    #[arg(long, value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Workers (concurrent step batches) in this process.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Simulated work: every step handler takes at least this many milliseconds.
    #[arg(long, default_value_t = 0)]
    step_delay_ms: u64,
}

#[derive(Debug, Clone, Args)]
struct SubmitArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    templates: TemplateArgs,
    /// How many task requests to send (cycling through the templates).
    #[arg(long, default_value_t = 120)]
    tasks: usize,
    /// Follow the tasks to their end, print the summary and check every result.
    #[arg(long)]
    wait: bool,
    /// Measure latency and throughput of the running deployment instead (as `run --bench`,
    /// through the orchestrator and worker processes already running).
    #[arg(long, conflicts_with = "wait")]
    bench: bool,
    /// This machine's `pgbench -N` transactions per second, to compare throughput with.
    #[arg(long, requires = "bench")]
    pgbench_tps: Option<f64>,
    /// Where requests go: the task request queue (default), or the orchestrator's HTTP API
    /// (`http`; credentials from `TASKER_API_TOKEN` or `TASKER_API_KEY`, never from the
    /// command line).
    #[arg(long, value_enum, default_value_t = SubmitApi::Queue, conflicts_with = "bench")]
    api: SubmitApi,
    /// The API's base URL with `--api http` (default: `orchestration.web.bind_address`).
    #[arg(long, requires = "api")]
    api_url: Option<String>,
    /// With `--wait`.
    #[command(flatten)]
    follow: FollowArgs,
}

/// Where `submit` sends task requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SubmitApi {
    /// The task request queue (replies come back on a queue of the submitter's own).
    Queue,
    /// The orchestrator's HTTP API (`POST /v1/tasks`).
    Http,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // The process id is settled before logging starts: every log line carries it.
    let common = match &mut cli.command {
        None => &mut cli.run.common,
        Some(Command::Run(args)) => &mut args.common,
        Some(Command::Orchestrator(args)) => &mut args.common,
        Some(Command::Worker(args)) => &mut args.common,
        Some(Command::Submit(args)) => &mut args.common,
    };
    let process_id = *common.process_id.get_or_insert_with(uuid::Uuid::now_v7);
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
    // The OTLP exporter's batches run on this runtime: tracing starts inside it, and stops
    // (exporting the last spans) after the roles returned, while it is still alive.
    let tracing = {
        let _entered = runtime.enter();
        match telemetry::init(process_id) {
            Ok(guard) => guard,
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "error: {error:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            None => roles::run(cli.run).await,
            Some(Command::Run(args)) => roles::run(args).await,
            Some(Command::Orchestrator(args)) => roles::orchestrator(args).await,
            Some(Command::Worker(args)) => roles::worker(args).await,
            Some(Command::Submit(args)) => roles::submit(args).await,
        }
    });
    if let Err(error) = tracing.shutdown() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {:#}",
            anyhow::Error::from(error)
        );
    }
    match outcome {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout and flushes.
fn write_out(text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
