//! Tests for the step machine: the whole state × event table, guards through `apply`, records,
//! errors and properties.

use std::{collections::BTreeMap, time::Duration};

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::{
    BackoffPolicy, DependencyStatus, JitterSample, RetryContext, StepError,
    test_support::arb_step_event,
};

use StepEventKind as E;
use StepState as S;

const NON_TERMINAL: [StepState; 5] = [
    S::Pending,
    S::Enqueued,
    S::InProgress,
    S::EnqueuedForOrchestration,
    S::Error,
];

/// The table, written out by hand, with each transition's guard.
fn expected_table() -> Vec<(StepState, StepEventKind, StepState, Option<StepGuard>)> {
    let mut table = vec![
        (
            S::Pending,
            E::Enqueue,
            S::Enqueued,
            Some(StepGuard::DependenciesSatisfied),
        ),
        (
            S::Enqueued,
            E::Start,
            S::InProgress,
            Some(StepGuard::NotInProgress),
        ),
        (
            S::InProgress,
            E::EnqueueForOrchestration,
            S::EnqueuedForOrchestration,
            None,
        ),
        (
            S::EnqueuedForOrchestration,
            E::Complete,
            S::Complete,
            Some(StepGuard::ResultSucceeded),
        ),
        (S::EnqueuedForOrchestration, E::Fail, S::Error, None),
        (S::Enqueued, E::Fail, S::Error, None),
        (S::InProgress, E::Fail, S::Error, None),
        (
            S::Error,
            E::Retry,
            S::Pending,
            Some(StepGuard::RetryEligible),
        ),
        (S::Error, E::ResetForRetry, S::Pending, None),
    ];
    for from in NON_TERMINAL {
        table.push((from, E::Cancel, S::Cancelled, None));
        table.push((from, E::ResolveManually, S::ResolvedManually, None));
        table.push((from, E::CompleteManually, S::Complete, None));
    }
    table
}

fn expected(from: StepState, event: StepEventKind) -> Option<(StepState, Option<StepGuard>)> {
    expected_table()
        .into_iter()
        .find(|(f, e, _, _)| *f == from && *e == event)
        .map(|(_, _, to, guard)| (to, guard))
}

/// A context in which every guard passes.
fn permissive_context() -> StepGuardContext {
    StepGuardContext {
        dependencies: Some(DependencyStatus {
            total: 2,
            satisfied: 2,
        }),
        in_progress: false,
        result_success: Some(true),
        retry: Some(RetryContext {
            retryable: true,
            attempts: 1,
            max_attempts: 3,
            last_attempted_at: DateTime::from_timestamp(1_767_225_600, 0),
            requested_backoff: None,
            policy: BackoffPolicy::new(Duration::from_secs(1), 2.0, Duration::from_secs(60), 0.1)
                .unwrap(),
            jitter: JitterSample::NONE,
            now: DateTime::from_timestamp(1_767_225_700, 0).unwrap(),
        }),
    }
}

#[test]
fn every_state_event_pair_matches_the_expected_table() {
    let machine = StepStateMachine::new();
    for from in StepState::ALL {
        for event in StepEventKind::ALL {
            let got = machine.transition(from, event);
            match (got, expected(from, event)) {
                (Ok(to), Some((want, guard))) => {
                    assert_eq!(to, want, "{from} + {event}");
                    assert_eq!(
                        machine.guard(from, event).unwrap(),
                        guard,
                        "{from} + {event}"
                    );
                }
                (Err(error), None) => {
                    assert_eq!((error.from, error.event), (from, event));
                    assert!(machine.guard(from, event).is_err());
                }
                (got, want) => panic!("{from} + {event}: got {got:?}, expected {want:?}"),
            }
        }
    }
}

/// The whole table as a grid: one line per state, `event → target [guard]` per event.
#[test]
fn the_table_snapshot() {
    let machine = StepStateMachine::new();
    let mut out = String::new();
    for from in StepState::ALL {
        out.push_str(&format!("{from}:\n"));
        for event in StepEventKind::ALL {
            let cell = match (machine.transition(from, event), machine.guard(from, event)) {
                (Ok(to), Ok(Some(guard))) => format!("{to} [{guard}]"),
                (Ok(to), _) => to.to_string(),
                (Err(_), _) => "-".to_owned(),
            };
            out.push_str(&format!("  {event:<26} {cell}\n"));
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn at_most_one_rule_matches_any_pair() {
    for from in StepState::ALL {
        for event in StepEventKind::ALL {
            let matching = STEP_RULES
                .iter()
                .filter(|rule| rule.matches(from, event))
                .count();
            assert!(matching <= 1, "{from} + {event} matches {matching} rules");
        }
    }
}

#[test]
fn every_rule_effect_realizes_for_every_event_it_accepts() {
    for rule in STEP_RULES {
        for kind in rule.events {
            let event = kind.example();
            for effect in rule.effects {
                assert!(effect.realize(&event).is_some(), "{effect} for {kind}");
            }
        }
    }
}

#[test]
fn effects_of_each_transition() {
    let machine = StepStateMachine::new();
    let mut out = BTreeMap::new();
    for (from, event, _, _) in expected_table() {
        let record = machine.apply_unguarded(from, event.example()).unwrap();
        let effects: Vec<String> = record.effects.iter().map(|e| format!("{e:?}")).collect();
        out.insert(
            format!("{from} + {event}"),
            format!("{:<32} {}", record.lifecycle_event, effects.join(", "))
                .trim_end()
                .to_owned(),
        );
    }
    insta::assert_snapshot!(
        out.iter()
            .map(|(key, value)| format!("{key:<52} {value}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn start_counts_an_attempt_and_results_are_stored() {
    let machine = StepStateMachine::new();
    let start = machine
        .apply(
            S::Enqueued,
            StepEvent::Start {
                worker_id: uuid::Uuid::from_u128(1),
            },
            &StepGuardContext::default(),
        )
        .unwrap();
    assert_eq!(
        start.effects,
        [
            StepEffect::IncrementAttempts,
            StepEffect::SetLastAttemptedAt
        ]
    );
    assert_eq!(start.guard, Some(StepGuard::NotInProgress));

    let result = serde_json::json!({"success": false, "error": "card declined"});
    let handed_over = machine
        .apply_unguarded(
            S::InProgress,
            StepEvent::EnqueueForOrchestration {
                result: result.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        handed_over.effects,
        [StepEffect::StoreResult(result.clone())]
    );
    assert_eq!(
        handed_over.event_json(),
        serde_json::json!({"type": "enqueue_for_orchestration", "result": result})
    );
}

#[test]
fn a_failure_records_its_backoff_and_retryability() {
    let machine = StepStateMachine::new();
    let fail =
        |error| machine.apply_unguarded(S::EnqueuedForOrchestration, StepEvent::Fail { error });
    assert_eq!(
        fail(StepError::retryable("timeout").with_requested_backoff(Duration::from_secs(30)))
            .unwrap()
            .effects,
        [
            StepEffect::SetBackoff(Some(Duration::from_secs(30))),
            StepEffect::SetFailureRetryable(true)
        ]
    );
    assert_eq!(
        fail(StepError::permanent("invalid card number"))
            .unwrap()
            .effects,
        [
            StepEffect::SetBackoff(None),
            StepEffect::SetFailureRetryable(false)
        ]
    );
}

#[test]
fn completed_at_is_marked_exactly_when_entering_complete() {
    let machine = StepStateMachine::new();
    for (from, event, to, _) in expected_table() {
        let record = machine.apply_unguarded(from, event.example()).unwrap();
        let marks = record.effects.contains(&StepEffect::MarkCompletedAt);
        assert_eq!(marks, to == S::Complete, "{from} + {event}");
    }
}

#[test]
fn apply_checks_the_guard_and_apply_unguarded_names_it() {
    let machine = StepStateMachine::new();
    let blocked = StepGuardContext {
        dependencies: Some(DependencyStatus {
            total: 2,
            satisfied: 1,
        }),
        ..StepGuardContext::default()
    };
    let error = machine
        .apply(S::Pending, StepEvent::Enqueue, &blocked)
        .unwrap_err();
    assert!(matches!(
        &error,
        StepTransitionError::GuardFailed {
            from: S::Pending,
            event: E::Enqueue,
            error: GuardError::DependenciesUnsatisfied {
                total: 2,
                satisfied: 1
            },
        }
    ));
    let record = machine
        .apply_unguarded(S::Pending, StepEvent::Enqueue)
        .unwrap();
    assert_eq!(record.guard, Some(StepGuard::DependenciesSatisfied));
    assert_eq!(record.to, S::Enqueued);

    // A structurally invalid pair is refused before any guard runs.
    let error = machine
        .apply(S::Complete, StepEvent::Enqueue, &blocked)
        .unwrap_err();
    assert!(matches!(
        error,
        StepTransitionError::Invalid(InvalidStepTransition { .. })
    ));
}

#[test]
fn guarded_transitions_pass_with_a_permissive_context() {
    let machine = StepStateMachine::new();
    let context = permissive_context();
    for (from, event, to, _) in expected_table() {
        let record = machine.apply(from, event.example(), &context).unwrap();
        assert_eq!(record.to, to);
    }
}

#[test]
fn lifecycle_event_names() {
    let machine = StepStateMachine::new();
    let names = machine.lifecycle_events();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    assert!(names.iter().all(|name| name.starts_with("step.")));
    for (from, event, to, _) in expected_table() {
        let name = machine
            .apply_unguarded(from, event.example())
            .unwrap()
            .lifecycle_event;
        assert!(names.contains(&name));
        let by_target = match to {
            S::Complete => Some("step.completed"),
            S::Error => Some("step.failed"),
            S::Cancelled => Some("step.cancelled"),
            S::ResolvedManually => Some("step.resolved_manually"),
            _ => None,
        };
        if let Some(by_target) = by_target {
            assert_eq!(name, by_target, "{from} + {event}");
        }
    }
    let enqueue = machine
        .apply_unguarded(S::Pending, StepEvent::Enqueue)
        .unwrap();
    assert_eq!(enqueue.lifecycle_event, "step.enqueue_requested");
}

#[test]
fn who_performs_each_transition() {
    let machine = StepStateMachine::new();
    assert_eq!(
        machine.actors(S::Enqueued, E::Start).unwrap(),
        [Actor::Worker]
    );
    assert_eq!(
        machine
            .actors(S::InProgress, E::EnqueueForOrchestration)
            .unwrap(),
        [Actor::Worker]
    );
    assert_eq!(
        machine.actors(S::Pending, E::Enqueue).unwrap(),
        [Actor::Orchestration]
    );
    assert_eq!(
        machine.actors(S::Error, E::ResetForRetry).unwrap(),
        [Actor::Operator]
    );
    assert_eq!(
        machine.actors(S::Error, E::CompleteManually).unwrap(),
        [Actor::Operator]
    );
    assert_eq!(
        machine.actors(S::InProgress, E::Cancel).unwrap(),
        [Actor::Orchestration, Actor::Operator]
    );
    assert!(machine.actors(S::Complete, E::Cancel).is_err());
}

#[test]
fn invalid_transition_and_guard_messages() {
    let machine = StepStateMachine::new();
    let mut messages: Vec<String> = [
        (S::Pending, E::Start),
        (S::Complete, E::Retry),
        (S::Cancelled, E::CompleteManually),
        (S::ResolvedManually, E::Cancel),
        (S::Error, E::Complete),
        (S::EnqueuedForOrchestration, E::Retry),
    ]
    .iter()
    .map(|(from, event)| machine.transition(*from, *event).unwrap_err().to_string())
    .collect();
    let failed = machine
        .apply(
            S::EnqueuedForOrchestration,
            StepEvent::Complete,
            &StepGuardContext {
                result_success: Some(false),
                ..StepGuardContext::default()
            },
        )
        .unwrap_err();
    messages.push(failed.to_string());
    let mut exhausted = permissive_context();
    if let Some(retry) = exhausted.retry.as_mut() {
        retry.attempts = 3;
    }
    messages.push(
        machine
            .apply(S::Error, StepEvent::Retry, &exhausted)
            .unwrap_err()
            .to_string(),
    );
    insta::assert_snapshot!(messages.join("\n"));
}

fn arb_context() -> impl Strategy<Value = StepGuardContext> {
    (
        prop::option::of((0u32..4, 0u32..4)),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::option::of((any::<bool>(), 0u32..5, 0u32..5, 0i64..100)),
    )
        .prop_map(|(dependencies, in_progress, result_success, retry)| {
            let mut context = permissive_context();
            context.dependencies =
                dependencies.map(|(total, satisfied)| DependencyStatus { total, satisfied });
            context.in_progress = in_progress;
            context.result_success = result_success;
            context.retry = match (retry, context.retry.take()) {
                (Some((retryable, attempts, max_attempts, elapsed)), Some(base)) => {
                    Some(RetryContext {
                        retryable,
                        attempts,
                        max_attempts,
                        now: base.last_attempted_at.unwrap() + chrono::TimeDelta::seconds(elapsed),
                        ..base
                    })
                }
                _ => None,
            };
            context
        })
}

proptest! {
    /// Random event sequences with random guard contexts from every starting state: every
    /// accepted transition is in the expected table, guards decide exactly as checked on their
    /// own, and nothing leaves a terminal state.
    #[test]
    fn random_event_sequences_respect_the_table(
        start in prop::sample::select(StepState::ALL.to_vec()),
        steps in prop::collection::vec((arb_step_event(), arb_context()), 0..40),
    ) {
        let machine = StepStateMachine::new();
        let mut state = start;
        for (event, context) in steps {
            let kind = event.kind();
            let want = expected(state, kind);
            match machine.apply(state, event, &context) {
                Ok(record) => {
                    prop_assert!(!state.is_terminal(), "left terminal {} by {}", state, kind);
                    let (to, guard) = want.expect("accepted transitions are in the table");
                    prop_assert_eq!(record.to, to);
                    prop_assert_eq!(record.guard, guard);
                    if let Some(guard) = guard {
                        prop_assert!(guard.check(&context).is_ok());
                    }
                    state = record.to;
                }
                Err(StepTransitionError::Invalid(error)) => {
                    prop_assert_eq!(want, None);
                    prop_assert_eq!((error.from, error.event), (state, kind));
                }
                Err(StepTransitionError::GuardFailed { from, event, error }) => {
                    let (_, guard) = want.expect("guards run only for transitions in the table");
                    prop_assert_eq!((from, event), (state, kind));
                    prop_assert_eq!(Some(error.guard()), guard);
                    prop_assert_eq!(guard.map(|guard| guard.check(&context)), Some(Err(error)));
                }
            }
        }
    }
}

#[test]
fn every_effect_kind_is_listed_once_and_documented() {
    // Exhaustive: a new kind must be given a position here, in `ALL` and in the docs.
    let position = |kind: StepEffectKind| match kind {
        StepEffectKind::IncrementAttempts => 0,
        StepEffectKind::SetLastAttemptedAt => 1,
        StepEffectKind::StoreResult => 2,
        StepEffectKind::MarkCompletedAt => 3,
        StepEffectKind::SetBackoff => 4,
        StepEffectKind::SetFailureRetryable => 5,
        StepEffectKind::ResetAttempts => 6,
    };
    let positions: Vec<usize> = StepEffectKind::ALL.into_iter().map(position).collect();
    assert_eq!(positions, (0..7).collect::<Vec<_>>());
    let markdown = crate::docs::state_machine_markdown();
    for kind in StepEffectKind::ALL {
        assert!(!kind.description().is_empty());
        assert!(markdown.contains(&format!("| step | `{kind}` |")), "{kind}");
    }
}

#[test]
fn lifecycle_transitions_cover_the_table_exactly() {
    let machine = StepStateMachine::new();
    let transitions = machine.lifecycle_transitions();
    let table = expected_table();
    for (from, event, to, _) in &table {
        let name = find(*from, *event).unwrap().lifecycle_event;
        assert!(
            transitions
                .iter()
                .any(|t| t.name == name && t.connects(from, to)),
            "{from} + {event}"
        );
    }
    for transition in &transitions {
        for from in &transition.from {
            assert!(
                table
                    .iter()
                    .any(|(f, _, to, _)| f == from && *to == transition.to),
                "{} from {from}",
                transition.name
            );
        }
    }
}
