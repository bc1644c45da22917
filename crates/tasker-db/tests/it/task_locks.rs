//! Step batches that lock their tasks first (`step::transition_batch_locking_tasks`): the
//! outcomes are the plain batch's, the tasks are locked (even where the step's transition
//! failed) and their states reported, and a batch waiting for a task holds none of its steps
//! (the order every path takes: tasks before their steps, so it cannot deadlock with them).

use sqlx::PgPool;
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepTransition, StepTransitionError};
use tasker_db::task;
use tasker_models::ids::{StepId, TaskId};
use tasker_state::{StepEvent, StepState, TaskState};

use crate::fixtures::{self, Dag, assert_chain, step_history};
use crate::harness;

fn request(step_id: StepId, expected: StepState, event: StepEvent) -> StepTransition {
    StepTransition {
        step_id,
        expected,
        event,
        metadata: None,
    }
}

/// Two-step linear tasks, all steps `pending`.
async fn tasks(pool: &PgPool, count: usize) -> anyhow::Result<Vec<(TaskId, Vec<StepId>)>> {
    let dag = Dag::linear(2);
    let template = fixtures::template(pool, "locks", &dag).await?;
    let mut made = Vec::with_capacity(count);
    for i in 0..count {
        made.push(fixtures::task(pool, &template, &dag, &format!("locks{i}")).await?);
    }
    Ok(made)
}

/// Whether another session can lock the task row right now.
async fn lockable(pool: &PgPool, task_id: TaskId) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let locked = sqlx::query("SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE NOWAIT")
        .bind(task_id.into_uuid())
        .execute(&mut *tx)
        .await;
    tx.rollback().await?;
    match locked {
        Ok(_) => Ok(true),
        Err(error)
            if error.as_database_error().and_then(|e| e.code()).as_deref() == Some("55P03") =>
        {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

#[tokio::test]
async fn locking_batches_report_and_hold_their_tasks() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let made = tasks(&pool, 3).await?;
        let (t0, t1, t2) = (&made[0], &made[1], &made[2]);
        let missing = StepId::new_v7();
        let requests = vec![
            // Applies: a root step.
            request(t0.1[0], StepState::Pending, StepEvent::Enqueue),
            // Guard fails: its parent is pending.
            request(t1.1[1], StepState::Pending, StepEvent::Enqueue),
            // Refused by the state machine before any SQL.
            request(t1.1[0], StepState::Pending, StepEvent::Complete),
            request(missing, StepState::Pending, StepEvent::Enqueue),
        ];

        let mut holder = pool.begin().await?;
        let (outcomes, states) = step::transition_batch_locking_tasks(
            &mut holder,
            requests,
            None,
            BackoffParams::DEFAULT,
        )
        .await?;
        assert_eq!(outcomes.len(), 4);
        let applied = outcomes[0].as_ref().expect("the root step is enqueued");
        assert_eq!((applied.task_id, applied.to), (t0.0, StepState::Enqueued));
        assert!(
            matches!(outcomes[1], Err(StepTransitionError::GuardFailed { .. })),
            "{:?}",
            outcomes[1]
        );
        assert!(
            matches!(outcomes[2], Err(StepTransitionError::Invalid { .. })),
            "{:?}",
            outcomes[2]
        );
        assert!(
            matches!(outcomes[3], Err(StepTransitionError::NotFound { .. })),
            "{:?}",
            outcomes[3]
        );
        // Both tasks are reported and held, the one whose steps did not move included; the
        // task no step was asked about is neither.
        assert_eq!(states.len(), 2, "{states:?}");
        assert!(states.values().all(|state| *state == TaskState::Pending));
        assert!(!lockable(&pool, t0.0).await? && !lockable(&pool, t1.0).await?);
        assert!(lockable(&pool, t2.0).await?);
        holder.commit().await?;
        assert!(lockable(&pool, t0.0).await?);
        assert_chain(&step_history(&pool, t0.1[0]).await?, StepState::Enqueued);

        // Nothing asked: nothing locked, no statement.
        let mut conn = pool.acquire().await?;
        let (outcomes, states) = step::transition_batch_locking_tasks(
            &mut conn,
            Vec::new(),
            None,
            BackoffParams::DEFAULT,
        )
        .await?;
        assert!(outcomes.is_empty() && states.is_empty());
        Ok(())
    })
    .await
}

/// A locking batch that must wait for a task waits before it has locked any of the task's
/// steps: while it waits, the holder of the task can still lock every step row at once
/// (`NOWAIT`). Locking the steps first would make that fail, and deadlock the holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_batches_wait_for_the_task_before_touching_its_steps() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let made = tasks(&pool, 1).await?;
        let (task_id, steps) = made[0].clone();
        let mut holder = pool.begin().await?;
        task::lock_batch(&mut holder, &[task_id]).await?;
        let waiter = tokio::spawn({
            let (pool, steps) = (pool.clone(), steps.clone());
            async move {
                let mut tx = pool.begin().await?;
                let requests = steps
                    .iter()
                    .map(|step| request(*step, StepState::Pending, StepEvent::Enqueue))
                    .collect();
                let (outcomes, states) = step::transition_batch_locking_tasks(
                    &mut tx,
                    requests,
                    None,
                    BackoffParams::DEFAULT,
                )
                .await?;
                tx.commit().await?;
                anyhow::Ok((outcomes, states))
            }
        });
        // Wait until the server says the waiter waits for a lock.
        let blocked = fixtures::blocked_on_a_lock(&pool, &waiter).await?;
        assert!(blocked, "the locking batch waits for the task");
        let locked = sqlx::query(
            "SELECT 1 FROM tasker.workflow_steps WHERE task_uuid = $1 FOR UPDATE NOWAIT",
        )
        .bind(task_id.into_uuid())
        .execute(&mut *holder)
        .await?;
        assert_eq!(
            locked.rows_affected(),
            2,
            "no step row was locked by the waiter"
        );
        holder.commit().await?;
        let (outcomes, states) = waiter.await??;
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert_eq!(states.get(&task_id), Some(&TaskState::Pending));
        Ok(())
    })
    .await
}
