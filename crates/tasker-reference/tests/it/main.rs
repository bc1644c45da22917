//! Many processes against one database, as users deploy them: the real `tasker-reference`
//! binary spawned as orchestrators, workers and submitters (and as all-in-one runs), on PGMQ
//! and on RabbitMQ, and the fault suite: a worker stopped gracefully, `kill -9` of an
//! orchestrator and a worker (started again), every database session terminated once and
//! three times, every RabbitMQ connection closed once and three times.
//!
//! Every fault scenario checks: the submitter verified every result and exited 0; from the
//! database, each request became exactly one task that reached exactly one terminal state,
//! only steps running in a killed worker were declared lost, and no step ran more often than
//! its attempts allow; every queue ends empty; the longest pause without a finished task (the
//! recovery time) stayed within the configured thresholds. Each prints a `FIGURES` row for
//! docs/reliability.md. PostgreSQL and RabbitMQ (with `rabbitmqctl`) must answer on
//! 127.0.0.1; nothing is skipped. `metrics` scrapes the processes' `GET /metrics` after a run.

#![expect(
    clippy::print_stdout,
    reason = "the scenarios print their process ids and recovery figures (shown on failure, or with --no-capture)"
)]
#![expect(
    clippy::print_stderr,
    reason = "the processes' logs are passed through to the test's stderr (shown on failure)"
)]

mod api;
mod breakers;
mod deployment;
mod events;
mod metrics;
mod proxy;
mod silence;
mod startup;
mod traces;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tasker_shared::database::{step, task};
use tasker_shared::state_machine::StepState;

use crate::deployment::{
    Backend, Deployment, LEASE_SECONDS, POLL_SECONDS, Process, VISIBILITY_SECONDS,
};

/// Tasks per scenario.
const TASKS: usize = 300;
/// How long a submitter may go without a finished task before it gives up.
const STALL_LIMIT_SECONDS: u64 = 60;
/// How long a whole run may take.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The recovery bound after a fault: a killed worker's lease expires after `LEASE_SECONDS`
/// and its messages come back after the visibility timeout, the lost attempts are retried at
/// once, messages lost with a killed orchestrator are redriven after twice the visibility
/// timeout, and every loop polls at least every `POLL_SECONDS`; the rest is slack for a
/// loaded 2-core machine.
fn recovery_bound() -> Duration {
    Duration::from_secs(
        LEASE_SECONDS + VISIBILITY_SECONDS + 2 * VISIBILITY_SECONDS + 2 * POLL_SECONDS + 15,
    )
}

/// A fault injected once a fifth of the tasks finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// None: the baseline the others' latency is compared with.
    Nothing,
    /// SIGTERM of a worker: graceful, no attempt may be lost.
    Sigterm,
    /// SIGKILL of an orchestrator and a worker; both are started again (same process ids)
    /// right after.
    Kill9,
    /// Every session of the database terminated, `times` times one second apart.
    TerminateSessions { times: u32 },
    /// Every RabbitMQ connection of the deployment closed by the broker, `times` times one
    /// second apart.
    CloseConnections { times: u32 },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Nothing => f.write_str("no fault (baseline)"),
            Fault::Sigterm => f.write_str("SIGTERM of a worker"),
            Fault::Kill9 => f.write_str("kill -9 of an orchestrator and a worker, then restart"),
            Fault::TerminateSessions { times } => {
                write!(f, "every database session terminated {times}x")
            }
            Fault::CloseConnections { times } => {
                write!(f, "every RabbitMQ connection closed {times}x")
            }
        }
    }
}

/// Two orchestrators, two workers and `submit --wait`, with `fault` injected mid-run; then
/// every check of the fault suite.
async fn fault_scenario(backend: Backend, fault: Fault) -> anyhow::Result<()> {
    let mut deployment = Deployment::new(backend).await?;
    let outcome = scenario(&mut deployment, fault).await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}

/// The worker role's arguments: 4 workers each, steps taking 20 ms, so a killed worker is
/// running some when it dies.
pub(crate) const WORKER: [&str; 5] = ["worker", "--workers", "4", "--step-delay-ms", "20"];

/// Two workers, then two orchestrators, each ready; then `submit --tasks TASKS --wait`.
fn two_and_two_and_a_submitter(deployment: &Deployment) -> anyhow::Result<([Process; 4], Process)> {
    // Workers register the templates; orchestrators read them from the database.
    let processes = [
        deployment.start("worker a", &WORKER)?,
        deployment.start("worker b", &WORKER)?,
        deployment.start("orchestrator a", &["orchestrator"])?,
        deployment.start("orchestrator b", &["orchestrator"])?,
    ];
    for process in &processes {
        println!("{}: {}", process.name, process.process_id);
    }
    let tasks = TASKS.to_string();
    let stall = STALL_LIMIT_SECONDS.to_string();
    let submitter = deployment.spawn(
        "submitter",
        &[
            "submit",
            "--tasks",
            &tasks,
            "--wait",
            "--no-progress",
            "--stall-limit",
            &stall,
        ],
    )?;
    Ok((processes, submitter))
}

async fn scenario(deployment: &mut Deployment, fault: Fault) -> anyhow::Result<()> {
    let (
        [
            mut worker_a,
            mut worker_b,
            mut orchestrator_a,
            mut orchestrator_b,
        ],
        mut submitter,
    ) = two_and_two_and_a_submitter(deployment)?;
    let mut killed_worker = None;
    wait_for_finished(deployment, TASKS / 5).await?;
    let injected_at = tokio::time::Instant::now();
    match fault {
        Fault::Nothing => {}
        Fault::Kill9 => {
            orchestrator_a.kill_9()?;
            worker_a.kill_9()?;
            killed_worker = Some((worker_a.process_id, chrono::Utc::now()));
            // Started again under the same ids, as a supervisor would: a new incarnation.
            worker_a = deployment.start_as("worker a again", &WORKER, worker_a.process_id)?;
            orchestrator_a = deployment.start_as(
                "orchestrator a again",
                &["orchestrator"],
                orchestrator_a.process_id,
            )?;
        }
        Fault::Sigterm => {
            // The worker finishes the steps it is running and stores their results, so no
            // attempt is lost (the database check below holds that).
            let status = worker_a.terminate(Duration::from_secs(60))?;
            ensure!(status.success(), "worker a exited {status} on SIGTERM");
        }
        Fault::TerminateSessions { times } => {
            for round in 0..times {
                if round > 0 {
                    tokio::time::sleep_until(injected_at + Duration::from_secs(u64::from(round)))
                        .await;
                }
                let terminated = deployment.terminate_sessions().await?;
                println!("round {}: terminated {terminated} sessions", round + 1);
            }
        }
        Fault::CloseConnections { times } => {
            for round in 0..times {
                if round > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let closed = deployment.close_rabbitmq_connections().await?;
                // Every process at first; later rounds catch those that reconnected already.
                let least = if round == 0 { 5 } else { 1 };
                ensure!(
                    closed >= least,
                    "closed {closed} connections, fewer than {least}"
                );
                println!("round {}: closed {closed} connections", round + 1);
            }
        }
    }
    let status = submitter.wait(RUN_LIMIT)?;
    let output = submitter.output.join("\n");
    ensure!(
        status.success(),
        "the submitter failed ({status}):\n{output}"
    );
    ensure!(
        output.contains(&format!("{TASKS} ok, 0 wrong, 0 unchecked")),
        "every result verified:\n{output}"
    );
    let pause = longest_pause(&output)?;
    ensure!(
        pause <= recovery_bound(),
        "no task finished for {pause:?}, more than {:?}",
        recovery_bound()
    );
    let checked = check_database(deployment, TASKS, killed_worker).await?;
    if let Some(recovered) = checked.recovered {
        ensure!(
            recovered <= recovery_bound(),
            "recovered in {recovered:?}, more than {:?}",
            recovery_bound()
        );
    }
    // Every committed transition's lifecycle event was relayed, in order, even across a kill,
    // and every committed result of a step that declares a domain event has that event.
    let events = events::check_events(deployment).await?;
    println!("lifecycle events relayed: {events}");
    // Every message was consumed: nothing is left behind, not even a duplicate.
    deployment
        .wait_for_empty_queues(Duration::from_secs(
            3 * VISIBILITY_SECONDS + LEASE_SECONDS + 10,
        ))
        .await?;
    // The figures docs/reliability.md records.
    println!(
        "FIGURES | {fault} | {} | {TASKS} | 0 | {} | longest pause {} ms{} | p99 {} |",
        deployment.backend_name(),
        checked.rerun,
        pause.as_millis(),
        checked
            .recovered
            .map(|after| format!(", taken over {} ms after the kill", after.as_millis()))
            .unwrap_or_default(),
        summary_row(&output, "task latency p99").unwrap_or("?"),
    );

    // Every process left stops gracefully on SIGTERM.
    let mut left = vec![&mut worker_b, &mut orchestrator_b, &mut orchestrator_a];
    if fault != Fault::Sigterm {
        left.push(&mut worker_a);
    }
    for process in left {
        let status = process.terminate(Duration::from_secs(60))?;
        ensure!(
            status.success(),
            "{} exited {status} on SIGTERM",
            process.name
        );
        ensure!(
            process.output.iter().any(|line| line.contains("stopped")),
            "{} said it stopped: {:?}",
            process.name,
            process.output
        );
    }
    Ok(())
}

/// Waits (on the database, every 50 ms) until `count` tasks finished.
pub(crate) async fn wait_for_finished(deployment: &Deployment, count: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    loop {
        let finished = task::TaskScope::new()
            .in_state(tasker_shared::state_machine::TaskState::Complete)
            .count(&deployment.pool)
            .await?;
        if usize::try_from(finished)? >= count {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "only {finished} tasks finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The submitter's "longest pause without a finish" row.
fn longest_pause(output: &str) -> anyhow::Result<Duration> {
    let line = output
        .lines()
        .find(|line| line.contains("longest pause without a finish"))
        .context("the summary shows the longest pause")?;
    let ms: f64 = line
        .split('|')
        .nth(2)
        .and_then(|cell| cell.trim().strip_suffix(" ms"))
        .context("a duration in ms")?
        .parse()?;
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// The value cell of the summary row named `name`.
fn summary_row<'a>(output: &'a str, name: &str) -> Option<&'a str> {
    output
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split('|').nth(2))
        .map(str::trim)
}

/// What the database check found.
pub(crate) struct Checked {
    /// Attempts declared lost (their handlers ran again).
    pub(crate) rerun: usize,
    /// How long after the kill the last lost attempt was taken over.
    recovered: Option<Duration>,
}

/// Each request became one task that reached one terminal state; with a killed worker, only
/// the steps it was running ran again, each within its attempts.
pub(crate) async fn check_database(
    deployment: &Deployment,
    tasks_expected: usize,
    killed_worker: Option<(uuid::Uuid, chrono::DateTime<chrono::Utc>)>,
) -> anyhow::Result<Checked> {
    let tasks = task::TaskScope::new().all(&deployment.pool).await?;
    ensure!(
        tasks.len() == tasks_expected,
        "{} tasks for {tasks_expected} requests",
        tasks.len()
    );
    let requests: HashSet<_> = tasks.iter().filter_map(|task| task.request_uuid).collect();
    ensure!(requests.len() == tasks_expected, "one task per request");
    let ids: Vec<_> = tasks.iter().map(|task| task.task_id).collect();
    for record in &tasks {
        let history = task::history(&deployment.pool, record.task_id).await?;
        let terminal = history
            .iter()
            .filter(|row| row.to_state.is_terminal())
            .count();
        ensure!(
            terminal == 1,
            "task {} reached {terminal} terminal states",
            record.task_id
        );
    }
    let steps = step::for_tasks(&deployment.pool, &ids).await?;
    let mut rerun = 0;
    let mut recovered = None;
    for step in steps.values().flatten() {
        let history = step::history(&deployment.pool, step.step_id).await?;
        for (index, row) in history.iter().enumerate() {
            if row
                .metadata
                .get("reason")
                .and_then(|reason| reason.as_str())
                != Some("worker_lost")
            {
                continue;
            }
            rerun += 1;
            // The lost attempt was started by the killed worker.
            let started = history[..index]
                .iter()
                .rev()
                .find(|row| row.to_state == StepState::InProgress)
                .and_then(|row| row.event.as_ref())
                .and_then(|event| event.get("worker_id"))
                .and_then(|id| id.as_str())
                .context("the lost attempt's start names its worker")?;
            if let Some((_, killed_at)) = killed_worker {
                let after = (row.created_at - killed_at).to_std().unwrap_or_default();
                recovered = recovered.max(Some(after));
            }
            ensure!(
                killed_worker.map(|(id, _)| id.to_string()).as_deref() == Some(started),
                "step {} lost an attempt of worker {started}, which was not killed ({:?}); its history:\n{}",
                step.step_id,
                killed_worker,
                history
                    .iter()
                    .map(|row| format!(
                        "{} {:?} -> {} by {:?} {} {}",
                        row.created_at,
                        row.from_state,
                        row.to_state,
                        row.processor_uuid,
                        row.event
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        row.metadata
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    // Within its attempts, lost or not.
    for step in steps.values().flatten() {
        ensure!(
            step.attempts <= step.max_attempts,
            "step {} ran {} times, more than its {} attempts",
            step.step_id,
            step.attempts,
            step.max_attempts
        );
    }
    Ok(Checked { rerun, recovered })
}

trait BackendName {
    fn backend_name(&self) -> &'static str;
}

impl BackendName for Deployment {
    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Pgmq => "pgmq",
            Backend::Rabbitmq => "rabbitmq",
        }
    }
}

/// Declares one fault scenario per backend.
macro_rules! fault_scenarios {
    ($($name:ident: $backend:expr, $fault:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> anyhow::Result<()> {
            fault_scenario($backend, $fault).await
        }
    )*};
}

fault_scenarios! {
    no_fault_on_pgmq: Backend::Pgmq, Fault::Nothing;
    no_fault_on_rabbitmq: Backend::Rabbitmq, Fault::Nothing;
    sigterm_of_a_worker_on_pgmq: Backend::Pgmq, Fault::Sigterm;
    sigterm_of_a_worker_on_rabbitmq: Backend::Rabbitmq, Fault::Sigterm;
    kill_9_and_restart_on_pgmq: Backend::Pgmq, Fault::Kill9;
    kill_9_and_restart_on_rabbitmq: Backend::Rabbitmq, Fault::Kill9;
    sessions_terminated_once_on_pgmq: Backend::Pgmq, Fault::TerminateSessions { times: 1 };
    sessions_terminated_once_on_rabbitmq: Backend::Rabbitmq, Fault::TerminateSessions { times: 1 };
    sessions_terminated_three_times_on_pgmq: Backend::Pgmq, Fault::TerminateSessions { times: 3 };
    sessions_terminated_three_times_on_rabbitmq: Backend::Rabbitmq, Fault::TerminateSessions { times: 3 };
    connections_closed_once_on_rabbitmq: Backend::Rabbitmq, Fault::CloseConnections { times: 1 };
    connections_closed_three_times_on_rabbitmq: Backend::Rabbitmq, Fault::CloseConnections { times: 3 };
}

/// Two all-in-one runs started together on one (new) database: both create and migrate it,
/// take each other's requests, and each learns of its own tasks from the replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_together_on_one_database() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = async {
        let args = ["run", "--tasks", "150", "--no-progress", "--workers", "4"];
        let mut first: Process = deployment.spawn("run a", &args)?;
        let mut second: Process = deployment.spawn("run b", &args)?;
        for run in [&mut first, &mut second] {
            let status = run.wait(RUN_LIMIT)?;
            let output = run.output.join("\n");
            ensure!(
                status.success(),
                "{} failed ({status}):\n{output}",
                run.name
            );
            ensure!(
                output.contains("150 ok, 0 wrong, 0 unchecked"),
                "{} verified every result:\n{output}",
                run.name
            );
        }
        anyhow::Ok(())
    }
    .await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}

/// With no worker running, nothing finishes: `submit --wait` gives up after its stall limit,
/// names each stuck task with its state and its steps' states, prints the summary so far and
/// exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_names_the_stuck_tasks_and_prints_the_summary() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = async {
        // A worker registers the templates, then stops: the steps wait for a worker forever.
        let mut worker = deployment.start("worker", &["worker", "--workers", "1"])?;
        let status = worker.terminate(Duration::from_secs(60))?;
        ensure!(status.success(), "the worker stopped: {status}");
        let mut orchestrator = deployment.start("orchestrator", &["orchestrator"])?;
        let mut submitter = deployment.spawn(
            "submitter",
            &[
                "submit",
                "--tasks",
                "3",
                "--wait",
                "--no-progress",
                "--stall-limit",
                "2",
            ],
        )?;
        let status = submitter.wait(RUN_LIMIT)?;
        let output = submitter.output.join("\n");
        ensure!(!status.success(), "a stalled run fails:\n{output}");
        ensure!(
            output.contains("stalled: no task finished for 2 s; 3 request(s) still in flight"),
            "the stall is reported:\n{output}"
        );
        ensure!(
            output.matches("steps_in_process: ").count() == 3 && output.contains("enqueued (0)"),
            "each stuck task is named with its steps:\n{output}"
        );
        ensure!(
            output.contains("tasks unfinished") && output.contains("results checked"),
            "the summary so far is printed:\n{output}"
        );
        let status = orchestrator.terminate(Duration::from_secs(60))?;
        ensure!(status.success(), "the orchestrator stopped: {status}");
        anyhow::Ok(())
    }
    .await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}
