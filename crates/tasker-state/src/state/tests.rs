//! Tests for the state enums: labels, parsing, serde and predicates.

use std::collections::HashSet;

use super::*;

#[test]
fn labels_are_unique_snake_case_and_round_trip_through_from_str_display_and_serde() {
    let task_labels: HashSet<&str> = TaskState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(task_labels.len(), 12);
    let step_labels: HashSet<&str> = StepState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(step_labels.len(), 8);

    for state in TaskState::ALL {
        let label = state.as_str();
        assert!(
            label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{label}"
        );
        assert_eq!(state.to_string(), label);
        assert_eq!(label.parse::<TaskState>().unwrap(), state);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{label}\""));
        assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
    }
    for state in StepState::ALL {
        let label = state.as_str();
        assert!(
            label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{label}"
        );
        assert_eq!(state.to_string(), label);
        assert_eq!(label.parse::<StepState>().unwrap(), state);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{label}\""));
        assert_eq!(serde_json::from_str::<StepState>(&json).unwrap(), state);
    }
}

#[test]
fn the_labels_are_exactly_the_postgres_enum_labels() {
    // The database enums `task_state` and `step_state` use exactly these labels, in this order.
    let task: Vec<&str> = TaskState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(
        task,
        [
            "pending",
            "initializing",
            "enqueuing_steps",
            "steps_in_process",
            "evaluating_results",
            "waiting_for_dependencies",
            "waiting_for_retry",
            "blocked_by_failures",
            "complete",
            "error",
            "cancelled",
            "resolved_manually",
        ]
    );
    let step: Vec<&str> = StepState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(
        step,
        [
            "pending",
            "enqueued",
            "in_progress",
            "enqueued_for_orchestration",
            "complete",
            "error",
            "cancelled",
            "resolved_manually",
        ]
    );
}

#[test]
fn terminal_states_are_the_documented_ones() {
    let terminal: Vec<TaskState> = TaskState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            TaskState::Complete,
            TaskState::Error,
            TaskState::Cancelled,
            TaskState::ResolvedManually
        ]
    );
    let terminal: Vec<StepState> = StepState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            StepState::Complete,
            StepState::Cancelled,
            StepState::ResolvedManually
        ]
    );
    assert!(!StepState::Error.is_terminal());
    assert!(StepState::Error.is_error());
}

#[test]
fn task_predicates_partition_the_non_terminal_states() {
    for state in TaskState::ALL {
        let groups = [state.is_terminal(), state.is_active(), state.is_waiting()];
        let pending = state == TaskState::Pending;
        assert_eq!(
            groups.iter().filter(|member| **member).count() + usize::from(pending),
            1,
            "{state} must be in exactly one of pending/active/waiting/terminal"
        );
    }
    let claimable: Vec<TaskState> = TaskState::ALL
        .into_iter()
        .filter(|s| s.is_claimable())
        .collect();
    assert_eq!(
        claimable,
        [
            TaskState::Pending,
            TaskState::WaitingForDependencies,
            TaskState::WaitingForRetry
        ]
    );
}

#[test]
fn step_predicates() {
    let check = |state: StepState, satisfies: bool, pipeline: bool| {
        assert_eq!(
            state.satisfies_dependencies(),
            satisfies,
            "{state} satisfies_dependencies"
        );
        assert_eq!(
            state.is_in_processing_pipeline(),
            pipeline,
            "{state} pipeline"
        );
    };
    check(StepState::Pending, false, false);
    check(StepState::Enqueued, false, true);
    check(StepState::InProgress, false, true);
    check(StepState::EnqueuedForOrchestration, false, true);
    check(StepState::Complete, true, false);
    check(StepState::Error, false, false);
    check(StepState::Cancelled, false, false);
    check(StepState::ResolvedManually, true, false);
}

#[test]
fn defaults_are_pending() {
    assert_eq!(TaskState::default(), TaskState::Pending);
    assert_eq!(StepState::default(), StepState::Pending);
}

#[test]
fn every_state_has_a_description() {
    for state in TaskState::ALL {
        assert!(!state.description().is_empty());
    }
    for state in StepState::ALL {
        assert!(!state.description().is_empty());
    }
}

#[test]
fn parse_errors_name_the_value_suggest_and_list_valid_states() {
    let mut out = String::new();
    for input in [
        "",
        "Pending",
        "in_progress",
        "waiting-for-retry",
        "compelte",
        "bogus",
    ] {
        let error = input.parse::<TaskState>().unwrap_err();
        assert_eq!(error.machine(), Machine::Task);
        assert_eq!(error.value(), input);
        out.push_str(&format!("task {input:?}: {error}\n"));
    }
    for input in [
        "",
        "Enqueued",
        "enqueud",
        "waiting_for_retry",
        "in progress",
        "done\n",
    ] {
        let error = input.parse::<StepState>().unwrap_err();
        assert_eq!(error.machine(), Machine::Step);
        assert_eq!(error.value(), input);
        out.push_str(&format!("step {input:?}: {error}\n"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn serde_rejects_unknown_labels_naming_the_value() {
    let error = serde_json::from_str::<TaskState>("\"running\"").unwrap_err();
    assert!(error.to_string().contains("running"), "{error}");
    let error = serde_json::from_str::<StepState>("\"steps_in_process\"").unwrap_err();
    assert!(error.to_string().contains("steps_in_process"), "{error}");
}

#[cfg(feature = "sqlx")]
#[test]
fn sqlx_type_names_are_the_postgres_enum_names() {
    use sqlx::{Postgres, Type, TypeInfo, postgres::PgHasArrayType};
    assert_eq!(
        <TaskState as Type<Postgres>>::type_info().name(),
        "task_state"
    );
    assert_eq!(
        <StepState as Type<Postgres>>::type_info().name(),
        "step_state"
    );
    assert_eq!(
        <TaskState as PgHasArrayType>::array_type_info().name(),
        "task_state[]"
    );
    assert_eq!(
        <StepState as PgHasArrayType>::array_type_info().name(),
        "step_state[]"
    );
}
