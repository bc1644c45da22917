//! Task rows and their histories, and the composable task scope.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use tasker_models::ids::{CorrelationId, NamedTaskId, ProcessorId, TaskId, TaskTransitionId};
use tasker_state::TaskState;
use uuid::Uuid;

use crate::error::DbError;

/// A task row with its template's namespace, name and version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRecord {
    /// The task.
    #[sqlx(rename = "task_uuid", try_from = "Uuid")]
    pub task_id: TaskId,
    /// Its template version.
    #[sqlx(rename = "named_task_uuid", try_from = "Uuid")]
    pub named_task_id: NamedTaskId,
    /// The template's namespace.
    pub namespace_name: String,
    /// The template's name.
    pub task_name: String,
    /// The template's version.
    pub task_version: String,
    /// The current state.
    pub state: TaskState,
    /// When it entered that state.
    pub state_entered_at: DateTime<Utc>,
    /// When a task waiting for a retry may be claimed again.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When it completed (state `complete` only).
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Who asked for it.
    pub initiator: Option<String>,
    /// Which system asked for it.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Labels (a JSON array).
    pub tags: serde_json::Value,
    /// The caller's input, exactly as given.
    pub context: serde_json::Value,
    /// Its deduplication key.
    pub identity_hash: String,
    /// Its base priority.
    pub priority: i32,
    /// Correlates everything it causes.
    #[sqlx(try_from = "Uuid")]
    pub correlation_id: CorrelationId,
    /// The task that caused it, if any.
    pub parent_correlation_id: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// The request message it was created from, if it came as one.
    pub request_uuid: Option<Uuid>,
    /// Where its requester waits for replies, if it does.
    pub reply_to: Option<String>,
}

const TASK_COLUMNS: &str = "t.task_uuid, t.named_task_uuid, ns.name AS namespace_name, \
     nt.name AS task_name, nt.version AS task_version, t.state, t.state_entered_at, \
     t.next_retry_at, t.completed_at, t.requested_at, t.initiator, t.source_system, t.reason, \
     t.tags, t.context, t.identity_hash, t.priority, t.correlation_id, t.parent_correlation_id, \
     t.created_at, t.updated_at, t.request_uuid, t.reply_to \
     FROM tasker.tasks t \
     JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid \
     JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid";

/// A task by id.
pub async fn get<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
) -> Result<Option<TaskRecord>, DbError> {
    let sql = format!("SELECT {TASK_COLUMNS} WHERE t.task_uuid = $1");
    Ok(sqlx::query_as::<_, TaskRecord>(&sql)
        .bind(task_id.into_uuid())
        .fetch_optional(executor)
        .await?)
}

/// The tasks among `task_ids` that exist, in no particular order.
pub async fn get_many<'c>(
    executor: impl PgExecutor<'c>,
    task_ids: &[TaskId],
) -> Result<Vec<TaskRecord>, DbError> {
    let ids: Vec<Uuid> = task_ids.iter().map(|id| id.into_uuid()).collect();
    let sql = format!("SELECT {TASK_COLUMNS} WHERE t.task_uuid = ANY($1)");
    Ok(sqlx::query_as::<_, TaskRecord>(&sql)
        .bind(&ids)
        .fetch_all(executor)
        .await?)
}

/// The tasks created from the request messages `request_ids` (see
/// [`super::RequestOrigin`]), in no particular order.
pub async fn by_request_ids<'c>(
    executor: impl PgExecutor<'c>,
    request_ids: &[Uuid],
) -> Result<Vec<TaskRecord>, DbError> {
    let sql = format!("SELECT {TASK_COLUMNS} WHERE t.request_uuid = ANY($1)");
    Ok(sqlx::query_as::<_, TaskRecord>(&sql)
        .bind(request_ids)
        .fetch_all(executor)
        .await?)
}

/// One row of a task's history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskTransitionRow {
    /// The transition.
    #[sqlx(rename = "task_transition_uuid", try_from = "Uuid")]
    pub transition_id: TaskTransitionId,
    /// Its position in the history (1 is the initial `pending`).
    pub sort_key: i32,
    /// Whether it is the current one.
    pub most_recent: bool,
    /// The state left (`None` for the initial row).
    pub from_state: Option<TaskState>,
    /// The state entered.
    pub to_state: TaskState,
    /// The event as JSON (`None` for the initial row).
    pub event: Option<serde_json::Value>,
    /// The published lifecycle event.
    pub lifecycle_event: Option<String>,
    /// The process that wrote it.
    pub processor_uuid: Option<Uuid>,
    /// Extra context.
    pub metadata: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl TaskTransitionRow {
    /// The process that wrote it, typed.
    pub fn processor(&self) -> Option<ProcessorId> {
        self.processor_uuid.map(ProcessorId::from_uuid)
    }
}

/// A task's transitions in order (oldest first).
pub async fn history<'c>(
    executor: impl PgExecutor<'c>,
    task_id: TaskId,
) -> Result<Vec<TaskTransitionRow>, DbError> {
    Ok(sqlx::query_as::<_, TaskTransitionRow>(
        "SELECT tt.task_transition_uuid, tt.sort_key, \
                tt.sort_key = t.most_recent_sort_key AS most_recent, tt.from_state, tt.to_state, \
                tt.event, tt.lifecycle_event, tt.processor_uuid, tt.metadata, tt.created_at \
         FROM tasker.task_transitions tt \
         JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid \
         WHERE tt.task_uuid = $1 ORDER BY tt.sort_key",
    )
    .bind(task_id.into_uuid())
    .fetch_all(executor)
    .await?)
}

/// The order of a scope's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOrder {
    /// Newest first (the default).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// A composable, typed query over tasks, like the predecessor's named scopes. Every filter is
/// a bound parameter; the template tables are always joined, so filters compose in any order.
///
/// ```no_run
/// # async fn example(pool: &sqlx::PgPool) -> Result<(), tasker_db::error::DbError> {
/// use tasker_db::task::TaskScope;
/// use tasker_state::TaskState;
///
/// let failed_today = TaskScope::new()
///     .in_namespace("payments")
///     .in_state(TaskState::Error)
///     .created_since(chrono::Utc::now() - chrono::TimeDelta::days(1))
///     .limit(50)
///     .all(pool)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TaskScope {
    namespace: Option<String>,
    task_name: Option<String>,
    version: Option<String>,
    states: Vec<TaskState>,
    created_since: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    entered_state_before: Option<DateTime<Utc>>,
    correlation_id: Option<CorrelationId>,
    after: Option<TaskCursor>,
    order: TaskOrder,
    limit: Option<i64>,
}

/// A position in a scope's order: the `(created_at, task_uuid)` of the last task seen. Paging
/// by it ([`TaskScope::after`]) is stable under concurrent inserts: no task is returned twice,
/// and no task that existed when the first page was read is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCursor {
    /// The last task's creation time.
    pub created_at: DateTime<Utc>,
    /// The last task.
    pub task_id: TaskId,
}

impl TaskCursor {
    /// The cursor just past `task`.
    pub fn of(task: &TaskRecord) -> Self {
        Self {
            created_at: task.created_at,
            task_id: task.task_id,
        }
    }
}

impl TaskScope {
    /// All tasks, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tasks whose template is in this namespace.
    #[must_use]
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Tasks of the template with this name.
    #[must_use]
    pub fn with_task_name(mut self, name: impl Into<String>) -> Self {
        self.task_name = Some(name.into());
        self
    }

    /// Tasks of this template version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Tasks in this state; repeat to allow several states.
    #[must_use]
    pub fn in_state(mut self, state: TaskState) -> Self {
        self.states.push(state);
        self
    }

    /// Tasks not in a terminal state.
    #[must_use]
    pub fn active(mut self) -> Self {
        self.states.extend([
            TaskState::Pending,
            TaskState::Initializing,
            TaskState::EnqueuingSteps,
            TaskState::StepsInProcess,
            TaskState::EvaluatingResults,
            TaskState::WaitingForDependencies,
            TaskState::WaitingForRetry,
            TaskState::BlockedByFailures,
        ]);
        self
    }

    /// Tasks created at or after `since`.
    #[must_use]
    pub fn created_since(mut self, since: DateTime<Utc>) -> Self {
        self.created_since = Some(since);
        self
    }

    /// Tasks created before `before`.
    #[must_use]
    pub fn created_before(mut self, before: DateTime<Utc>) -> Self {
        self.created_before = Some(before);
        self
    }

    /// Tasks that entered their current state before `before` (with [`TaskScope::in_state`]:
    /// tasks stuck in a state; the state index serves it).
    #[must_use]
    pub fn entered_state_before(mut self, before: DateTime<Utc>) -> Self {
        self.entered_state_before = Some(before);
        self
    }

    /// Tasks with this correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: CorrelationId) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// Tasks after `cursor` in the scope's order (keyset pagination: the next page starts
    /// after the last task of this one).
    #[must_use]
    pub fn after(mut self, cursor: TaskCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The order of the results.
    #[must_use]
    pub fn order(mut self, order: TaskOrder) -> Self {
        self.order = order;
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
        if let Some(namespace) = &self.namespace {
            query.push(" AND ns.name = ").push_bind(namespace.as_str());
        }
        if let Some(name) = &self.task_name {
            query.push(" AND nt.name = ").push_bind(name.as_str());
        }
        if let Some(version) = &self.version {
            query.push(" AND nt.version = ").push_bind(version.as_str());
        }
        if !self.states.is_empty() {
            query
                .push(" AND t.state = ANY(")
                .push_bind(self.states.clone())
                .push(")");
        }
        if let Some(since) = self.created_since {
            query.push(" AND t.created_at >= ").push_bind(since);
        }
        if let Some(before) = self.created_before {
            query.push(" AND t.created_at < ").push_bind(before);
        }
        if let Some(before) = self.entered_state_before {
            query.push(" AND t.state_entered_at < ").push_bind(before);
        }
        if let Some(correlation_id) = self.correlation_id {
            query
                .push(" AND t.correlation_id = ")
                .push_bind(correlation_id.into_uuid());
        }
        if let Some(cursor) = self.after {
            // A row comparison: the created_at index narrows it, the id breaks ties (one
            // transaction's tasks share their creation time).
            query.push(match self.order {
                TaskOrder::NewestFirst => " AND (t.created_at, t.task_uuid) < (",
                TaskOrder::OldestFirst => " AND (t.created_at, t.task_uuid) > (",
            });
            query
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.task_id.into_uuid())
                .push(")");
        }
    }

    /// The matching tasks.
    pub async fn all<'c>(&self, executor: impl PgExecutor<'c>) -> Result<Vec<TaskRecord>, DbError> {
        let mut query = QueryBuilder::new("SELECT ");
        query.push(TASK_COLUMNS);
        self.push_filters(&mut query);
        query.push(match self.order {
            TaskOrder::NewestFirst => " ORDER BY t.created_at DESC, t.task_uuid DESC",
            TaskOrder::OldestFirst => " ORDER BY t.created_at, t.task_uuid",
        });
        if let Some(limit) = self.limit {
            query.push(" LIMIT ").push_bind(limit);
        }
        Ok(query
            .build_query_as::<TaskRecord>()
            .fetch_all(executor)
            .await?)
    }

    /// The first matching task in the scope's order.
    pub async fn first<'c>(
        &self,
        executor: impl PgExecutor<'c>,
    ) -> Result<Option<TaskRecord>, DbError> {
        Ok(self.clone().limit(1).all(executor).await?.pop())
    }

    /// How many tasks match (ignoring the limit).
    pub async fn count<'c>(&self, executor: impl PgExecutor<'c>) -> Result<i64, DbError> {
        let mut query = QueryBuilder::new("SELECT count(*) ");
        query.push(&TASK_COLUMNS[TASK_COLUMNS.find("FROM").unwrap_or(0)..]);
        self.push_filters(&mut query);
        Ok(query
            .build_query_scalar::<i64>()
            .fetch_one(executor)
            .await?)
    }

    /// The matching tasks, each with its steps (ordered by step id): two queries, however
    /// many tasks match.
    pub async fn all_with_steps(
        &self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<(TaskRecord, Vec<crate::step::StepRecord>)>, DbError> {
        let tasks = self.all(&mut *conn).await?;
        let ids: Vec<TaskId> = tasks.iter().map(|task| task.task_id).collect();
        let mut steps = crate::step::for_tasks(&mut *conn, &ids).await?;
        Ok(tasks
            .into_iter()
            .map(|task| {
                let own = steps.remove(&task.task_id).unwrap_or_default();
                (task, own)
            })
            .collect())
    }

    /// Whether any task matches.
    pub async fn exists<'c>(&self, executor: impl PgExecutor<'c>) -> Result<bool, DbError> {
        Ok(self.first(executor).await?.is_some())
    }
}
