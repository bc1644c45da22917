//! Step readiness over linear, diamond, tree and 1,000-step DAGs, and retry eligibility and
//! backoff at their boundaries.

use std::collections::HashMap;

use chrono::{Duration, SubsecRound as _, TimeDelta, Utc};
use sqlx::PgPool;
use tasker_db::readiness::{self, BackoffParams, StepReadiness};
use tasker_models::ids::{StepId, TaskId};
use tasker_state::StepState;

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

const BACKOFF: BackoffParams = BackoffParams {
    base_ms: 1_000,
    multiplier: 2.0,
    max_ms: 60_000,
};

async fn by_name(
    pool: &PgPool,
    task: TaskId,
    now: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<HashMap<String, StepReadiness>> {
    Ok(readiness::for_task(pool, task, BACKOFF, now)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect())
}

fn ready_names(rows: &HashMap<String, StepReadiness>) -> Vec<String> {
    let mut names: Vec<String> = rows
        .values()
        .filter(|r| r.ready_for_execution)
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names
}

async fn complete(pool: &PgPool, step: StepId) -> anyhow::Result<()> {
    fixtures::set_step(pool, step, StepSetup::new(StepState::Complete)).await
}

#[tokio::test]
async fn diamond_readiness_follows_completed_parents() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::diamond();
        let template = fixtures::template(&pool, "diamond", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "d1").await?;

        let rows = by_name(&pool, task, None).await?;
        assert_eq!(rows.len(), 4);
        assert_eq!(ready_names(&rows), ["a"]);
        assert!(rows.values().all(|r| r.current_state == StepState::Pending));
        assert!(rows.values().all(|r| r.retry_eligible && r.attempts == 0));
        assert_eq!(
            (rows["d"].total_parents, rows["d"].completed_parents),
            (2, 0)
        );
        assert_eq!(
            (rows["a"].total_parents, rows["a"].completed_parents),
            (0, 0)
        );
        assert!(rows["a"].dependencies_satisfied && !rows["b"].dependencies_satisfied);
        assert_eq!(
            rows["a"].next_retry_at, None,
            "never attempted: nothing to wait for"
        );

        complete(&pool, steps[0]).await?;
        let rows = by_name(&pool, task, None).await?;
        assert_eq!(ready_names(&rows), ["b", "c"]);
        assert_eq!(
            (rows["d"].total_parents, rows["d"].completed_parents),
            (2, 0)
        );
        assert!(!rows["a"].ready_for_execution, "complete is not ready");

        complete(&pool, steps[1]).await?;
        let rows = by_name(&pool, task, None).await?;
        assert_eq!(ready_names(&rows), ["c"]);
        assert_eq!(rows["d"].completed_parents, 1);

        // resolved_manually satisfies dependencies like complete does.
        fixtures::set_step(&pool, steps[2], StepSetup::new(StepState::ResolvedManually)).await?;
        let rows = by_name(&pool, task, None).await?;
        assert_eq!(ready_names(&rows), ["d"]);

        // Rows are ordered by step id; an unknown task has none.
        let ordered = readiness::for_task(&pool, task, BACKOFF, None).await?;
        assert!(ordered.windows(2).all(|w| w[0].step_id < w[1].step_id));
        assert!(
            readiness::for_task(&pool, TaskId::new_v7(), BACKOFF, None)
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn linear_and_tree_shapes() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(4);
        let template = fixtures::template(&pool, "linear", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "l1").await?;
        assert_eq!(ready_names(&by_name(&pool, task, None).await?), ["step_1"]);
        for (i, step) in steps.iter().enumerate() {
            complete(&pool, *step).await?;
            let expected: Vec<String> = dag.names.get(i + 1).cloned().into_iter().collect();
            assert_eq!(ready_names(&by_name(&pool, task, None).await?), expected);
        }

        let dag = Dag::tree();
        let template = fixtures::template(&pool, "tree", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "t1").await?;
        assert_eq!(ready_names(&by_name(&pool, task, None).await?), ["a"]);
        complete(&pool, steps[0]).await?;
        assert_eq!(ready_names(&by_name(&pool, task, None).await?), ["b", "c"]);
        complete(&pool, steps[2]).await?;
        assert_eq!(
            ready_names(&by_name(&pool, task, None).await?),
            ["b", "f", "g"]
        );
        Ok(())
    })
    .await
}

/// One retry case: the setup of a failed step and whether it is eligible and ready.
struct RetryCase {
    name: &'static str,
    setup: StepSetup,
    eligible: bool,
    ready: bool,
    next_retry_in_ms: Option<i64>,
}

#[tokio::test]
async fn retry_eligibility_and_backoff_boundaries() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "single", &dag).await?;
        // Whole milliseconds, so the database's microsecond timestamps compare exactly.
        let now = Utc::now().trunc_subsecs(3);
        let ms = TimeDelta::milliseconds;
        // Backoff after n attempts: min(1000 * 2^n, 60000) ms.
        let cases = [
            RetryCase {
                name: "1 attempt, 1999 ms after (backoff 2000 ms): waits",
                setup: StepSetup::failed(1, now - ms(1_999)),
                eligible: true,
                ready: false,
                next_retry_in_ms: Some(1),
            },
            RetryCase {
                name: "1 attempt, exactly 2000 ms after: ready at the boundary",
                setup: StepSetup::failed(1, now - ms(2_000)),
                eligible: true,
                ready: true,
                next_retry_in_ms: Some(0),
            },
            RetryCase {
                name: "2 attempts (backoff 4000 ms), 3 s after: waits",
                setup: StepSetup::failed(2, now - ms(3_000)),
                eligible: true,
                ready: false,
                next_retry_in_ms: Some(1_000),
            },
            RetryCase {
                name: "attempts = max_attempts - 1: eligible",
                setup: StepSetup {
                    max_attempts: 3,
                    ..StepSetup::failed(2, now - Duration::hours(1))
                },
                eligible: true,
                ready: true,
                next_retry_in_ms: Some(-3_600_000 + 4_000),
            },
            RetryCase {
                name: "attempts = max_attempts: exhausted",
                setup: StepSetup::failed(3, now - Duration::hours(1)),
                eligible: false,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 8_000),
            },
            RetryCase {
                name: "retryable = false after an attempt",
                setup: StepSetup {
                    retryable: false,
                    ..StepSetup::failed(1, now - Duration::hours(1))
                },
                eligible: false,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 2_000),
            },
            RetryCase {
                name: "the failure forbade retries",
                setup: StepSetup {
                    failure_retryable: false,
                    ..StepSetup::failed(1, now - Duration::hours(1))
                },
                eligible: false,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 2_000),
            },
            RetryCase {
                name: "never attempted, max_attempts 0, not retryable: the first attempt is allowed",
                setup: StepSetup {
                    max_attempts: 0,
                    retryable: false,
                    ..StepSetup::new(StepState::Error)
                },
                eligible: true,
                ready: true,
                next_retry_in_ms: None,
            },
            RetryCase {
                name: "max_attempts 0 after one attempt",
                setup: StepSetup {
                    max_attempts: 0,
                    ..StepSetup::failed(1, now - Duration::hours(1))
                },
                eligible: false,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 2_000),
            },
            RetryCase {
                name: "max_attempts 1 after one attempt",
                setup: StepSetup {
                    max_attempts: 1,
                    ..StepSetup::failed(1, now - Duration::hours(1))
                },
                eligible: false,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 2_000),
            },
            RetryCase {
                name: "requested backoff 120 s wins over the policy, 119 s after: waits",
                setup: StepSetup {
                    backoff_request_ms: Some(120_000),
                    ..StepSetup::failed(1, now - TimeDelta::seconds(119))
                },
                eligible: true,
                ready: false,
                next_retry_in_ms: Some(1_000),
            },
            RetryCase {
                name: "policy backoff is capped at max (2^9 s > 60 s), 61 s after",
                setup: StepSetup {
                    max_attempts: 20,
                    ..StepSetup::failed(9, now - TimeDelta::seconds(61))
                },
                eligible: true,
                ready: true,
                next_retry_in_ms: Some(-1_000),
            },
            RetryCase {
                name: "in_progress is never ready, even when eligible",
                setup: StepSetup {
                    attempts: 1,
                    last_attempted_at: Some(now - Duration::hours(1)),
                    ..StepSetup::new(StepState::InProgress)
                },
                eligible: true,
                ready: false,
                next_retry_in_ms: Some(-3_600_000 + 2_000),
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let (task, steps) = fixtures::task(&pool, &template, &dag, &format!("r{i}")).await?;
            fixtures::set_step(&pool, steps[0], case.setup).await?;
            let row = readiness::for_task(&pool, task, BACKOFF, Some(now)).await?.remove(0);
            assert_eq!(row.retry_eligible, case.eligible, "{}: eligible", case.name);
            assert_eq!(row.ready_for_execution, case.ready, "{}: ready", case.name);
            let next_in = row.next_retry_at.map(|at| (at - now).num_milliseconds());
            assert_eq!(next_in, case.next_retry_in_ms, "{}: next retry", case.name);
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_thousand_step_dag_in_mixed_states_matches_a_reference_model() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::layered(50, 20);
        assert_eq!(dag.names.len(), 1_000);
        let template = fixtures::template(&pool, "layered", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "big").await?;
        let now = Utc::now().trunc_subsecs(3);

        // Layers 0..20 complete, 20..25 a mix, the rest pending.
        let mut states = vec![StepState::Pending; steps.len()];
        for (i, state) in states.iter_mut().enumerate() {
            let level = i / 20;
            *state = match (level, i % 5) {
                (0..20, _) => StepState::Complete,
                (20..25, 0) => StepState::Complete,
                (20..25, 1) => StepState::ResolvedManually,
                (20..25, 2) => StepState::InProgress,
                (20..25, 3) => StepState::Error,
                _ => StepState::Pending,
            };
        }
        for (i, state) in states.iter().enumerate() {
            if *state == StepState::Pending {
                continue;
            }
            let setup = match state {
                // Errors alternate between "backoff elapsed" and "still waiting".
                StepState::Error if i.is_multiple_of(2) => {
                    StepSetup::failed(1, now - TimeDelta::seconds(10))
                }
                StepState::Error => StepSetup::failed(1, now),
                StepState::InProgress => StepSetup {
                    attempts: 1,
                    last_attempted_at: Some(now),
                    ..StepSetup::new(StepState::InProgress)
                },
                other => StepSetup::new(*other),
            };
            fixtures::set_step(&pool, steps[i], setup).await?;
        }

        let rows = readiness::for_task(&pool, task, BACKOFF, Some(now)).await?;
        assert_eq!(rows.len(), 1_000);
        let index: HashMap<StepId, usize> =
            steps.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut ready = 0;
        for row in &rows {
            let i = index[&row.step_id];
            let parents = dag.parents(i);
            let done = parents
                .iter()
                .filter(|&&p| {
                    matches!(states[p], StepState::Complete | StepState::ResolvedManually)
                })
                .count();
            let deps_ok = done == parents.len();
            let expected_ready = match states[i] {
                StepState::Pending => deps_ok,
                StepState::Error => deps_ok && i.is_multiple_of(2),
                _ => false,
            };
            assert_eq!(row.current_state, states[i], "step {i}");
            assert_eq!(row.total_parents as usize, parents.len(), "step {i}");
            assert_eq!(row.completed_parents as usize, done, "step {i}");
            assert_eq!(row.ready_for_execution, expected_ready, "step {i}");
            ready += usize::from(expected_ready);
        }
        let blocked = rows
            .iter()
            .filter(|r| r.current_state == StepState::Pending && !r.ready_for_execution)
            .count();
        assert!(
            ready > 0 && blocked > 0,
            "the mix has ready ({ready}) and blocked ({blocked}) steps"
        );

        // The execution context and claiming use the leaner get_step_ready_states: it must
        // agree with readiness on every step.
        let disagreements: i64 = sqlx::query_scalar(
            "SELECT count(*) \
             FROM tasker.get_step_readiness_status($1, $2, $3, $4, $5) r \
             FULL JOIN tasker.get_step_ready_states($1, $2, $3, $4, $5) s USING (workflow_step_uuid) \
             WHERE (r.current_state, r.retry_eligible, r.next_retry_at, r.ready_for_execution) \
                   IS DISTINCT FROM \
                   (s.current_state, s.retry_eligible, s.next_retry_at, s.ready_for_execution)",
        )
        .bind(task.into_uuid())
        .bind(BACKOFF.base_ms)
        .bind(BACKOFF.multiplier)
        .bind(BACKOFF.max_ms)
        .bind(now)
        .fetch_one(&pool)
        .await?;
        assert_eq!(disagreements, 0);
        let context = tasker_db::context::for_task(&pool, task, BACKOFF, Some(now))
            .await?
            .expect("context");
        assert_eq!(context.ready_steps as usize, ready);
        Ok(())
    })
    .await
}
