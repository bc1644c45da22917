//! `--bench`: end-to-end latency of a 4-step linear task and of a diamond task (p50/p95 over
//! 200 sequential tasks each), and throughput in steps per second with 1,000 diamond tasks in
//! flight at once, next to this machine's `pgbench -N` rate when given. Every round plans its
//! own requests, so no task of one is deduplicated into a task of another.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

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

/// Runs the benchmark and returns its report.
pub(crate) async fn run(
    wiring: &Wiring,
    catalog: &Arc<Catalog>,
    args: &RunArgs,
) -> anyhow::Result<String> {
    let linear = Arc::new(
        catalog
            .by_name("linear")
            .context("--bench needs the shipped `linear` template in --templates")?
            .template
            .clone(),
    );
    let diamond = Arc::new(
        catalog
            .by_name("diamond")
            .context("--bench needs the shipped `diamond` template in --templates")?
            .template
            .clone(),
    );
    let (engines, mut submitter) = Engines::start(wiring, catalog, args).await?;
    let sequential = DriveOptions {
        concurrency: 1,
        stall_limit: Duration::from_secs(60),
        progress: false,
    };
    // Each round gets its own run id: the requests' contexts differ from every earlier
    // round's, so none is deduplicated into a task that ran before (which would count work not
    // done in the round).
    let mut measure = async |template: &Arc<tasker_shared::models::template::ValidatedTemplate>,
                             count: usize,
                             options: DriveOptions| {
        let planned = plan(std::slice::from_ref(template), count, uuid::Uuid::now_v7());
        drive(&mut submitter, &wiring.pool, planned, options, &mut || {
            Ok(())
        })
        .await
    };
    let concurrent = DriveOptions {
        concurrency: CONCURRENT,
        stall_limit: Duration::from_secs(120),
        progress: false,
    };
    let outcome = async {
        measure(&linear, WARM_UP, sequential).await?;
        let linear_run = measure(&linear, SEQUENTIAL, sequential).await?;
        measure(&diamond, WARM_UP, sequential).await?;
        let diamond_run = measure(&diamond, SEQUENTIAL, sequential).await?;
        let throughput_run = measure(&diamond, CONCURRENT, concurrent).await?;
        anyhow::Ok((linear_run, diamond_run, throughput_run))
    }
    .await;
    let stopped = engines.shutdown(submitter).await;
    let (linear_run, diamond_run, throughput_run) = outcome?;
    stopped.context("stopping the engines")?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nbenchmark on {} with {} worker(s)",
        wiring.backend.as_str(),
        args.workers
    );
    for (name, report) in [
        ("linear (4 steps)", &linear_run),
        ("diamond (4 steps)", &diamond_run),
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
    check("throughput", &throughput_run)?;
    let summary = summarize(&throughput_run);
    let _ = writeln!(
        out,
        "throughput         {CONCURRENT} diamond tasks at once: {} steps in {:.2} s = {:.0} steps/s",
        summary.steps_executed,
        throughput_run.wall.as_secs_f64(),
        summary.steps_per_second
    );
    if let Some(tps) = args.pgbench_tps {
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
