//! The summary printed after a run: tasks by final state, steps executed, retries, task
//! latency percentiles, steps per second, and any task whose results differ from the
//! expected ones.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::driver::RunReport;

/// Latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    /// Samples.
    pub(crate) count: usize,
    /// The median.
    pub(crate) p50: Duration,
    /// The 95th percentile.
    pub(crate) p95: Duration,
    /// The 99th percentile.
    pub(crate) p99: Duration,
    /// The largest sample.
    pub(crate) max: Duration,
}

/// The nearest-rank percentiles of `samples`, `None` without samples.
pub(crate) fn percentiles(samples: &[Duration]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[index.clamp(1, sorted.len()) - 1]
    };
    Some(Percentiles {
        count: sorted.len(),
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        max: sorted[sorted.len() - 1],
    })
}

/// Milliseconds with one decimal.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The run's summary statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// Tasks by final state (`rejected` for refused requests).
    pub(crate) by_state: BTreeMap<String, usize>,
    /// Handler executions (attempts over all steps).
    pub(crate) steps_executed: i64,
    /// Executions beyond each step's first.
    pub(crate) retries: i64,
    /// Executions lost with their worker and run again.
    pub(crate) lost_attempts: i64,
    /// Task latency, submission to terminal state.
    pub(crate) latency: Option<Percentiles>,
    /// Step executions per second of wall time.
    pub(crate) steps_per_second: f64,
    /// Tasks whose results differ from the expected ones.
    pub(crate) mismatched: usize,
    /// Tasks whose outcome could not be predicted (foreign handlers).
    pub(crate) unchecked: usize,
    /// Tasks that ended exactly as predicted.
    pub(crate) correct: usize,
}

/// Summarises a run.
pub(crate) fn summarize(report: &RunReport) -> Summary {
    let mut by_state = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut steps_executed = 0;
    let mut retries = 0;
    let mut lost_attempts = 0;
    let mut mismatched = 0;
    let mut unchecked = 0;
    let mut correct = 0;
    for task in &report.tasks {
        let state = match (&task.rejected, task.state) {
            (Some(_), _) => "rejected".to_owned(),
            (None, Some(state)) => state.to_string(),
            (None, None) => "unfinished".to_owned(),
        };
        *by_state.entry(state).or_insert(0) += 1;
        // A deduplicated request ran nothing in this run: its task's latency and steps
        // belong to the run that created it.
        if !task.deduplicated {
            latencies.extend(task.latency);
            steps_executed += task.attempts;
            retries += task.retries;
            lost_attempts += task.lost_attempts;
        }
        match (&task.rejected, &task.expectation) {
            (Some(_), _) => {}
            (None, None) => unchecked += 1,
            (None, Some(_)) if task.mismatches.is_empty() && task.state.is_some() => correct += 1,
            (None, Some(_)) => {}
        }
        if !task.mismatches.is_empty() {
            mismatched += 1;
        }
    }
    let seconds = report.wall.as_secs_f64();
    Summary {
        by_state,
        steps_executed,
        retries,
        lost_attempts,
        latency: percentiles(&latencies),
        steps_per_second: if seconds > 0.0 {
            steps_executed as f64 / seconds
        } else {
            0.0
        },
        mismatched,
        unchecked,
        correct,
    }
}

/// The summary as a table, followed by the mismatches (at most 20).
pub(crate) fn render(report: &RunReport, summary: &Summary, backend: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nreference workflow on {backend}: {} task(s) in {:.2} s",
        report.tasks.len(),
        report.wall.as_secs_f64()
    );
    let mut rows: Vec<(String, String)> = summary
        .by_state
        .iter()
        .map(|(state, count)| (format!("tasks {state}"), count.to_string()))
        .collect();
    rows.push((
        "steps executed".to_owned(),
        summary.steps_executed.to_string(),
    ));
    rows.push(("retries".to_owned(), summary.retries.to_string()));
    rows.push((
        "attempts lost with a worker".to_owned(),
        summary.lost_attempts.to_string(),
    ));
    if let Some(latency) = summary.latency {
        rows.push(("task latency p50".to_owned(), ms(latency.p50)));
        rows.push(("task latency p95".to_owned(), ms(latency.p95)));
        rows.push(("task latency p99".to_owned(), ms(latency.p99)));
    }
    rows.push((
        "steps per second".to_owned(),
        format!("{:.0}", summary.steps_per_second),
    ));
    rows.push((
        "longest pause without a finish".to_owned(),
        ms(report.longest_pause),
    ));
    rows.push((
        "results checked".to_owned(),
        format!(
            "{} ok, {} wrong, {} unchecked",
            summary.correct, summary.mismatched, summary.unchecked
        ),
    ));
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|(_, value)| value.len()).max().unwrap_or(0);
    let rule = format!("+-{}-+-{}-+", "-".repeat(width), "-".repeat(value_width));
    let _ = writeln!(out, "{rule}");
    for (label, value) in &rows {
        let _ = writeln!(out, "| {label:<width$} | {value:>value_width$} |");
    }
    let _ = writeln!(out, "{rule}");
    if let Some(stall) = &report.stall {
        let _ = writeln!(
            out,
            "stalled: no task finished for {:.0} s; {} request(s) still in flight, by the database:",
            stall.waited.as_secs_f64(),
            report
                .tasks
                .iter()
                .filter(|task| task.state.is_none() && task.rejected.is_none())
                .count()
        );
        for stuck in &stall.stuck {
            let steps: Vec<String> = stuck
                .steps
                .iter()
                .map(|(name, state, attempts)| format!("{name} {state} ({attempts})"))
                .collect();
            let _ = match stuck.task {
                Some((task_id, state)) => writeln!(
                    out,
                    "  task {task_id} ({}) {state}: {}",
                    stuck.template,
                    steps.join(", ")
                ),
                None => writeln!(
                    out,
                    "  request {} ({}): no task yet (the request is queued, or was lost)",
                    stuck.request_id, stuck.template
                ),
            };
        }
    }
    let wrong = report
        .tasks
        .iter()
        .filter(|task| !task.mismatches.is_empty());
    for (shown, task) in wrong.enumerate() {
        if shown == 20 {
            let _ = writeln!(out, "... and {} more", summary.mismatched - shown);
            break;
        }
        let id = task.task_id.map_or("-".to_owned(), |id| id.to_string());
        let _ = writeln!(
            out,
            "task {id} ({}): {}",
            task.template,
            task.mismatches.join("; ")
        );
    }
    out
}
