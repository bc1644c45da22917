//! Health counts stay exact under concurrency: whatever writes the tables (creation, claims,
//! single and batch transitions, deletes, truncation, compaction running alongside), the counts
//! equal a `GROUP BY state` over the tables in the same snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{Connection as _, PgConnection, PgPool};
use tasker_db::claim::{self, ClaimRequest};
use tasker_db::health::{self, HealthCounts};
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepScope, StepTransition};
use tasker_db::task::{self, TaskScope, TaskTransition};
use tasker_state::{StepEvent, StepState, TaskEvent, TaskState};
use tokio::sync::Barrier;

use crate::fixtures::{self, Dag};
use crate::harness;

/// The counts a `GROUP BY state` over the tables gives, in the same form as [`HealthCounts`].
async fn counted(conn: &mut PgConnection) -> anyhow::Result<HealthCounts> {
    let tasks: Vec<(TaskState, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM tasker.tasks GROUP BY state")
            .fetch_all(&mut *conn)
            .await?;
    let steps: Vec<(StepState, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM tasker.workflow_steps GROUP BY state")
            .fetch_all(&mut *conn)
            .await?;
    let mut counts = health::counts(&mut *conn).await?;
    for value in counts.tasks.values_mut() {
        *value = 0;
    }
    for value in counts.steps.values_mut() {
        *value = 0;
    }
    counts.tasks.extend(tasks);
    counts.steps.extend(steps);
    Ok(counts)
}

/// Compares the health counts with the tables in one REPEATABLE READ snapshot.
async fn assert_exact(pool: &PgPool) -> anyhow::Result<HealthCounts> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let reported = health::counts(&mut *tx).await?;
    let expected = counted(&mut tx).await?;
    tx.commit().await?;
    assert_eq!(reported, expected, "health counts against GROUP BY");
    Ok(reported)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_stay_exact_under_concurrent_writes() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let shape = Arc::new(Dag::diamond());
        let template = Arc::new(fixtures::template(&pool, "health", &shape).await?);

        const CREATORS: usize = 4;
        const TASKS_PER_CREATOR: usize = 12;
        const ROUNDS: usize = 12;
        // creators, 2 claimers, 2 task batchers, 2 step batchers, 1 compactor, 1 checker
        let actors = CREATORS + 8;
        let barrier = Arc::new(Barrier::new(actors));
        let mut handles = Vec::new();
        for creator in 0..CREATORS {
            let (pool, barrier, shape, template) = (
                pool.clone(),
                barrier.clone(),
                shape.clone(),
                template.clone(),
            );
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..TASKS_PER_CREATOR {
                    fixtures::task(&pool, &template, &shape, &format!("c{creator}-{i}")).await?;
                }
                anyhow::Ok(())
            }));
        }
        for _ in 0..2 {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..ROUNDS {
                    let mut tx = pool.begin().await?;
                    claim::claim_ready_tasks(&mut *tx, ClaimRequest::new(3, None), None).await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            }));
        }
        for _ in 0..2 {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..ROUNDS {
                    let initializing = TaskScope::new()
                        .in_state(TaskState::Initializing)
                        .limit(4)
                        .all(&pool)
                        .await?;
                    let batch = initializing
                        .iter()
                        .map(|t| TaskTransition {
                            task_id: t.task_id,
                            expected: TaskState::Initializing,
                            event: TaskEvent::ReadyStepsFound { count: 1 },
                            processor_id: None,
                            metadata: None,
                        })
                        .collect();
                    // Both batchers race for the same tasks: losers get conflicts, not errors.
                    let mut conn = pool.acquire().await?;
                    task::transition_batch(&mut conn, batch).await?;
                }
                anyhow::Ok(())
            }));
        }
        for _ in 0..2 {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..ROUNDS {
                    let pending = StepScope::new().pending().limit(8).all(&pool).await?;
                    let batch = pending
                        .iter()
                        .map(|s| StepTransition {
                            step_id: s.step_id,
                            expected: StepState::Pending,
                            event: StepEvent::Enqueue,
                            metadata: None,
                        })
                        .collect();
                    let mut conn = pool.acquire().await?;
                    step::transition_batch(&mut conn, batch, None, BackoffParams::DEFAULT).await?;
                }
                anyhow::Ok(())
            }));
        }
        {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..ROUNDS {
                    health::compact(&pool).await?;
                }
                anyhow::Ok(())
            }));
        }
        {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..ROUNDS {
                    assert_exact(&pool).await?;
                }
                anyhow::Ok(())
            }));
        }
        for handle in handles {
            handle.await??;
        }

        let counts = assert_exact(&pool).await?;
        assert_eq!(counts.total_tasks(), (CREATORS * TASKS_PER_CREATOR) as i64);
        assert_eq!(
            counts.total_steps(),
            (CREATORS * TASKS_PER_CREATOR * 4) as i64
        );
        assert!(
            counts.tasks_in(TaskState::Pending) < counts.total_tasks(),
            "{counts:?}"
        );
        assert!(counts.steps_in(StepState::Enqueued) > 0, "{counts:?}");

        // Deletes (cascading to the steps), a compaction, then truncation.
        sqlx::query(
            "DELETE FROM tasker.tasks WHERE task_uuid IN \
             (SELECT task_uuid FROM tasker.tasks ORDER BY task_uuid LIMIT 5)",
        )
        .execute(&pool)
        .await?;
        let counts = assert_exact(&pool).await?;
        assert_eq!(
            counts.total_tasks(),
            (CREATORS * TASKS_PER_CREATOR - 5) as i64
        );
        assert!(health::compact(&pool).await?);
        let rows: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM tasker.task_state_counts) \
                  + (SELECT count(*) FROM tasker.step_state_counts)",
        )
        .fetch_one(&pool)
        .await?;
        assert!(
            rows <= 20,
            "one row per state at most after compaction, got {rows}"
        );
        assert_eq!(assert_exact(&pool).await?, counts);

        sqlx::query("TRUNCATE tasker.tasks CASCADE")
            .execute(&pool)
            .await?;
        let counts = assert_exact(&pool).await?;
        assert_eq!((counts.total_tasks(), counts.total_steps()), (0, 0));
        fixtures::task(&pool, &template, &shape, "after-truncate").await?;
        let counts = assert_exact(&pool).await?;
        assert_eq!(
            (
                counts.tasks_in(TaskState::Pending),
                counts.steps_in(StepState::Pending)
            ),
            (1, 4)
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_is_skipped_above_read_committed_and_while_another_runs() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let shape = Dag::linear(2);
        let template = fixtures::template(&pool, "compact", &shape).await?;
        fixtures::task(&pool, &template, &shape, "one").await?;

        let mut first = pool.begin().await?;
        assert!(health::compact(&mut *first).await?);
        // The first compactor holds the lock until it commits: a second one skips.
        assert!(!health::compact(&pool).await?);
        first.commit().await?;
        assert!(health::compact(&pool).await?);

        let mut repeatable = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *repeatable)
            .await?;
        assert!(!health::compact(&mut *repeatable).await?);
        repeatable.rollback().await?;

        let counts = assert_exact(&pool).await?;
        let expected: BTreeMap<TaskState, i64> = counts
            .tasks
            .keys()
            .map(|&state| (state, i64::from(state == TaskState::Pending)))
            .collect();
        assert_eq!(counts.tasks, expected);
        Ok(())
    })
    .await
}

/// The autovacuum check reads the server's setting.
#[tokio::test]
async fn reports_whether_the_server_runs_autovacuum() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'track_counts')",
        )
        .fetch_all(&pool)
        .await?;
        assert_eq!(settings.len(), 2);
        let on = settings.iter().all(|(_, setting)| setting == "on");
        assert_eq!(health::autovacuum_enabled(&pool).await?, on);
        Ok(())
    })
    .await
}
