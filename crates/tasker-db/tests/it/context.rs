//! Task execution context: counts and every execution-status precedence case.

use chrono::{SubsecRound as _, TimeDelta, Utc};
use tasker_db::context::{self, ExecutionContext, ExecutionStatus};
use tasker_db::readiness::BackoffParams;
use tasker_models::ids::TaskId;
use tasker_state::{StepState, TaskState};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

/// One precedence case: the states of a diamond's steps (a, b, c, d) and the expected status.
struct Case {
    name: &'static str,
    steps: [StepSetup; 4],
    status: ExecutionStatus,
    ready: i32,
}

fn s(state: StepState) -> StepSetup {
    StepSetup::new(state)
}

#[tokio::test]
async fn execution_status_precedence() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::diamond();
        let template = fixtures::template(&pool, "diamond", &dag).await?;
        let now = Utc::now().trunc_subsecs(3);
        let long_ago = now - TimeDelta::hours(1);
        let permanent = || StepSetup::failed(3, long_ago);
        let retry_due = || StepSetup::failed(1, long_ago);
        let retry_waiting = || StepSetup::failed(1, now);
        use StepState::*;
        let cases = [
            Case {
                name: "all pending: the root is ready",
                steps: [s(Pending), s(Pending), s(Pending), s(Pending)],
                status: ExecutionStatus::HasReadySteps,
                ready: 1,
            },
            Case {
                name: "all complete",
                steps: [s(Complete), s(Complete), s(ResolvedManually), s(Complete)],
                status: ExecutionStatus::AllComplete,
                ready: 0,
            },
            Case {
                name: "a permanent failure wins over a ready step",
                steps: [s(Complete), permanent(), s(Pending), s(Pending)],
                status: ExecutionStatus::BlockedByFailures,
                ready: 1,
            },
            Case {
                name: "a permanent failure wins over a due retry",
                steps: [s(Complete), permanent(), retry_due(), s(Pending)],
                status: ExecutionStatus::BlockedByFailures,
                ready: 1,
            },
            Case {
                name: "a cancelled step blocks the task",
                steps: [s(Complete), s(Cancelled), s(Complete), s(Pending)],
                status: ExecutionStatus::BlockedByFailures,
                ready: 0,
            },
            Case {
                name: "a retry whose backoff elapsed is ready",
                steps: [s(Complete), retry_due(), s(Complete), s(Pending)],
                status: ExecutionStatus::HasReadySteps,
                ready: 1,
            },
            Case {
                name: "ready steps win over processing ones",
                steps: [s(Complete), s(InProgress), s(Pending), s(Pending)],
                status: ExecutionStatus::HasReadySteps,
                ready: 1,
            },
            Case {
                name: "in progress: processing",
                steps: [s(Complete), s(InProgress), s(Enqueued), s(Pending)],
                status: ExecutionStatus::Processing,
                ready: 0,
            },
            Case {
                name: "a result awaiting orchestration is processing",
                steps: [
                    s(Complete),
                    s(EnqueuedForOrchestration),
                    s(Complete),
                    s(Pending),
                ],
                status: ExecutionStatus::Processing,
                ready: 0,
            },
            Case {
                name: "processing wins over a retry still in backoff",
                steps: [s(Complete), s(InProgress), retry_waiting(), s(Pending)],
                status: ExecutionStatus::Processing,
                ready: 0,
            },
            Case {
                name: "only a retry in backoff left: waiting_for_retry",
                steps: [s(Complete), s(Complete), retry_waiting(), s(Pending)],
                status: ExecutionStatus::WaitingForRetry,
                ready: 0,
            },
            Case {
                name: "root failed retryably at attempt 1 and waits",
                steps: [retry_waiting(), s(Pending), s(Pending), s(Pending)],
                status: ExecutionStatus::WaitingForRetry,
                ready: 0,
            },
            Case {
                name: "three complete and one permanently failed",
                steps: [s(Complete), s(Complete), s(Complete), permanent()],
                status: ExecutionStatus::BlockedByFailures,
                ready: 0,
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let (task, steps) = fixtures::task(&pool, &template, &dag, &format!("x{i}")).await?;
            for (step, setup) in steps.iter().zip(case.steps) {
                fixtures::set_step(&pool, *step, setup).await?;
            }
            let context = context_of(&pool, task, now).await?;
            assert_eq!(context.execution_status, case.status, "{}", case.name);
            assert_eq!(context.ready_steps, case.ready, "{}: ready", case.name);
            assert_eq!(context.total_steps, 4, "{}", case.name);
        }
        Ok(())
    })
    .await
}

async fn context_of(
    pool: &sqlx::PgPool,
    task: TaskId,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<ExecutionContext> {
    context::for_task(pool, task, BackoffParams::DEFAULT, Some(now))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no context for {task}"))
}

#[tokio::test]
async fn counts_percentages_and_next_retry() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let now = Utc::now().trunc_subsecs(3);
        let dag = Dag::linear(4);
        let template = fixtures::template(&pool, "linear", &dag).await?;

        let (task, steps) = fixtures::task(&pool, &template, &dag, "c1").await?;
        let fresh = context_of(&pool, task, now).await?;
        assert_eq!(fresh.task_state, TaskState::Pending);
        assert_eq!(fresh.named_task_id, template.named_task_id);
        assert_eq!(
            (fresh.total_steps, fresh.pending_steps, fresh.ready_steps),
            (4, 4, 1)
        );
        assert_eq!(fresh.completion_percentage, 0.0);
        assert_eq!(
            fresh.execution_status.recommended_action(),
            "execute_ready_steps"
        );

        fixtures::set_step(&pool, steps[0], s(StepState::Complete)).await?;
        fixtures::set_step(
            &pool,
            steps[1],
            StepSetup::failed(2, now - TimeDelta::seconds(1)),
        )
        .await?;
        let waiting = context_of(&pool, task, now).await?;
        assert_eq!(waiting.execution_status, ExecutionStatus::WaitingForRetry);
        assert_eq!(
            (waiting.failed_steps, waiting.retryable_failed_steps),
            (1, 1)
        );
        assert_eq!(waiting.permanently_failed_steps, 0);
        assert_eq!(waiting.completion_percentage, 25.0);
        // Two attempts: backoff 4 s after the last attempt, 1 s ago.
        assert_eq!(waiting.next_retry_at, Some(now + TimeDelta::seconds(3)));

        for step in &steps {
            fixtures::set_step(&pool, *step, s(StepState::Complete)).await?;
        }
        let done = context_of(&pool, task, now).await?;
        assert_eq!(done.execution_status, ExecutionStatus::AllComplete);
        assert_eq!(done.completion_percentage, 100.0);
        assert_eq!(done.execution_status.recommended_action(), "finalize_task");

        // Thirds round to two decimals.
        let dag3 = Dag::linear(3);
        let template3 = fixtures::template(&pool, "three", &dag3).await?;
        let (task3, steps3) = fixtures::task(&pool, &template3, &dag3, "c3").await?;
        fixtures::set_step(&pool, steps3[0], s(StepState::Complete)).await?;
        assert_eq!(
            context_of(&pool, task3, now).await?.completion_percentage,
            33.33
        );

        // A task without steps waits for dependencies at 0%; an unknown task has no context.
        let empty = Dag {
            names: vec![],
            edges: vec![],
        };
        let template0 = fixtures::template(&pool, "empty", &empty).await?;
        let (task0, _) = fixtures::task(&pool, &template0, &empty, "c0").await?;
        let zero = context_of(&pool, task0, now).await?;
        assert_eq!(
            zero.execution_status,
            ExecutionStatus::WaitingForDependencies
        );
        assert_eq!((zero.total_steps, zero.completion_percentage), (0, 0.0));
        assert!(
            context::for_task(&pool, TaskId::new_v7(), BackoffParams::DEFAULT, None)
                .await?
                .is_none()
        );
        Ok(())
    })
    .await
}
