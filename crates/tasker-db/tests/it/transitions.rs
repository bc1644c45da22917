//! Atomic task and step transitions: effects, history, guards, conflicts, batches and races.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use sqlx::PgPool;
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepTransition, StepTransitionError};
use tasker_db::task::{self, TaskTransition, TaskTransitionError};
use tasker_models::ids::{ProcessorId, StepId, TaskId};
use tasker_state::{
    GuardError, RetryIneligible, StepError, StepEvent, StepState, TaskEvent, TaskState,
};
use tokio::sync::Barrier;

use crate::fixtures::{self, Dag, StepSetup, assert_chain, step_history, task_history};
use crate::harness;

async fn task_transition(
    pool: &PgPool,
    task_id: TaskId,
    expected: TaskState,
    event: TaskEvent,
) -> Result<task::AppliedTaskTransition, TaskTransitionError> {
    let mut conn = pool.acquire().await.expect("a connection");
    task::transition(
        &mut conn,
        TaskTransition {
            task_id,
            expected,
            event,
            processor_id: None,
            metadata: None,
        },
    )
    .await
}

async fn step_transition(
    pool: &PgPool,
    step_id: StepId,
    expected: StepState,
    event: StepEvent,
) -> Result<step::AppliedStepTransition, StepTransitionError> {
    let mut conn = pool.acquire().await.expect("a connection");
    step::transition(
        &mut conn,
        StepTransition {
            step_id,
            expected,
            event,
            metadata: None,
        },
        None,
        BackoffParams::DEFAULT,
    )
    .await
}

#[derive(sqlx::FromRow, Debug)]
struct TaskRow {
    state: TaskState,
    completed_at: Option<DateTime<Utc>>,
    next_retry_at: Option<DateTime<Utc>>,
}

async fn task_row(pool: &PgPool, task: TaskId) -> anyhow::Result<TaskRow> {
    Ok(sqlx::query_as(
        "SELECT state, completed_at, next_retry_at FROM tasker.tasks WHERE task_uuid = $1",
    )
    .bind(task.into_uuid())
    .fetch_one(pool)
    .await?)
}

#[tokio::test]
async fn task_transitions_apply_effects_and_keep_history() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "one", &dag).await?;
        let (task, _) = fixtures::task(&pool, &template, &dag, "t").await?;
        assert_chain(&task_history(&pool, task).await?, TaskState::Pending);

        let processor = ProcessorId::new_v7();
        let metadata = serde_json::json!({ "note": "claimed in a test" });
        let mut conn = pool.acquire().await?;
        let applied = task::transition(
            &mut conn,
            TaskTransition {
                task_id: task,
                expected: TaskState::Pending,
                event: TaskEvent::Initialize,
                processor_id: Some(processor),
                metadata: Some(&metadata),
            },
        )
        .await?;
        drop(conn);
        assert_eq!(
            (applied.from, applied.to, applied.sort_key),
            (TaskState::Pending, TaskState::Initializing, 2)
        );
        assert_eq!(applied.lifecycle_event, "task.initialize_requested");
        let recorded: (
            serde_json::Value,
            Option<String>,
            Option<uuid::Uuid>,
            serde_json::Value,
        ) = sqlx::query_as(
            "SELECT event, lifecycle_event, processor_uuid, metadata FROM tasker.task_transitions \
                 WHERE task_transition_uuid = $1",
        )
        .bind(applied.transition_id.into_uuid())
        .fetch_one(&pool)
        .await?;
        assert_eq!(recorded.0, serde_json::json!({ "type": "initialize" }));
        assert_eq!(recorded.1.as_deref(), Some("task.initialize_requested"));
        assert_eq!(recorded.2, Some(processor.into_uuid()));
        assert_eq!(recorded.3, metadata);

        // A wrong expectation conflicts and writes nothing; an impossible event is refused.
        let err = task_transition(&pool, task, TaskState::Pending, TaskEvent::Initialize)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TaskTransitionError::Conflict {
                expected: TaskState::Pending,
                actual: TaskState::Initializing,
                ..
            }
        ));
        let err = task_transition(&pool, task, TaskState::Initializing, TaskEvent::GiveUp)
            .await
            .unwrap_err();
        assert!(matches!(err, TaskTransitionError::Invalid { .. }));
        // The refusal is in the message once: it is not also a source a chain printer repeats.
        assert!(std::error::Error::source(&err).is_none());
        insta::assert_snapshot!(
            "task_invalid_transition",
            err.to_string().replace(&task.to_string(), "<task>")
        );
        let err = task_transition(
            &pool,
            TaskId::new_v7(),
            TaskState::Pending,
            TaskEvent::Initialize,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TaskTransitionError::NotFound { .. }));
        assert_eq!(task_history(&pool, task).await?.len(), 2);

        // next_retry_at follows retry_scheduled and is cleared by the next transition.
        let retry_at = Utc::now().trunc_subsecs(3) + TimeDelta::minutes(5);
        task_transition(
            &pool,
            task,
            TaskState::Initializing,
            TaskEvent::ReadyStepsFound { count: 1 },
        )
        .await?;
        task_transition(
            &pool,
            task,
            TaskState::EnqueuingSteps,
            TaskEvent::StepsEnqueued { step_ids: vec![] },
        )
        .await?;
        task_transition(
            &pool,
            task,
            TaskState::StepsInProcess,
            TaskEvent::AllStepsCompleted,
        )
        .await?;
        task_transition(
            &pool,
            task,
            TaskState::EvaluatingResults,
            TaskEvent::RetryScheduled { retry_at },
        )
        .await?;
        assert_eq!(task_row(&pool, task).await?.next_retry_at, Some(retry_at));
        task_transition(
            &pool,
            task,
            TaskState::WaitingForRetry,
            TaskEvent::RetryReady,
        )
        .await?;
        assert_eq!(task_row(&pool, task).await?.next_retry_at, None);

        // Entering complete sets completed_at.
        task_transition(
            &pool,
            task,
            TaskState::EnqueuingSteps,
            TaskEvent::StepsEnqueued { step_ids: vec![] },
        )
        .await?;
        task_transition(
            &pool,
            task,
            TaskState::StepsInProcess,
            TaskEvent::AllStepsCompleted,
        )
        .await?;
        assert!(task_row(&pool, task).await?.completed_at.is_none());
        let done = task_transition(
            &pool,
            task,
            TaskState::EvaluatingResults,
            TaskEvent::AllStepsSuccessful,
        )
        .await?;
        let row = task_row(&pool, task).await?;
        assert_eq!(
            (row.state, row.completed_at),
            (TaskState::Complete, Some(done.created_at))
        );
        assert_chain(&task_history(&pool, task).await?, TaskState::Complete);
        assert_eq!(task_history(&pool, task).await?.len(), 10);
        Ok(())
    })
    .await
}

#[derive(sqlx::FromRow, Debug)]
struct StepRow {
    state: StepState,
    attempts: i32,
    last_attempted_at: Option<DateTime<Utc>>,
    results: Option<serde_json::Value>,
    completed_at: Option<DateTime<Utc>>,
    processed_at: Option<DateTime<Utc>>,
    in_process: bool,
    processed: bool,
    backoff_request_ms: Option<i64>,
    failure_retryable: bool,
}

async fn step_row(pool: &PgPool, step: StepId) -> anyhow::Result<StepRow> {
    Ok(sqlx::query_as(
        "SELECT state, attempts, last_attempted_at, results, completed_at, processed_at, \
                in_process, processed, backoff_request_ms, failure_retryable \
         FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(step.into_uuid())
    .fetch_one(pool)
    .await?)
}

#[tokio::test]
async fn step_lifecycle_applies_effects_guards_and_audit() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "two", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "s").await?;
        let (first, second) = (steps[0], steps[1]);

        // The second step's parent is pending: the dependency guard refuses, in the database.
        let err = step_transition(&pool, second, StepState::Pending, StepEvent::Enqueue).await.unwrap_err();
        assert!(matches!(
            err,
            StepTransitionError::GuardFailed {
                error: GuardError::DependenciesUnsatisfied { total: 1, satisfied: 0 },
                ..
            }
        ), "{err:?}");

        let enqueued = step_transition(&pool, first, StepState::Pending, StepEvent::Enqueue).await?;
        assert_eq!((enqueued.task_id, enqueued.sort_key), (task, 2));
        assert_eq!(enqueued.lifecycle_event, "step.enqueue_requested");

        let worker = uuid::Uuid::now_v7();
        step_transition(&pool, first, StepState::Enqueued, StepEvent::Start { worker_id: worker }).await?;
        let row = step_row(&pool, first).await?;
        assert_eq!((row.state, row.attempts, row.in_process), (StepState::InProgress, 1, true));
        assert!(row.last_attempted_at.is_some());

        // A failed result cannot complete the step.
        let failed_result = serde_json::json!({ "success": false });
        step_transition(&pool, first, StepState::InProgress, StepEvent::EnqueueForOrchestration { result: failed_result.clone() }).await?;
        let err = step_transition(&pool, first, StepState::EnqueuedForOrchestration, StepEvent::Complete).await.unwrap_err();
        assert!(matches!(err, StepTransitionError::GuardFailed { error: GuardError::ResultFailed, .. }), "{err:?}");

        // Fail with a requested backoff: recorded; Retry before it elapses is refused.
        let error = StepError::retryable("upstream 503").with_requested_backoff(Duration::from_secs(3600));
        step_transition(&pool, first, StepState::EnqueuedForOrchestration, StepEvent::Fail { error }).await?;
        let row = step_row(&pool, first).await?;
        assert_eq!((row.state, row.backoff_request_ms, row.failure_retryable), (StepState::Error, Some(3_600_000), true));
        assert_eq!(row.results, Some(failed_result));
        let err = step_transition(&pool, first, StepState::Error, StepEvent::Retry).await.unwrap_err();
        assert!(matches!(
            err,
            StepTransitionError::GuardFailed { error: GuardError::RetryIneligible(RetryIneligible::BackoffPending { .. }), .. }
        ), "{err:?}");

        // An operator reset puts it back to pending with attempts 0.
        step_transition(&pool, first, StepState::Error, StepEvent::ResetForRetry).await?;
        assert_eq!(step_row(&pool, first).await?.attempts, 0);

        // Second run succeeds: results stored, audit row written, completion recorded.
        step_transition(&pool, first, StepState::Pending, StepEvent::Enqueue).await?;
        step_transition(&pool, first, StepState::Enqueued, StepEvent::Start { worker_id: worker }).await?;
        let result = serde_json::json!({ "success": true, "result": { "n": 42 }, "metadata": { "execution_time_ms": 17 } });
        let mut conn = pool.acquire().await?;
        let handed = step::transition(
            &mut conn,
            StepTransition {
                step_id: first,
                expected: StepState::InProgress,
                event: StepEvent::EnqueueForOrchestration { result: result.clone() },
                metadata: Some(serde_json::json!({ "attempt": 2 })),
            },
            Some(ProcessorId::from_uuid(worker)),
            BackoffParams::DEFAULT,
        )
        .await?;
        drop(conn);
        let audits: Vec<(uuid::Uuid, Option<uuid::Uuid>, bool, Option<i64>)> = sqlx::query_as(
            "SELECT workflow_step_transition_uuid, worker_uuid, success, execution_time_ms \
             FROM tasker.workflow_step_result_audit WHERE workflow_step_uuid = $1 ORDER BY recorded_at",
        )
        .bind(first.into_uuid())
        .fetch_all(&pool)
        .await?;
        assert_eq!(audits.len(), 2, "one audit row per result handed over");
        assert!(!audits[0].2);
        assert_eq!(audits[1], (handed.transition_id.into_uuid(), Some(worker), true, Some(17)));

        let completed = step_transition(&pool, first, StepState::EnqueuedForOrchestration, StepEvent::Complete).await?;
        let row = step_row(&pool, first).await?;
        assert_eq!((row.state, row.processed, row.in_process), (StepState::Complete, true, false));
        assert_eq!(row.completed_at, Some(completed.created_at));
        assert_eq!(row.processed_at, Some(completed.created_at));
        assert_eq!(row.results, Some(result));
        assert_eq!(row.attempts, 1);
        assert_chain(&step_history(&pool, first).await?, StepState::Complete);

        // Now the dependent may be enqueued; completing manually stores the operator's result.
        step_transition(&pool, second, StepState::Pending, StepEvent::Enqueue).await?;
        let manual = serde_json::json!({ "success": true, "by": "operator" });
        step_transition(&pool, second, StepState::Enqueued, StepEvent::CompleteManually { result: manual.clone() }).await?;
        let row = step_row(&pool, second).await?;
        assert_eq!((row.state, row.results), (StepState::Complete, Some(manual)));
        // Terminal: nothing leaves complete.
        let err = step_transition(&pool, second, StepState::Complete, StepEvent::Cancel).await.unwrap_err();
        assert!(matches!(err, StepTransitionError::Invalid { .. }));
        assert!(std::error::Error::source(&err).is_none(), "{err}");
        assert!(err.to_string().contains("complete"), "{err}");
        Ok(())
    })
    .await
}

/// A step's whole lifecycle updates its row without touching an index (HOT updates): no
/// index of `workflow_steps` may cover a column a transition changes.
#[tokio::test]
async fn step_transitions_are_heap_only_updates() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "hot", &dag).await?;
        let (_task, steps) = fixtures::task(&pool, &template, &dag, "h").await?;
        let result = serde_json::json!({ "success": true, "result": 1 });
        let lifecycle = [
            (StepState::Pending, StepEvent::Enqueue),
            (
                StepState::Enqueued,
                StepEvent::Start {
                    worker_id: uuid::Uuid::now_v7(),
                },
            ),
            (
                StepState::InProgress,
                StepEvent::EnqueueForOrchestration { result },
            ),
            (StepState::EnqueuedForOrchestration, StepEvent::Complete),
        ];
        // pg_stat_xact_user_tables also holds counts of this backend's earlier transactions
        // that are not flushed yet; none are flushed within a transaction, so the difference
        // is this one's.
        let counts = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables \
                      WHERE relid = 'tasker.workflow_steps'::regclass";
        let mut tx = pool.begin().await?;
        let before: (i64, i64) = sqlx::query_as(counts).fetch_one(&mut *tx).await?;
        for (expected, event) in lifecycle {
            let transition = StepTransition {
                step_id: steps[0],
                expected,
                event,
                metadata: None,
            };
            step::transition(&mut tx, transition, None, BackoffParams::DEFAULT).await?;
        }
        let after: (i64, i64) = sqlx::query_as(counts).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        let (updates, hot) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(
            (updates, hot),
            (4, 4),
            "every step transition is a HOT update"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn retry_guard_passes_once_the_backoff_elapsed() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "retry", &dag).await?;
        let (_, steps) = fixtures::task(&pool, &template, &dag, "r").await?;
        // One attempt 10 s ago: the default policy's backoff is 2 s, so it is due.
        fixtures::set_step(
            &pool,
            steps[0],
            StepSetup::failed(1, Utc::now() - TimeDelta::seconds(10)),
        )
        .await?;
        let retried = step_transition(&pool, steps[0], StepState::Error, StepEvent::Retry).await?;
        assert_eq!(retried.to, StepState::Pending);
        // Exhausted attempts are refused with the reason.
        fixtures::set_step(
            &pool,
            steps[1],
            StepSetup::failed(3, Utc::now() - TimeDelta::hours(1)),
        )
        .await?;
        let err = step_transition(&pool, steps[1], StepState::Error, StepEvent::Retry)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StepTransitionError::GuardFailed {
                    error: GuardError::RetryIneligible(RetryIneligible::AttemptsExhausted {
                        attempts: 3,
                        max_attempts: 3
                    }),
                    ..
                }
            ),
            "{err:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn batches_report_each_transition_in_order() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::diamond();
        let template = fixtures::template(&pool, "diamond", &dag).await?;
        let (_, steps) = fixtures::task(&pool, &template, &dag, "b").await?;
        let (a, b, c, d) = (steps[0], steps[1], steps[2], steps[3]);
        fixtures::set_step(&pool, b, StepSetup::new(StepState::Enqueued)).await?;
        let request = |step_id, expected, event| StepTransition {
            step_id,
            expected,
            event,
            metadata: None,
        };
        let mut conn = pool.acquire().await?;
        let results = step::transition_batch(
            &mut conn,
            vec![
                request(a, StepState::Pending, StepEvent::Enqueue),
                request(b, StepState::Pending, StepEvent::Enqueue),
                request(c, StepState::Pending, StepEvent::Enqueue),
                request(d, StepState::Pending, StepEvent::Complete),
                request(a, StepState::Pending, StepEvent::Cancel),
                request(StepId::new_v7(), StepState::Pending, StepEvent::Cancel),
                StepTransition {
                    metadata: Some(serde_json::json!([1])),
                    ..request(StepId::new_v7(), StepState::Pending, StepEvent::Cancel)
                },
            ],
            None,
            BackoffParams::DEFAULT,
        )
        .await?;
        drop(conn);
        assert!(matches!(&results[0], Ok(t) if t.step_id == a && t.to == StepState::Enqueued));
        assert!(matches!(
            &results[1],
            Err(StepTransitionError::Conflict {
                actual: StepState::Enqueued,
                ..
            })
        ));
        assert!(
            matches!(&results[2], Err(StepTransitionError::GuardFailed { .. })),
            "{:?}",
            results[2]
        );
        assert!(matches!(
            &results[3],
            Err(StepTransitionError::Invalid { .. })
        ));
        assert!(matches!(
            &results[4],
            Err(StepTransitionError::DuplicateInBatch { .. })
        ));
        assert!(matches!(
            &results[5],
            Err(StepTransitionError::NotFound { .. })
        ));
        assert!(matches!(
            &results[6],
            Err(StepTransitionError::MetadataNotObject { .. })
        ));
        assert_chain(&step_history(&pool, a).await?, StepState::Enqueued);
        assert_eq!(
            step_history(&pool, c).await?.len(),
            1,
            "a refused transition writes nothing"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_actors_one_winner_200_times() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "race", &dag).await?;
        let actors = 16;
        for round in 0..200 {
            let (task, steps) =
                fixtures::task(&pool, &template, &dag, &format!("race{round}")).await?;
            let step = steps[0];
            let barrier = Arc::new(Barrier::new(actors));
            let mut handles = Vec::new();
            for actor in 0..actors {
                let pool = pool.clone();
                let barrier = barrier.clone();
                handles.push(tokio::spawn(async move {
                    barrier.wait().await;
                    // Half race the task transition, half the step transition; every actor
                    // tries both, in a different order.
                    let task_first = actor % 2 == 0;
                    let mut outcomes = (None, None);
                    for turn in 0..2 {
                        if (turn == 0) == task_first {
                            outcomes.0 = Some(
                                task_transition(
                                    &pool,
                                    task,
                                    TaskState::Pending,
                                    TaskEvent::Initialize,
                                )
                                .await,
                            );
                        } else {
                            outcomes.1 = Some(
                                step_transition(
                                    &pool,
                                    step,
                                    StepState::Pending,
                                    StepEvent::Enqueue,
                                )
                                .await,
                            );
                        }
                    }
                    outcomes
                }));
            }
            let (mut task_wins, mut step_wins) = (0, 0);
            for handle in handles {
                let (task_outcome, step_outcome) = handle.await?;
                match task_outcome.expect("tried") {
                    Ok(_) => task_wins += 1,
                    Err(TaskTransitionError::Conflict {
                        actual: TaskState::Initializing,
                        ..
                    }) => {}
                    Err(other) => anyhow::bail!("round {round}: unexpected task outcome {other:?}"),
                }
                match step_outcome.expect("tried") {
                    Ok(_) => step_wins += 1,
                    Err(StepTransitionError::Conflict {
                        actual: StepState::Enqueued,
                        ..
                    }) => {}
                    Err(other) => anyhow::bail!("round {round}: unexpected step outcome {other:?}"),
                }
            }
            assert_eq!((task_wins, step_wins), (1, 1), "round {round}");
            let history = task_history(&pool, task).await?;
            assert_eq!(history.len(), 2, "round {round}");
            assert_chain(&history, TaskState::Initializing);
            let history = step_history(&pool, step).await?;
            assert_eq!(history.len(), 2, "round {round}");
            assert_chain(&history, StepState::Enqueued);
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_in_opposite_orders_do_not_deadlock() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::layered(1, 50);
        let template = fixtures::template(&pool, "wide", &dag).await?;
        for round in 0..10 {
            let (_, steps) =
                fixtures::task(&pool, &template, &dag, &format!("wide{round}")).await?;
            let barrier = Arc::new(Barrier::new(4));
            let mut handles = Vec::new();
            for batch in 0..4 {
                let pool = pool.clone();
                let barrier = barrier.clone();
                let mut order = steps.clone();
                if batch % 2 == 1 {
                    order.reverse();
                }
                handles.push(tokio::spawn(async move {
                    let requests = order
                        .into_iter()
                        .map(|step_id| StepTransition {
                            step_id,
                            expected: StepState::Pending,
                            event: StepEvent::Enqueue,
                            metadata: None,
                        })
                        .collect();
                    let mut tx = pool.begin().await?;
                    barrier.wait().await;
                    let results =
                        step::transition_batch(&mut tx, requests, None, BackoffParams::DEFAULT)
                            .await?;
                    tx.commit().await?;
                    anyhow::Ok(results.iter().filter(|r| r.is_ok()).count())
                }));
            }
            let mut applied = 0;
            for handle in handles {
                applied += handle.await??;
            }
            assert_eq!(
                applied, 50,
                "round {round}: every step enqueued exactly once"
            );
            for step in &steps {
                assert_chain(&step_history(&pool, *step).await?, StepState::Enqueued);
            }
        }
        Ok(())
    })
    .await
}
