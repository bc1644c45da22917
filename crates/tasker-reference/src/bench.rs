//! `--bench`: end-to-end latency of a 4-step linear task and of a diamond task (p50/p95 over
//! 200 sequential tasks each), and throughput in steps per second with 1,000 diamond tasks in
//! flight at once, next to this machine's `pgbench -N` rate when given. Every round plans its
//! own requests, so no task of one is deduplicated into a task of another.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use tasker_orchestration::client::Submitter;
use tasker_shared::models::template::ValidatedTemplate;
use tasker_worker::catalog::Catalog;

use crate::RunArgs;
use crate::driver::{DriveOptions, RunReport, drive, plan};
use crate::report::{ms, percentiles, summarize};
use crate::roles::Engines;
use crate::setup::Wiring;

/// Sequential tasks per latency measurement.
const SEQUENTIAL: usize = 200;
/// Tasks run before measuring, to warm caches, plans and connections.
const WARM_UP: usize = 20;
/// Diamond tasks in flight for the throughput measurement.
const CONCURRENT: usize = 1_000;

/// Runs the benchmark in this process (`run --bench`) and returns its report.
pub(crate) async fn run(
    wiring: &Wiring,
    catalog: &Arc<Catalog>,
    args: &RunArgs,
) -> anyhow::Result<String> {
    let templates: Vec<_> = catalog
        .entries()
        .map(|entry| Arc::new(entry.template.clone()))
        .collect();
    let (engines, mut submitter) = Engines::start(wiring, catalog, args).await?;
    let outcome = measure(&mut submitter, wiring, &templates).await;
    let stopped = engines.shutdown(submitter).await;
    let rounds = outcome?;
    stopped.context("stopping the engines")?;
    render(
        &rounds,
        &format!(
            "{} with {} worker(s) in one process",
            wiring.backend.as_str(),
            args.workers
        ),
        args.pgbench_tps,
    )
}

/// Runs the benchmark against the orchestrators and workers already running on the
/// deployment (`submit --bench`) and returns its report.
pub(crate) async fn submit(
    wiring: &Wiring,
    templates: &[Arc<ValidatedTemplate>],
    pgbench_tps: Option<f64>,
) -> anyhow::Result<String> {
    let mut submitter = Submitter::open(
        wiring.pool.clone(),
        &wiring.messaging,
        wiring.submitter_settings(),
    )
    .await?;
    let outcome = measure(&mut submitter, wiring, templates).await;
    let closed = submitter.close().await;
    let rounds = outcome?;
    closed.context("closing the submitter")?;
    render(
        &rounds,
        &format!(
            "{} with the deployment's orchestrator and worker processes",
            wiring.backend.as_str()
        ),
        pgbench_tps,
    )
}

/// The measured rounds.
struct Rounds {
    linear: RunReport,
    diamond: RunReport,
    throughput: RunReport,
}

/// The warm-up and measured rounds, each with requests of its own.
async fn measure(
    submitter: &mut Submitter,
    wiring: &Wiring,
    templates: &[Arc<ValidatedTemplate>],
) -> anyhow::Result<Rounds> {
    let named = |name: &str| {
        templates
            .iter()
            .find(|template| template.template().name.as_str() == name)
            .cloned()
            .with_context(|| {
                format!("the benchmark needs the shipped `{name}` template in --templates")
            })
    };
    let (linear, diamond) = (named("linear")?, named("diamond")?);
    let sequential = DriveOptions {
        concurrency: 1,
        stall_limit: Duration::from_secs(60),
        progress: false,
    };
    let concurrent = DriveOptions {
        concurrency: CONCURRENT,
        stall_limit: Duration::from_secs(120),
        progress: false,
    };
    // Each round gets its own run id: the requests' contexts differ from every earlier
    // round's, so none is deduplicated into a task that ran before (which would count work not
    // done in the round).
    let mut round = async |template: &Arc<ValidatedTemplate>, count: usize, options| {
        let planned = plan(std::slice::from_ref(template), count, uuid::Uuid::now_v7());
        drive(submitter, &wiring.pool, planned, options, &mut || Ok(())).await
    };
    round(&linear, WARM_UP, sequential).await?;
    let linear_run = round(&linear, SEQUENTIAL, sequential).await?;
    round(&diamond, WARM_UP, sequential).await?;
    let diamond_run = round(&diamond, SEQUENTIAL, sequential).await?;
    let throughput_run = round(&diamond, CONCURRENT, concurrent).await?;
    Ok(Rounds {
        linear: linear_run,
        diamond: diamond_run,
        throughput: throughput_run,
    })
}

/// The report of the rounds.
fn render(rounds: &Rounds, what: &str, pgbench_tps: Option<f64>) -> anyhow::Result<String> {
    let Rounds {
        linear: linear_run,
        diamond: diamond_run,
        throughput: throughput_run,
    } = rounds;
    let mut out = String::new();
    let _ = writeln!(out, "\nbenchmark on {what}");
    for (name, report) in [
        ("linear (4 steps)", linear_run),
        ("diamond (4 steps)", diamond_run),
    ] {
        check(name, report)?;
        let latencies: Vec<Duration> = report
            .tasks
            .iter()
            .filter_map(|task| task.latency)
            .collect();
        let latency = percentiles(&latencies).context("no latency samples")?;
        let _ = writeln!(
            out,
            "{name:<18} sequential x{}: p50 {}, p95 {}, p99 {}, max {}",
            latency.count,
            ms(latency.p50),
            ms(latency.p95),
            ms(latency.p99),
            ms(latency.max)
        );
    }
    check("throughput", throughput_run)?;
    let summary = summarize(throughput_run);
    let _ = writeln!(
        out,
        "throughput         {CONCURRENT} diamond tasks at once: {} steps in {:.2} s = {:.0} steps/s",
        summary.steps_executed,
        throughput_run.wall.as_secs_f64(),
        summary.steps_per_second
    );
    if let Some(tps) = pgbench_tps {
        let _ = writeln!(
            out,
            "pgbench -N          {tps:.0} TPS on this machine; steps/s = {:.0}% of it (target 40%)",
            summary.steps_per_second / tps * 100.0
        );
    }
    Ok(out)
}

/// A benchmark run counts only if every task ran in it and ended as expected.
pub(crate) fn check(name: &str, report: &RunReport) -> anyhow::Result<()> {
    let deduplicated = report.tasks.iter().filter(|task| task.deduplicated).count();
    if deduplicated > 0 {
        anyhow::bail!(
            "{name}: {deduplicated} request(s) named tasks that had run before; the figures would count work not done"
        );
    }
    let wrong: Vec<String> = report
        .tasks
        .iter()
        .filter(|task| !task.mismatches.is_empty() || task.state.is_none())
        .map(|task| format!("{:?}: {}", task.task_id, task.mismatches.join("; ")))
        .take(5)
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{name}: tasks ended wrongly: {}", wrong.join(" | "))
    }
}
