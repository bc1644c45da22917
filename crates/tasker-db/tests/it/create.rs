//! Task creation (set-based, idempotent under concurrency) and template registration.

use std::sync::Arc;

use tasker_db::task::{self, CreateTaskError, NewEdge, NewStep, NewTaskGraph, TaskCreation};
use tasker_db::template::{
    self, LifecycleLimits, RegisterError, StepRegistration, TemplateRegistration,
};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::{NamedStepId, NamedTaskId};
use tasker_state::{StepState, TaskState};
use tokio::sync::Barrier;

use crate::fixtures::{self, Dag};
use crate::harness;

#[tokio::test]
async fn creates_a_thousand_step_task_in_one_statement() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::layered(50, 20);
        let template = fixtures::template(&pool, "big", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "big").await?;
        assert_eq!(steps.len(), 1_000);
        let (n_steps, n_edges, n_step_transitions, n_task_transitions): (i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM tasker.workflow_steps WHERE task_uuid = $1), \
                    (SELECT count(*) FROM tasker.workflow_step_edges WHERE task_uuid = $1), \
                    (SELECT count(*) FROM tasker.workflow_step_transitions st \
                      JOIN tasker.workflow_steps s USING (workflow_step_uuid) \
                      WHERE st.task_uuid = $1 AND st.sort_key = s.most_recent_sort_key \
                        AND st.sort_key = 1 AND st.to_state = 'pending'), \
                    (SELECT count(*) FROM tasker.task_transitions tt \
                      JOIN tasker.tasks t USING (task_uuid) \
                      WHERE tt.task_uuid = $1 AND tt.sort_key = t.most_recent_sort_key \
                        AND tt.sort_key = 1 AND tt.to_state = 'pending')",
            )
            .bind(task.into_uuid())
            .fetch_one(&pool)
            .await?;
        assert_eq!(
            (n_steps, n_edges, n_step_transitions, n_task_transitions),
            (1_000, dag.edges.len() as i64, 1_000, 1)
        );
        let record = task::get(&pool, task).await?.expect("task");
        assert_eq!(record.state, TaskState::Pending);
        let first = tasker_db::step::get(&pool, steps[0]).await?.expect("step");
        assert_eq!(
            (first.state, first.attempts, first.max_attempts),
            (StepState::Pending, 0, 3)
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_identical_requests_create_one_task() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::diamond();
        let template = fixtures::template(&pool, "dup", &dag).await?;
        let template = Arc::new(template);
        for round in 0..10 {
            let barrier = Arc::new(Barrier::new(16));
            let mut handles = Vec::new();
            for _ in 0..16 {
                let pool = pool.clone();
                let barrier = barrier.clone();
                let template = template.clone();
                let dag = dag.clone();
                handles.push(tokio::spawn(async move {
                    let context = serde_json::json!({ "order": round });
                    let (steps, edges) = fixtures::graph_parts(&template, &dag);
                    let hash = format!("identity-{round}");
                    let mut conn = pool.acquire().await?;
                    barrier.wait().await;
                    let created = task::create(&mut conn, &fixtures::new_task(template.named_task_id, &hash, &context), &steps, &edges).await?;
                    anyhow::Ok(created)
                }));
            }
            let mut outcomes = Vec::new();
            for handle in handles {
                outcomes.push(handle.await??);
            }
            let created: Vec<&TaskCreation> = outcomes.iter().filter(|o| !o.is_existing()).collect();
            assert_eq!(created.len(), 1, "round {round}: exactly one creates");
            let id = created[0].task_id();
            assert!(outcomes.iter().all(|o| o.task_id() == id), "round {round}: all get the same task");
            assert!(outcomes.iter().filter(|o| o.is_existing()).all(|o| matches!(o, TaskCreation::Existing { state: TaskState::Pending, .. })));
        }
        let (tasks, steps): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM tasker.tasks), (SELECT count(*) FROM tasker.workflow_steps)")
            .fetch_one(&pool)
            .await?;
        assert_eq!((tasks, steps), (10, 40), "no partial rows from the losers");
        Ok(())
    })
    .await
}

/// One statement, one outcome per task in order: created, invalid (skipped), an existing
/// task, and two tasks of the batch sharing an identity (one created, one existing).
#[tokio::test]
async fn create_many_reports_each_task_in_order() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::diamond();
        let template = fixtures::template(&pool, "many", &dag).await?;
        let (steps, edges) = fixtures::graph_parts(&template, &dag);
        let cyclic = [NewEdge { from: 0, to: 1 }, NewEdge { from: 1, to: 0 }];
        let context = serde_json::json!({ "n": 1 });
        let mut conn = pool.acquire().await?;
        let earlier = task::create(&mut conn, &fixtures::new_task(template.named_task_id, "earlier", &context), &steps, &edges).await?;

        let graph = |hash: &'static str, edges: &'static [NewEdge]| NewTaskGraph {
            task: fixtures::new_task(template.named_task_id, hash, &context),
            steps: &steps,
            edges,
        };
        let edges: &'static [NewEdge] = Vec::leak(edges.clone());
        let cyclic: &'static [NewEdge] = Vec::leak(cyclic.to_vec());
        let batch = [
            graph("first", edges),
            graph("cyclic", cyclic),
            graph("earlier", edges),
            graph("twin", edges),
            graph("twin", edges),
        ];
        let outcomes = task::create_many(&mut conn, &batch).await?;
        assert_eq!(outcomes.len(), 5);
        let first = match &outcomes[0] {
            Ok(TaskCreation::Created { task_id, step_ids }) => {
                assert_eq!(step_ids.len(), 4);
                *task_id
            }
            other => panic!("first: {other:?}"),
        };
        assert!(
            matches!(&outcomes[1], Err(CreateTaskError::Cycle { cycle }) if cycle.nodes() == [0, 1]),
            "{:?}",
            outcomes[1]
        );
        assert!(
            matches!(&outcomes[2], Ok(TaskCreation::Existing { task_id, state: TaskState::Pending }) if *task_id == earlier.task_id()),
            "{:?}", outcomes[2]
        );
        // Of two tasks sharing an identity, the first is created.
        let twins: Vec<&TaskCreation> = outcomes[3..].iter().map(|o| o.as_ref().expect("twin")).collect();
        assert!(matches!(twins[0], TaskCreation::Created { .. }), "{twins:?}");
        assert!(matches!(twins[1], TaskCreation::Existing { state: TaskState::Pending, .. }), "{twins:?}");
        assert_eq!(twins[0].task_id(), twins[1].task_id());

        // Each created task is whole: 4 steps, 4 edges, initial transitions; nothing else.
        let counts: Vec<(uuid::Uuid, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT t.task_uuid, \
                    (SELECT count(*) FROM tasker.workflow_steps s WHERE s.task_uuid = t.task_uuid), \
                    (SELECT count(*) FROM tasker.workflow_step_edges e WHERE e.task_uuid = t.task_uuid), \
                    (SELECT count(*) FROM tasker.workflow_step_transitions x WHERE x.task_uuid = t.task_uuid), \
                    (SELECT count(*) FROM tasker.task_transitions x WHERE x.task_uuid = t.task_uuid) \
             FROM tasker.tasks t ORDER BY t.task_uuid",
        )
        .fetch_all(&mut *conn)
        .await?;
        assert_eq!(counts.len(), 3, "earlier, first and one twin");
        assert!(counts.iter().all(|c| (c.1, c.2, c.3, c.4) == (4, 4, 4, 1)), "{counts:?}");
        assert!(counts.iter().any(|c| c.0 == first.into_uuid()));
        Ok(())
    })
    .await
}

/// Two batches sharing identities, in opposite orders, race 20 times: no deadlock, and each
/// identity is created exactly once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_create_each_identity_once() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = Arc::new(fixtures::template(&pool, "race", &dag).await?);
        for round in 0..20 {
            let hashes: Vec<String> = (0..8).map(|i| format!("r{round}-{i}")).collect();
            let barrier = Arc::new(Barrier::new(2));
            let mut handles = Vec::new();
            for reversed in [false, true] {
                let (pool, barrier, template, dag) = (pool.clone(), barrier.clone(), template.clone(), dag.clone());
                let mut order = hashes.clone();
                if reversed {
                    order.reverse();
                }
                handles.push(tokio::spawn(async move {
                    let (steps, edges) = fixtures::graph_parts(&template, &dag);
                    let context = serde_json::json!({});
                    let batch: Vec<NewTaskGraph<'_>> = order
                        .iter()
                        .map(|hash| NewTaskGraph { task: fixtures::new_task(template.named_task_id, hash, &context), steps: &steps, edges: &edges })
                        .collect();
                    let mut tx = pool.begin().await?;
                    barrier.wait().await;
                    let outcomes = task::create_many(&mut tx, &batch).await?;
                    tx.commit().await?;
                    let created: Vec<(String, uuid::Uuid, bool)> = order
                        .iter()
                        .zip(outcomes)
                        .map(|(hash, outcome)| {
                            let outcome = outcome.expect("valid");
                            (hash.clone(), outcome.task_id().into_uuid(), outcome.is_existing())
                        })
                        .collect();
                    anyhow::Ok(created)
                }));
            }
            let mut by_hash: std::collections::HashMap<String, Vec<(uuid::Uuid, bool)>> = Default::default();
            for handle in handles {
                for (hash, id, existing) in handle.await?? {
                    by_hash.entry(hash).or_default().push((id, existing));
                }
            }
            for (hash, seen) in &by_hash {
                assert_eq!(seen.iter().filter(|(_, existing)| !existing).count(), 1, "round {round}, {hash}: {seen:?}");
                assert_eq!(seen[0].0, seen[1].0, "round {round}, {hash}: one task");
            }
        }
        let (tasks, steps): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM tasker.tasks), (SELECT count(*) FROM tasker.workflow_steps)")
            .fetch_one(&pool)
            .await?;
        assert_eq!((tasks, steps), (160, 320));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn rejects_malformed_graphs_before_writing() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let context = serde_json::json!({});
        let named = NamedTaskId::new_v7();
        let step = |n: u128| NewStep {
            named_step_id: NamedStepId::from_uuid(uuid::Uuid::from_u128(n)),
            retryable: true,
            max_attempts: 3,
            inputs: None,
        };
        let three = [step(1), step(2), step(3)];
        let edge = |from, to| NewEdge { from, to };
        let mut conn = pool.acquire().await?;
        let mut messages = Vec::new();
        let cases: Vec<(&str, Vec<NewStep<'_>>, Vec<NewEdge>)> = vec![
            (
                "cycle",
                three.to_vec(),
                vec![edge(0, 1), edge(1, 2), edge(2, 1)],
            ),
            ("self edge", three.to_vec(), vec![edge(1, 1)]),
            ("out of range", three.to_vec(), vec![edge(0, 3)]),
            (
                "duplicate edge",
                three.to_vec(),
                vec![edge(0, 1), edge(0, 1)],
            ),
            ("duplicate step", vec![step(1), step(1)], vec![]),
        ];
        for (name, steps, edges) in cases {
            let err = task::create(
                &mut conn,
                &fixtures::new_task(named, name, &context),
                &steps,
                &edges,
            )
            .await
            .unwrap_err();
            assert!(
                !matches!(err, CreateTaskError::Database(_)),
                "{name}: rejected before the database"
            );
            messages.push(format!("{name}: {err}"));
        }
        let long = "h".repeat(129);
        let negative = [NewStep {
            max_attempts: -1,
            ..step(1)
        }];
        let more: [(&str, &str, &[NewStep<'_>]); 3] = [
            ("empty identity", "", &[]),
            ("long identity", &long, &[]),
            ("negative attempts", "negative", &negative),
        ];
        for (name, hash, steps) in more {
            let err = task::create(
                &mut conn,
                &fixtures::new_task(named, hash, &context),
                steps,
                &[],
            )
            .await
            .unwrap_err();
            assert!(
                !matches!(err, CreateTaskError::Database(_)),
                "{name}: rejected before the database"
            );
            messages.push(format!("{name}: {err}"));
        }
        let array = serde_json::json!([1, 2]);
        let err = task::create(
            &mut conn,
            &fixtures::new_task(named, "array", &array),
            &[],
            &[],
        )
        .await
        .unwrap_err();
        messages.push(format!("array context: {err}"));
        insta::assert_snapshot!(
            "create_task_errors",
            messages
                .join("\n")
                .replace("00000000-0000-0000-0000-000000000001", "<named step 1>")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn template_registration_upserts_and_keeps_ids() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let v1 = serde_json::json!({ "rev": 1 });
        let v2 = serde_json::json!({ "rev": 2 });
        let definition = serde_json::json!({ "handler": { "callable": "X" } });
        let steps = [
            StepRegistration { name: "fetch", description: None, definition: &definition },
            StepRegistration { name: "store", description: Some("writes"), definition: &definition },
        ];
        let registration = |configuration, steps| TemplateRegistration {
            namespace: "payments",
            name: "refund",
            version: "2.1.0",
            description: Some("refunds"),
            identity_strategy: IdentityStrategy::CallerProvided,
            configuration,
            lifecycle: LifecycleLimits { max_duration_minutes: Some(90), ..LifecycleLimits::default() },
            steps,
        };
        let first = template::register(&pool, &registration(&v1, &steps)).await?;
        assert!(first.created);
        assert_eq!(first.steps.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["fetch", "store"]);
        let again = template::register(&pool, &registration(&v2, &steps[1..])).await?;
        assert!(!again.created);
        assert_eq!((again.namespace_id, again.named_task_id), (first.namespace_id, first.named_task_id));
        assert_eq!(again.steps, vec![first.steps[1].clone()], "same step id");
        let (configuration, strategy, duration, step_count): (serde_json::Value, String, Option<i32>, i64) = sqlx::query_as(
            "SELECT configuration, identity_strategy::text, max_duration_minutes, \
                    (SELECT count(*) FROM tasker.named_steps s WHERE s.named_task_uuid = nt.named_task_uuid) \
             FROM tasker.named_tasks nt WHERE named_task_uuid = $1",
        )
        .bind(first.named_task_id.into_uuid())
        .fetch_one(&pool)
        .await?;
        assert_eq!((configuration, strategy, duration, step_count), (v2.clone(), "caller_provided".to_owned(), Some(90), 2));

        let twice = [steps[0].clone(), steps[0].clone()];
        let err = template::register(&pool, &registration(&v2, &twice)).await.unwrap_err();
        assert!(matches!(err, RegisterError::DuplicateStep { .. }));
        insta::assert_snapshot!("duplicate_template_step", err.to_string());
        Ok(())
    })
    .await
}

const ORDER_TEMPLATE: &str = r#"
name: process_order
namespace_name: orders
version: 1.2.0
description: Validates, charges and ships an order
steps:
  - name: validate
    handler:
      callable: Orders::Validate
      initialization:
        strict: true
    retry:
      retryable: false
      max_attempts: 1
  - name: charge
    handler:
      callable: Orders::Charge
    dependencies: [validate]
    retry:
      retryable: true
      max_attempts: 5
  - name: reserve
    handler:
      callable: Orders::Reserve
    dependencies: [validate]
  - name: ship
    handler:
      callable: Orders::Ship
    dependencies: [charge, reserve]
lifecycle:
  max_waiting_for_retry_minutes: 15
"#;

/// A task the database rejects (an unknown template) fails the whole batch; in a
/// transaction nothing of it remains.
#[tokio::test]
async fn a_task_the_database_rejects_fails_the_whole_batch() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "reject", &dag).await?;
        let (steps, edges) = fixtures::graph_parts(&template, &dag);
        let context = serde_json::json!({});
        let batch = [
            NewTaskGraph {
                task: fixtures::new_task(template.named_task_id, "good", &context),
                steps: &steps,
                edges: &edges,
            },
            NewTaskGraph {
                task: fixtures::new_task(NamedTaskId::new_v7(), "unknown template", &context),
                steps: &steps,
                edges: &edges,
            },
        ];
        let mut tx = pool.begin().await?;
        let err = task::create_many(&mut tx, &batch).await.unwrap_err();
        assert!(
            matches!(err, tasker_db::error::DbError::ForeignKeyViolation { .. }),
            "{err:?}"
        );
        tx.rollback().await?;
        let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.tasks")
            .fetch_one(&pool)
            .await?;
        assert_eq!(tasks, 0);
        Ok(())
    })
    .await
}

/// Requests in one batch: each gets its own outcome, in order; one that cannot become a task
/// (here a template step missing from the registration) does not stop the others.
#[tokio::test]
async fn create_many_from_requests_reports_each_request() -> anyhow::Result<()> {
    use tasker_models::request::{JsonLimits, TaskRequest};
    use tasker_models::template::{Strictness, ValidatedTemplate};

    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let validated = ValidatedTemplate::from_yaml_str(ORDER_TEMPLATE, Strictness::Strict)?.template;
        let registered = template::register_validated(&pool, &validated).await?;
        let mut incomplete = registered.clone();
        incomplete.steps.retain(|(name, _)| name != "charge");
        let request = |order: i64| {
            TaskRequest::new("orders", "process_order", "1.2.0", serde_json::json!({ "order_id": order }))
                .validate(&JsonLimits::default())
        };
        let (one, two, one_again, three) = (request(1)?, request(2)?, request(1)?, request(3)?);
        let item = |registered, request| task::RequestToCreate { template: &validated, registered, request, origin: None };
        let batch = [
            item(&registered, &one),
            item(&incomplete, &two),
            item(&registered, &one_again),
            item(&registered, &three),
        ];
        let mut tx = pool.begin().await?;
        let outcomes = task::create_many_from_requests(&mut tx, &batch, None).await?;
        tx.commit().await?;
        assert_eq!(outcomes.len(), 4);
        let first = match &outcomes[0] {
            Ok(TaskCreation::Created { task_id, step_ids }) if step_ids.len() == 4 => *task_id,
            other => panic!("one: {other:?}"),
        };
        assert!(
            matches!(&outcomes[1], Err(CreateTaskError::UnregisteredStep { step, .. }) if step == "charge"),
            "{:?}", outcomes[1]
        );
        assert!(
            matches!(&outcomes[2], Ok(TaskCreation::Existing { task_id, .. }) if *task_id == first),
            "the same context is the same task: {:?}", outcomes[2]
        );
        assert!(matches!(&outcomes[3], Ok(TaskCreation::Created { .. })), "{:?}", outcomes[3]);
        let record = task::get(&pool, first).await?.expect("task");
        assert_eq!(record.context, serde_json::json!({ "order_id": 1 }));
        assert_eq!(record.correlation_id, one.correlation_id);
        let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.tasks").fetch_one(&pool).await?;
        assert_eq!(tasks, 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn creates_tasks_from_validated_templates_and_requests() -> anyhow::Result<()> {
    use tasker_models::request::{JsonLimits, TaskRequest};
    use tasker_models::template::{Strictness, ValidatedTemplate};

    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let loaded = ValidatedTemplate::from_yaml_str(ORDER_TEMPLATE, Strictness::Strict)?;
        let validated = loaded.template;
        let registered = template::register_validated(&pool, &validated).await?;
        assert_eq!(registered.steps.len(), 4);
        let lifecycle: Option<i32> = sqlx::query_scalar(
            "SELECT max_waiting_for_retry_minutes FROM tasker.named_tasks WHERE named_task_uuid = $1",
        )
        .bind(registered.named_task_id.into_uuid())
        .fetch_one(&pool)
        .await?;
        assert_eq!(lifecycle, Some(15));

        let request = TaskRequest::new("orders", "process_order", "1.2.0", serde_json::json!({ "order_id": 7 }))
            .validate(&JsonLimits::default())?;
        let mut conn = pool.acquire().await?;
        let created = task::create_from_request(&mut conn, &validated, &registered, &request, None).await?;
        let TaskCreation::Created { task_id, step_ids } = created else {
            anyhow::bail!("expected a new task");
        };
        assert_eq!(step_ids.len(), 4);
        // The same context is the same task under the strict strategy.
        let again = task::create_from_request(&mut conn, &validated, &registered, &request, None).await?;
        assert_eq!(again, TaskCreation::Existing { task_id, state: TaskState::Pending });
        drop(conn);

        let record = task::get(&pool, task_id).await?.expect("task");
        assert_eq!((record.namespace_name.as_str(), record.task_name.as_str()), ("orders", "process_order"));
        assert_eq!(record.context, serde_json::json!({ "order_id": 7 }));
        assert_eq!(record.correlation_id, request.correlation_id);
        let steps = tasker_db::step::StepScope::new().for_task(task_id).all(&pool).await?;
        let by_name: std::collections::HashMap<&str, &tasker_db::step::StepRecord> =
            steps.iter().map(|s| (s.name.as_str(), s)).collect();
        assert_eq!((by_name["validate"].retryable, by_name["validate"].max_attempts), (false, 1));
        assert_eq!(by_name["charge"].max_attempts, 5);
        assert_eq!(by_name["validate"].inputs, Some(serde_json::json!({ "strict": true })));
        let readiness = tasker_db::readiness::for_task(&pool, task_id, tasker_db::readiness::BackoffParams::DEFAULT, None).await?;
        let ready: Vec<&str> = readiness.iter().filter(|r| r.ready_for_execution).map(|r| r.name.as_str()).collect();
        assert_eq!(ready, vec!["validate"]);
        let ship = readiness.iter().find(|r| r.name == "ship").expect("ship");
        assert_eq!(ship.total_parents, 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn stored_templates_are_read_back_and_identities_lock_per_transaction() -> anyhow::Result<()>
{
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let definition = serde_json::json!({});
        let steps = [StepRegistration {
            name: "only",
            description: None,
            definition: &definition,
        }];
        for (version, rev) in [("1.0.0", 1), ("1.10.0", 2), ("1.2.0", 3)] {
            let configuration = serde_json::json!({ "rev": rev });
            template::register(
                &pool,
                &TemplateRegistration {
                    namespace: "reports",
                    name: "daily",
                    version,
                    description: Some("daily report"),
                    identity_strategy: IdentityStrategy::Strict,
                    configuration: &configuration,
                    lifecycle: LifecycleLimits::default(),
                    steps: &steps,
                },
            )
            .await?;
        }
        let record = template::get(&pool, "reports", "daily", "1.10.0")
            .await?
            .expect("registered");
        assert_eq!(
            (
                record.namespace_name.as_str(),
                record.name.as_str(),
                record.version.as_str()
            ),
            ("reports", "daily", "1.10.0")
        );
        assert_eq!(record.configuration, serde_json::json!({ "rev": 2 }));
        assert_eq!(record.description.as_deref(), Some("daily report"));
        assert!(
            template::get(&pool, "reports", "daily", "9.9.9")
                .await?
                .is_none()
        );
        assert_eq!(
            template::versions(&pool, "reports", "daily").await?,
            ["1.0.0", "1.10.0", "1.2.0"]
        );
        assert!(
            template::versions(&pool, "reports", "weekly")
                .await?
                .is_empty()
        );

        // The lock is transaction-scoped and keyed by the identity.
        let key = "tasker.named_task:reports/daily:1.0.0";
        let try_lock = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))";
        let mut holder = pool.begin().await?;
        template::lock_identity(&mut holder, "reports", "daily", "1.0.0").await?;
        let mut other = pool.begin().await?;
        let free: bool = sqlx::query_scalar(try_lock)
            .bind(key)
            .fetch_one(&mut *other)
            .await?;
        assert!(!free, "held by the first transaction");
        let other_version: bool = sqlx::query_scalar(try_lock)
            .bind("tasker.named_task:reports/daily:1.2.0")
            .fetch_one(&mut *other)
            .await?;
        assert!(other_version, "another identity is not blocked");
        other.rollback().await?;
        holder.commit().await?;
        let mut after = pool.begin().await?;
        let free: bool = sqlx::query_scalar(try_lock)
            .bind(key)
            .fetch_one(&mut *after)
            .await?;
        assert!(free, "released at commit");
        after.rollback().await?;
        Ok(())
    })
    .await
}
