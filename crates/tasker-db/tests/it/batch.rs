//! Batch forms: many task transitions in one statement (item by item like the single form,
//! and under concurrent overlapping batches), and readiness for many tasks in one call.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{SubsecRound as _, TimeDelta, Utc};
use sqlx::PgPool;
use tasker_db::readiness::{self, BackoffParams};
use tasker_db::task::{
    self, TaskBatchError, TaskTransition, TaskTransitionChain, TaskTransitionError,
};
use tasker_models::ids::{ProcessorId, TaskId};
use tasker_state::{StepState, TaskEvent, TaskState};
use tokio::sync::Barrier;

use crate::fixtures::{self, Dag, StepSetup, assert_chain, task_history};
use crate::harness;

/// A task's state, `next_retry_at` and `completed_at`.
type RetryAndCompletion = (
    TaskState,
    Option<chrono::DateTime<Utc>>,
    Option<chrono::DateTime<Utc>>,
);

fn item(task_id: TaskId, expected: TaskState, event: TaskEvent) -> TaskTransition<'static> {
    TaskTransition {
        task_id,
        expected,
        event,
        processor_id: None,
        metadata: None,
    }
}

async fn tasks(pool: &PgPool, name: &str, count: usize) -> anyhow::Result<Vec<TaskId>> {
    let dag = Dag::linear(1);
    let template = fixtures::template(pool, name, &dag).await?;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push(
            fixtures::task(pool, &template, &dag, &format!("{name}{i}"))
                .await?
                .0,
        );
    }
    Ok(ids)
}

#[tokio::test]
async fn task_batches_apply_each_item_like_the_single_form() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let t = tasks(&pool, "batch", 5).await?;
        let missing = TaskId::new_v7();
        let mut conn = pool.acquire().await?;
        // t[3] moves first, so the batch's expectation for it is stale.
        task::transition(
            &mut conn,
            item(t[3], TaskState::Pending, TaskEvent::Initialize),
        )
        .await?;

        let processor = ProcessorId::new_v7();
        let metadata = serde_json::json!({ "note": "claimed in a batch" });
        let not_an_object = serde_json::json!(1);
        let outcomes = task::transition_batch(
            &mut conn,
            vec![
                TaskTransition {
                    processor_id: Some(processor),
                    metadata: Some(&metadata),
                    ..item(t[0], TaskState::Pending, TaskEvent::Initialize)
                },
                item(t[1], TaskState::Pending, TaskEvent::Initialize),
                item(t[2], TaskState::Pending, TaskEvent::GiveUp),
                item(t[3], TaskState::Pending, TaskEvent::Initialize),
                item(missing, TaskState::Pending, TaskEvent::Initialize),
                TaskTransition {
                    metadata: Some(&not_an_object),
                    ..item(t[4], TaskState::Pending, TaskEvent::Initialize)
                },
            ],
        )
        .await?;
        assert_eq!(outcomes.len(), 6, "one outcome per item, in order");
        let mut outcomes = outcomes.into_iter();
        let first = outcomes.next().expect("six")?;
        assert_eq!(
            (first.task_id, first.from, first.to, first.sort_key),
            (t[0], TaskState::Pending, TaskState::Initializing, 2)
        );
        assert_eq!(first.lifecycle_event, "task.initialize_requested");
        let second = outcomes.next().expect("six")?;
        assert_eq!((second.task_id, second.sort_key), (t[1], 2));
        assert_eq!(
            first.created_at, second.created_at,
            "one statement, one transaction time"
        );
        assert!(matches!(
            outcomes.next().expect("six"),
            Err(TaskTransitionError::Invalid { task_id, .. }) if task_id == t[2]
        ));
        assert!(matches!(
            outcomes.next().expect("six"),
            Err(TaskTransitionError::Conflict {
                task_id,
                expected: TaskState::Pending,
                actual: TaskState::Initializing,
            }) if task_id == t[3]
        ));
        assert!(matches!(
            outcomes.next().expect("six"),
            Err(TaskTransitionError::NotFound { task_id }) if task_id == missing
        ));
        assert!(matches!(
            outcomes.next().expect("six"),
            Err(TaskTransitionError::MetadataNotObject)
        ));

        // The rows are the single form's: event as JSON, lifecycle, processor, metadata.
        let recorded: Vec<(
            serde_json::Value,
            Option<String>,
            Option<uuid::Uuid>,
            serde_json::Value,
        )> = sqlx::query_as(
            "SELECT event, lifecycle_event, processor_uuid, metadata FROM tasker.task_transitions \
             WHERE task_transition_uuid = ANY($1) ORDER BY task_uuid",
        )
        .bind(vec![
            first.transition_id.into_uuid(),
            second.transition_id.into_uuid(),
        ])
        .fetch_all(&pool)
        .await?;
        let initialize = serde_json::json!({ "type": "initialize" });
        assert_eq!(
            recorded,
            vec![
                (
                    initialize.clone(),
                    Some("task.initialize_requested".to_owned()),
                    Some(processor.into_uuid()),
                    metadata.clone()
                ),
                (
                    initialize,
                    Some("task.initialize_requested".to_owned()),
                    None,
                    serde_json::json!({})
                ),
            ]
        );
        assert_chain(&task_history(&pool, t[0]).await?, TaskState::Initializing);
        assert_chain(&task_history(&pool, t[3]).await?, TaskState::Initializing);
        assert_eq!(
            task_history(&pool, t[3]).await?.len(),
            2,
            "the stale item wrote nothing"
        );
        assert_chain(&task_history(&pool, t[2]).await?, TaskState::Pending);
        assert_chain(&task_history(&pool, t[4]).await?, TaskState::Pending);

        // Effects: next_retry_at from retry_scheduled, completed_at on entering complete, both
        // in one batch, each task on its own path.
        for (task_id, from, event) in [
            (
                t[0],
                TaskState::Initializing,
                TaskEvent::ReadyStepsFound { count: 1 },
            ),
            (
                t[0],
                TaskState::EnqueuingSteps,
                TaskEvent::StepsEnqueued { step_ids: vec![] },
            ),
            (
                t[0],
                TaskState::StepsInProcess,
                TaskEvent::AllStepsCompleted,
            ),
            (
                t[1],
                TaskState::Initializing,
                TaskEvent::ReadyStepsFound { count: 1 },
            ),
            (
                t[1],
                TaskState::EnqueuingSteps,
                TaskEvent::StepsEnqueued { step_ids: vec![] },
            ),
            (
                t[1],
                TaskState::StepsInProcess,
                TaskEvent::AllStepsCompleted,
            ),
        ] {
            task::transition(&mut conn, item(task_id, from, event)).await?;
        }
        let retry_at = Utc::now().trunc_subsecs(3) + TimeDelta::minutes(5);
        let outcomes = task::transition_batch(
            &mut conn,
            vec![
                item(
                    t[0],
                    TaskState::EvaluatingResults,
                    TaskEvent::RetryScheduled { retry_at },
                ),
                item(
                    t[1],
                    TaskState::EvaluatingResults,
                    TaskEvent::AllStepsSuccessful,
                ),
            ],
        )
        .await?;
        let done = outcomes
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .pop()
            .expect("two");
        let rows: Vec<RetryAndCompletion> = sqlx::query_as(
            "SELECT state, next_retry_at, completed_at FROM tasker.tasks \
                 WHERE task_uuid = ANY($1) ORDER BY task_uuid",
        )
        .bind(vec![t[0].into_uuid(), t[1].into_uuid()])
        .fetch_all(&pool)
        .await?;
        assert_eq!(
            rows,
            vec![
                (TaskState::WaitingForRetry, Some(retry_at), None),
                (TaskState::Complete, None, Some(done.created_at)),
            ]
        );
        assert_chain(
            &task_history(&pool, t[0]).await?,
            TaskState::WaitingForRetry,
        );
        assert_chain(&task_history(&pool, t[1]).await?, TaskState::Complete);

        // A task named twice refuses the whole batch before anything is written.
        let refused = task::transition_batch(
            &mut conn,
            vec![
                item(t[2], TaskState::Pending, TaskEvent::Initialize),
                item(t[2], TaskState::Initializing, TaskEvent::NoStepsFound),
            ],
        )
        .await;
        assert!(matches!(
            refused,
            Err(TaskBatchError::DuplicateInBatch { task_id }) if task_id == t[2]
        ));
        assert_chain(&task_history(&pool, t[2]).await?, TaskState::Pending);
        assert!(
            task::transition_batch(&mut conn, Vec::new())
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

/// Four batches over overlapping windows of the same tasks, half of them in reverse order,
/// race ten times. Each batch claims what it can (`pending → initializing`) and, in the same
/// transaction, moves its winnings on by two more batches, as an orchestrator settles them.
/// Every task is claimed exactly once, losers see the state the winner committed, nothing
/// deadlocks, and every history is gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_batches_apply_each_transition_once() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        for round in 0..10 {
            let t = tasks(&pool, &format!("race{round}_"), 24).await?;
            let barrier = Arc::new(Barrier::new(4));
            let mut handles = Vec::new();
            for batch in 0..4 {
                let pool = pool.clone();
                let barrier = barrier.clone();
                // Batch k covers tasks 4k .. 4k+12: every task is in two or three batches.
                let mut window: Vec<TaskId> = t.iter().copied().skip(4 * batch).take(12).collect();
                if batch % 2 == 1 {
                    window.reverse();
                }
                handles.push(tokio::spawn(async move {
                    let mut tx = pool.begin().await?;
                    barrier.wait().await;
                    let claims = window
                        .iter()
                        .map(|id| item(*id, TaskState::Pending, TaskEvent::Initialize))
                        .collect();
                    let mut won = Vec::new();
                    let mut lost = Vec::new();
                    for (id, outcome) in window
                        .iter()
                        .zip(task::transition_batch(&mut tx, claims).await?)
                    {
                        match outcome {
                            Ok(applied) => {
                                anyhow::ensure!(applied.sort_key == 2, "{applied:?}");
                                won.push(*id);
                            }
                            Err(TaskTransitionError::Conflict { actual, .. }) => {
                                lost.push((*id, actual));
                            }
                            Err(other) => anyhow::bail!("unexpected outcome {other:?}"),
                        }
                    }
                    for (from, event) in [
                        (
                            TaskState::Initializing,
                            TaskEvent::ReadyStepsFound { count: 1 },
                        ),
                        (
                            TaskState::EnqueuingSteps,
                            TaskEvent::StepsEnqueued { step_ids: vec![] },
                        ),
                    ] {
                        let moves = won
                            .iter()
                            .map(|id| item(*id, from, event.clone()))
                            .collect();
                        for outcome in task::transition_batch(&mut tx, moves).await? {
                            outcome?;
                        }
                    }
                    tx.commit().await?;
                    anyhow::Ok((won, lost))
                }));
            }
            let mut wins: HashMap<TaskId, usize> = HashMap::new();
            for handle in handles {
                let (won, lost) = handle.await??;
                for id in won {
                    *wins.entry(id).or_default() += 1;
                }
                for (id, actual) in lost {
                    assert_eq!(
                        actual,
                        TaskState::StepsInProcess,
                        "round {round}: a loser waited for the winner's commit"
                    );
                    wins.entry(id).or_default();
                }
            }
            assert_eq!(wins.len(), t.len(), "round {round}: every task was tried");
            for id in &t {
                assert_eq!(wins[id], 1, "round {round}: task {id} claimed exactly once");
                let history = task_history(&pool, *id).await?;
                assert_eq!(history.len(), 4, "round {round}");
                assert_chain(&history, TaskState::StepsInProcess);
            }
        }
        Ok(())
    })
    .await
}

/// The recorded rows of a task's history after the initial one: (from, to, event, lifecycle,
/// processor, metadata).
type RecordedRow = (
    Option<TaskState>,
    TaskState,
    Option<serde_json::Value>,
    Option<String>,
    Option<uuid::Uuid>,
    serde_json::Value,
);

async fn recorded(pool: &PgPool, task: TaskId) -> anyhow::Result<Vec<RecordedRow>> {
    Ok(sqlx::query_as(
        "SELECT from_state, to_state, event, lifecycle_event, processor_uuid, metadata \
         FROM tasker.task_transitions WHERE task_uuid = $1 AND sort_key > 1 ORDER BY sort_key",
    )
    .bind(task.into_uuid())
    .fetch_all(pool)
    .await?)
}

fn chain(
    task_id: TaskId,
    expected: TaskState,
    events: Vec<TaskEvent>,
) -> TaskTransitionChain<'static> {
    TaskTransitionChain {
        task_id,
        expected,
        events,
        processor_id: None,
        metadata: None,
    }
}

/// A chain writes what its events written one by one would (rows, events, lifecycle names,
/// processor, metadata, effects), with one update of the task; a chain that breaks the state
/// machine half-way, a stale chain and a missing task write nothing.
#[tokio::test]
async fn chains_record_what_their_transitions_one_by_one_would() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let t = tasks(&pool, "chain", 5).await?;
        let processor = ProcessorId::new_v7();
        let metadata = serde_json::json!({ "by": "chain test" });
        let retry_at = Utc::now().trunc_subsecs(3) + TimeDelta::minutes(5);
        let events = vec![
            TaskEvent::Initialize,
            TaskEvent::ReadyStepsFound { count: 1 },
            TaskEvent::StepsEnqueued { step_ids: vec![] },
            TaskEvent::AllStepsCompleted,
            TaskEvent::RetryScheduled { retry_at },
        ];
        // t[0] one by one, t[1] as a chain.
        let mut conn = pool.acquire().await?;
        let mut state = TaskState::Pending;
        for event in events.clone() {
            state = task::transition(
                &mut conn,
                TaskTransition {
                    processor_id: Some(processor),
                    metadata: Some(&metadata),
                    ..item(t[0], state, event)
                },
            )
            .await?
            .to;
        }
        let missing = TaskId::new_v7();
        let outcomes = task::transition_chains(
            &mut conn,
            vec![
                TaskTransitionChain {
                    processor_id: Some(processor),
                    metadata: Some(&metadata),
                    ..chain(t[1], TaskState::Pending, events.clone())
                },
                // Valid at first, then `give_up` from `initializing`: refused as a whole.
                chain(
                    t[2],
                    TaskState::Pending,
                    vec![TaskEvent::Initialize, TaskEvent::GiveUp],
                ),
                chain(t[3], TaskState::Initializing, vec![TaskEvent::NoStepsFound]),
                chain(missing, TaskState::Pending, vec![TaskEvent::Initialize]),
                chain(t[4], TaskState::Complete, Vec::new()),
            ],
        )
        .await?;
        let mut outcomes = outcomes.into_iter();
        let applied = outcomes.next().expect("five")?;
        assert_eq!(
            applied
                .iter()
                .map(|a| (a.from, a.to, a.sort_key))
                .collect::<Vec<_>>(),
            vec![
                (TaskState::Pending, TaskState::Initializing, 2),
                (TaskState::Initializing, TaskState::EnqueuingSteps, 3),
                (TaskState::EnqueuingSteps, TaskState::StepsInProcess, 4),
                (TaskState::StepsInProcess, TaskState::EvaluatingResults, 5),
                (TaskState::EvaluatingResults, TaskState::WaitingForRetry, 6),
            ]
        );
        assert!(matches!(
            outcomes.next().expect("five"),
            Err(TaskTransitionError::Invalid { task_id, .. }) if task_id == t[2]
        ));
        assert!(matches!(
            outcomes.next().expect("five"),
            Err(TaskTransitionError::Conflict {
                task_id,
                expected: TaskState::Initializing,
                actual: TaskState::Pending,
            }) if task_id == t[3]
        ));
        assert!(matches!(
            outcomes.next().expect("five"),
            Err(TaskTransitionError::NotFound { task_id }) if task_id == missing
        ));
        assert!(outcomes.next().expect("five")?.is_empty(), "an empty chain");
        assert_eq!(recorded(&pool, t[1]).await?, recorded(&pool, t[0]).await?);
        assert_eq!(recorded(&pool, t[1]).await?.len(), 5);
        assert_chain(
            &task_history(&pool, t[1]).await?,
            TaskState::WaitingForRetry,
        );
        for untouched in [t[2], t[3], t[4]] {
            assert_chain(&task_history(&pool, untouched).await?, TaskState::Pending);
        }
        let rows: Vec<RetryAndCompletion> = sqlx::query_as(
            "SELECT state, next_retry_at, completed_at FROM tasker.tasks \
             WHERE task_uuid = ANY($1) ORDER BY task_uuid",
        )
        .bind(vec![t[0].into_uuid(), t[1].into_uuid()])
        .fetch_all(&pool)
        .await?;
        assert_eq!(rows[0], rows[1]);
        assert_eq!(rows[1].1, Some(retry_at));

        // Into `complete`: completed_at set, next_retry_at cleared by the chain's last event.
        let done = task::transition_chains(
            &mut conn,
            vec![chain(
                t[1],
                TaskState::WaitingForRetry,
                vec![
                    TaskEvent::RetryReady,
                    TaskEvent::StepsEnqueued { step_ids: vec![] },
                    TaskEvent::AllStepsCompleted,
                    TaskEvent::AllStepsSuccessful,
                ],
            )],
        )
        .await?
        .pop()
        .expect("one")?;
        let row: RetryAndCompletion = sqlx::query_as(
            "SELECT state, next_retry_at, completed_at FROM tasker.tasks WHERE task_uuid = $1",
        )
        .bind(t[1].into_uuid())
        .fetch_one(&pool)
        .await?;
        assert_eq!(row, (TaskState::Complete, None, Some(done[3].created_at)));
        assert_chain(&task_history(&pool, t[1]).await?, TaskState::Complete);
        Ok(())
    })
    .await
}

/// A task locked by one transaction cannot be moved by another until it ends; the waiter
/// then sees what the holder committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_tasks_wait_for_their_holder() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let t = tasks(&pool, "lock", 2).await?;
        let missing = TaskId::new_v7();
        let mut holder = pool.begin().await?;
        let states = task::lock_batch(&mut holder, &[t[1], missing, t[0]]).await?;
        assert_eq!(states.len(), 2, "a missing task is absent");
        assert!(states.values().all(|state| *state == TaskState::Pending));
        let waiter = tokio::spawn({
            let pool = pool.clone();
            let task_id = t[0];
            async move {
                let mut conn = pool.acquire().await?;
                let outcome = task::transition_batch(
                    &mut conn,
                    vec![item(task_id, TaskState::Pending, TaskEvent::Initialize)],
                )
                .await?;
                anyhow::Ok(outcome)
            }
        });
        // The waiter blocks on the row lock: wait until the server says so.
        let blocked = fixtures::blocked_on_a_lock(&pool, &waiter).await?;
        assert!(blocked, "the waiter waits for the lock");
        task::transition_chains(
            &mut holder,
            vec![chain(
                t[0],
                TaskState::Pending,
                vec![TaskEvent::Initialize, TaskEvent::NoStepsFound],
            )],
        )
        .await?
        .pop()
        .expect("one")?;
        holder.commit().await?;
        let outcome = waiter.await??.pop().expect("one");
        assert!(matches!(
            outcome,
            Err(TaskTransitionError::Conflict {
                actual: TaskState::Complete,
                ..
            })
        ));
        assert_chain(&task_history(&pool, t[0]).await?, TaskState::Complete);
        assert!(
            task::lock_batch(&mut *pool.acquire().await?, &[])
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

const BACKOFF: BackoffParams = BackoffParams {
    base_ms: 1_000,
    multiplier: 2.0,
    max_ms: 60_000,
};

#[tokio::test]
async fn readiness_of_many_tasks_equals_each_tasks_readiness() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let mut task_ids = Vec::new();
        for (name, dag) in [
            ("linear", Dag::linear(4)),
            ("diamond", Dag::diamond()),
            ("tree", Dag::tree()),
        ] {
            let template = fixtures::template(&pool, name, &dag).await?;
            for i in 0..2 {
                let (task, steps) =
                    fixtures::task(&pool, &template, &dag, &format!("{name}{i}")).await?;
                if i == 1 {
                    // The root done, the next one failed 1.5 s ago (waiting for its backoff).
                    fixtures::set_step(&pool, steps[0], StepSetup::new(StepState::Complete))
                        .await?;
                    let at = Utc::now() - TimeDelta::milliseconds(1_500);
                    fixtures::set_step(&pool, steps[1], StepSetup::failed(1, at)).await?;
                }
                task_ids.push(task);
            }
        }
        let missing = TaskId::new_v7();
        let mut asked = task_ids.clone();
        asked.insert(2, missing);
        let now = Some(Utc::now());

        let many = readiness::for_tasks(&pool, &asked, BACKOFF, now).await?;
        assert_eq!(many.len(), task_ids.len(), "unknown tasks are absent");
        assert!(!many.contains_key(&missing));
        for task in &task_ids {
            let one = readiness::for_task(&pool, *task, BACKOFF, now).await?;
            assert!(!one.is_empty());
            assert_eq!(many[task], one, "task {task}");
        }
        // With a later `now` the failed steps' backoff (2 s after the first attempt) is over.
        let later = Some(Utc::now() + TimeDelta::seconds(5));
        let many = readiness::for_tasks(&pool, &task_ids, BACKOFF, later).await?;
        for task in &task_ids {
            assert_eq!(
                many[task],
                readiness::for_task(&pool, *task, BACKOFF, later).await?
            );
        }
        assert!(
            many.values()
                .flatten()
                .any(|step| step.current_state == StepState::Error && step.ready_for_execution)
        );
        assert!(
            readiness::for_tasks(&pool, &[], BACKOFF, None)
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}
