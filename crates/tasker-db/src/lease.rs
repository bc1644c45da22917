//! Process leases (`tasker.process_leases`): a worker process holds one while it runs and
//! renews it, so that an attempt it started is told from an attempt whose process is gone.
//!
//! A lease belongs to one incarnation of a process id: the row's `started_at` is set when the
//! process takes the lease. A process restarted under the same configured id takes it again
//! with a new `started_at`, so the attempts of the earlier incarnation read as gone. Every time
//! is the database's clock, never a process's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_models::ids::{ProcessorId, StepId};
use uuid::Uuid;

use crate::error::DbError;

/// A lease this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The process.
    pub processor_id: ProcessorId,
    /// When this incarnation took the lease (the database's clock).
    pub started_at: DateTime<Utc>,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed until the given time.
    Renewed(DateTime<Utc>),
    /// Another incarnation took the lease under the same process id (two processes were given
    /// one id): this one no longer holds it.
    TakenOver {
        /// When the other incarnation took it.
        by_incarnation_at: DateTime<Utc>,
    },
}

/// Takes the lease of `processor_id` for a new incarnation, lasting `ttl`, replacing the
/// lease of an earlier incarnation under the same id.
pub async fn acquire<'c>(
    executor: impl PgExecutor<'c>,
    processor_id: ProcessorId,
    role: &str,
    ttl: Duration,
) -> Result<Lease, DbError> {
    let (started_at, expires_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO tasker.process_leases (processor_uuid, role, started_at, renewed_at, expires_at) \
         VALUES ($1, $2, clock_timestamp(), clock_timestamp(), clock_timestamp() + $3) \
         ON CONFLICT (processor_uuid) DO UPDATE SET role = EXCLUDED.role, \
             started_at = EXCLUDED.started_at, renewed_at = EXCLUDED.renewed_at, \
             expires_at = EXCLUDED.expires_at \
         RETURNING started_at, expires_at",
    )
    .bind(processor_id.into_uuid())
    .bind(role)
    .bind(interval(ttl))
    .fetch_one(executor)
    .await?;
    Ok(Lease {
        processor_id,
        started_at,
        expires_at,
    })
}

/// Renews `lease` for `ttl` from now. A lease row that vanished (deleted by hand) is taken
/// again for the same incarnation.
pub async fn renew<'c>(
    executor: impl PgExecutor<'c>,
    lease: &Lease,
    role: &str,
    ttl: Duration,
) -> Result<Renewal, DbError> {
    let (started_at, expires_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO tasker.process_leases (processor_uuid, role, started_at, renewed_at, expires_at) \
         VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp() + $4) \
         ON CONFLICT (processor_uuid) DO UPDATE SET \
             renewed_at = CASE WHEN process_leases.started_at = EXCLUDED.started_at \
                 THEN EXCLUDED.renewed_at ELSE process_leases.renewed_at END, \
             expires_at = CASE WHEN process_leases.started_at = EXCLUDED.started_at \
                 THEN EXCLUDED.expires_at ELSE process_leases.expires_at END \
         RETURNING started_at, expires_at",
    )
    .bind(lease.processor_id.into_uuid())
    .bind(role)
    .bind(lease.started_at)
    .bind(interval(ttl))
    .fetch_one(executor)
    .await?;
    Ok(if started_at == lease.started_at {
        Renewal::Renewed(expires_at)
    } else {
        Renewal::TakenOver {
            by_incarnation_at: started_at,
        }
    })
}

/// Gives `lease` up (a process stopping cleanly): its attempts read as gone at once. A lease
/// taken over by another incarnation is left alone.
pub async fn release<'c>(executor: impl PgExecutor<'c>, lease: &Lease) -> Result<(), DbError> {
    sqlx::query("DELETE FROM tasker.process_leases WHERE processor_uuid = $1 AND started_at = $2")
        .bind(lease.processor_id.into_uuid())
        .bind(lease.started_at)
        .execute(executor)
        .await?;
    Ok(())
}

/// Who runs a step's current attempt, as far as the database knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptHolder {
    /// The process that wrote the step's current state (`None` for a transition written
    /// without one).
    pub processor_id: Option<ProcessorId>,
    /// When it wrote it.
    pub at: DateTime<Utc>,
    /// The incarnation of that process that holds a live lease and started at or before the
    /// write: `None` when the writer is gone (no lease, an expired one, or a newer
    /// incarnation under the same id).
    pub live_incarnation: Option<DateTime<Utc>>,
}

impl AttemptHolder {
    /// Whether the process that wrote the step's state still runs, in the same incarnation.
    pub fn is_live(&self) -> bool {
        self.live_incarnation.is_some()
    }
}

/// The holder of step `step_id`'s current state (for an `in_progress` step, its attempt);
/// `None` if there is no such step.
pub async fn attempt_holder<'c>(
    executor: impl PgExecutor<'c>,
    step_id: StepId,
) -> Result<Option<AttemptHolder>, DbError> {
    /// The writer, when it wrote, and the live incarnation that did.
    type Row = (Option<Uuid>, DateTime<Utc>, Option<DateTime<Utc>>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT st.processor_uuid, st.created_at, l.started_at \
         FROM tasker.workflow_steps s \
         JOIN tasker.workflow_step_transitions st \
           ON st.workflow_step_uuid = s.workflow_step_uuid AND st.sort_key = s.most_recent_sort_key \
         LEFT JOIN tasker.process_leases l \
           ON l.processor_uuid = st.processor_uuid \
          AND l.expires_at > clock_timestamp() AND l.started_at <= st.created_at \
         WHERE s.workflow_step_uuid = $1",
    )
    .bind(step_id.into_uuid())
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(processor, at, live_incarnation)| AttemptHolder {
        processor_id: processor.map(ProcessorId::from_uuid),
        at,
        live_incarnation,
    }))
}

/// `ttl` as a PostgreSQL interval, to the microsecond.
fn interval(ttl: Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX),
    }
}
