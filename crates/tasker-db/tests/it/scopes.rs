//! Repositories and scopes: rows by id, histories, composable filters, preloading, and
//! SQLSTATE classification of errors.

use chrono::{TimeDelta, Utc};
use tasker_db::error::DbError;
use tasker_db::step::{self, StepScope};
use tasker_db::task::{self, CreateTaskError, NewStep, TaskOrder, TaskScope};
use tasker_db::template::{self, LifecycleLimits, RegisterError, TemplateRegistration};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::{NamedTaskId, StepId, TaskId};
use tasker_state::{StepState, TaskState};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

#[tokio::test]
async fn task_and_step_scopes_compose() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let diamond = Dag::diamond();
        let linear = Dag::linear(3);
        let t_diamond = fixtures::template(&pool, "diamond", &diamond).await?;
        let t_linear = fixtures::template(&pool, "linear", &linear).await?;
        let (d1, d1_steps) = fixtures::task(&pool, &t_diamond, &diamond, "d1").await?;
        let (d2, _) = fixtures::task(&pool, &t_diamond, &diamond, "d2").await?;
        let (l1, l1_steps) = fixtures::task(&pool, &t_linear, &linear, "l1").await?;
        fixtures::force_task_state(&pool, d2, TaskState::Error, Utc::now(), None).await?;
        sqlx::query(
            "UPDATE tasker.tasks SET created_at = now() - interval '2 days' WHERE task_uuid = $1",
        )
        .bind(l1.into_uuid())
        .execute(&pool)
        .await?;

        let ids = |tasks: &[task::TaskRecord]| tasks.iter().map(|t| t.task_id).collect::<Vec<_>>();
        assert_eq!(
            ids(&TaskScope::new().all(&pool).await?),
            vec![d2, d1, l1],
            "newest first"
        );
        assert_eq!(
            ids(&TaskScope::new()
                .order(TaskOrder::OldestFirst)
                .all(&pool)
                .await?),
            vec![l1, d1, d2]
        );
        assert_eq!(
            ids(&TaskScope::new()
                .with_task_name("diamond")
                .in_state(TaskState::Pending)
                .all(&pool)
                .await?),
            vec![d1]
        );
        assert_eq!(
            ids(&TaskScope::new()
                .in_state(TaskState::Error)
                .in_state(TaskState::Pending)
                .with_task_name("linear")
                .all(&pool)
                .await?),
            vec![l1]
        );
        assert_eq!(
            ids(&TaskScope::new().active().all(&pool).await?),
            vec![d1, l1]
        );
        let yesterday = Utc::now() - TimeDelta::days(1);
        assert_eq!(
            ids(&TaskScope::new().created_since(yesterday).all(&pool).await?),
            vec![d2, d1]
        );
        assert_eq!(
            ids(&TaskScope::new()
                .created_before(yesterday)
                .all(&pool)
                .await?),
            vec![l1]
        );
        assert_eq!(
            TaskScope::new()
                .in_namespace("it")
                .with_version("1.0.0")
                .count(&pool)
                .await?,
            3
        );
        assert_eq!(
            TaskScope::new()
                .in_namespace("elsewhere")
                .count(&pool)
                .await?,
            0
        );
        assert!(
            !TaskScope::new()
                .in_namespace("elsewhere")
                .exists(&pool)
                .await?
        );
        assert_eq!(
            TaskScope::new().limit(1).count(&pool).await?,
            3,
            "count ignores the limit"
        );
        let first = TaskScope::new().first(&pool).await?.expect("a task");
        assert_eq!(
            (
                first.task_id,
                first.namespace_name.as_str(),
                first.task_name.as_str()
            ),
            (d2, "it", "diamond")
        );
        let by_correlation = TaskScope::new()
            .with_correlation_id(first.correlation_id)
            .all(&pool)
            .await?;
        assert_eq!(ids(&by_correlation), vec![d2]);

        // Preloading: two queries, steps grouped per task in id order.
        let mut conn = pool.acquire().await?;
        let loaded = TaskScope::new()
            .with_task_name("diamond")
            .all_with_steps(&mut conn)
            .await?;
        drop(conn);
        assert_eq!(loaded.len(), 2);
        assert!(loaded.iter().all(|(_, steps)| steps.len() == 4));
        let (_, d1_loaded) = loaded.iter().find(|(t, _)| t.task_id == d1).expect("d1");
        let mut sorted = d1_steps.clone();
        sorted.sort();
        assert_eq!(
            d1_loaded.iter().map(|s| s.step_id).collect::<Vec<_>>(),
            sorted
        );

        // Step scopes.
        fixtures::set_step(
            &pool,
            d1_steps[0],
            StepSetup {
                results: Some(serde_json::json!({"success": true})),
                ..StepSetup::new(StepState::Complete)
            },
        )
        .await?;
        fixtures::set_step(&pool, d1_steps[1], StepSetup::failed(1, Utc::now())).await?;
        fixtures::set_step(&pool, l1_steps[0], StepSetup::failed(3, Utc::now())).await?;
        let step_ids =
            |steps: &[step::StepRecord]| steps.iter().map(|s| s.step_id).collect::<Vec<StepId>>();
        assert_eq!(StepScope::new().for_task(d1).count(&pool).await?, 4);
        assert_eq!(
            step_ids(&StepScope::new().for_task(d1).completed().all(&pool).await?),
            vec![d1_steps[0]]
        );
        assert_eq!(StepScope::new().failed().count(&pool).await?, 2);
        assert_eq!(
            step_ids(&StepScope::new().failed().retryable().all(&pool).await?),
            vec![d1_steps[1]]
        );
        assert_eq!(
            StepScope::new().for_task(d1).pending().count(&pool).await?,
            2
        );
        assert_eq!(
            step_ids(&StepScope::new().with_results().all(&pool).await?),
            vec![d1_steps[0]]
        );
        assert_eq!(
            StepScope::new()
                .for_tasks_created_since(yesterday)
                .count(&pool)
                .await?,
            8
        );
        assert!(!StepScope::new().in_progress().exists(&pool).await?);
        // The state-age filter applies before the limit: one stale step among fresh ones is
        // found by a limit of 1 whatever the order.
        sqlx::query(
            "UPDATE tasker.workflow_steps SET state_entered_at = now() - interval '1 hour' \
             WHERE workflow_step_uuid = $1",
        )
        .bind(l1_steps[0].into_uuid())
        .execute(&pool)
        .await?;
        let stale_before = Utc::now() - TimeDelta::minutes(30);
        assert_eq!(
            step_ids(
                &StepScope::new()
                    .failed()
                    .entered_state_before(stale_before)
                    .limit(1)
                    .all(&pool)
                    .await?
            ),
            vec![l1_steps[0]]
        );
        assert_eq!(
            StepScope::new()
                .entered_state_before(Utc::now() - TimeDelta::hours(2))
                .count(&pool)
                .await?,
            0
        );
        let named = t_linear.steps[0].1;
        assert_eq!(
            step_ids(&StepScope::new().for_named_step(named).all(&pool).await?),
            vec![l1_steps[0]]
        );

        // Rows by id and histories.
        let record = task::get(&pool, d2).await?.expect("d2");
        assert_eq!(
            (record.state, record.task_version.as_str()),
            (TaskState::Error, "1.0.0")
        );
        assert!(task::get(&pool, TaskId::new_v7()).await?.is_none());
        let history = task::history(&pool, d2).await?;
        assert_eq!(
            history.iter().map(|h| h.to_state).collect::<Vec<_>>(),
            vec![TaskState::Pending, TaskState::Error]
        );
        assert!(history[1].most_recent && !history[0].most_recent);
        let step_record = step::get(&pool, d1_steps[3]).await?.expect("step");
        assert_eq!(
            (step_record.name.as_str(), step_record.state),
            ("d", StepState::Pending)
        );
        assert_eq!(step::history(&pool, d1_steps[3]).await?.len(), 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn database_errors_are_classified_by_sqlstate() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let configuration = serde_json::json!({});
        let registration = |namespace| TemplateRegistration {
            namespace,
            name: "t",
            version: "1.0.0",
            description: None,
            identity_strategy: IdentityStrategy::AlwaysUnique,
            configuration: &configuration,
            lifecycle: LifecycleLimits::default(),
            steps: &[],
        };
        // A namespace breaking the identifier rule: a check violation naming the constraint.
        let err = template::register(&pool, &registration("bad-name")).await.unwrap_err();
        match err {
            RegisterError::Database(db_error @ DbError::CheckViolation { .. }) => {
                assert_eq!(db_error.constraint(), Some("task_namespaces_name_format"));
            }
            other => anyhow::bail!("expected a check violation, got {other:?}"),
        }
        // A task for an unknown template: a foreign key violation.
        let context = serde_json::json!({});
        let mut conn = pool.acquire().await?;
        let new_task = |named_task_id| fixtures::new_task(named_task_id, "fk", &context);
        let err = task::create(&mut conn, &new_task(NamedTaskId::new_v7()), &[], &[]).await.unwrap_err();
        assert!(matches!(&err, CreateTaskError::Database(DbError::ForeignKeyViolation { constraint, .. }) if constraint == "tasks_named_task_uuid_fkey"), "{err:?}");
        // A step whose template step does not exist.
        let registered = template::register(&pool, &registration("ok")).await?;
        let err = task::create(
            &mut conn,
            &new_task(registered.named_task_id),
            &[NewStep { named_step_id: tasker_models::ids::NamedStepId::new_v7(), retryable: true, max_attempts: 3, inputs: None }],
            &[],
        )
        .await
        .unwrap_err();
        assert!(matches!(&err, CreateTaskError::Database(DbError::ForeignKeyViolation { .. })), "{err:?}");
        // A unique violation outside the idempotent path: a second namespace row by hand.
        let err = sqlx::query("INSERT INTO tasker.task_namespaces (name) VALUES ('ok')")
            .execute(&pool)
            .await
            .map_err(DbError::from)
            .unwrap_err();
        assert!(matches!(&err, DbError::UniqueViolation { constraint, .. } if constraint == "task_namespaces_name_key"));
        assert!(!err.is_transient());
        // A statement timeout is QueryCanceled.
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL statement_timeout = '10ms'").execute(&mut *tx).await?;
        let err = sqlx::query("SELECT pg_sleep(1)").execute(&mut *tx).await.map_err(DbError::from).unwrap_err();
        assert!(matches!(err, DbError::QueryCanceled(_)), "{err:?}");
        Ok(())
    })
    .await
}

/// Steps in flight are found through their unfinished tasks' state index: over a long history
/// of finished tasks the query does not scan the steps table (the steps' own state is not
/// indexed, so that step transitions stay HOT updates).
#[tokio::test]
async fn steps_of_unfinished_tasks_are_found_without_scanning_all_steps() -> anyhow::Result<()> {
    use tasker_db::task::NewTaskGraph;

    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "history", &dag).await?;
        let (steps, edges) = fixtures::graph_parts(&template, &dag);
        let context = serde_json::json!({});
        let hashes: Vec<String> = (0..2_000).map(|i| format!("h{i}")).collect();
        let batch: Vec<NewTaskGraph<'_>> = hashes
            .iter()
            .map(|hash| NewTaskGraph {
                task: fixtures::new_task(template.named_task_id, hash, &context),
                steps: &steps,
                edges: &edges,
            })
            .collect();
        let mut conn = pool.acquire().await?;
        let created = task::create_many(&mut conn, &batch).await?;
        drop(conn);
        let ids: Vec<uuid::Uuid> = created.iter().map(|c| c.as_ref().expect("created").task_id().into_uuid()).collect();
        let (active, finished) = ids.split_at(10);
        // History: finished tasks whose steps are complete. In flight: each active task's first
        // step enqueued a minute ago.
        sqlx::query(
            "WITH t AS (UPDATE tasker.tasks SET state = 'complete', completed_at = now() \
                        WHERE task_uuid = ANY($1) RETURNING task_uuid) \
             UPDATE tasker.workflow_steps SET state = 'complete', completed_at = now(), processed_at = now() \
             WHERE task_uuid IN (SELECT task_uuid FROM t)",
        )
        .bind(finished)
        .execute(&pool)
        .await?;
        sqlx::query(
            "WITH t AS (UPDATE tasker.tasks SET state = 'steps_in_process' \
                        WHERE task_uuid = ANY($1) RETURNING task_uuid) \
             UPDATE tasker.workflow_steps s SET state = 'enqueued', state_entered_at = now() - interval '1 minute' \
             WHERE s.task_uuid IN (SELECT task_uuid FROM t) \
               AND NOT EXISTS (SELECT 1 FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = s.workflow_step_uuid)",
        )
        .bind(active)
        .execute(&pool)
        .await?;
        sqlx::raw_sql("ANALYZE").execute(&pool).await?;

        let scope = StepScope::new()
            .for_unfinished_tasks()
            .in_state(StepState::Enqueued)
            .entered_state_before(Utc::now() - TimeDelta::seconds(30));
        // pg_stat_xact_user_tables also holds counts of this backend's earlier transactions
        // that are not flushed yet; none are flushed within a transaction, so the difference
        // across the query is the query's own.
        let scans = "SELECT seq_scan, seq_tup_read FROM pg_stat_xact_user_tables \
                     WHERE relid = 'tasker.workflow_steps'::regclass";
        let mut tx = pool.begin().await?;
        let before: (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *tx).await?;
        let found = scope.all(&mut *tx).await?;
        let after: (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *tx).await?;
        let (seq_scans, seq_read) = (after.0 - before.0, after.1 - before.1);
        tx.rollback().await?;
        let mut found_tasks: Vec<uuid::Uuid> = found.iter().map(|s| s.task_id.into_uuid()).collect();
        found_tasks.sort();
        let mut expected = active.to_vec();
        expected.sort();
        assert_eq!(found_tasks, expected, "one enqueued step per active task");
        assert_eq!((seq_scans, seq_read), (0, 0), "the steps table was not scanned");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn keyset_pages_neither_repeat_nor_skip_and_templates_list_in_order() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let linear = Dag::linear(2);
        let t_linear = fixtures::template(&pool, "linear", &linear).await?;
        let mut created = Vec::new();
        for index in 0..9 {
            let (task_id, _) =
                fixtures::task(&pool, &t_linear, &linear, &format!("k{index}")).await?;
            created.push(task_id);
        }
        // Three tasks share one creation time: the id breaks the tie.
        sqlx::query(
            "UPDATE tasker.tasks SET created_at = '2026-01-01T00:00:00Z' WHERE task_uuid = ANY($1)",
        )
        .bind(
            created[..3]
                .iter()
                .map(|id| id.into_uuid())
                .collect::<Vec<_>>(),
        )
        .execute(&pool)
        .await?;
        for order in [TaskOrder::NewestFirst, TaskOrder::OldestFirst] {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let mut scope = TaskScope::new().order(order).limit(2);
                if let Some(cursor) = cursor {
                    scope = scope.after(cursor);
                }
                let page = scope.all(&pool).await?;
                let Some(last) = page.last() else { break };
                cursor = Some(task::TaskCursor::of(last));
                seen.extend(page.iter().map(|task| task.task_id));
            }
            let all: Vec<TaskId> = TaskScope::new()
                .order(order)
                .all(&pool)
                .await?
                .iter()
                .map(|task| task.task_id)
                .collect();
            assert_eq!(
                seen, all,
                "{order:?}: the pages are the whole scope, in order"
            );
        }
        let listed = template::list(&pool, None, None, 10).await?;
        assert!(listed.iter().any(|record| record.name == "linear"));
        let after = listed.first().map(|r| {
            (
                r.namespace_name.as_str(),
                r.name.as_str(),
                r.version.as_str(),
            )
        });
        let rest = template::list(&pool, None, after, 10).await?;
        assert_eq!(
            rest.len() + 1,
            listed.len(),
            "the page after the first template"
        );
        Ok(())
    })
    .await
}
