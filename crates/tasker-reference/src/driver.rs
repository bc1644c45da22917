//! The driver: submits task requests with at most `concurrency` tasks in flight, waits (on the
//! tracker's signals) for each to reach a terminal state, measures latencies, and checks every
//! task's steps in the database against the expected results.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::PgPool;
use tasker_shared::database::step;
use tasker_shared::models::ids::TaskId;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::TaskState;
use uuid::Uuid;

use crate::catalog::TemplateEntry;
use crate::engine::Engine;
use crate::expected::{StepExpectation, TaskExpectation, expect};
use crate::tracker::{Change, Submission, Tracker};

/// One request to submit.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Its template.
    pub(crate) entry: Arc<TemplateEntry>,
    /// The request.
    pub(crate) request: TaskRequest,
}

/// `count` requests cycling through `templates`, each with its own `value` (so no two
/// requests of one run are deduplicated) tagged with `run`.
pub(crate) fn plan(templates: &[Arc<TemplateEntry>], count: usize, run: Uuid) -> Vec<Planned> {
    (0..count)
        .filter_map(|index| {
            let entry = templates.get(index % templates.len().max(1))?;
            let template = entry.template.template();
            let context = json!({
                "value": (index % 97) as i64 + 1,
                "run": run.to_string(),
                "index": index,
            });
            let mut request = TaskRequest::new(
                template.namespace_name.as_str(),
                template.name.as_str(),
                template.version.as_str(),
                context,
            );
            request.initiator = "tasker-reference".to_owned();
            request.reason = "reference workflow".to_owned();
            Some(Planned {
                entry: Arc::clone(entry),
                request,
            })
        })
        .collect()
}

/// What became of one request.
#[derive(Debug, Clone)]
pub(crate) struct TaskOutcome {
    /// `namespace/name:version`.
    pub(crate) template: String,
    /// The task, unless the request was refused.
    pub(crate) task_id: Option<TaskId>,
    /// The terminal state reached.
    pub(crate) state: Option<TaskState>,
    /// Why the request was refused.
    pub(crate) rejected: Option<String>,
    /// The request named a task that existed already (its identity matched an earlier
    /// request's), so nothing ran for it.
    pub(crate) deduplicated: bool,
    /// From submission to the terminal state.
    pub(crate) latency: Option<Duration>,
    /// What the task had to end with, when it is predictable.
    pub(crate) expectation: Option<TaskExpectation>,
    /// How it differs from that.
    pub(crate) mismatches: Vec<String>,
    /// Attempts over all its steps.
    pub(crate) attempts: i64,
    /// Attempts beyond each step's first.
    pub(crate) retries: i64,
}

/// A whole run.
#[derive(Debug, Clone)]
pub(crate) struct RunReport {
    /// Every request, in submission order.
    pub(crate) tasks: Vec<TaskOutcome>,
    /// From the first submission to the last terminal state.
    pub(crate) wall: Duration,
}

/// Drive options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriveOptions {
    /// Tasks in flight at most.
    pub(crate) concurrency: usize,
    /// Give up waiting after this long without progress.
    pub(crate) stall_limit: Duration,
    /// Show a progress bar on stderr.
    pub(crate) progress: bool,
}

/// Submits `planned`, waits for every task and checks the results.
pub(crate) async fn drive(
    engine: &mut Engine,
    tracker: &Tracker,
    pool: &PgPool,
    planned: Vec<Planned>,
    options: DriveOptions,
) -> anyhow::Result<RunReport> {
    let total = planned.len();
    let bar = progress_bar(total, options.progress);
    let mut outcomes: Vec<Option<TaskOutcome>> = vec![None; total];
    let mut waiting: VecDeque<(usize, Planned)> = planned.into_iter().enumerate().collect();
    let mut in_flight: HashMap<Uuid, (usize, Instant, Planned)> = HashMap::new();
    let mut version = tracker.subscribe();
    // Changes before this drive belong to earlier drives.
    let (_, mut seen) = tracker.changes_since(usize::MAX);
    let mut by_task: HashMap<TaskId, Uuid> = HashMap::new();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut done = 0;
    while done < total {
        let room = options.concurrency.max(1).saturating_sub(in_flight.len());
        let batch: Vec<(usize, Planned)> = (0..room).map_while(|_| waiting.pop_front()).collect();
        if !batch.is_empty() {
            let requests: Vec<TaskRequest> =
                batch.iter().map(|(_, item)| item.request.clone()).collect();
            let submitted = Instant::now();
            let ids = engine.submit_all(&requests).await?;
            for (request_id, (index, item)) in ids.into_iter().zip(batch) {
                in_flight.insert(request_id, (index, submitted, item));
            }
        }
        // Only what changed since the last look: scanning every request in flight after every
        // change would cost the engine under test more CPU the more tasks are in flight.
        let (changes, now_seen) = tracker.changes_since(seen);
        seen = now_seen;
        let mut finished = Vec::new();
        for change in changes {
            match change {
                Change::Submitted(request_id) => match tracker.submission(request_id) {
                    Some(Submission::Rejected { .. }) => finished.push(request_id),
                    Some(Submission::Created { task_id, .. }) => {
                        if tracker.reached(task_id).is_some() {
                            finished.push(request_id);
                        } else {
                            by_task.insert(task_id, request_id);
                        }
                    }
                    None => {}
                },
                Change::Finished(task_id) => finished.extend(by_task.remove(&task_id)),
            }
        }
        let finished: Vec<Uuid> = finished
            .into_iter()
            .filter(|request_id| in_flight.contains_key(request_id))
            .collect();
        let progressed = !finished.is_empty();
        for request_id in finished {
            let Some((index, submitted, item)) = in_flight.remove(&request_id) else {
                continue;
            };
            outcomes[index] = Some(outcome(tracker, request_id, submitted, &item));
            done += 1;
            last_progress = Instant::now();
        }
        bar.set_position(done as u64);
        bar.set_message(format!("{} steps run", tracker.counters().step_results));
        if done == total {
            break;
        }
        if progressed {
            continue; // submit the next requests at once
        }
        engine.check_alive()?;
        if last_progress.elapsed() > options.stall_limit {
            anyhow::bail!(
                "no task finished for {:?}; {} of {total} finished, {} in flight",
                options.stall_limit,
                done,
                in_flight.len()
            );
        }
        tokio::select! {
            changed = version.changed() => changed.context("the tracker is gone")?,
            // Re-checks the engine's health now and then while nothing changes.
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let mut tasks: Vec<TaskOutcome> = outcomes.into_iter().flatten().collect();
    verify(pool, &mut tasks).await?;
    Ok(RunReport { tasks, wall })
}

fn outcome(tracker: &Tracker, request_id: Uuid, submitted: Instant, item: &Planned) -> TaskOutcome {
    let mut outcome = TaskOutcome {
        template: item.entry.key(),
        task_id: None,
        state: None,
        rejected: None,
        deduplicated: false,
        latency: None,
        expectation: expect(&item.entry.template, &item.request.context).ok(),
        mismatches: Vec::new(),
        attempts: 0,
        retries: 0,
    };
    match tracker.submission(request_id) {
        Some(Submission::Rejected { reason }) => outcome.rejected = Some(reason),
        Some(Submission::Created { task_id, existing }) => {
            outcome.task_id = Some(task_id);
            outcome.deduplicated = existing;
            if let Some(reached) = tracker.reached(task_id) {
                outcome.state = Some(reached.state);
                outcome.latency = Some(reached.at.saturating_duration_since(submitted));
            }
        }
        None => {}
    }
    outcome
}

/// Reads every task's steps and compares them with the expectations.
async fn verify(pool: &PgPool, tasks: &mut [TaskOutcome]) -> anyhow::Result<()> {
    for chunk in tasks.chunks_mut(500) {
        let ids: Vec<TaskId> = chunk.iter().filter_map(|task| task.task_id).collect();
        let steps = step::for_tasks(pool, &ids)
            .await
            .context("reading the steps of finished tasks")?;
        for task in chunk.iter_mut() {
            let Some(task_id) = task.task_id else {
                continue;
            };
            let records = steps.get(&task_id).map_or(&[][..], Vec::as_slice);
            task.attempts = records.iter().map(|step| i64::from(step.attempts)).sum();
            task.retries = records
                .iter()
                .map(|step| i64::from(step.attempts - 1).max(0))
                .sum();
            let Some(expectation) = &task.expectation else {
                continue;
            };
            if task.state != Some(expectation.state) {
                task.mismatches.push(format!(
                    "task ended {} instead of {}",
                    task.state
                        .map_or("unfinished".to_owned(), |state| state.to_string()),
                    expectation.state
                ));
            }
            let by_name: BTreeMap<&str, _> = records
                .iter()
                .map(|step| (step.name.as_str(), step))
                .collect();
            for (name, expected) in &expectation.steps {
                let Some(record) = by_name.get(name.as_str()) else {
                    task.mismatches.push(format!("step {name} is missing"));
                    continue;
                };
                if record.state != expected.state() {
                    task.mismatches.push(format!(
                        "step {name} is {} instead of {}",
                        record.state,
                        expected.state()
                    ));
                }
                if record.attempts != expected.attempts() {
                    task.mismatches.push(format!(
                        "step {name} took {} attempt(s) instead of {}",
                        record.attempts,
                        expected.attempts()
                    ));
                }
                if let StepExpectation::Value { value, .. } = expected {
                    let found = record
                        .results
                        .as_ref()
                        .and_then(|results| results.get("result"));
                    if found != Some(&Value::from(*value)) {
                        task.mismatches.push(format!(
                            "step {name} resulted in {} instead of {value}",
                            found.map_or("nothing".to_owned(), Value::to_string)
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn progress_bar(total: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} tasks, {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
