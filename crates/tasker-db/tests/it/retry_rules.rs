//! The retry rules in SQL equal tasker-state's: for any failed step and backoff policy, the
//! readiness function (`tasker.step_retry_eligible`, `tasker.step_backoff_ms` and the ready
//! flag built on them) gives what `is_retry_eligible`, `RetryContext::backoff` and
//! `RetryContext::next_retry_at` give for the same inputs, without jitter (which SQL cannot
//! recompute; see `readiness::BackoffParams`).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::PgPool;
use tasker_db::readiness::{self, BackoffParams};
use tasker_models::ids::{StepId, TaskId};
use tasker_state::{
    BackoffPolicy, JitterSample, RetryContext, RetryIneligible, StepState, is_retry_eligible,
};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

/// One failed step and the policy and time it is judged with.
#[derive(Debug, Clone)]
struct Case {
    retryable: bool,
    failure_retryable: bool,
    attempts: u32,
    max_attempts: u32,
    /// Microseconds after an epoch in 2026 (the database keeps microseconds).
    last_attempted_us: Option<i64>,
    requested_backoff_ms: Option<u64>,
    base_ms: u64,
    multiplier: f64,
    max_ms: u64,
    /// Where `now` falls: relative to the retry time Rust computes, or to the last attempt.
    now: Now,
}

#[derive(Debug, Clone, Copy)]
enum Now {
    /// This many microseconds after (or before) the retry time, to probe the boundary.
    AroundRetry(i64),
    /// This many milliseconds after the last attempt.
    AfterAttempt(i64),
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("a valid time")
}

fn cases() -> impl Strategy<Value = Case> {
    let attempts = prop_oneof![6 => 0_u32..12, 2 => 0_u32..200, 1 => 0_u32..100_000];
    let multiplier = prop_oneof![
        Just(1.0),
        Just(1.5),
        Just(2.0),
        Just(2.5),
        Just(3.0),
        Just(1.0001),
        1.0_f64..10.0,
    ];
    let base_ms = prop_oneof![Just(0_u64), 1_u64..20, 1_u64..100_000];
    let now = prop_oneof![
        (-2_i64..=2).prop_map(Now::AroundRetry),
        (-2_000_000_i64..2_000_000).prop_map(Now::AroundRetry),
        (0_i64..100_000_000).prop_map(Now::AfterAttempt),
    ];
    (
        (any::<bool>(), any::<bool>(), attempts, 0_u32..25),
        (
            proptest::option::of(0_i64..1_000_000_000_000),
            proptest::option::of(0_u64..10_000_000),
        ),
        (base_ms, multiplier, 0_u64..1_000_000_000),
        now,
    )
        .prop_map(
            |(
                (retryable, failure_retryable, attempts, max_attempts),
                (last_attempted_us, requested_backoff_ms),
                (base_ms, multiplier, extra_ms),
                now,
            )| {
                Case {
                    retryable,
                    failure_retryable,
                    attempts,
                    max_attempts,
                    // A step that made an attempt has its time (a CHECK of the table).
                    last_attempted_us: if attempts > 0 {
                        last_attempted_us.or(Some(0))
                    } else {
                        last_attempted_us
                    },
                    requested_backoff_ms,
                    base_ms,
                    multiplier,
                    max_ms: base_ms + extra_ms,
                    now,
                }
            },
        )
}

impl Case {
    fn last_attempted_at(&self) -> Option<DateTime<Utc>> {
        self.last_attempted_us
            .map(|us| epoch() + TimeDelta::microseconds(us))
    }

    /// tasker-state's view of the case, at `now`.
    fn context(&self, now: DateTime<Utc>) -> Result<RetryContext, TestCaseError> {
        let policy = BackoffPolicy::new(
            Duration::from_millis(self.base_ms),
            self.multiplier,
            Duration::from_millis(self.max_ms),
            0.0,
        )
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
        Ok(RetryContext {
            retryable: self.retryable && self.failure_retryable,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            last_attempted_at: self.last_attempted_at(),
            requested_backoff: self.requested_backoff_ms.map(Duration::from_millis),
            policy,
            jitter: JitterSample::NONE,
            now,
        })
    }

    /// The time to judge at.
    fn now(&self) -> Result<DateTime<Utc>, TestCaseError> {
        let last = self.last_attempted_at().unwrap_or_else(epoch);
        Ok(match self.now {
            Now::AroundRetry(us) => {
                let retry_at = self.context(last)?.next_retry_at().unwrap_or(last);
                retry_at + TimeDelta::microseconds(us)
            }
            Now::AfterAttempt(ms) => last + TimeDelta::milliseconds(ms),
        })
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Writes the case onto the task's one step, reads its readiness, and compares.
async fn check(
    pool: &PgPool,
    task: TaskId,
    step: StepId,
    case: &Case,
) -> Result<(), TestCaseError> {
    let fail = |error: anyhow::Error| TestCaseError::fail(format!("{error:#}"));
    let setup = StepSetup {
        retryable: case.retryable,
        failure_retryable: case.failure_retryable,
        attempts: i32::try_from(case.attempts).map_err(|e| fail(e.into()))?,
        max_attempts: i32::try_from(case.max_attempts).map_err(|e| fail(e.into()))?,
        last_attempted_at: case.last_attempted_at(),
        backoff_request_ms: case
            .requested_backoff_ms
            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        ..StepSetup::new(StepState::Error)
    };
    fixtures::set_step(pool, step, setup).await.map_err(fail)?;
    let now = case.now()?;
    let params = BackoffParams {
        base_ms: i64::try_from(case.base_ms).unwrap_or(i64::MAX),
        multiplier: case.multiplier,
        max_ms: i64::try_from(case.max_ms).unwrap_or(i64::MAX),
    };
    let rows = readiness::for_task(pool, task, params, Some(now))
        .await
        .map_err(|error| fail(error.into()))?;
    prop_assert_eq!(rows.len(), 1);
    let sql = &rows[0];

    let context = case.context(now)?;
    let verdict = is_retry_eligible(&context);
    let policy_eligible = !matches!(
        verdict,
        Err(RetryIneligible::NotRetryable { .. } | RetryIneligible::AttemptsExhausted { .. })
    );
    prop_assert_eq!(sql.retry_eligible, policy_eligible, "policy eligibility");
    prop_assert_eq!(sql.backoff_ms, millis(context.backoff()), "backoff");
    prop_assert_eq!(sql.next_retry_at, context.next_retry_at(), "next retry");
    prop_assert_eq!(
        sql.ready_for_execution,
        verdict.is_ok(),
        "ready: {:?}",
        verdict
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_retry_rules_equal_tasker_state() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "retry_rules", &dag).await?;
        let (task, steps) = fixtures::task(&pool, &template, &dag, "retry_rules").await?;
        let step = steps[0];
        let handle = tokio::runtime::Handle::current();
        let config = Config {
            cases: 1_000,
            failure_persistence: None,
            ..Config::default()
        };
        // proptest runs synchronously; each case reaches the database through this runtime.
        let outcome = tokio::task::block_in_place(|| {
            TestRunner::new(config).run(&cases(), |case| {
                handle.block_on(check(&pool, task, step, &case))
            })
        });
        outcome.map_err(|error| anyhow::anyhow!("{error}"))
    })
    .await
}
