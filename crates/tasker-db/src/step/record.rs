//! Step rows and their histories, and the composable step scope.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use tasker_models::ids::{NamedStepId, StepId, StepTransitionId, TaskId};
use tasker_state::{StepState, TaskState};
use uuid::Uuid;

use crate::error::DbError;

/// A workflow step row with its template step's name.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepRecord {
    /// The step.
    #[sqlx(rename = "workflow_step_uuid", try_from = "Uuid")]
    pub step_id: StepId,
    /// Its task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template step.
    #[sqlx(rename = "named_step_uuid", try_from = "Uuid")]
    pub named_step_id: NamedStepId,
    /// The step's name in its template.
    pub name: String,
    /// Which instance of its template step it is: 0, or a batch worker's number.
    pub instance: i32,
    /// The current state.
    pub state: StepState,
    /// When it entered that state.
    pub state_entered_at: DateTime<Utc>,
    /// Whether its failures may be retried (policy).
    pub retryable: bool,
    /// Whether its last failure allowed retries.
    pub failure_retryable: bool,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Attempts made.
    pub attempts: i32,
    /// When the last attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// The backoff its last failure requested, in milliseconds.
    pub backoff_request_ms: Option<i64>,
    /// The handler's input.
    pub inputs: Option<serde_json::Value>,
    /// The stored result.
    pub results: Option<serde_json::Value>,
    /// When it reached a terminal state.
    pub processed_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

const STEP_COLUMNS: &str = "s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, ns.name, s.instance, s.state, \
     s.state_entered_at, s.retryable, s.failure_retryable, s.max_attempts, s.attempts, \
     s.last_attempted_at, s.backoff_request_ms, s.inputs, s.results, s.processed_at, \
     s.completed_at, s.created_at, s.updated_at \
     FROM tasker.workflow_steps s \
     JOIN tasker.named_steps ns ON ns.named_step_uuid = s.named_step_uuid";

/// A step by id.
pub async fn get<'c>(
    executor: impl PgExecutor<'c>,
    step_id: StepId,
) -> Result<Option<StepRecord>, DbError> {
    let sql = format!("SELECT {STEP_COLUMNS} WHERE s.workflow_step_uuid = $1");
    Ok(sqlx::query_as::<_, StepRecord>(&sql)
        .bind(step_id.into_uuid())
        .fetch_optional(executor)
        .await?)
}

/// The steps of several tasks in one query, grouped by task, each group ordered by step id.
pub async fn for_tasks<'c>(
    executor: impl PgExecutor<'c>,
    task_ids: &[TaskId],
) -> Result<HashMap<TaskId, Vec<StepRecord>>, DbError> {
    let ids: Vec<Uuid> = task_ids.iter().map(|id| id.into_uuid()).collect();
    let sql = format!(
        "SELECT {STEP_COLUMNS} WHERE s.task_uuid = ANY($1) ORDER BY s.task_uuid, s.workflow_step_uuid"
    );
    let rows = sqlx::query_as::<_, StepRecord>(&sql)
        .bind(&ids)
        .fetch_all(executor)
        .await?;
    let mut grouped: HashMap<TaskId, Vec<StepRecord>> = HashMap::new();
    for row in rows {
        grouped.entry(row.task_id).or_default().push(row);
    }
    Ok(grouped)
}

/// One row of a step's history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepTransitionRow {
    /// The transition.
    #[sqlx(rename = "workflow_step_transition_uuid", try_from = "Uuid")]
    pub transition_id: StepTransitionId,
    /// Its position in the history (1 is the initial `pending`).
    pub sort_key: i32,
    /// Whether it is the current one.
    pub most_recent: bool,
    /// The state left (`None` for the initial row).
    pub from_state: Option<StepState>,
    /// The state entered.
    pub to_state: StepState,
    /// The event as JSON (`None` for the initial row).
    pub event: Option<serde_json::Value>,
    /// The published lifecycle event.
    pub lifecycle_event: Option<String>,
    /// The orchestrator or worker that wrote it.
    pub processor_uuid: Option<Uuid>,
    /// Extra context.
    pub metadata: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// A step's transitions in order (oldest first).
pub async fn history<'c>(
    executor: impl PgExecutor<'c>,
    step_id: StepId,
) -> Result<Vec<StepTransitionRow>, DbError> {
    Ok(sqlx::query_as::<_, StepTransitionRow>(
        "SELECT st.workflow_step_transition_uuid, st.sort_key, \
                st.sort_key = s.most_recent_sort_key AS most_recent, st.from_state, st.to_state, \
                st.event, st.lifecycle_event, st.processor_uuid, st.metadata, st.created_at \
         FROM tasker.workflow_step_transitions st \
         JOIN tasker.workflow_steps s ON s.workflow_step_uuid = st.workflow_step_uuid \
         WHERE st.workflow_step_uuid = $1 ORDER BY st.sort_key",
    )
    .bind(step_id.into_uuid())
    .fetch_all(executor)
    .await?)
}

/// The non-terminal task states as SQL literals (`'pending', 'initializing', ...`), from
/// tasker-state's own names: constants, never user input.
fn unfinished_task_states() -> &'static str {
    static STATES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        TaskState::ALL
            .into_iter()
            .filter(|state| !state.is_terminal())
            .map(|state| format!("'{}'", state.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    });
    &STATES
}

/// A composable, typed query over workflow steps. Every filter is a bound parameter.
///
/// Steps are found by index through their task (`for_task`, or `for_unfinished_tasks`, which
/// reaches them through the tasks' state index) or their template step (`for_named_step`).
/// The steps' own state is deliberately not indexed, so that step transitions are HOT updates
/// (docs/design/database.md): a state filter with none of those reads every step row.
///
/// ```no_run
/// # async fn example(pool: &sqlx::PgPool, task_id: tasker_models::ids::TaskId)
/// # -> Result<(), tasker_db::error::DbError> {
/// use tasker_db::step::StepScope;
///
/// let failed = StepScope::new().for_task(task_id).failed().all(pool).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StepScope {
    task_id: Option<TaskId>,
    named_step_id: Option<NamedStepId>,
    states: Vec<StepState>,
    unfinished_tasks: bool,
    with_results: bool,
    retryable_only: bool,
    tasks_created_since: Option<DateTime<Utc>>,
    entered_state_before: Option<DateTime<Utc>>,
    limit: Option<i64>,
}

impl StepScope {
    /// All steps, ordered by task then step id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The steps of one task.
    #[must_use]
    pub fn for_task(mut self, task_id: TaskId) -> Self {
        self.task_id = Some(task_id);
        self
    }

    /// The steps instantiating one template step.
    #[must_use]
    pub fn for_named_step(mut self, named_step_id: NamedStepId) -> Self {
        self.named_step_id = Some(named_step_id);
        self
    }

    /// Steps in this state; repeat to allow several states.
    #[must_use]
    pub fn in_state(mut self, state: StepState) -> Self {
        self.states.push(state);
        self
    }

    /// Steps of tasks that are not in a terminal state. Steps in flight belong to such tasks,
    /// so a query over them with this filter reads only the unfinished tasks' steps, through
    /// the tasks' state index, however long the history. (The states are written into the
    /// statement as constants, so that even a plan made once knows how few tasks they match.)
    #[must_use]
    pub fn for_unfinished_tasks(mut self) -> Self {
        self.unfinished_tasks = true;
        self
    }

    /// Steps waiting to be enqueued.
    #[must_use]
    pub fn pending(self) -> Self {
        self.in_state(StepState::Pending)
    }

    /// Steps a worker is running.
    #[must_use]
    pub fn in_progress(self) -> Self {
        self.in_state(StepState::InProgress)
    }

    /// Steps that failed (and may or may not be retried).
    #[must_use]
    pub fn failed(self) -> Self {
        self.in_state(StepState::Error)
    }

    /// Steps that finished: complete, resolved manually or cancelled.
    #[must_use]
    pub fn completed(self) -> Self {
        self.in_state(StepState::Complete)
            .in_state(StepState::ResolvedManually)
            .in_state(StepState::Cancelled)
    }

    /// Steps with a stored result.
    #[must_use]
    pub fn with_results(mut self) -> Self {
        self.with_results = true;
        self
    }

    /// Steps whose policy and last failure allow retries and that have attempts left.
    #[must_use]
    pub fn retryable(mut self) -> Self {
        self.retryable_only = true;
        self
    }

    /// Steps of tasks created at or after `since`.
    #[must_use]
    pub fn for_tasks_created_since(mut self, since: DateTime<Utc>) -> Self {
        self.tasks_created_since = Some(since);
        self
    }

    /// Steps that entered their current state before `before` (applied before the limit, so
    /// a limited query over stale steps is never filled by fresh ones).
    #[must_use]
    pub fn entered_state_before(mut self, before: DateTime<Utc>) -> Self {
        self.entered_state_before = Some(before);
        self
    }

    /// At most `limit` results.
    #[must_use]
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    fn push_filters<'a>(&'a self, query: &mut QueryBuilder<'a, Postgres>) {
        query.push(" WHERE true");
        if let Some(task_id) = self.task_id {
            query
                .push(" AND s.task_uuid = ")
                .push_bind(task_id.into_uuid());
        }
        if let Some(named_step_id) = self.named_step_id {
            query
                .push(" AND s.named_step_uuid = ")
                .push_bind(named_step_id.into_uuid());
        }
        if !self.states.is_empty() {
            query
                .push(" AND s.state = ANY(")
                .push_bind(self.states.clone())
                .push(")");
        }
        if self.unfinished_tasks {
            query
                .push(" AND s.task_uuid IN (SELECT t.task_uuid FROM tasker.tasks t WHERE t.state IN (")
                .push(unfinished_task_states())
                .push("))");
        }
        if self.with_results {
            query.push(" AND s.results IS NOT NULL");
        }
        if self.retryable_only {
            query.push(" AND s.retryable AND s.failure_retryable AND s.attempts < s.max_attempts");
        }
        if let Some(since) = self.tasks_created_since {
            query
                .push(" AND s.task_uuid IN (SELECT t.task_uuid FROM tasker.tasks t WHERE t.created_at >= ")
                .push_bind(since)
                .push(")");
        }
        if let Some(before) = self.entered_state_before {
            query.push(" AND s.state_entered_at < ").push_bind(before);
        }
    }

    /// The matching steps.
    pub async fn all<'c>(&self, executor: impl PgExecutor<'c>) -> Result<Vec<StepRecord>, DbError> {
        let mut query = QueryBuilder::new("SELECT ");
        query.push(STEP_COLUMNS);
        self.push_filters(&mut query);
        query.push(" ORDER BY s.task_uuid, s.workflow_step_uuid");
        if let Some(limit) = self.limit {
            query.push(" LIMIT ").push_bind(limit);
        }
        Ok(query
            .build_query_as::<StepRecord>()
            .fetch_all(executor)
            .await?)
    }

    /// The first matching step.
    pub async fn first<'c>(
        &self,
        executor: impl PgExecutor<'c>,
    ) -> Result<Option<StepRecord>, DbError> {
        Ok(self.clone().limit(1).all(executor).await?.pop())
    }

    /// How many steps match (ignoring the limit).
    pub async fn count<'c>(&self, executor: impl PgExecutor<'c>) -> Result<i64, DbError> {
        let mut query = QueryBuilder::new("SELECT count(*) ");
        query.push(&STEP_COLUMNS[STEP_COLUMNS.find("FROM").unwrap_or(0)..]);
        self.push_filters(&mut query);
        Ok(query
            .build_query_scalar::<i64>()
            .fetch_one(executor)
            .await?)
    }

    /// Whether any step matches.
    pub async fn exists<'c>(&self, executor: impl PgExecutor<'c>) -> Result<bool, DbError> {
        Ok(self.first(executor).await?.is_some())
    }
}
