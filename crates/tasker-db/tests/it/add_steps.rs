//! Steps added after task creation: decision branches, deferred convergence and batch workers,
//! with their edges and initial transitions, idempotent under concurrent callers.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tasker_db::health;
use tasker_db::readiness::{self, BackoffParams};
use tasker_db::step::{self, AddStepsError, Dependency, NewTaskStep, StepToAdd};
use tasker_db::task::{self, TaskCreation};
use tasker_db::template;
use tasker_models::ids::TaskId;
use tasker_models::request::{JsonLimits, TaskRequest};
use tasker_models::template::{Strictness, ValidatedTemplate};
use tasker_state::StepState;
use tokio::sync::Barrier;

use crate::harness;

const DYNAMIC_TEMPLATE: &str = r#"
name: dynamic
namespace_name: flows
version: 1.0.0
steps:
  - name: start
    handler: { callable: Flow::Start }
  - name: decide
    type: decision
    handler: { callable: Flow::Decide }
    dependencies: [start]
  - name: branch_a
    handler: { callable: Flow::A }
    dependencies: [decide]
    retry: { retryable: true, max_attempts: 7 }
  - name: branch_b
    handler: { callable: Flow::B }
    dependencies: [decide]
  - name: merge
    type: deferred_convergence
    handler: { callable: Flow::Merge }
    dependencies: [branch_a, branch_b]
  - name: split
    type: batchable
    handler: { callable: Flow::Split }
    dependencies: [start]
    batch_config: { worker_template: work, batch_size: 100 }
  - name: work
    type: batch_worker
    handler: { callable: Flow::Work, initialization: { mode: fast } }
    dependencies: [split]
  - name: collect
    type: deferred_convergence
    handler: { callable: Flow::Collect }
    dependencies: [work]
"#;

/// Registers the template and creates a task of it (its initial steps: start, decide, split).
async fn dynamic_task(
    pool: &PgPool,
    template: &ValidatedTemplate,
    key: &str,
) -> anyhow::Result<TaskId> {
    let registered = template::register_validated(pool, template).await?;
    let request = TaskRequest::new(
        "flows",
        "dynamic",
        "1.0.0",
        serde_json::json!({ "key": key }),
    )
    .validate(&JsonLimits::default())?;
    let mut conn = pool.acquire().await?;
    match task::create_from_request(&mut conn, template, &registered, &request, None).await? {
        TaskCreation::Created { task_id, step_ids } => {
            anyhow::ensure!(step_ids.len() == 3, "initial steps: {step_ids:?}");
            Ok(task_id)
        }
        TaskCreation::Existing { .. } => anyhow::bail!("task {key} exists"),
    }
}

fn dynamic_template() -> anyhow::Result<ValidatedTemplate> {
    Ok(ValidatedTemplate::from_yaml_str(DYNAMIC_TEMPLATE, Strictness::Strict)?.template)
}

/// The task's steps, edges (by `name#instance`) and step transitions.
async fn shape(
    pool: &PgPool,
    task: TaskId,
) -> anyhow::Result<(Vec<String>, Vec<(String, String)>, i64)> {
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT ns.name || '#' || s.instance FROM tasker.workflow_steps s \
         JOIN tasker.named_steps ns USING (named_step_uuid) \
         WHERE s.task_uuid = $1 ORDER BY 1",
    )
    .bind(task.into_uuid())
    .fetch_all(pool)
    .await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT fn.name || '#' || f.instance, tn.name || '#' || t.instance \
         FROM tasker.workflow_step_edges e \
         JOIN tasker.workflow_steps f ON f.workflow_step_uuid = e.from_step_uuid \
         JOIN tasker.named_steps fn ON fn.named_step_uuid = f.named_step_uuid \
         JOIN tasker.workflow_steps t ON t.workflow_step_uuid = e.to_step_uuid \
         JOIN tasker.named_steps tn ON tn.named_step_uuid = t.named_step_uuid \
         WHERE e.task_uuid = $1 ORDER BY 1, 2",
    )
    .bind(task.into_uuid())
    .fetch_all(pool)
    .await?;
    let transitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_step_transitions WHERE task_uuid = $1",
    )
    .bind(task.into_uuid())
    .fetch_one(pool)
    .await?;
    Ok((steps, edges, transitions))
}

fn pair(from: &str, to: &str) -> (String, String) {
    (from.to_owned(), to.to_owned())
}

#[tokio::test]
async fn decision_branches_and_batch_workers_get_their_edges_once() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let template = dynamic_template()?;
        let task = dynamic_task(&pool, &template, "one").await?;
        let mut conn = pool.acquire().await?;

        // The decision chose branch_a; the convergence step depends on what was created.
        let branch = [
            StepToAdd {
                name: "branch_a",
                instance: 0,
                inputs: None,
            },
            StepToAdd {
                name: "merge",
                instance: 0,
                inputs: None,
            },
        ];
        let added = step::add_from_template(&mut conn, &template, task, &branch, None).await?;
        assert_eq!(
            added
                .iter()
                .map(|s| (s.name.as_str(), s.created))
                .collect::<Vec<_>>(),
            [("branch_a", true), ("merge", true)]
        );

        // The batch: three workers with their cursors, and the convergence step after them.
        let cursors: Vec<serde_json::Value> = (1..=3)
            .map(|i| serde_json::json!({ "cursor": { "start": (i - 1) * 100, "end": i * 100 } }))
            .collect();
        let mut batch: Vec<StepToAdd<'_>> = cursors
            .iter()
            .zip(1..)
            .map(|(cursor, instance)| StepToAdd {
                name: "work",
                instance,
                inputs: Some(cursor),
            })
            .collect();
        batch.push(StepToAdd {
            name: "collect",
            instance: 0,
            inputs: None,
        });
        let workers = step::add_from_template(&mut conn, &template, task, &batch, None).await?;
        assert!(workers.iter().all(|s| s.created));
        assert_eq!(
            workers.iter().map(|s| s.instance).collect::<Vec<_>>(),
            [1, 2, 3, 0]
        );

        let (steps, edges, transitions) = shape(&pool, task).await?;
        assert_eq!(
            steps,
            [
                "branch_a#0",
                "collect#0",
                "decide#0",
                "merge#0",
                "split#0",
                "start#0",
                "work#1",
                "work#2",
                "work#3"
            ]
        );
        assert_eq!(
            edges,
            [
                pair("branch_a#0", "merge#0"),
                pair("decide#0", "branch_a#0"),
                pair("split#0", "work#1"),
                pair("split#0", "work#2"),
                pair("split#0", "work#3"),
                pair("start#0", "decide#0"),
                pair("start#0", "split#0"),
                pair("work#1", "collect#0"),
                pair("work#2", "collect#0"),
                pair("work#3", "collect#0"),
            ]
        );
        assert_eq!(transitions, 9, "one initial transition per step");

        // Policies and inputs come from the template, cursors from the caller.
        let records = step::StepScope::new().for_task(task).all(&pool).await?;
        let by_key: HashMap<(String, i32), &step::StepRecord> = records
            .iter()
            .map(|r| ((r.name.clone(), r.instance), r))
            .collect();
        assert_eq!(by_key[&("branch_a".to_owned(), 0)].max_attempts, 7);
        assert_eq!(
            by_key[&("work".to_owned(), 2)].inputs,
            Some(cursors[1].clone())
        );
        assert_eq!(
            by_key[&("collect".to_owned(), 0)].inputs,
            Some(serde_json::json!({}))
        );
        let history = step::history(&pool, by_key[&("work".to_owned(), 3)].step_id).await?;
        assert_eq!(history.len(), 1);
        assert!(history[0].most_recent && history[0].to_state == StepState::Pending);
        let readiness = readiness::for_task(&pool, task, BackoffParams::DEFAULT, None).await?;
        let collect = readiness
            .iter()
            .find(|r| r.name == "collect")
            .expect("collect");
        assert_eq!((collect.total_parents, collect.completed_parents), (3, 0));

        // Adding them again changes nothing and returns the same rows.
        let again = step::add_from_template(&mut conn, &template, task, &batch, None).await?;
        assert_eq!(
            again
                .iter()
                .map(|s| (s.step_id, s.created))
                .collect::<Vec<_>>(),
            workers
                .iter()
                .map(|s| (s.step_id, false))
                .collect::<Vec<_>>()
        );
        // A fourth worker later gets its edge from the batchable step; the existing
        // convergence step does not get a new parent.
        let late = [
            StepToAdd {
                name: "work",
                instance: 4,
                inputs: None,
            },
            StepToAdd {
                name: "collect",
                instance: 0,
                inputs: None,
            },
        ];
        let added = step::add_from_template(&mut conn, &template, task, &late, None).await?;
        assert_eq!(
            added.iter().map(|s| s.created).collect::<Vec<_>>(),
            [true, false]
        );
        let (steps, edges, transitions) = shape(&pool, task).await?;
        assert_eq!((steps.len(), edges.len(), transitions), (10, 11, 10));
        assert!(edges.contains(&pair("split#0", "work#4")));
        assert!(!edges.contains(&pair("work#4", "collect#0")));
        drop(conn);

        let counts = health::counts(&pool).await?;
        assert_eq!(counts.steps_in(StepState::Pending), 10);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn invalid_additions_write_nothing() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let template = dynamic_template()?;
        let task = dynamic_task(&pool, &template, "two").await?;
        let mut conn = pool.acquire().await?;
        let add = |name, instance| StepToAdd { name, instance, inputs: None };

        let err = step::add_from_template(&mut conn, &template, task, &[add("start", 0)], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::CreatedWithTask { ref step } if step == "start"), "{err}");
        let mut messages = vec![err.to_string()];
        let err = step::add_from_template(&mut conn, &template, task, &[add("nope", 0)], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::NotInTemplate { ref step, .. } if step == "nope"), "{err}");
        let err = step::add_from_template(&mut conn, &template, task, &[add("branch_a", 2)], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::NotABatchWorker { instance: 2, .. }), "{err}");
        messages.push(err.to_string());
        // The convergence step alone has none of its declared parents.
        let err = step::add_from_template(&mut conn, &template, task, &[add("merge", 0)], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::NoParents { ref step, .. } if step == "merge"), "{err}");
        let err = step::add_from_template(&mut conn, &template, TaskId::new_v7(), &[add("branch_a", 0)], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::NoSuchTask { .. }), "{err}");

        // Another template's steps, or another version of the task's template.
        let other = ValidatedTemplate::from_yaml_str(&DYNAMIC_TEMPLATE.replace("version: 1.0.0", "version: 2.0.0"), Strictness::Strict)?.template;
        template::register_validated(&pool, &other).await?;
        let err = step::add_from_template(&mut conn, &other, task, &[add("branch_a", 0)], None).await.unwrap_err();
        assert!(
            matches!(err, AddStepsError::WrongTemplate { ref expected, ref actual, .. }
                if expected == "flows/dynamic:2.0.0" && actual == "flows/dynamic:1.0.0"),
            "{err}"
        );

        // The plain form: a required dependency that does not exist, a cycle, a duplicate.
        let step = |name, depends_on: Vec<Dependency<'static>>| NewTaskStep {
            name,
            instance: 0,
            retryable: true,
            max_attempts: 3,
            inputs: None,
            depends_on,
        };
        let on = |name| Dependency { name, instance: None, required: true };
        let err = step::add_to_task(&mut conn, task, &[step("merge", vec![on("branch_b")])], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::MissingDependency { ref dependency, .. } if dependency == "branch_b"), "{err}");
        let err = step::add_to_task(&mut conn, task, &[step("branch_a", vec![on("merge")]), step("merge", vec![on("branch_a")])], None).await.unwrap_err();
        assert!(
            matches!(err, AddStepsError::Cycle { ref cycle }
                if *cycle == [("branch_a".to_owned(), 0), ("merge".to_owned(), 0)]),
            "{err}"
        );
        messages.push(err.to_string());
        let err = step::add_to_task(&mut conn, task, &[step("branch_a", vec![]), step("branch_a", vec![])], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::DuplicateStep { .. }), "{err}");
        messages.push(err.to_string());
        insta::assert_snapshot!("add_steps_errors", messages.join("\n"));
        // A mix of a good step and a bad one writes neither.
        let err = step::add_to_task(&mut conn, task, &[step("branch_a", vec![on("decide")]), step("ghost", vec![])], None).await.unwrap_err();
        assert!(matches!(err, AddStepsError::NotInTemplate { ref step, .. } if step == "ghost"), "{err}");
        drop(conn);

        let (steps, edges, transitions) = shape(&pool, task).await?;
        assert_eq!((steps.len(), edges.len(), transitions), (3, 2, 3));
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_callers_add_the_same_steps_once() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let template = Arc::new(dynamic_template()?);
        const CALLERS: usize = 16;
        for round in 0..10 {
            let task = dynamic_task(&pool, &template, &format!("race-{round}")).await?;
            let barrier = Arc::new(Barrier::new(CALLERS));
            let mut handles = Vec::new();
            for caller in 0..CALLERS {
                let (pool, template, barrier) = (pool.clone(), template.clone(), barrier.clone());
                handles.push(tokio::spawn(async move {
                    // Half the callers list the steps in the opposite order.
                    let mut steps: Vec<StepToAdd<'_>> = (1..=5)
                        .map(|instance| StepToAdd {
                            name: "work",
                            instance,
                            inputs: None,
                        })
                        .collect();
                    steps.push(StepToAdd {
                        name: "collect",
                        instance: 0,
                        inputs: None,
                    });
                    if caller % 2 == 1 {
                        steps.reverse();
                    }
                    let mut conn = pool.acquire().await?;
                    barrier.wait().await;
                    let mut added =
                        step::add_from_template(&mut conn, &template, task, &steps, None).await?;
                    added.sort_by_key(|s| (s.name.clone(), s.instance));
                    anyhow::Ok(added)
                }));
            }
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await??);
            }
            let ids: Vec<Vec<_>> = results
                .iter()
                .map(|r| r.iter().map(|s| s.step_id).collect())
                .collect();
            assert!(
                ids.iter().all(|set| *set == ids[0]),
                "every caller sees the same steps"
            );
            let created: usize = results.iter().flatten().filter(|s| s.created).count();
            assert_eq!(created, 6, "each step created by exactly one caller");
            let (steps, edges, transitions) = shape(&pool, task).await?;
            assert_eq!(
                (steps.len(), edges.len(), transitions),
                (9, 12, 9),
                "round {round}"
            );
        }
        Ok(())
    })
    .await
}
