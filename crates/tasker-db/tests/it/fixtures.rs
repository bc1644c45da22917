//! Test data: DAG shapes, template registration, task creation and direct state setup.
//!
//! `set_step` and `force_task_state` write rows directly (keeping every CHECK constraint
//! satisfied) so a test can put steps and tasks into exact situations, e.g. "attempted 1999 ms
//! ago"; the transition API has its own tests.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tasker_db::task::{self, NewEdge, NewStep, NewTask, TaskCreation};
use tasker_db::template::{
    self, LifecycleLimits, RegisteredTemplate, StepRegistration, TemplateRegistration,
};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::{CorrelationId, NamedTaskId, StepId, TaskId};
use tasker_state::{StepState, TaskState};

/// A DAG shape: step names and edges `(from, to)` by index (`to` depends on `from`).
#[derive(Debug, Clone)]
pub(crate) struct Dag {
    pub(crate) names: Vec<String>,
    pub(crate) edges: Vec<(usize, usize)>,
}

impl Dag {
    /// `step_1 -> step_2 -> ... -> step_n`.
    pub(crate) fn linear(n: usize) -> Dag {
        Dag {
            names: (1..=n).map(|i| format!("step_{i}")).collect(),
            edges: (1..n).map(|i| (i - 1, i)).collect(),
        }
    }

    /// `a -> (b, c) -> d`.
    pub(crate) fn diamond() -> Dag {
        Dag {
            names: ["a", "b", "c", "d"].map(String::from).to_vec(),
            edges: vec![(0, 1), (0, 2), (1, 3), (2, 3)],
        }
    }

    /// `a -> (b -> (d, e), c -> (f, g))`.
    pub(crate) fn tree() -> Dag {
        Dag {
            names: ["a", "b", "c", "d", "e", "f", "g"]
                .map(String::from)
                .to_vec(),
            edges: vec![(0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (2, 6)],
        }
    }

    /// `levels` layers of `width` steps; every step depends on two steps of the layer above.
    pub(crate) fn layered(levels: usize, width: usize) -> Dag {
        let mut names = Vec::new();
        let mut edges = Vec::new();
        for level in 0..levels {
            for i in 0..width {
                names.push(format!("l{level}_s{i}"));
                if level > 0 {
                    let above = (level - 1) * width;
                    let me = level * width + i;
                    edges.push((above + i, me));
                    edges.push((above + (i + 1) % width, me));
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        Dag { names, edges }
    }

    /// The indexes of a step's parents.
    pub(crate) fn parents(&self, step: usize) -> Vec<usize> {
        self.edges
            .iter()
            .filter(|(_, to)| *to == step)
            .map(|(from, _)| *from)
            .collect()
    }
}

/// Registers a template named `name` in namespace `it` whose steps follow `dag`.
pub(crate) async fn template(
    pool: &PgPool,
    name: &str,
    dag: &Dag,
) -> anyhow::Result<RegisteredTemplate> {
    let configuration = serde_json::json!({ "name": name });
    let definition = serde_json::json!({});
    let steps: Vec<StepRegistration<'_>> = dag
        .names
        .iter()
        .map(|step| StepRegistration {
            name: step,
            description: None,
            definition: &definition,
        })
        .collect();
    Ok(template::register(
        pool,
        &TemplateRegistration {
            namespace: "it",
            name,
            version: "1.0.0",
            description: None,
            identity_strategy: IdentityStrategy::Strict,
            configuration: &configuration,
            lifecycle: LifecycleLimits::default(),
            steps: &steps,
        },
    )
    .await?)
}

/// Creates a task of `template` (registered from `dag`); `identity` makes the hash unique.
pub(crate) async fn task(
    pool: &PgPool,
    template: &RegisteredTemplate,
    dag: &Dag,
    identity: &str,
) -> anyhow::Result<(TaskId, Vec<StepId>)> {
    task_with_priority(pool, template, dag, identity, 0).await
}

/// A task with no labels, priority 0 and a fresh correlation id.
pub(crate) fn new_task<'a>(
    named_task_id: NamedTaskId,
    identity_hash: &'a str,
    context: &'a serde_json::Value,
) -> NewTask<'a> {
    NewTask {
        named_task_id,
        identity_hash,
        context,
        tags: &[],
        priority: 0,
        initiator: None,
        source_system: None,
        reason: None,
        correlation_id: CorrelationId::new_v7(),
        parent_correlation_id: None,
        requested_at: None,
        processor_id: None,
        request_id: None,
        reply_to: None,
    }
}

/// The steps (retryable, 3 attempts, no input) and edges of `dag` on `template`.
pub(crate) fn graph_parts(
    template: &RegisteredTemplate,
    dag: &Dag,
) -> (Vec<NewStep<'static>>, Vec<NewEdge>) {
    let steps = dag
        .names
        .iter()
        .map(|name| NewStep {
            named_step_id: template
                .steps
                .iter()
                .find(|(n, _)| n == name)
                .expect("registered step")
                .1,
            retryable: true,
            max_attempts: 3,
            inputs: None,
        })
        .collect();
    let edges = dag
        .edges
        .iter()
        .map(|&(from, to)| NewEdge { from, to })
        .collect();
    (steps, edges)
}

/// [`task`] with a priority.
pub(crate) async fn task_with_priority(
    pool: &PgPool,
    template: &RegisteredTemplate,
    dag: &Dag,
    identity: &str,
    priority: i32,
) -> anyhow::Result<(TaskId, Vec<StepId>)> {
    let context = serde_json::json!({ "identity": identity });
    let (steps, edges) = graph_parts(template, dag);
    let task = NewTask {
        priority,
        initiator: Some("it"),
        ..new_task(template.named_task_id, identity, &context)
    };
    let mut conn = pool.acquire().await?;
    match task::create(&mut conn, &task, &steps, &edges).await? {
        TaskCreation::Created { task_id, step_ids } => Ok((task_id, step_ids)),
        TaskCreation::Existing { .. } => anyhow::bail!("identity {identity} already used"),
    }
}

/// How to set up a step with [`set_step`].
#[derive(Debug, Clone)]
pub(crate) struct StepSetup {
    pub(crate) state: StepState,
    pub(crate) attempts: i32,
    pub(crate) max_attempts: i32,
    pub(crate) retryable: bool,
    pub(crate) failure_retryable: bool,
    pub(crate) last_attempted_at: Option<DateTime<Utc>>,
    pub(crate) backoff_request_ms: Option<i64>,
    pub(crate) results: Option<serde_json::Value>,
}

impl StepSetup {
    /// A step in `state` with defaults: never attempted, 3 attempts allowed, retryable.
    pub(crate) fn new(state: StepState) -> StepSetup {
        StepSetup {
            state,
            attempts: 0,
            max_attempts: 3,
            retryable: true,
            failure_retryable: true,
            last_attempted_at: None,
            backoff_request_ms: None,
            results: None,
        }
    }

    /// A step that failed after `attempts` attempts, the last one at `at`.
    pub(crate) fn failed(attempts: i32, at: DateTime<Utc>) -> StepSetup {
        StepSetup {
            attempts,
            last_attempted_at: Some(at),
            ..StepSetup::new(StepState::Error)
        }
    }
}

/// Writes a step's state and retry columns directly (no transition row).
pub(crate) async fn set_step(pool: &PgPool, step: StepId, setup: StepSetup) -> anyhow::Result<()> {
    let last_attempted_at = match (setup.attempts, setup.last_attempted_at) {
        (0, at) => at,
        (_, Some(at)) => Some(at),
        (_, None) => Some(Utc::now()),
    };
    let updated = sqlx::query(
        "UPDATE tasker.workflow_steps SET \
             state = $2, state_entered_at = now(), attempts = $3, max_attempts = $4, \
             retryable = $5, failure_retryable = $6, last_attempted_at = $7, \
             backoff_request_ms = $8, results = $9, \
             completed_at = CASE WHEN $2 = 'complete' THEN now() END, \
             processed_at = CASE WHEN $2 IN ('complete', 'cancelled', 'resolved_manually') THEN now() END \
         WHERE workflow_step_uuid = $1",
    )
    .bind(step.into_uuid())
    .bind(setup.state)
    .bind(setup.attempts)
    .bind(setup.max_attempts)
    .bind(setup.retryable)
    .bind(setup.failure_retryable)
    .bind(last_attempted_at)
    .bind(setup.backoff_request_ms)
    .bind(setup.results)
    .execute(pool)
    .await?;
    anyhow::ensure!(updated.rows_affected() == 1, "no step {step}");
    Ok(())
}

/// Moves a task to `state` as of `entered_at`, appending a transition row the way a
/// transition does (next sort key, recorded as the task's most recent), without state machine
/// checks.
pub(crate) async fn force_task_state(
    pool: &PgPool,
    task: TaskId,
    state: TaskState,
    entered_at: DateTime<Utc>,
    next_retry_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let from: TaskState = sqlx::query_scalar(
        "UPDATE tasker.tasks t SET state = $2, state_entered_at = $3, next_retry_at = $4, \
             completed_at = CASE WHEN $2 = 'complete' THEN $3 END, \
             most_recent_sort_key = t.most_recent_sort_key + 1 \
         FROM (SELECT state FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE) old \
         WHERE t.task_uuid = $1 RETURNING old.state",
    )
    .bind(task.into_uuid())
    .bind(state)
    .bind(entered_at)
    .bind(next_retry_at)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO tasker.task_transitions \
             (task_uuid, sort_key, from_state, to_state, event, created_at) \
         SELECT $1, t.most_recent_sort_key, $2, $3, '{\"type\":\"test_setup\"}', $4 \
         FROM tasker.tasks t WHERE t.task_uuid = $1",
    )
    .bind(task.into_uuid())
    .bind(from)
    .bind(state)
    .bind(entered_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A task's history as (sort_key, most_recent, from, to).
pub(crate) async fn task_history(
    pool: &PgPool,
    task: TaskId,
) -> anyhow::Result<Vec<(i32, bool, Option<TaskState>, TaskState)>> {
    Ok(sqlx::query_as(
        "SELECT tt.sort_key, tt.sort_key = t.most_recent_sort_key, tt.from_state, tt.to_state \
         FROM tasker.task_transitions tt JOIN tasker.tasks t USING (task_uuid) \
         WHERE tt.task_uuid = $1 ORDER BY tt.sort_key",
    )
    .bind(task.into_uuid())
    .fetch_all(pool)
    .await?)
}

/// A step's history as (sort_key, most_recent, from, to).
pub(crate) async fn step_history(
    pool: &PgPool,
    step: StepId,
) -> anyhow::Result<Vec<(i32, bool, Option<StepState>, StepState)>> {
    Ok(sqlx::query_as(
        "SELECT st.sort_key, st.sort_key = s.most_recent_sort_key, st.from_state, st.to_state \
         FROM tasker.workflow_step_transitions st JOIN tasker.workflow_steps s USING (workflow_step_uuid) \
         WHERE st.workflow_step_uuid = $1 ORDER BY st.sort_key",
    )
    .bind(step.into_uuid())
    .fetch_all(pool)
    .await?)
}

/// Checks the history invariants: sort keys 1..n without gaps, one most_recent (the last),
/// each row starting where the previous ended, the last ending in `current`.
pub(crate) fn assert_chain<S: PartialEq + Copy + std::fmt::Debug>(
    history: &[(i32, bool, Option<S>, S)],
    current: S,
) {
    for (i, (sort_key, most_recent, from, _)) in history.iter().enumerate() {
        assert_eq!(
            *sort_key,
            i as i32 + 1,
            "sort keys without gaps: {history:?}"
        );
        assert_eq!(
            *most_recent,
            i + 1 == history.len(),
            "one most_recent: {history:?}"
        );
        let expected_from = if i == 0 { None } else { Some(history[i - 1].3) };
        assert_eq!(*from, expected_from, "chained: {history:?}");
    }
    assert_eq!(history.last().map(|row| row.3), Some(current));
}

/// Waits until a session of this database waits for a lock (true), or `waiter` finished
/// without ever waiting (false): the server's word, no sleeps.
pub(crate) async fn blocked_on_a_lock<T>(
    pool: &PgPool,
    waiter: &tokio::task::JoinHandle<T>,
) -> anyhow::Result<bool> {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await?;
        if waiting > 0 || waiter.is_finished() {
            return Ok(waiting > 0);
        }
        tokio::task::yield_now().await;
    }
}
