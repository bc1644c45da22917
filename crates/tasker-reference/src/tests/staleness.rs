//! The staleness detector of in-process orchestrators, against a task stuck in
//! `steps_in_process`: no worker takes its step, and the detectors' threshold for that state
//! is 0 minutes, so the task is stale as soon as it gets there (the same as back-dating it
//! past a real threshold, with no SQL outside tasker-db). Two detectors find it once (one DLQ
//! entry, one notification); moving it to `error` writes a `staleness_timeout` transition and
//! tells its requester; a dry run reports it on every run and changes nothing; a failing run
//! is counted, changes nothing and does not stop the orchestrator.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tasker_orchestration::RunningOrchestrator;
use tasker_orchestration::client::{SubmissionEvent, Submitter};
use tasker_orchestration::staleness::{StalenessSettings, StalenessStats};
use tasker_shared::database::dlq::{self, DlqReason, DlqResolutionStatus};
use tasker_shared::database::stale::StalenessThresholds;
use tasker_shared::database::task;
use tasker_shared::messaging::outbox::Messaging;
use tasker_shared::models::ids::{ProcessorId, TaskId};
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::TaskState;
use uuid::Uuid;

use super::harness::{Calls, catalog, messaging, orchestrator_settings, with_database};
use crate::setup::Backend;

const CHANNEL: &str = "test_task_staleness";
const LIMIT: Duration = Duration::from_secs(30);

/// A detector running every 100 ms for which only `steps_in_process` has a threshold to speak
/// of (0 minutes), opening DLQ entries and announcing on [`CHANNEL`].
fn detection(dry_run: bool, transition_to_error: bool) -> StalenessSettings {
    StalenessSettings {
        interval: Duration::from_millis(100),
        batch_size: 10,
        thresholds: StalenessThresholds {
            waiting_for_dependencies_minutes: 1440,
            waiting_for_retry_minutes: 1440,
            steps_in_process_minutes: 0,
            processing_minutes: 1440,
            max_lifetime_minutes: 1440,
        },
        dry_run,
        open_dlq_entries: true,
        transition_to_error,
        event_channel: Some(CHANNEL.to_owned()),
    }
}

/// Orchestrators with detectors, a requester, a listener on [`CHANNEL`], and no worker.
struct Detectors {
    pool: PgPool,
    messaging: Messaging,
    orchestrators: Vec<RunningOrchestrator>,
    submitter: Submitter,
    listener: PgListener,
}

impl Detectors {
    async fn start(pool: &PgPool, detectors: &[StalenessSettings]) -> anyhow::Result<Self> {
        // Registered for intake; no worker runs their handlers.
        catalog(pool, &std::sync::Arc::new(Calls::default()), None).await?;
        let messaging = messaging(Backend::Pgmq, pool).await?;
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let submitter = Submitter::open(
            pool.clone(),
            &messaging,
            super::harness::submitter_settings(),
        )
        .await?;
        let mut started = Self {
            pool: pool.clone(),
            messaging,
            orchestrators: Vec::new(),
            submitter,
            listener,
        };
        for detection in detectors {
            started.add(detection.clone()).await?;
        }
        Ok(started)
    }

    /// Starts one more orchestrator with `detection`.
    async fn add(&mut self, detection: StalenessSettings) -> anyhow::Result<()> {
        let settings = tasker_orchestration::OrchestratorSettings {
            staleness: Some(detection),
            ..orchestrator_settings()
        };
        self.orchestrators.push(
            tasker_orchestration::start(self.pool.clone(), self.messaging.clone(), settings)
                .await?,
        );
        Ok(())
    }

    /// Submits a `linear` task (its first step is never taken) and returns the request id.
    async fn submit(&mut self) -> anyhow::Result<Uuid> {
        let request = TaskRequest::new("reference", "linear", "1.0.0", json!({"value": 5}));
        Ok(self.submitter.submit(&[request]).await?[0])
    }

    /// The next notification on [`CHANNEL`], as JSON.
    async fn notification(&mut self) -> anyhow::Result<serde_json::Value> {
        let notification = tokio::time::timeout(LIMIT, self.listener.recv())
            .await
            .context("no staleness notification came")??;
        Ok(serde_json::from_str(notification.payload())?)
    }

    /// Waits until every orchestrator's detector ran `more` more times; returns the sum of
    /// their counts.
    async fn after_runs(&self, more: u64) -> anyhow::Result<StalenessStats> {
        for orchestrator in &self.orchestrators {
            let mut watch = orchestrator.watch_staleness();
            let target = watch.borrow().runs + more;
            tokio::time::timeout(LIMIT, watch.wait_for(|stats| stats.runs >= target))
                .await
                .context("the detector did not run")?
                .context("the orchestrator stopped")?;
        }
        Ok(self.stats())
    }

    /// The sum of the orchestrators' counts.
    fn stats(&self) -> StalenessStats {
        self.orchestrators
            .iter()
            .map(RunningOrchestrator::staleness)
            .fold(StalenessStats::default(), |sum, stats| StalenessStats {
                runs: sum.runs + stats.runs,
                failures: sum.failures + stats.failures,
                found: sum.found + stats.found,
                moved_to_error: sum.moved_to_error + stats.moved_to_error,
                dlq_entries: sum.dlq_entries + stats.dlq_entries,
            })
    }

    fn processes(&self) -> Vec<ProcessorId> {
        self.orchestrators
            .iter()
            .map(RunningOrchestrator::process_id)
            .collect()
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.submitter.close().await?;
        for orchestrator in self.orchestrators {
            orchestrator.shutdown().await?;
        }
        drop(self.listener);
        Ok(())
    }
}

/// Checks a notification's payload against the stuck task.
fn check_payload(payload: &serde_json::Value) -> anyhow::Result<TaskId> {
    ensure!(
        payload["namespace"] == "reference"
            && payload["name"] == "linear"
            && payload["version"] == "1.0.0"
            && payload["state"] == "steps_in_process"
            && payload["exceeded"] == "time_in_state"
            && payload["threshold_minutes"] == 0
            && payload["minutes_in_state"].is_f64(),
        "unexpected payload {payload}"
    );
    let task_id = payload["task_id"].as_str().context("a task id")?;
    Ok(TaskId::from_uuid(task_id.parse()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_detectors_find_a_stale_task_once() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let mut detectors =
            Detectors::start(&pool, &[detection(false, false), detection(false, false)]).await?;
        let outcome = async {
            detectors.submit().await?;
            let payload = detectors.notification().await?;
            let task_id = check_payload(&payload)?;
            ensure!(payload["dlq_entry_id"].is_string(), "{payload}");

            // Both detectors ran twice more and found nothing new.
            let stats = detectors.after_runs(2).await?;
            ensure!(
                (
                    stats.found,
                    stats.dlq_entries,
                    stats.moved_to_error,
                    stats.failures
                ) == (1, 1, 0, 0),
                "{stats:?}"
            );
            let entries = dlq::for_task(&pool, task_id).await?;
            ensure!(entries.len() == 1, "one DLQ entry: {entries:?}");
            let entry = &entries[0];
            ensure!(
                entry.dlq_reason == DlqReason::StalenessTimeout
                    && entry.resolution_status == DlqResolutionStatus::Pending
                    && entry.original_state == TaskState::StepsInProcess
                    && payload["dlq_entry_id"] == json!(entry.entry_id),
                "{entry:?}"
            );
            let task = task::get(&pool, task_id).await?.context("the task")?;
            ensure!(
                task.state == TaskState::StepsInProcess,
                "left alone: {task:?}"
            );
            anyhow::Ok(())
        }
        .await;
        let stopped = detectors.shutdown().await;
        outcome?;
        stopped
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_task_moves_to_error_and_its_requester_hears() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let mut detectors =
            Detectors::start(&pool, &[detection(false, true), detection(false, true)]).await?;
        let outcome = async {
            let request_id = detectors.submit().await?;
            let (task_id, state) = finished(&mut detectors.submitter, request_id).await?;
            ensure!(state == TaskState::Error, "the task ended {state}");
            let payload = detectors.notification().await?;
            ensure!(check_payload(&payload)? == task_id, "{payload}");

            let history = task::history(&pool, task_id).await?;
            let last = history.last().context("a history")?;
            ensure!(
                last.from_state == Some(TaskState::StepsInProcess)
                    && last.to_state == TaskState::Error
                    && last.event == Some(json!({"type": "staleness_timeout"}))
                    && last.lifecycle_event.as_deref() == Some("task.failed")
                    && last.metadata["exceeded"] == "time_in_state"
                    && last.metadata["dlq_entry_id"] == payload["dlq_entry_id"]
                    && last
                        .processor()
                        .is_some_and(|id| detectors.processes().contains(&id)),
                "{last:?}"
            );
            let stats = detectors.after_runs(2).await?;
            ensure!(
                (
                    stats.found,
                    stats.dlq_entries,
                    stats.moved_to_error,
                    stats.failures
                ) == (1, 1, 1, 0),
                "{stats:?}"
            );
            ensure!(
                dlq::for_task(&pool, task_id).await?.len() == 1,
                "one DLQ entry"
            );
            anyhow::Ok(())
        }
        .await;
        let stopped = detectors.shutdown().await;
        outcome?;
        stopped
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_and_changes_nothing() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let mut detectors = Detectors::start(&pool, &[detection(true, true)]).await?;
        let outcome = async {
            let request_id = detectors.submit().await?;
            // Found on every run: nothing records a dry run's finding.
            let mut watch = detectors.orchestrators[0].watch_staleness();
            let stats = *tokio::time::timeout(LIMIT, watch.wait_for(|stats| stats.found >= 2))
                .await
                .context("the dry run found nothing")??;
            ensure!(
                (stats.dlq_entries, stats.moved_to_error, stats.failures) == (0, 0, 0),
                "{stats:?}"
            );
            let task = task::by_request_ids(&pool, &[request_id]).await?;
            let task = task.first().context("the task")?;
            ensure!(task.state == TaskState::StepsInProcess, "{task:?}");
            ensure!(
                dlq::for_task(&pool, task.task_id).await?.is_empty(),
                "no DLQ entry"
            );
            let history = task::history(&pool, task.task_id).await?;
            ensure!(
                history.iter().all(|row| row.to_state != TaskState::Error),
                "{history:?}"
            );

            // A detector that acts announces the task; nothing came before it.
            detectors.add(detection(false, false)).await?;
            let payload = detectors.notification().await?;
            ensure!(check_payload(&payload)? == task.task_id, "{payload}");
            ensure!(payload["dlq_entry_id"].is_string(), "{payload}");
            anyhow::Ok(())
        }
        .await;
        let stopped = detectors.shutdown().await;
        outcome?;
        stopped
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_is_counted_and_the_orchestrator_goes_on() -> anyhow::Result<()> {
    with_database(|pool| async move {
        // PostgreSQL refuses to notify on an empty channel name, so every run with a finding
        // fails after opening the DLQ entry, and rolls it back.
        let failing = StalenessSettings {
            event_channel: Some(String::new()),
            ..detection(false, true)
        };
        let mut detectors = Detectors::start(&pool, &[failing]).await?;
        let outcome = async {
            let request_id = detectors.submit().await?;
            let mut watch = detectors.orchestrators[0].watch_staleness();
            let stats = *tokio::time::timeout(LIMIT, watch.wait_for(|stats| stats.failures >= 2))
                .await
                .context("no run failed")??;
            ensure!(
                (stats.found, stats.dlq_entries, stats.moved_to_error) == (0, 0, 0),
                "{stats:?}"
            );
            detectors.orchestrators[0].check_alive()?;
            let task = task::by_request_ids(&pool, &[request_id]).await?;
            let task = task.first().context("the task")?;
            ensure!(task.state == TaskState::StepsInProcess, "{task:?}");
            ensure!(
                dlq::for_task(&pool, task.task_id).await?.is_empty(),
                "rolled back"
            );
            anyhow::Ok(())
        }
        .await;
        let stopped = detectors.shutdown().await;
        outcome?;
        stopped
    })
    .await
}

/// Waits for the submitter to report request `request_id`'s task finished.
async fn finished(
    submitter: &mut Submitter,
    request_id: Uuid,
) -> anyhow::Result<(TaskId, TaskState)> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        for event in submitter.next_events(Duration::from_secs(1)).await? {
            if let SubmissionEvent::Finished {
                request_id: id,
                task_id,
                state,
            } = event
                && id == request_id
            {
                return Ok((task_id, state));
            }
        }
    }
    anyhow::bail!("request {request_id} did not finish within {LIMIT:?}")
}
