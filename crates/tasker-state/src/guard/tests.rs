//! Tests for each step guard, passing and failing, and its messages.

use std::time::Duration;

use chrono::{DateTime, TimeDelta};

use super::*;
use crate::{BackoffPolicy, JitterSample};

fn retry_context(attempts: u32, max_attempts: u32, elapsed_secs: i64) -> RetryContext {
    let last = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    RetryContext {
        retryable: true,
        attempts,
        max_attempts,
        last_attempted_at: Some(last),
        requested_backoff: None,
        policy: BackoffPolicy::new(Duration::from_secs(1), 2.0, Duration::from_secs(60), 0.0)
            .unwrap(),
        jitter: JitterSample::NONE,
        now: last + TimeDelta::seconds(elapsed_secs),
    }
}

#[test]
fn dependencies_satisfied() {
    let with = |dependencies| StepGuardContext {
        dependencies,
        ..StepGuardContext::default()
    };
    let guard = StepGuard::DependenciesSatisfied;
    assert_eq!(
        guard.check(&with(Some(DependencyStatus {
            total: 0,
            satisfied: 0
        }))),
        Ok(())
    );
    assert_eq!(
        guard.check(&with(Some(DependencyStatus {
            total: 3,
            satisfied: 3
        }))),
        Ok(())
    );
    assert_eq!(
        guard.check(&with(Some(DependencyStatus {
            total: 3,
            satisfied: 2
        }))),
        Err(GuardError::DependenciesUnsatisfied {
            total: 3,
            satisfied: 2
        })
    );
    assert_eq!(
        guard.check(&with(None)),
        Err(GuardError::DependencyStatusMissing)
    );
}

#[test]
fn not_in_progress() {
    let guard = StepGuard::NotInProgress;
    assert_eq!(guard.check(&StepGuardContext::default()), Ok(()));
    let claimed = StepGuardContext {
        in_progress: true,
        ..StepGuardContext::default()
    };
    assert_eq!(guard.check(&claimed), Err(GuardError::AlreadyInProgress));
}

#[test]
fn result_succeeded() {
    let with = |result_success| StepGuardContext {
        result_success,
        ..StepGuardContext::default()
    };
    let guard = StepGuard::ResultSucceeded;
    assert_eq!(guard.check(&with(Some(true))), Ok(()));
    assert_eq!(
        guard.check(&with(Some(false))),
        Err(GuardError::ResultFailed)
    );
    assert_eq!(guard.check(&with(None)), Err(GuardError::NoResult));
}

#[test]
fn retry_eligible_at_its_boundaries() {
    let with = |retry| StepGuardContext {
        retry,
        ..StepGuardContext::default()
    };
    let guard = StepGuard::RetryEligible;
    // attempts 2 of 3, backoff 2^2 = 4 s.
    assert_eq!(guard.check(&with(Some(retry_context(2, 3, 4)))), Ok(()));
    assert_eq!(guard.check(&with(Some(retry_context(2, 3, 5)))), Ok(()));
    assert!(matches!(
        guard.check(&with(Some(retry_context(2, 3, 3)))),
        Err(GuardError::RetryIneligible(
            RetryIneligible::BackoffPending { .. }
        ))
    ));
    assert!(matches!(
        guard.check(&with(Some(retry_context(3, 3, 3600)))),
        Err(GuardError::RetryIneligible(
            RetryIneligible::AttemptsExhausted { .. }
        ))
    ));
    let mut not_retryable = retry_context(1, 3, 3600);
    not_retryable.retryable = false;
    assert!(matches!(
        guard.check(&with(Some(not_retryable))),
        Err(GuardError::RetryIneligible(
            RetryIneligible::NotRetryable { .. }
        ))
    ));
    // The first attempt is allowed whatever max_attempts says (its 2^0 = 1 s backoff elapsed).
    assert_eq!(guard.check(&with(Some(retry_context(0, 0, 1)))), Ok(()));
    assert!(guard.check(&with(Some(retry_context(1, 0, 3600)))).is_err());
    assert_eq!(guard.check(&with(Some(retry_context(0, 1, 1)))), Ok(()));
    assert!(guard.check(&with(Some(retry_context(1, 1, 3600)))).is_err());
    assert_eq!(
        guard.check(&with(None)),
        Err(GuardError::RetryContextMissing)
    );
}

#[test]
fn every_error_names_its_guard() {
    let errors = [
        GuardError::DependenciesUnsatisfied {
            total: 5,
            satisfied: 2,
        },
        GuardError::DependencyStatusMissing,
        GuardError::AlreadyInProgress,
        GuardError::NoResult,
        GuardError::ResultFailed,
        GuardError::RetryContextMissing,
        GuardError::RetryIneligible(RetryIneligible::AttemptsExhausted {
            attempts: 3,
            max_attempts: 3,
        }),
    ];
    let mut out = String::new();
    for error in &errors {
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("guard `{}` failed: ", error.guard())),
            "{message}"
        );
        out.push_str(&message);
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

#[test]
fn guard_names_and_descriptions() {
    let names: Vec<&str> = StepGuard::ALL.iter().map(|guard| guard.as_str()).collect();
    assert_eq!(
        names,
        [
            "dependencies_satisfied",
            "not_in_progress",
            "result_succeeded",
            "retry_eligible"
        ]
    );
    for guard in StepGuard::ALL {
        assert_eq!(guard.to_string(), guard.as_str());
        assert!(!guard.description().is_empty());
    }
}
