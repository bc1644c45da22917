//! The DLQ ledger (`tasks_dlq`): open entries by hand, list the open ones, resolve them.
//!
//! Stale-task detection ([`crate::stale`]) opens entries automatically. At most one entry per
//! task is open (`pending`) at a time; resolved entries stay as history.
//!
//! [`DlqEntry`] is Tasker's one dead-letter entry type: an investigation of a stuck task, which
//! stays where it is. A message moved to a queue's dead-letter queue is another thing, described
//! by tasker-messaging's `DeadLetterInfo`.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{DlqEntryId, TaskId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;

/// Why a task is in the DLQ. Stored as the enum `dlq_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "dlq_reason", rename_all = "snake_case")]
pub enum DlqReason {
    /// It stayed in a transient state too long.
    StalenessTimeout,
    /// It ran out of retries.
    MaxRetriesExceeded,
    /// Its steps' dependencies form a cycle.
    DependencyCycleDetected,
    /// No worker could take its steps.
    WorkerUnavailable,
    /// An operator put it there.
    ManualDlq,
}

/// Where an entry's investigation stands. Stored as the enum `dlq_resolution_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "dlq_resolution_status", rename_all = "snake_case")]
pub enum DlqResolutionStatus {
    /// Open: someone needs to look at it.
    Pending,
    /// An operator fixed the task.
    ManuallyResolved,
    /// The task cannot be saved.
    PermanentlyFailed,
    /// The investigation was dropped.
    Cancelled,
}

/// One DLQ entry: a row of `tasks_dlq`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DlqEntry {
    /// The entry.
    #[sqlx(rename = "dlq_entry_uuid", try_from = "Uuid")]
    pub entry_id: DlqEntryId,
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// The task's state when it entered the DLQ.
    pub original_state: TaskState,
    /// Why.
    pub dlq_reason: DlqReason,
    /// When.
    pub dlq_timestamp: DateTime<Utc>,
    /// Where the investigation stands.
    pub resolution_status: DlqResolutionStatus,
    /// When it was resolved.
    pub resolution_timestamp: Option<DateTime<Utc>>,
    /// What the resolver wrote.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The task as it was.
    pub task_snapshot: serde_json::Value,
    /// Detection details.
    pub metadata: serde_json::Value,
}

impl DlqEntry {
    /// Whether the investigation is still open.
    pub fn is_pending(&self) -> bool {
        self.resolution_status == DlqResolutionStatus::Pending
    }

    /// How long the entry has been in the DLQ: until its resolution, or until `now` while open.
    pub fn age(&self, now: DateTime<Utc>) -> TimeDelta {
        self.resolution_timestamp.unwrap_or(now) - self.dlq_timestamp
    }

    /// Whether the investigation is still open after `threshold`.
    pub fn is_stale(&self, now: DateTime<Utc>, threshold: TimeDelta) -> bool {
        self.is_pending() && self.age(now) >= threshold
    }
}

const ENTRY_COLUMNS: &str = "dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp, \
     resolution_status, resolution_timestamp, resolution_notes, resolved_by, task_snapshot, metadata";

/// Why a DLQ operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// No such task.
    #[error("task {task_id} does not exist")]
    TaskNotFound {
        /// The task.
        task_id: TaskId,
    },
    /// The task already has an open entry.
    #[error("task {task_id} already has an open DLQ entry")]
    AlreadyOpen {
        /// The task.
        task_id: TaskId,
    },
    /// No such entry, or it is no longer open.
    #[error("DLQ entry {entry_id} does not exist or is already resolved")]
    NotOpen {
        /// The entry.
        entry_id: DlqEntryId,
    },
    /// `pending` is not a resolution.
    #[error("a DLQ entry cannot be resolved to `pending`")]
    PendingIsNotAResolution,
    /// The database failed.
    #[error("DLQ operation failed")]
    Database(#[from] DbError),
}

/// Opens an entry for a task by hand (for example `manual_dlq`), with a snapshot of the task
/// row taken in the same statement.
pub async fn open(
    conn: &mut sqlx::PgConnection,
    task_id: TaskId,
    reason: DlqReason,
    metadata: &serde_json::Value,
) -> Result<DlqEntry, DlqError> {
    let sql = format!(
        "INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, original_state, dlq_reason, \
             task_snapshot, metadata) \
         SELECT $1, t.task_uuid, t.state, $3, jsonb_build_object('task', to_jsonb(t.*)), $4 \
         FROM tasker.tasks t WHERE t.task_uuid = $2 \
         ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING \
         RETURNING {ENTRY_COLUMNS}"
    );
    let entry = sqlx::query_as::<_, DlqEntry>(&sql)
        .bind(Uuid::now_v7())
        .bind(task_id.into_uuid())
        .bind(reason)
        .bind(metadata)
        .fetch_optional(&mut *conn)
        .await
        .map_err(DbError::from)?;
    if let Some(entry) = entry {
        return Ok(entry);
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE task_uuid = $1)")
            .bind(task_id.into_uuid())
            .fetch_one(&mut *conn)
            .await
            .map_err(DbError::from)?;
    Err(if exists {
        DlqError::AlreadyOpen { task_id }
    } else {
        DlqError::TaskNotFound { task_id }
    })
}

/// The open entries, oldest first.
pub async fn pending<'c>(
    executor: impl PgExecutor<'c>,
    limit: i64,
) -> Result<Vec<DlqEntry>, DbError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM tasker.tasks_dlq WHERE resolution_status = 'pending' \
         ORDER BY dlq_timestamp, dlq_entry_uuid LIMIT $1"
    );
    Ok(sqlx::query_as::<_, DlqEntry>(&sql)
        .bind(limit)
        .fetch_all(executor)
        .await?)
}

/// Every entry of a task, newest first.
pub async fn for_task<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
) -> Result<Vec<DlqEntry>, DbError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM tasker.tasks_dlq WHERE task_uuid = $1 \
         ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC"
    );
    Ok(sqlx::query_as::<_, DlqEntry>(&sql)
        .bind(task_id.into_uuid())
        .fetch_all(executor)
        .await?)
}

/// Resolves an open entry (compare-and-set on `pending`, so two operators cannot both resolve
/// it). The task's own state is not touched: fix it through the task and step transitions.
pub async fn resolve<'c>(
    executor: impl PgExecutor<'c>,
    entry_id: DlqEntryId,
    status: DlqResolutionStatus,
    notes: Option<&str>,
    resolved_by: &str,
) -> Result<DlqEntry, DlqError> {
    if status == DlqResolutionStatus::Pending {
        return Err(DlqError::PendingIsNotAResolution);
    }
    let sql = format!(
        "UPDATE tasker.tasks_dlq SET resolution_status = $2, resolution_timestamp = now(), \
             resolution_notes = $3, resolved_by = $4, updated_at = now() \
         WHERE dlq_entry_uuid = $1 AND resolution_status = 'pending' \
         RETURNING {ENTRY_COLUMNS}"
    );
    sqlx::query_as::<_, DlqEntry>(&sql)
        .bind(entry_id.into_uuid())
        .bind(status)
        .bind(notes)
        .bind(resolved_by)
        .fetch_optional(executor)
        .await
        .map_err(DbError::from)?
        .ok_or(DlqError::NotOpen { entry_id })
}

#[cfg(test)]
mod tests;
