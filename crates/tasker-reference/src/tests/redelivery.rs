//! A worker process killed mid-step (its tasks dropped, the message neither acknowledged nor
//! given back): after the visibility timeout the message is delivered again, to a worker
//! process started in its place, which declares the lost attempt failed; orchestration retries
//! the step, and the step completes once. This is the documented case in which a step's
//! handler runs twice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use sqlx::PgPool;
use tasker_shared::database::step::{self, StepScope};
use tasker_shared::models::ids::ProcessorId;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::{StepState, TaskState};

use super::harness::{
    Calls, Stall, TestEngines, catalog, messaging, orchestrator_settings, with_database,
};
use super::history::check_step_history;
use crate::setup::Backend;

const LIMIT: Duration = Duration::from_secs(60);

async fn run_killed_worker(backend: Backend) -> anyhow::Result<()> {
    with_database(move |pool| async move { killed_worker(backend, pool).await }).await
}

async fn killed_worker(backend: Backend, pool: PgPool) -> anyhow::Result<()> {
    let calls = Arc::new(Calls::default());
    let stall = Stall::new("double");
    let catalog = catalog(&pool, &calls, Some(&stall)).await?;
    let messaging = messaging(backend, &pool).await?;
    let mut engines =
        TestEngines::start(&pool, messaging, &catalog, 2, orchestrator_settings()).await?;
    let outcome = async {
        let request = TaskRequest::new("reference", "linear", "1.0.0", json!({"value": 5}));
        let request_id = engines.submitter()?.submit(&[request]).await?[0];
        let stalled = stall.reached(LIMIT).await?;

        // The worker process that started the step is the one running its stalled handler.
        let history = step::history(&pool, stalled).await?;
        let start = history
            .iter()
            .find(|row| row.to_state == StepState::InProgress)
            .context("the stalled step was started")?;
        let worker = start
            .event
            .as_ref()
            .and_then(|event| event.get("worker_id"))
            .and_then(|id| id.as_str())
            .context("the start event names its worker")?;
        let worker = ProcessorId::from_uuid(worker.parse()?);
        ensure!(
            start.processor_uuid == Some(worker.into_uuid()),
            "the start was written by the worker process"
        );
        engines.kill_workers().await;
        engines.start_workers(2).await?;

        let (task_id, state) = engines.wait_for(request_id, LIMIT).await?;
        ensure!(state == TaskState::Complete, "the task completed");
        anyhow::Ok((task_id, stalled))
    }
    .await;
    let stopped = engines.shutdown().await;
    let (task_id, stalled) = outcome?;
    stopped?;

    let steps = StepScope::new().for_task(task_id).all(&pool).await?;
    for step in &steps {
        let expected_calls = if step.step_id == stalled { 2 } else { 1 };
        ensure!(
            calls.of(step.step_id) == expected_calls,
            "step {} ran {} time(s), expected {expected_calls}",
            step.name,
            calls.of(step.step_id)
        );
        ensure!(
            step.state == StepState::Complete,
            "step {} completed",
            step.name
        );
        ensure!(
            step.attempts == expected_calls as i32,
            "step {} attempts",
            step.name
        );
        check_step_history(&step::history(&pool, step.step_id).await?, step.state)?;
    }
    let last = steps
        .iter()
        .find(|step| step.name == "subtract_one")
        .and_then(|step| step.results.as_ref())
        .and_then(|results| results.get("result"))
        .cloned();
    ensure!(
        last == Some(json!(15)),
        "2 * (5 + 3) - 1 = 15, got {last:?}"
    );

    // The lost attempt failed (on orchestration's behalf), was retried and completed once.
    let history = step::history(&pool, stalled).await?;
    let states: Vec<StepState> = history.iter().map(|row| row.to_state).collect();
    use StepState::{Complete, Enqueued, EnqueuedForOrchestration, Error, InProgress, Pending};
    ensure!(
        states
            == [
                Pending,
                Enqueued,
                InProgress,
                Error,
                Pending,
                Enqueued,
                InProgress,
                EnqueuedForOrchestration,
                Complete
            ],
        "history of the stalled step: {states:?}"
    );
    let lost = &history[3];
    ensure!(
        lost.metadata.get("reason") == Some(&json!("worker_lost")),
        "the failure names the lost worker: {}",
        lost.metadata
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_on_pgmq() -> anyhow::Result<()> {
    run_killed_worker(Backend::Pgmq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_on_rabbitmq() -> anyhow::Result<()> {
    run_killed_worker(Backend::Rabbitmq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_in_memory() -> anyhow::Result<()> {
    run_killed_worker(Backend::InMemory).await
}
