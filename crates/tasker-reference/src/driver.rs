//! The driver: submits task requests with at most `concurrency` tasks in flight, follows them
//! through the [`Submitter`]'s events (replies from whichever orchestrator does the work, the
//! database as safety net), measures latencies, and checks every task's steps in the database
//! against the expected results.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::PgPool;
use tasker_orchestration::client::{SubmissionEvent, Submitter};
use tasker_shared::database::step;
use tasker_shared::models::ids::TaskId;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::models::template::{Strictness, ValidatedTemplate, load_directory};
use tasker_shared::state_machine::TaskState;
use uuid::Uuid;

use crate::expected::{StepExpectation, TaskExpectation, expect};

/// One request to submit.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Its template.
    pub(crate) template: Arc<ValidatedTemplate>,
    /// The request.
    pub(crate) request: TaskRequest,
}

/// Loads the templates under `dir` (every problem at once), ordered by key.
pub(crate) fn load_templates(dir: &Path) -> anyhow::Result<Vec<Arc<ValidatedTemplate>>> {
    let report = load_directory(dir, Strictness::Strict)
        .with_context(|| format!("reading templates from {}", dir.display()))?;
    let mut problems = String::new();
    let mut templates = Vec::new();
    for file in report.files {
        match file.result {
            Ok(loaded) => templates.push(Arc::new(loaded.template)),
            Err(error) => {
                let _ = writeln!(problems, "{}: {error}", file.path.display());
                for problem in error.problems() {
                    let _ = writeln!(problems, "  {problem}");
                }
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the templates in {} cannot run:\n{}",
            dir.display(),
            problems.trim_end()
        );
    }
    if templates.is_empty() {
        anyhow::bail!(
            "no templates (*.yaml, *.yml) in {}; point --templates at a directory of task templates",
            dir.display()
        );
    }
    templates.sort_by_key(|template| template.routing_key());
    Ok(templates)
}

/// `count` requests cycling through `templates`, each with its own `value` (so no two
/// requests of one run are deduplicated) tagged with `run`.
pub(crate) fn plan(templates: &[Arc<ValidatedTemplate>], count: usize, run: Uuid) -> Vec<Planned> {
    (0..count)
        .filter_map(|index| {
            let template = templates.get(index % templates.len().max(1))?;
            let definition = template.template();
            let context = json!({
                "value": (index % 97) as i64 + 1,
                "run": run.to_string(),
                "index": index,
            });
            let mut request = TaskRequest::new(
                definition.namespace_name.as_str(),
                definition.name.as_str(),
                definition.version.as_str(),
                context,
            );
            request.initiator = "tasker-reference".to_owned();
            request.reason = "reference workflow".to_owned();
            Some(Planned {
                template: Arc::clone(template),
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
    /// Attempts lost with their worker (killed mid-step) and run again.
    pub(crate) lost_attempts: i64,
}

/// A whole run.
#[derive(Debug, Clone)]
pub(crate) struct RunReport {
    /// Every request, in submission order.
    pub(crate) tasks: Vec<TaskOutcome>,
    /// From the first submission to the last terminal state.
    pub(crate) wall: Duration,
    /// The longest time during which no task finished (after the first finished): how long
    /// the system took to recover from a fault, if one happened.
    pub(crate) longest_pause: Duration,
    /// Set when the run gave up because no task finished for the stall limit.
    pub(crate) stall: Option<Stall>,
}

/// A run that stopped making progress: how long it waited, and where its unfinished tasks
/// stand.
#[derive(Debug, Clone)]
pub(crate) struct Stall {
    /// How long no task finished.
    pub(crate) waited: Duration,
    /// The requests in flight, as the database shows them.
    pub(crate) stuck: Vec<Stuck>,
}

/// A request in flight when the run stalled.
#[derive(Debug, Clone)]
pub(crate) struct Stuck {
    /// The request.
    pub(crate) request_id: Uuid,
    /// Its template.
    pub(crate) template: String,
    /// Its task and the task's state, if it was created.
    pub(crate) task: Option<(TaskId, TaskState)>,
    /// The task's steps: name, state, attempts.
    pub(crate) steps: Vec<(String, tasker_shared::state_machine::StepState, i32)>,
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

/// Submits `planned`, follows every task to its end and checks the results. `check_alive` is
/// called while nothing happens (the engines of this process, if any, must still run).
pub(crate) async fn drive(
    submitter: &mut Submitter,
    pool: &PgPool,
    planned: Vec<Planned>,
    options: DriveOptions,
    check_alive: &mut (dyn FnMut() -> anyhow::Result<()> + Send),
) -> anyhow::Result<RunReport> {
    let total = planned.len();
    let bar = progress_bar(total, options.progress);
    let mut outcomes: Vec<TaskOutcome> = planned
        .iter()
        .map(|item| TaskOutcome {
            template: item.template.routing_key(),
            task_id: None,
            state: None,
            rejected: None,
            deduplicated: false,
            latency: None,
            expectation: expect(&item.template, &item.request.context).ok(),
            mismatches: Vec::new(),
            attempts: 0,
            retries: 0,
            lost_attempts: 0,
        })
        .collect();
    let mut waiting: VecDeque<(usize, Planned)> = planned.into_iter().enumerate().collect();
    let mut in_flight: HashMap<Uuid, (usize, Instant)> = HashMap::new();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut first_finish: Option<Instant> = None;
    let mut longest_pause = Duration::ZERO;
    let mut done = 0;
    let mut stalled = None;
    while done < total {
        let room = options.concurrency.max(1).saturating_sub(in_flight.len());
        let batch: Vec<(usize, Planned)> = (0..room).map_while(|_| waiting.pop_front()).collect();
        if !batch.is_empty() {
            let requests: Vec<TaskRequest> =
                batch.iter().map(|(_, item)| item.request.clone()).collect();
            let submitted = Instant::now();
            let ids = submitter.submit(&requests).await?;
            for (request_id, (index, _)) in ids.into_iter().zip(batch) {
                in_flight.insert(request_id, (index, submitted));
            }
        }
        let events = submitter.next_events(Duration::from_secs(1)).await?;
        let now = Instant::now();
        for event in events {
            match event {
                SubmissionEvent::Created {
                    request_id,
                    task_id,
                    duplicate,
                } => {
                    if let Some((index, _)) = in_flight.get(&request_id) {
                        outcomes[*index].task_id = Some(task_id);
                        outcomes[*index].deduplicated = duplicate;
                    }
                }
                SubmissionEvent::Refused { request_id, reason } => {
                    if let Some((index, _)) = in_flight.remove(&request_id) {
                        outcomes[index].rejected = Some(reason);
                        done += 1;
                        last_progress = now;
                    }
                }
                SubmissionEvent::Finished {
                    request_id,
                    task_id,
                    state,
                } => {
                    if let Some((index, submitted)) = in_flight.remove(&request_id) {
                        if first_finish.replace(now).is_some() {
                            longest_pause = longest_pause.max(now - last_progress);
                        }
                        let outcome = &mut outcomes[index];
                        outcome.task_id = Some(task_id);
                        outcome.state = Some(state);
                        outcome.latency = Some(now.saturating_duration_since(submitted));
                        done += 1;
                        last_progress = now;
                    }
                }
            }
        }
        bar.set_position(done as u64);
        bar.set_message(format!("{} in flight", in_flight.len()));
        check_alive()?;
        if done < total && last_progress.elapsed() > options.stall_limit {
            stalled = Some(Stall {
                waited: last_progress.elapsed(),
                stuck: stuck(pool, &in_flight, &outcomes).await?,
            });
            break;
        }
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    verify(pool, &mut outcomes).await?;
    Ok(RunReport {
        tasks: outcomes,
        wall,
        longest_pause,
        stall: stalled,
    })
}

/// Where the requests in flight stand, from the database (at most 50, in submission order).
async fn stuck(
    pool: &PgPool,
    in_flight: &HashMap<Uuid, (usize, Instant)>,
    outcomes: &[TaskOutcome],
) -> anyhow::Result<Vec<Stuck>> {
    let mut requests: Vec<(usize, Uuid)> = in_flight
        .iter()
        .map(|(request_id, (index, _))| (*index, *request_id))
        .collect();
    requests.sort();
    requests.truncate(50);
    let ids: Vec<Uuid> = requests.iter().map(|(_, id)| *id).collect();
    let tasks = tasker_shared::database::task::by_request_ids(pool, &ids)
        .await
        .context("reading the tasks of the stuck requests")?;
    let task_ids: Vec<TaskId> = tasks.iter().map(|task| task.task_id).collect();
    let steps = step::for_tasks(pool, &task_ids)
        .await
        .context("reading the steps of the stuck tasks")?;
    Ok(requests
        .into_iter()
        .map(|(index, request_id)| {
            let task = tasks
                .iter()
                .find(|task| task.request_uuid == Some(request_id));
            Stuck {
                request_id,
                template: outcomes[index].template.clone(),
                task: task.map(|task| (task.task_id, task.state)),
                steps: task
                    .and_then(|task| steps.get(&task.task_id))
                    .map(|steps| {
                        steps
                            .iter()
                            .map(|step| (step.name.clone(), step.state, step.attempts))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// Attempts of a step that failed because their worker was lost.
async fn lost_attempts(
    pool: &PgPool,
    step_id: tasker_shared::models::ids::StepId,
) -> anyhow::Result<i32> {
    let history = step::history(pool, step_id)
        .await
        .with_context(|| format!("reading the history of step {step_id}"))?;
    let lost = history
        .iter()
        .filter(|row| row.metadata.get("reason").and_then(Value::as_str) == Some("worker_lost"))
        .count();
    Ok(i32::try_from(lost).unwrap_or(i32::MAX))
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
                // An attempt lost with a killed worker is retried: it adds one attempt and
                // is no mismatch; any other extra attempt is.
                let lost = if record.attempts == expected.attempts() {
                    0
                } else {
                    lost_attempts(pool, record.step_id).await?
                };
                task.lost_attempts += i64::from(lost);
                if record.attempts != expected.attempts() + lost {
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
