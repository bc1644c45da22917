//! DAG helpers, health counts and stale-task detection into the DLQ.

use std::collections::HashMap;

use chrono::{SubsecRound as _, TimeDelta, Utc};
use tasker_db::stale::{self, Exceeded, StalenessThresholds};
use tasker_db::template::{self, LifecycleLimits, StepRegistration, TemplateRegistration};
use tasker_db::{dag, health};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::StepId;
use tasker_state::{StepState, TaskState};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

#[tokio::test]
async fn transitive_dependencies_and_levels() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag_shape = Dag::diamond();
        let template = fixtures::template(&pool, "diamond", &dag_shape).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag_shape, "dag").await?;
        fixtures::set_step(
            &pool,
            steps[0],
            StepSetup {
                results: Some(serde_json::json!({"a": 1})),
                ..StepSetup::new(StepState::Complete)
            },
        )
        .await?;

        let ancestors = dag::transitive_dependencies(&pool, steps[3]).await?;
        let found: Vec<(String, i32)> = ancestors
            .iter()
            .map(|a| (a.name.clone(), a.distance))
            .collect();
        assert_eq!(found.len(), 3, "each ancestor once: {found:?}");
        assert_eq!(found[2], ("a".to_owned(), 2));
        assert!(found[..2].iter().all(|(_, d)| *d == 1));
        assert_eq!(ancestors[2].results, Some(serde_json::json!({"a": 1})));
        assert_eq!(ancestors[2].current_state, StepState::Complete);
        assert!(
            dag::transitive_dependencies(&pool, steps[0])
                .await?
                .is_empty()
        );

        let levels: HashMap<StepId, i32> = dag::dependency_levels(&pool, task)
            .await?
            .into_iter()
            .collect();
        assert_eq!(
            [
                levels[&steps[0]],
                levels[&steps[1]],
                levels[&steps[2]],
                levels[&steps[3]]
            ],
            [0, 1, 1, 2]
        );

        // 1,000 steps in 50 layers: a step's level is its layer (the longest path).
        let big = Dag::layered(50, 20);
        let template = fixtures::template(&pool, "layered", &big).await?;
        let (task, steps) = fixtures::task(&pool, &template, &big, "big").await?;
        let levels = dag::dependency_levels(&pool, task).await?;
        assert_eq!(levels.len(), 1_000);
        let index: HashMap<StepId, usize> =
            steps.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        assert!(
            levels
                .iter()
                .all(|(step, level)| *level as usize == index[step] / 20)
        );
        let deepest = dag::transitive_dependencies(&pool, steps[999]).await?;
        assert_eq!(deepest.iter().map(|a| a.distance).max(), Some(49));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn health_counts_every_state() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let empty = health::counts(&pool).await?;
        assert_eq!((empty.tasks.len(), empty.steps.len()), (12, 8));
        assert_eq!((empty.total_tasks(), empty.total_steps()), (0, 0));

        let shape = Dag::diamond();
        let template = fixtures::template(&pool, "diamond", &shape).await?;
        let (_, steps) = fixtures::task(&pool, &template, &shape, "h1").await?;
        let (task2, _) = fixtures::task(&pool, &template, &shape, "h2").await?;
        fixtures::force_task_state(&pool, task2, TaskState::Initializing, Utc::now(), None).await?;
        fixtures::set_step(&pool, steps[0], StepSetup::new(StepState::Complete)).await?;
        fixtures::set_step(&pool, steps[1], StepSetup::failed(1, Utc::now())).await?;

        let counts = health::counts(&pool).await?;
        assert_eq!(counts.tasks_in(TaskState::Pending), 1);
        assert_eq!(counts.tasks_in(TaskState::Initializing), 1);
        assert_eq!(counts.total_tasks(), 2);
        assert_eq!(counts.steps_in(StepState::Pending), 6);
        assert_eq!(counts.steps_in(StepState::Complete), 1);
        assert_eq!(counts.steps_in(StepState::Error), 1);
        assert_eq!(counts.total_steps(), 8);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn stale_tasks_go_to_the_dlq_once() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let now = Utc::now().trunc_subsecs(3);
        let shape = Dag::linear(1);
        let template = fixtures::template(&pool, "stale", &shape).await?;

        let (waiting, _) = fixtures::task(&pool, &template, &shape, "wfd61").await?;
        fixtures::force_task_state(&pool, waiting, TaskState::WaitingForDependencies, now - TimeDelta::minutes(61), None).await?;
        let (fresh, _) = fixtures::task(&pool, &template, &shape, "wfd59").await?;
        fixtures::force_task_state(&pool, fresh, TaskState::WaitingForDependencies, now - TimeDelta::minutes(59), None).await?;
        let (stuck, _) = fixtures::task(&pool, &template, &shape, "init31").await?;
        fixtures::force_task_state(&pool, stuck, TaskState::Initializing, now - TimeDelta::minutes(31), None).await?;
        // Pending for days: waiting for an orchestrator is not stale.
        let (pending, _) = fixtures::task(&pool, &template, &shape, "pending").await?;
        sqlx::query("UPDATE tasker.tasks SET created_at = now() - interval '3 days', state_entered_at = now() - interval '3 days' WHERE task_uuid = $1")
            .bind(pending.into_uuid())
            .execute(&pool)
            .await?;
        // Old, in a fresh state: beyond the 24-hour lifetime.
        let (ancient, _) = fixtures::task(&pool, &template, &shape, "ancient").await?;
        fixtures::force_task_state(&pool, ancient, TaskState::StepsInProcess, now - TimeDelta::minutes(1), None).await?;
        sqlx::query("UPDATE tasker.tasks SET created_at = now() - interval '25 hours' WHERE task_uuid = $1")
            .bind(ancient.into_uuid())
            .execute(&pool)
            .await?;

        let dry = stale::detect(&pool, StalenessThresholds::DEFAULT, 100, true, Some(now)).await?;
        let found: HashMap<_, _> = dry.iter().map(|s| (s.task_id, s)).collect();
        assert_eq!(found.len(), 3, "{dry:?}");
        assert_eq!(found[&waiting].threshold_minutes, 60);
        assert_eq!(found[&waiting].exceeded, Exceeded::TimeInState);
        assert!((found[&waiting].time_in_state_minutes - 61.0).abs() < 0.1);
        assert_eq!((found[&stuck].current_state, found[&stuck].threshold_minutes), (TaskState::Initializing, 30));
        assert_eq!(found[&ancient].exceeded, Exceeded::MaxLifetime);
        assert!(dry.iter().all(|s| s.dlq_entry().is_none()), "a dry run writes nothing");
        assert_eq!(dry[0].task_id, waiting, "longest in state first");

        let real = stale::detect(&pool, StalenessThresholds::DEFAULT, 100, false, Some(now)).await?;
        assert_eq!(real.len(), 3);
        assert!(real.iter().all(|s| s.dlq_entry().is_some()));
        let (reason, original, snapshot_task, step_states, status): (String, TaskState, uuid::Uuid, serde_json::Value, String) = sqlx::query_as(
            "SELECT dlq_reason::text, original_state, (task_snapshot -> 'task' ->> 'task_uuid')::uuid, \
                    task_snapshot -> 'step_states', resolution_status::text \
             FROM tasker.tasks_dlq WHERE task_uuid = $1",
        )
        .bind(waiting.into_uuid())
        .fetch_one(&pool)
        .await?;
        assert_eq!((reason.as_str(), original, snapshot_task, status.as_str()), ("staleness_timeout", TaskState::WaitingForDependencies, waiting.into_uuid(), "pending"));
        assert_eq!(step_states, serde_json::json!({ "pending": 1 }));
        // The task itself is left in its state for an operator.
        let state: TaskState = sqlx::query_scalar("SELECT state FROM tasker.tasks WHERE task_uuid = $1")
            .bind(waiting.into_uuid())
            .fetch_one(&pool)
            .await?;
        assert_eq!(state, TaskState::WaitingForDependencies);

        // A second run skips tasks with an open DLQ entry.
        assert!(stale::detect(&pool, StalenessThresholds::DEFAULT, 100, false, Some(now)).await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn stale_tasks_are_announced_when_the_transaction_commits() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let now = Utc::now().trunc_subsecs(3);
        let shape = Dag::linear(1);
        let template = fixtures::template(&pool, "announced", &shape).await?;
        let (task, _) = fixtures::task(&pool, &template, &shape, "wfr31").await?;
        fixtures::force_task_state(
            &pool,
            task,
            TaskState::WaitingForRetry,
            now - TimeDelta::minutes(31),
            Some(now),
        )
        .await?;
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen("it_stale").await?;

        let mut tx = pool.begin().await?;
        let found =
            stale::detect(&mut *tx, StalenessThresholds::DEFAULT, 10, false, Some(now)).await?;
        assert_eq!(found.len(), 1, "{found:?}");
        stale::notify(&mut *tx, "it_stale", &found.iter().collect::<Vec<_>>()).await?;
        stale::notify(&mut *tx, "it_stale", &[]).await?;
        tx.commit().await?;

        let notification =
            tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await??;
        let payload: serde_json::Value = serde_json::from_str(notification.payload())?;
        let entry = found[0].dlq_entry().expect("an entry was opened");
        assert_eq!(
            payload,
            serde_json::json!({
                "task_id": task,
                "namespace": found[0].namespace_name,
                "name": "announced",
                "version": found[0].task_version,
                "state": "waiting_for_retry",
                "minutes_in_state": found[0].time_in_state_minutes,
                "threshold_minutes": 30,
                "exceeded": "time_in_state",
                "dlq_entry_id": entry,
            })
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn template_lifecycle_limits_override_the_defaults() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let now = Utc::now().trunc_subsecs(3);
        let configuration =
            serde_json::json!({ "lifecycle": { "max_waiting_for_retry_minutes": 2 } });
        let definition = serde_json::json!({});
        let registered = template::register(
            &pool,
            &TemplateRegistration {
                namespace: "it",
                name: "impatient",
                version: "1.0.0",
                description: None,
                identity_strategy: IdentityStrategy::Strict,
                configuration: &configuration,
                lifecycle: LifecycleLimits {
                    max_waiting_for_retry_minutes: Some(2),
                    ..LifecycleLimits::default()
                },
                steps: &[StepRegistration {
                    name: "only",
                    description: None,
                    definition: &definition,
                }],
            },
        )
        .await?;
        let shape = Dag {
            names: vec!["only".to_owned()],
            edges: vec![],
        };
        let (task, _) = fixtures::task(&pool, &registered, &shape, "lc").await?;
        fixtures::force_task_state(
            &pool,
            task,
            TaskState::WaitingForRetry,
            now - TimeDelta::minutes(3),
            Some(now),
        )
        .await?;
        let found = stale::detect(&pool, StalenessThresholds::DEFAULT, 10, true, Some(now)).await?;
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].task_id, found[0].threshold_minutes), (task, 2));
        assert_eq!(
            (
                found[0].namespace_name.as_str(),
                found[0].task_name.as_str()
            ),
            ("it", "impatient")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn dlq_entries_open_once_and_resolve_once() -> anyhow::Result<()> {
    use tasker_db::dlq::{self, DlqError, DlqReason, DlqResolutionStatus};

    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let shape = Dag::linear(2);
        let template = fixtures::template(&pool, "dlq", &shape).await?;
        let (task, _) = fixtures::task(&pool, &template, &shape, "dlq").await?;
        let mut conn = pool.acquire().await?;
        let metadata = serde_json::json!({ "ticket": "OPS-1" });
        let entry = dlq::open(&mut conn, task, DlqReason::ManualDlq, &metadata).await?;
        assert_eq!(
            (entry.task_id, entry.original_state, entry.resolution_status),
            (task, TaskState::Pending, DlqResolutionStatus::Pending)
        );
        assert_eq!(
            entry.task_snapshot["task"]["task_uuid"],
            serde_json::json!(task.to_string())
        );
        let again = dlq::open(&mut conn, task, DlqReason::ManualDlq, &metadata)
            .await
            .unwrap_err();
        assert!(matches!(again, DlqError::AlreadyOpen { .. }));
        let missing = dlq::open(
            &mut conn,
            tasker_models::ids::TaskId::new_v7(),
            DlqReason::ManualDlq,
            &metadata,
        )
        .await
        .unwrap_err();
        assert!(matches!(missing, DlqError::TaskNotFound { .. }));
        drop(conn);
        assert_eq!(dlq::pending(&pool, 10).await?.len(), 1);

        let err = dlq::resolve(
            &pool,
            entry.entry_id,
            DlqResolutionStatus::Pending,
            None,
            "ops",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DlqError::PendingIsNotAResolution));
        let resolved = dlq::resolve(
            &pool,
            entry.entry_id,
            DlqResolutionStatus::ManuallyResolved,
            Some("retried by hand"),
            "ops",
        )
        .await?;
        assert_eq!(
            resolved.resolution_status,
            DlqResolutionStatus::ManuallyResolved
        );
        assert!(resolved.resolution_timestamp.is_some());
        let twice = dlq::resolve(
            &pool,
            entry.entry_id,
            DlqResolutionStatus::Cancelled,
            None,
            "ops",
        )
        .await
        .unwrap_err();
        assert!(matches!(twice, DlqError::NotOpen { .. }));
        assert!(dlq::pending(&pool, 10).await?.is_empty());

        // History is kept; a new entry may be opened once the previous one is resolved.
        let mut conn = pool.acquire().await?;
        dlq::open(&mut conn, task, DlqReason::WorkerUnavailable, &metadata).await?;
        drop(conn);
        let history = dlq::for_task(&pool, task).await?;
        assert_eq!(
            history
                .iter()
                .map(|e| e.resolution_status)
                .collect::<Vec<_>>(),
            vec![
                DlqResolutionStatus::Pending,
                DlqResolutionStatus::ManuallyResolved
            ]
        );
        Ok(())
    })
    .await
}
