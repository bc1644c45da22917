//! Tests for the task machine: the whole state × event table, records, errors and properties.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::test_support::arb_task_event;

use TaskEventKind as E;
use TaskState as S;

/// The table, written out by hand (every "any non-terminal" row expanded).
const EXPECTED: &[(TaskState, TaskEventKind, TaskState)] = &[
    (S::Pending, E::Initialize, S::Initializing),
    (S::Initializing, E::ReadyStepsFound, S::EnqueuingSteps),
    (S::Initializing, E::NoStepsFound, S::Complete),
    (
        S::Initializing,
        E::NoDependenciesReady,
        S::WaitingForDependencies,
    ),
    (S::EnqueuingSteps, E::StepsEnqueued, S::StepsInProcess),
    (S::EnqueuingSteps, E::EnqueueFailed, S::Error),
    (S::StepsInProcess, E::StepCompleted, S::EvaluatingResults),
    (S::StepsInProcess, E::StepFailed, S::EvaluatingResults),
    (
        S::StepsInProcess,
        E::AllStepsCompleted,
        S::EvaluatingResults,
    ),
    (S::EvaluatingResults, E::AllStepsSuccessful, S::Complete),
    (S::EvaluatingResults, E::ReadyStepsFound, S::EnqueuingSteps),
    (
        S::EvaluatingResults,
        E::StepsStillProcessing,
        S::StepsInProcess,
    ),
    (
        S::EvaluatingResults,
        E::NoDependenciesReady,
        S::WaitingForDependencies,
    ),
    (S::EvaluatingResults, E::RetryScheduled, S::WaitingForRetry),
    (
        S::EvaluatingResults,
        E::PermanentFailure,
        S::BlockedByFailures,
    ),
    (
        S::WaitingForDependencies,
        E::DependenciesReady,
        S::EvaluatingResults,
    ),
    (S::WaitingForRetry, E::RetryReady, S::EnqueuingSteps),
    (S::BlockedByFailures, E::GiveUp, S::Error),
    (S::Initializing, E::StalenessTimeout, S::Error),
    (S::EnqueuingSteps, E::StalenessTimeout, S::Error),
    (S::StepsInProcess, E::StalenessTimeout, S::Error),
    (S::EvaluatingResults, E::StalenessTimeout, S::Error),
    (S::WaitingForDependencies, E::StalenessTimeout, S::Error),
    (S::WaitingForRetry, E::StalenessTimeout, S::Error),
    (
        S::BlockedByFailures,
        E::ManualResolution,
        S::ResolvedManually,
    ),
    (
        S::BlockedByFailures,
        E::RetryFailedSteps,
        S::EvaluatingResults,
    ),
    (S::Error, E::Reset, S::Pending),
    (S::Pending, E::Cancel, S::Cancelled),
    (S::Initializing, E::Cancel, S::Cancelled),
    (S::EnqueuingSteps, E::Cancel, S::Cancelled),
    (S::StepsInProcess, E::Cancel, S::Cancelled),
    (S::EvaluatingResults, E::Cancel, S::Cancelled),
    (S::WaitingForDependencies, E::Cancel, S::Cancelled),
    (S::WaitingForRetry, E::Cancel, S::Cancelled),
    (S::BlockedByFailures, E::Cancel, S::Cancelled),
];

fn expected(from: TaskState, event: TaskEventKind) -> Option<TaskState> {
    EXPECTED
        .iter()
        .find(|(f, e, _)| *f == from && *e == event)
        .map(|(_, _, to)| *to)
}

#[test]
fn every_state_event_pair_matches_the_expected_table() {
    let machine = TaskStateMachine::new();
    for from in TaskState::ALL {
        for event in TaskEventKind::ALL {
            match (machine.transition(from, event), expected(from, event)) {
                (Ok(to), Some(want)) => assert_eq!(to, want, "{from} + {event}"),
                (Err(error), None) => {
                    assert_eq!((error.from, error.event), (from, event));
                }
                (got, want) => panic!("{from} + {event}: got {got:?}, expected {want:?}"),
            }
        }
    }
}

/// The whole table as a grid: one line per state, `event → target` for every accepted event.
#[test]
fn the_table_snapshot() {
    let machine = TaskStateMachine::new();
    let mut out = String::new();
    for from in TaskState::ALL {
        out.push_str(&format!("{from}:\n"));
        for event in TaskEventKind::ALL {
            let cell = match machine.transition(from, event) {
                Ok(to) => to.to_string(),
                Err(_) => "-".to_owned(),
            };
            out.push_str(&format!("  {event:<24} {cell}\n"));
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn at_most_one_rule_matches_any_pair() {
    for from in TaskState::ALL {
        for event in TaskEventKind::ALL {
            let matching = TASK_RULES
                .iter()
                .filter(|rule| rule.matches(from, event))
                .count();
            assert!(matching <= 1, "{from} + {event} matches {matching} rules");
        }
    }
}

#[test]
fn the_contract_compiles_and_runs_as_written() -> Result<(), InvalidTaskTransition> {
    let machine = TaskStateMachine::new();
    let next = machine.transition(TaskState::Pending, TaskEvent::Initialize)?;
    assert_eq!(next, TaskState::Initializing);
    // The happy path of the issue: Pending → Initializing → EnqueuingSteps → StepsInProcess →
    // (results) → Complete.
    let mut state = TaskState::Pending;
    for event in [
        TaskEvent::Initialize,
        TaskEvent::ReadyStepsFound { count: 1 },
        TaskEvent::StepsEnqueued { step_ids: vec![] },
        TaskEvent::AllStepsCompleted,
        TaskEvent::AllStepsSuccessful,
    ] {
        state = machine.transition(state, &event)?;
    }
    assert_eq!(state, TaskState::Complete);
    Ok(())
}

#[test]
fn records_carry_the_event_json_effects_and_lifecycle_event() {
    let machine = TaskStateMachine::new();
    let step_id = uuid::Uuid::from_u128(7);
    let record = machine
        .apply(
            TaskState::EnqueuingSteps,
            TaskEvent::StepsEnqueued {
                step_ids: vec![step_id],
            },
        )
        .unwrap();
    assert_eq!(record.from, TaskState::EnqueuingSteps);
    assert_eq!(record.to, TaskState::StepsInProcess);
    assert_eq!(
        record.event_json(),
        serde_json::json!({"type": "steps_enqueued", "step_ids": [step_id]})
    );
    assert!(record.effects.is_empty());
    assert_eq!(record.lifecycle_event, "task.steps_enqueued");
}

#[test]
fn completed_at_is_marked_exactly_when_entering_complete() {
    let machine = TaskStateMachine::new();
    for (from, event, to) in EXPECTED {
        let record = machine.apply(*from, event.example()).unwrap();
        assert_eq!(record.to, *to);
        let marks = record.effects.contains(&TaskEffect::MarkCompletedAt);
        assert_eq!(marks, *to == TaskState::Complete, "{from} + {event}");
    }
}

#[test]
fn lifecycle_event_names() {
    let machine = TaskStateMachine::new();
    let mut by_transition = BTreeMap::new();
    for (from, event, _) in EXPECTED {
        let record = machine.apply(*from, event.example()).unwrap();
        assert!(
            record.lifecycle_event.starts_with("task."),
            "{}",
            record.lifecycle_event
        );
        by_transition.insert(format!("{from} + {event}"), record.lifecycle_event);
    }
    insta::assert_snapshot!(
        by_transition
            .iter()
            .map(|(key, name)| format!("{key:<50} {name}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The list of names is complete and free of duplicates.
    let names = machine.lifecycle_events();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    for name in by_transition.values() {
        assert!(names.contains(name));
    }
    // Names agree with the target state for the terminal ones, whichever event leads there.
    for (from, event, to) in EXPECTED {
        let name = machine
            .apply(*from, event.example())
            .unwrap()
            .lifecycle_event;
        let expected = match to {
            TaskState::Complete => Some("task.completed"),
            TaskState::Error => Some("task.failed"),
            TaskState::Cancelled => Some("task.cancelled"),
            TaskState::ResolvedManually => Some("task.resolved_manually"),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(name, expected, "{from} + {event}");
        }
    }
}

#[test]
fn who_performs_each_transition() {
    let machine = TaskStateMachine::new();
    let operator_events = [
        E::ManualResolution,
        E::RetryFailedSteps,
        E::Reset,
        E::Cancel,
    ];
    for (from, event, _) in EXPECTED {
        let actors = machine.actors(*from, *event).unwrap();
        let expected: &[Actor] = if operator_events.contains(event) {
            &[Actor::Operator]
        } else {
            &[Actor::Orchestration]
        };
        assert_eq!(actors, expected, "{from} + {event}");
    }
    assert!(machine.actors(S::Complete, E::Cancel).is_err());
}

#[test]
fn accepted_events_per_state() {
    let machine = TaskStateMachine::new();
    assert_eq!(
        machine.accepted_events(S::Pending),
        [E::Initialize, E::Cancel]
    );
    assert_eq!(machine.accepted_events(S::Error), [E::Reset]);
    for terminal in [S::Complete, S::Cancelled, S::ResolvedManually] {
        assert!(machine.accepted_events(terminal).is_empty());
    }
}

#[test]
fn descriptions_name_every_target_but_cancelled() {
    let machine = TaskStateMachine::new();
    for from in TaskState::ALL {
        for event in machine.accepted_events(from) {
            let to = machine.transition(from, event).unwrap();
            if to != S::Cancelled {
                assert!(
                    from.description().contains(&format!("`{to}`")),
                    "the description of {from} does not mention {to}"
                );
            }
        }
    }
}

#[test]
fn invalid_transition_messages() {
    let machine = TaskStateMachine::new();
    let cases = [
        (S::Pending, E::GiveUp),
        (S::Complete, E::Cancel),
        (S::Error, E::Initialize),
        (S::Cancelled, E::Reset),
        (S::ResolvedManually, E::Reset),
        (S::EvaluatingResults, E::Initialize),
        (S::StepsInProcess, E::AllStepsSuccessful),
    ];
    let messages: Vec<String> = cases
        .iter()
        .map(|(from, event)| machine.transition(*from, *event).unwrap_err().to_string())
        .collect();
    insta::assert_snapshot!(messages.join("\n"));
}

proptest! {
    /// Random event sequences from every starting state: every accepted transition is in the
    /// expected table, and nothing leaves a terminal state except `reset` from `error`.
    #[test]
    fn random_event_sequences_respect_the_table(
        start in prop::sample::select(TaskState::ALL.to_vec()),
        events in prop::collection::vec(arb_task_event(), 0..40),
    ) {
        let machine = TaskStateMachine::new();
        let mut state = start;
        for event in events {
            let kind = event.kind();
            match machine.apply(state, event) {
                Ok(record) => {
                    prop_assert_eq!(record.from, state);
                    prop_assert_eq!(Some(record.to), expected(state, kind));
                    if state.is_terminal() {
                        prop_assert_eq!((state, kind), (S::Error, E::Reset));
                    }
                    prop_assert_eq!(&record.event_json()["type"], kind.as_str());
                    state = record.to;
                }
                Err(error) => {
                    prop_assert_eq!(expected(state, kind), None);
                    prop_assert_eq!((error.from, error.event), (state, kind));
                }
            }
        }
    }
}

#[test]
fn lifecycle_transitions_agree_with_the_records() {
    let machine = TaskStateMachine::new();
    let transitions = machine.lifecycle_transitions();
    for (from, event, to) in EXPECTED {
        let record = machine.apply(*from, event.example()).unwrap();
        assert!(
            transitions
                .iter()
                .any(|t| t.name == record.lifecycle_event && t.connects(from, to)),
            "{from} + {event}"
        );
    }
    for transition in &transitions {
        for from in &transition.from {
            assert!(
                EXPECTED
                    .iter()
                    .any(|(f, _, to)| f == from && *to == transition.to),
                "{} from {from}",
                transition.name
            );
        }
    }
}
