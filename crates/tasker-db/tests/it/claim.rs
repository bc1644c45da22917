//! Ready-task claiming: order, eligibility per state, the claim transition, and two
//! orchestrators racing over 1,000 ready tasks.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{SubsecRound as _, TimeDelta, Utc};
use sqlx::PgPool;
use tasker_db::claim::{self, ClaimRequest, ClaimedTask};
use tasker_models::ids::{ProcessorId, TaskId};
use tasker_state::{StepState, TaskEvent, TaskState, TaskStateMachine};
use tokio::sync::Barrier;

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

async fn claim(pool: &PgPool, limit: i32) -> anyhow::Result<Vec<ClaimedTask>> {
    Ok(claim::claim_ready_tasks(pool, ClaimRequest::new(limit, None), None).await?)
}

async fn backdate(pool: &PgPool, task: TaskId, hours: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE tasker.tasks SET created_at = now() - $2 * interval '1 hour' WHERE task_uuid = $1",
    )
    .bind(task.into_uuid())
    .bind(hours as f64)
    .execute(pool)
    .await?;
    Ok(())
}

#[tokio::test]
async fn claims_by_priority_with_age_escalation() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "prio", &dag).await?;
        let (low, _) = fixtures::task_with_priority(&pool, &template, &dag, "low", 2).await?;
        let (high, _) = fixtures::task_with_priority(&pool, &template, &dag, "high", 10).await?;
        // Priority 0 but 30 hours old: 0 + 0.1 × 30 = 3 beats a fresh 2.
        let (old, _) = fixtures::task_with_priority(&pool, &template, &dag, "old", 0).await?;
        backdate(&pool, old, 30).await?;

        let first = claim(&pool, 1).await?;
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].task_id, first[0].priority), (high, 10));
        let rest = claim(&pool, 10).await?;
        let order: Vec<TaskId> = rest.iter().map(|c| c.task_id).collect();
        assert_eq!(order, vec![old, low]);
        assert!(
            (rest[0].computed_priority - 3.0).abs() < 0.01,
            "{}",
            rest[0].computed_priority
        );
        assert!(
            claim(&pool, 10).await?.is_empty(),
            "claimed tasks are not claimable again"
        );
        // A limit below 1 is the caller's bug; the function refuses it (SQLSTATE 22023).
        let err = claim::claim_ready_tasks(&pool, ClaimRequest::new(0, None), None)
            .await
            .unwrap_err();
        let code = match &err {
            tasker_db::error::DbError::Other(source) => source
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned()),
            _ => None,
        };
        assert_eq!(code.as_deref(), Some("22023"), "{err:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn claims_each_claimable_state_with_the_state_machine_transition() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(2);
        let template = fixtures::template(&pool, "states", &dag).await?;
        let now = Utc::now().trunc_subsecs(3);
        let processor = ProcessorId::new_v7();

        let (pending, _) = fixtures::task(&pool, &template, &dag, "pending").await?;
        // waiting_for_retry: due in one minute.
        let (retry, _) = fixtures::task(&pool, &template, &dag, "retry").await?;
        fixtures::force_task_state(
            &pool,
            retry,
            TaskState::WaitingForRetry,
            now,
            Some(now + TimeDelta::minutes(1)),
        )
        .await?;
        // waiting_for_dependencies with a ready step (the first step is pending, no parents).
        let (deps_ready, _) = fixtures::task(&pool, &template, &dag, "deps_ready").await?;
        fixtures::force_task_state(
            &pool,
            deps_ready,
            TaskState::WaitingForDependencies,
            now - TimeDelta::minutes(5),
            None,
        )
        .await?;
        // waiting_for_dependencies with nothing ready (the first step is running).
        let (deps_blocked, steps) = fixtures::task(&pool, &template, &dag, "deps_blocked").await?;
        fixtures::force_task_state(
            &pool,
            deps_blocked,
            TaskState::WaitingForDependencies,
            now - TimeDelta::minutes(5),
            None,
        )
        .await?;
        fixtures::set_step(
            &pool,
            steps[0],
            StepSetup {
                attempts: 1,
                ..StepSetup::new(StepState::InProgress)
            },
        )
        .await?;
        // waiting_for_dependencies for longer than the window: left to stale detection.
        let (deps_old, _) = fixtures::task(&pool, &template, &dag, "deps_old").await?;
        fixtures::force_task_state(
            &pool,
            deps_old,
            TaskState::WaitingForDependencies,
            now - TimeDelta::minutes(61),
            None,
        )
        .await?;
        // States that are never claimed.
        for (i, state) in [
            TaskState::Initializing,
            TaskState::StepsInProcess,
            TaskState::BlockedByFailures,
            TaskState::Complete,
            TaskState::Error,
        ]
        .into_iter()
        .enumerate()
        {
            let (task, _) = fixtures::task(&pool, &template, &dag, &format!("other{i}")).await?;
            fixtures::force_task_state(&pool, task, state, now, None).await?;
        }

        let request = ClaimRequest::new(100, Some(processor));
        let claimed = claim::claim_ready_tasks(&pool, request, Some(now)).await?;
        let ids: HashSet<TaskId> = claimed.iter().map(|c| c.task_id).collect();
        assert_eq!(
            ids,
            HashSet::from([pending, deps_ready]),
            "the retry is not due yet"
        );

        let later =
            claim::claim_ready_tasks(&pool, request, Some(now + TimeDelta::minutes(1))).await?;
        assert_eq!(
            later.iter().map(|c| c.task_id).collect::<Vec<_>>(),
            vec![retry]
        );

        // Each claim recorded exactly the transition tasker-state defines.
        let machine = TaskStateMachine::new();
        for (from, event) in [
            (TaskState::Pending, TaskEvent::Initialize),
            (
                TaskState::WaitingForDependencies,
                TaskEvent::DependenciesReady,
            ),
            (TaskState::WaitingForRetry, TaskEvent::RetryReady),
        ] {
            let expected = machine.apply(from, event)?;
            let claim = claimed
                .iter()
                .chain(&later)
                .find(|c| c.from_state == from)
                .expect("claimed");
            assert_eq!(claim.to_state, expected.to);
            assert_eq!(claim.lifecycle_event, expected.lifecycle_event);
            let (state, event, processor_uuid, most_recent): (
                TaskState,
                serde_json::Value,
                Option<uuid::Uuid>,
                bool,
            ) = sqlx::query_as(
                "SELECT t.state, tt.event, tt.processor_uuid, tt.sort_key = t.most_recent_sort_key \
                     FROM tasker.task_transitions tt JOIN tasker.tasks t USING (task_uuid) \
                     WHERE tt.task_transition_uuid = $1",
            )
            .bind(claim.transition_id.into_uuid())
            .fetch_one(&pool)
            .await?;
            assert_eq!(state, expected.to);
            assert_eq!(event, expected.event_json());
            assert_eq!(processor_uuid, Some(processor.into_uuid()));
            assert!(most_recent);
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_orchestrators_claim_disjoint_sets_covering_all() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "many", &dag).await?;
        let mut all = HashSet::new();
        for i in 0..1_000 {
            let (task, _) =
                fixtures::task_with_priority(&pool, &template, &dag, &format!("m{i}"), i % 7)
                    .await?;
            all.insert(task);
        }
        let barrier = Arc::new(Barrier::new(2));
        let mut handles = Vec::new();
        for _ in 0..2 {
            let pool = pool.clone();
            let barrier = barrier.clone();
            handles.push(tokio::spawn(async move {
                let processor = ProcessorId::new_v7();
                let mut mine = Vec::new();
                barrier.wait().await;
                loop {
                    // Claim inside a transaction that stays open briefly, as an orchestrator
                    // would, so the other one has to skip the locked rows.
                    let mut tx = pool.begin().await?;
                    let batch = claim::claim_ready_tasks(
                        &mut *tx,
                        ClaimRequest::new(10, Some(processor)),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    if batch.is_empty() {
                        break;
                    }
                    mine.extend(batch.into_iter().map(|c| c.task_id));
                }
                anyhow::Ok(mine)
            }));
        }
        let mut claimed: Vec<TaskId> = Vec::new();
        let mut sizes = Vec::new();
        for handle in handles {
            let mine = handle.await??;
            sizes.push(mine.len());
            claimed.extend(mine);
        }
        let unique: HashSet<TaskId> = claimed.iter().copied().collect();
        assert_eq!(claimed.len(), 1_000, "no task claimed twice ({sizes:?})");
        assert_eq!(unique, all, "every task claimed");
        assert!(
            sizes.iter().all(|&n| n > 0),
            "both orchestrators got work: {sizes:?}"
        );
        Ok(())
    })
    .await
}
