//! The staleness loop: every `interval` it finds tasks stuck in a transient state longer than
//! their thresholds, or past their lifetime (`tasker_db::stale::detect`), logs and counts
//! them, and acts on them as configured: a DLQ entry per task, a move to `error` through the
//! task state machine (`staleness_timeout`), a notification per task. A failed run is logged
//! and tried again at the next interval; it never stops the orchestrator.
//!
//! Any number of orchestrators may run the detector. With DLQ entries on, a stale task is the
//! finding of the run that opened its entry: the SQL skips tasks with an open entry, and of
//! two concurrent runs only one opens it, so a task is reported, moved and announced once.
//! Without DLQ entries nothing records a finding: a task left in its state (a dry run, or no
//! move to `error`) is found again by every run of every orchestrator.
//!
//! Unlike the other loops' transactions, a run does not lock its tasks in id order first: the
//! DLQ entries' foreign keys share-lock the tasks in detection order, then the transitions lock
//! them in id order. A deadlock with a transaction settling one of them (a task that moved at
//! that very moment, so was not stuck) is broken by PostgreSQL, and the loser tries again.

use std::sync::Arc;
use std::time::Duration;

use tasker_db::stale::{self, StaleTask, StalenessThresholds};
use tasker_db::task::{TaskTransition, TaskTransitionError, transition_batch};
use tasker_messaging::retry::within;
use tasker_messaging::shutdown::Shutdown;
use tasker_models::ids::TaskId;
use tasker_state::TaskEvent;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::{Doing as _, OrchestrationError, display_chain};
use crate::orchestrator::Orchestrator;

/// How the staleness detector works (`orchestration.dlq.staleness_detection`).
#[derive(Debug, Clone)]
pub struct StalenessSettings {
    /// The time between two runs; the first run is one interval after the start.
    pub interval: Duration,
    /// Stale tasks handled per run at most (those longest in their state first).
    pub batch_size: i32,
    /// When a task counts as stale.
    pub thresholds: StalenessThresholds,
    /// Report only: stale tasks are logged and counted, nothing is written and nothing is
    /// announced.
    pub dry_run: bool,
    /// Open a DLQ entry (`staleness_timeout`) per stale task. Without it, detection is a dry
    /// run as far as the DLQ goes.
    pub open_dlq_entries: bool,
    /// Move each stale task to `error` (`staleness_timeout`, a compare-and-set with its
    /// history row) and reply `finished` to its requester; a task that moved meanwhile is left
    /// alone.
    pub transition_to_error: bool,
    /// Announce each stale task on this PostgreSQL notification channel
    /// (`tasker_db::stale::notify` says what the payload holds).
    pub event_channel: Option<String>,
}

/// What one orchestrator's staleness detector did since the orchestrator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StalenessStats {
    /// Runs, failed ones included.
    pub runs: u64,
    /// Runs that failed (logged; nothing of them was written).
    pub failures: u64,
    /// Stale tasks this detector reported (again on every run, for a task nothing records:
    /// see the module docs).
    pub found: u64,
    /// Stale tasks it moved to `error`.
    pub moved_to_error: u64,
    /// DLQ entries it opened.
    pub dlq_entries: u64,
}

/// What one successful run did.
#[derive(Debug, Default)]
struct Run {
    found: u64,
    moved_to_error: u64,
    dlq_entries: u64,
}

impl Orchestrator {
    /// Runs the staleness detector every `settings.interval` until shutdown.
    pub(crate) async fn run_staleness(
        self: Arc<Self>,
        settings: StalenessSettings,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let interval = settings.interval.max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        // A run that outlasts the interval is followed by a full interval, not a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = ticks.tick() => {}
            }
            let outcome = within(
                self.settings.operation_timeout,
                self.detect_stale(&settings),
            )
            .await
            .doing("detecting stale tasks")
            .and_then(|outcome| outcome);
            self.staleness.send_modify(|stats| {
                stats.runs += 1;
                match &outcome {
                    Ok(run) => {
                        stats.found += run.found;
                        stats.moved_to_error += run.moved_to_error;
                        stats.dlq_entries += run.dlq_entries;
                    }
                    Err(_) => stats.failures += 1,
                }
            });
            if let Err(error) = outcome {
                tracing::warn!(error = %display_chain(&error), "detecting stale tasks failed; trying again at the next interval");
            }
        }
    }

    /// One run: detects stale tasks and, unless it is a dry run, opens their DLQ entries,
    /// moves them to `error` and announces them, all in one transaction.
    async fn detect_stale(&self, settings: &StalenessSettings) -> Result<Run, OrchestrationError> {
        if settings.dry_run {
            let found = stale::detect(
                &self.pool,
                settings.thresholds,
                settings.batch_size,
                true,
                None,
            )
            .await
            .doing("detecting stale tasks (dry run)")?;
            for task in &found {
                report(task, false);
            }
            return Ok(Run {
                found: found.len() as u64,
                ..Run::default()
            });
        }

        let open_dlq_entries = settings.open_dlq_entries;
        let mut tx = self.pool.begin().await.doing("starting a staleness run")?;
        let found = stale::detect(
            &mut *tx,
            settings.thresholds,
            settings.batch_size,
            !open_dlq_entries,
            None,
        )
        .await
        .doing("detecting stale tasks")?;
        // A task whose entry a concurrent run opened first is that run's finding.
        let mine: Vec<&StaleTask> = found
            .iter()
            .filter(|task| !open_dlq_entries || task.dlq_entry().is_some())
            .collect();
        if mine.is_empty() {
            tx.rollback().await.doing("ending an empty staleness run")?;
            return Ok(Run::default());
        }

        let mut outbox = self.messaging.outbox();
        let mut moved: Vec<TaskId> = Vec::new();
        if settings.transition_to_error {
            let metadata: Vec<serde_json::Value> = mine.iter().map(|task| metadata(task)).collect();
            let requests = mine
                .iter()
                .zip(&metadata)
                .map(|(task, metadata)| TaskTransition {
                    task_id: task.task_id,
                    expected: task.current_state,
                    event: TaskEvent::StalenessTimeout,
                    processor_id: Some(self.processor_id),
                    metadata: Some(metadata),
                })
                .collect();
            let outcomes = transition_batch(&mut tx, requests)
                .await
                .doing("moving stale tasks to error")?;
            for (task, outcome) in mine.iter().zip(outcomes) {
                match outcome {
                    Ok(applied) => {
                        let facts = self.task(&mut tx, task.task_id).await?;
                        self.reply_finished(&facts, applied.to, &mut outbox).await?;
                        moved.push(task.task_id);
                    }
                    // It moved since the detector read it: it was not stuck after all.
                    Err(
                        TaskTransitionError::Conflict { .. } | TaskTransitionError::NotFound { .. },
                    ) => {
                        tracing::debug!(task_id = %task.task_id, "a stale task moved meanwhile; left alone");
                    }
                    Err(error) => {
                        return Err(error)
                            .doing_with(|| format!("moving stale task {} to error", task.task_id));
                    }
                }
            }
        }
        if let Some(channel) = &settings.event_channel {
            stale::notify(&mut *tx, channel, &mine)
                .await
                .doing("announcing stale tasks")?;
        }
        self.commit(outbox, tx, "committing a staleness run")
            .await?
            .finish()
            .await
            .doing("sending after committing a staleness run")?;

        for task_id in &moved {
            self.tasks.forget(*task_id);
        }
        for task in &mine {
            report(task, moved.contains(&task.task_id));
        }
        Ok(Run {
            found: mine.len() as u64,
            moved_to_error: moved.len() as u64,
            dlq_entries: mine
                .iter()
                .filter(|task| task.dlq_entry().is_some())
                .count() as u64,
        })
    }
}

/// Logs a stale task: one line naming the task, its template, its state, its time there and
/// the threshold (its age and lifetime when that is the limit it passed).
fn report(task: &StaleTask, moved_to_error: bool) {
    let (took, limit) = match task.exceeded {
        stale::Exceeded::TimeInState => (task.time_in_state_minutes, task.threshold_minutes),
        stale::Exceeded::MaxLifetime => (task.task_age_minutes, task.lifetime_minutes),
    };
    tracing::warn!(
        task_id = %task.task_id,
        template = %format_args!("{}/{}:{}", task.namespace_name, task.task_name, task.task_version),
        state = %task.current_state,
        minutes_in_state = format_args!("{:.1}", task.time_in_state_minutes).to_string(),
        threshold_minutes = task.threshold_minutes,
        exceeded = task.exceeded.as_str(),
        dlq_entry = ?task.dlq_entry(),
        moved_to_error,
        "stale task: {} for {took:.1} min, limit {limit} min ({})",
        task.current_state,
        task.exceeded.as_str(),
    );
}

/// What the `staleness_timeout` transition records about the finding.
fn metadata(task: &StaleTask) -> serde_json::Value {
    serde_json::json!({
        "reason": "stale",
        "exceeded": task.exceeded.as_str(),
        "time_in_state_minutes": task.time_in_state_minutes,
        "threshold_minutes": task.threshold_minutes,
        "task_age_minutes": task.task_age_minutes,
        "lifetime_minutes": task.lifetime_minutes,
        "dlq_entry_id": task.dlq_entry(),
    })
}
