//! System health counts: tasks and steps per state, exact in every snapshot, read from the
//! state count log that statement-level triggers on `tasks` and `workflow_steps` append to
//! (the tables themselves are not read; docs/design/database.md explains the design).

use std::collections::BTreeMap;

use sqlx::PgExecutor;
use tasker_state::{StepState, TaskState};

use crate::error::DbError;

/// Whether the database answers a trivial query (readiness probes).
pub async fn ping<'c>(executor: impl PgExecutor<'c>) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(executor).await?;
    Ok(())
}

/// How many tasks and steps are in each state. Every state is present, zero included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthCounts {
    /// Tasks per state.
    pub tasks: BTreeMap<TaskState, i64>,
    /// Steps per state.
    pub steps: BTreeMap<StepState, i64>,
}

impl HealthCounts {
    /// All tasks.
    pub fn total_tasks(&self) -> i64 {
        self.tasks.values().sum()
    }

    /// All steps.
    pub fn total_steps(&self) -> i64 {
        self.steps.values().sum()
    }

    /// Tasks in `state`.
    pub fn tasks_in(&self, state: TaskState) -> i64 {
        self.tasks.get(&state).copied().unwrap_or(0)
    }

    /// Steps in `state`.
    pub fn steps_in(&self, state: StepState) -> i64 {
        self.steps.get(&state).copied().unwrap_or(0)
    }
}

/// Why the counts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The database returned a state label this build does not know.
    #[error("the database reports {entity} state `{state}`, which this build does not know")]
    UnknownState {
        /// `task` or `step`.
        entity: String,
        /// The label.
        state: String,
    },
    /// The database failed.
    #[error("failed to read health counts")]
    Database(#[from] DbError),
}

/// Counts tasks and steps per state (`tasker.get_system_health_counts`): the sums of the
/// state count log, so the cost depends on the log's length (kept short by compaction), not on
/// the number of tasks. Within one transaction snapshot the counts equal a `GROUP BY state`
/// over the tables.
pub async fn counts<'c>(executor: impl PgExecutor<'c>) -> Result<HealthCounts, HealthError> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT entity, state, count FROM tasker.get_system_health_counts()")
            .fetch_all(executor)
            .await
            .map_err(DbError::from)?;
    let mut counts = HealthCounts::default();
    for (entity, state, count) in rows {
        let unknown = || HealthError::UnknownState {
            entity: entity.clone(),
            state: state.clone(),
        };
        match entity.as_str() {
            "task" => {
                let state: TaskState = state.parse().map_err(|_| unknown())?;
                counts.tasks.insert(state, count);
            }
            "step" => {
                let state: StepState = state.parse().map_err(|_| unknown())?;
                counts.steps.insert(state, count);
            }
            _ => return Err(unknown()),
        }
    }
    Ok(counts)
}

/// Compacts the state count log (`tasker.compact_state_counts`): replaces each state's rows by
/// their sum. Writers do this by themselves every few dozen statements; a maintenance job may
/// call it too. Returns `false` when it was skipped because another transaction is compacting,
/// or the caller's transaction is not READ COMMITTED (compaction there could fail with a
/// serialization error).
pub async fn compact<'c>(executor: impl PgExecutor<'c>) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar("SELECT tasker.compact_state_counts()")
        .fetch_one(executor)
        .await?)
}

/// Whether the server runs autovacuum: `autovacuum = on` and `track_counts = on` (without the
/// counts it has nothing to go by), both PostgreSQL's defaults.
///
/// Tasker's statements run on generic plans ([`crate::pool::PoolConfig`]), planned once per
/// connection. Autovacuum's ANALYZE is what replaces a plan chosen when the tables were small
/// once they have grown; without it such plans stay in use (on the reference workflow's
/// benchmark, a first run on a fresh database was five times slower). Services should warn when
/// it is off, or run `ANALYZE` themselves.
pub async fn autovacuum_enabled<'c>(executor: impl PgExecutor<'c>) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT current_setting('autovacuum')::boolean \
                    AND current_setting('track_counts')::boolean",
    )
    .fetch_one(executor)
    .await?)
}

/// Terminates every other session connected to the current database (`pg_terminate_backend`)
/// and returns how many it terminated: what an operator's intervention or a failover does to
/// the running processes. For fault tests and drills; it needs the privilege to signal those
/// sessions (a superuser, or the same role).
pub async fn terminate_other_sessions<'c>(executor: impl PgExecutor<'c>) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(executor)
    .await?)
}
