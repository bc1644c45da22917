//! Stale-task detection into the DLQ (`tasker.detect_stale_tasks`).
//!
//! A task is stale when it stayed in a transient state longer than its threshold (the
//! template's lifecycle limit, else the configured default) or lives longer than its maximum
//! lifetime. Detection opens one DLQ entry per stale task (reason `staleness_timeout`, with a
//! snapshot); the task's state is left alone: moving it to `error` is the caller's
//! decision, through tasker-state's `staleness_timeout` transition. [`notify`] announces stale
//! tasks on a PostgreSQL notification channel.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{DlqEntryId, TaskId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;

/// Default thresholds, in minutes, for states without a template limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessThresholds {
    /// `waiting_for_dependencies`.
    pub waiting_for_dependencies_minutes: i32,
    /// `waiting_for_retry`.
    pub waiting_for_retry_minutes: i32,
    /// `steps_in_process`.
    pub steps_in_process_minutes: i32,
    /// `initializing`, `enqueuing_steps`, `evaluating_results`: an orchestrator should leave
    /// them within seconds, so a long stay means it died mid-step.
    pub processing_minutes: i32,
    /// The longest a task in any of these states may exist.
    pub max_lifetime_minutes: i32,
}

impl StalenessThresholds {
    /// 60 / 30 / 30 / 30 minutes and a 24-hour lifetime.
    pub const DEFAULT: StalenessThresholds = StalenessThresholds {
        waiting_for_dependencies_minutes: 60,
        waiting_for_retry_minutes: 30,
        steps_in_process_minutes: 30,
        processing_minutes: 30,
        max_lifetime_minutes: 24 * 60,
    };
}

/// Which limit a stale task exceeded (time in state is reported when both are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// It stayed in its state longer than the threshold.
    TimeInState,
    /// It exists longer than its maximum lifetime.
    MaxLifetime,
}

impl Exceeded {
    /// The snake_case name, as the SQL function reports it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Exceeded::TimeInState => "time_in_state",
            Exceeded::MaxLifetime => "max_lifetime",
        }
    }
}

impl TryFrom<String> for Exceeded {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "time_in_state" => Ok(Exceeded::TimeInState),
            "max_lifetime" => Ok(Exceeded::MaxLifetime),
            _ => Err(format!("unknown staleness limit `{value}`")),
        }
    }
}

/// A stale task.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StaleTask {
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its namespace.
    pub namespace_name: String,
    /// Its template's name.
    pub task_name: String,
    /// Its template's version.
    pub task_version: String,
    /// The state it is stuck in.
    pub current_state: TaskState,
    /// How long it has been in that state.
    pub time_in_state_minutes: f64,
    /// The threshold for that state.
    pub threshold_minutes: i32,
    /// How old the task is.
    pub task_age_minutes: f64,
    /// Its maximum lifetime.
    pub lifetime_minutes: i32,
    /// Which limit it exceeded.
    #[sqlx(try_from = "String")]
    pub exceeded: Exceeded,
    dlq_entry_uuid: Option<Uuid>,
}

impl StaleTask {
    /// The DLQ entry opened for it (`None` in a dry run, or if another detector was first).
    pub fn dlq_entry(&self) -> Option<DlqEntryId> {
        self.dlq_entry_uuid.map(DlqEntryId::from_uuid)
    }
}

/// Finds up to `limit` stale tasks (longest in their state first) and, unless `dry_run`, opens
/// a DLQ entry for each. Tasks with an open DLQ entry are skipped, so repeated runs and
/// concurrent detectors never open two.
pub async fn detect<'c>(
    executor: impl PgExecutor<'c>,
    thresholds: StalenessThresholds,
    limit: i32,
    dry_run: bool,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<StaleTask>, DbError> {
    let rows = sqlx::query_as::<_, StaleTask>(
        "SELECT * FROM tasker.detect_stale_tasks($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))",
    )
    .bind(dry_run)
    .bind(limit)
    .bind(thresholds.waiting_for_dependencies_minutes)
    .bind(thresholds.waiting_for_retry_minutes)
    .bind(thresholds.steps_in_process_minutes)
    .bind(thresholds.processing_minutes)
    .bind(thresholds.max_lifetime_minutes)
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// Sends one notification per stale task on `channel` (`pg_notify`, delivered when the
/// caller's transaction commits), with a JSON payload: `task_id`, `namespace`, `name`,
/// `version`, `state`, `minutes_in_state`, `threshold_minutes`, `exceeded` and `dlq_entry_id`
/// (`null` when no entry was opened).
///
/// The channel is a parameter, not an interpolated identifier; PostgreSQL refuses an empty
/// name or one longer than 63 bytes.
pub async fn notify<'c>(
    executor: impl PgExecutor<'c>,
    channel: &str,
    tasks: &[&StaleTask],
) -> Result<(), DbError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = tasks
        .iter()
        .map(|task| {
            serde_json::json!({
                "task_id": task.task_id,
                "namespace": task.namespace_name,
                "name": task.task_name,
                "version": task.task_version,
                "state": task.current_state.as_str(),
                "minutes_in_state": task.time_in_state_minutes,
                "threshold_minutes": task.threshold_minutes,
                "exceeded": task.exceeded.as_str(),
                "dlq_entry_id": task.dlq_entry(),
            })
            .to_string()
        })
        .collect();
    sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
        .bind(channel)
        .bind(payloads)
        .execute(executor)
        .await?;
    Ok(())
}
