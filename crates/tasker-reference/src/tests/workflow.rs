//! The whole workflow on each messaging backend: every shipped template, eight workers racing
//! for the steps; every task must end in its expected state with the expected results, with
//! gap-free transition histories and exactly one handler invocation per attempt.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use sqlx::PgPool;
use tasker_shared::database::{step, task};
use tasker_shared::models::ids::TaskId;
use tasker_shared::state_machine::{StepState, TaskState};
use uuid::Uuid;

use super::harness::{
    Calls, TestEngines, catalog, messaging, orchestrator_settings, with_database,
};
use super::history::{check_step_history, check_task_history};
use crate::driver::{DriveOptions, drive, plan};
use crate::setup::Backend;

/// Tasks per template.
const PER_TEMPLATE: usize = 6;

async fn run_workflow(backend: Backend) -> anyhow::Result<()> {
    with_database(move |pool| async move { workflow(backend, pool).await }).await
}

async fn workflow(backend: Backend, pool: PgPool) -> anyhow::Result<()> {
    let calls = Arc::new(Calls::default());
    let catalog = catalog(&pool, &calls, None).await?;
    let templates: Vec<_> = catalog
        .entries()
        .map(|entry| Arc::new(entry.template.clone()))
        .collect();
    ensure!(
        templates.len() == 6,
        "the six shipped templates are registered"
    );
    let messaging = messaging(backend, &pool).await?;
    let mut engines =
        TestEngines::start(&pool, messaging, &catalog, 8, orchestrator_settings()).await?;
    let planned = plan(&templates, templates.len() * PER_TEMPLATE, Uuid::now_v7());
    let options = DriveOptions {
        concurrency: 64,
        stall_limit: Duration::from_secs(60),
        progress: false,
    };
    let mut submitter = engines.submitter.take().context("a submitter")?;
    let driven = drive(&mut submitter, &pool, planned, options, &mut || {
        engines.check_alive()
    })
    .await;
    engines.submitter = Some(submitter);
    let stopped = engines.shutdown().await;
    let report = driven?;
    stopped?;

    // Every task ended as predicted from its template and context: state, every step's
    // state, attempts and result.
    for outcome in &report.tasks {
        ensure!(
            outcome.rejected.is_none(),
            "request refused: {:?}",
            outcome.rejected
        );
        ensure!(
            outcome.expectation.is_some(),
            "{} is predictable",
            outcome.template
        );
        ensure!(
            outcome.mismatches.is_empty(),
            "task {:?} ({}): {}",
            outcome.task_id,
            outcome.template,
            outcome.mismatches.join("; ")
        );
    }
    let ids: Vec<(TaskId, String)> = report
        .tasks
        .iter()
        .map(|outcome| {
            Ok((
                outcome.task_id.context("a created task")?,
                outcome.template.clone(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let steps = step::for_tasks(&pool, &ids.iter().map(|(id, _)| *id).collect::<Vec<_>>()).await?;
    let mut invocations = 0;
    for (task_id, template) in &ids {
        let record = task::get(&pool, *task_id)
            .await?
            .context("the task exists")?;
        let history = task::history(&pool, *task_id).await?;
        check_task_history(&history, record.state)
            .with_context(|| format!("history of task {task_id} ({template})"))?;
        let states: Vec<TaskState> = history.iter().map(|row| row.to_state).collect();
        if template.contains("/permanent_failure:") {
            // Blocked by the permanent failure first, then given up.
            let tail = &states[states.len().saturating_sub(2)..];
            ensure!(
                tail == [TaskState::BlockedByFailures, TaskState::Error],
                "task {task_id} ends {tail:?}"
            );
            let give_up = history.last().and_then(|row| row.event.as_ref());
            ensure!(
                give_up.and_then(|event| event.get("type")) == Some(&serde_json::json!("give_up")),
                "task {task_id} was given up: {give_up:?}"
            );
        } else {
            ensure!(
                !states.contains(&TaskState::BlockedByFailures),
                "task {task_id} ({template}) was never blocked"
            );
        }
        for step in steps.get(task_id).map_or(&[][..], Vec::as_slice) {
            let history = step::history(&pool, step.step_id).await?;
            check_step_history(&history, step.state)
                .with_context(|| format!("history of step {} of task {task_id}", step.name))?;
            // One invocation per attempt: no duplicates among eight racing workers.
            let calls = calls.of(step.step_id);
            invocations += calls;
            ensure!(
                i64::from(calls) == i64::from(step.attempts),
                "step {} of task {task_id} ran {calls} time(s) in {} attempt(s)",
                step.name,
                step.attempts
            );
            if step.name == "flaky" {
                ensure!(
                    step.attempts == 2,
                    "the flaky step took {} attempts",
                    step.attempts
                );
                ensure!(
                    step.state == StepState::Complete,
                    "the flaky step completed"
                );
            }
            if step.name == "charge" {
                ensure!(step.attempts == 1, "a permanent failure is not retried");
                ensure!(step.state == StepState::Error, "the charge step failed");
            }
        }
    }
    // Nothing but this run's steps ran (on RabbitMQ too: the queues carry the database's name).
    ensure!(
        invocations == calls.total(),
        "every invocation belongs to a step of the run"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_on_pgmq() -> anyhow::Result<()> {
    run_workflow(Backend::Pgmq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_on_rabbitmq() -> anyhow::Result<()> {
    run_workflow(Backend::Rabbitmq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_in_memory() -> anyhow::Result<()> {
    run_workflow(Backend::InMemory).await
}
