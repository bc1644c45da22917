//! Tests for the generated `docs/state-machine.md`.

use super::*;
use crate::{StepStateMachine, TaskStateMachine};

#[test]
fn the_generated_markdown() {
    insta::assert_snapshot!(state_machine_markdown());
}

#[test]
fn every_transition_appears_in_its_diagram() {
    let markdown = state_machine_markdown();
    let (task_part, step_part) = markdown.split_once("## Step state machine").unwrap();
    let task_machine = TaskStateMachine::new();
    for from in TaskState::ALL {
        for event in task_machine.accepted_events(from) {
            let to = task_machine.transition(from, event).unwrap();
            let edge = task_part
                .lines()
                .find(|line| line.starts_with(&format!("    {from} --> {to}: ")))
                .unwrap_or_else(|| panic!("no edge {from} --> {to}"));
            assert!(edge.contains(event.as_str()), "{edge} lacks {event}");
        }
    }
    let step_machine = StepStateMachine::new();
    for from in StepState::ALL {
        for event in step_machine.accepted_events(from) {
            let to = step_machine.transition(from, event).unwrap();
            let edge = step_part
                .lines()
                .find(|line| line.starts_with(&format!("    {from} --> {to}: ")))
                .unwrap_or_else(|| panic!("no edge {from} --> {to}"));
            assert!(edge.contains(event.as_str()), "{edge} lacks {event}");
        }
    }
}

#[test]
fn every_state_guard_and_lifecycle_event_is_documented() {
    let markdown = state_machine_markdown();
    for state in TaskState::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(StepState::ALL.iter().map(|s| s.as_str()))
    {
        assert!(markdown.contains(&format!("| `{state}` |")), "{state}");
    }
    for guard in StepGuard::ALL {
        assert!(markdown.contains(&format!("| `{guard}` |")), "{guard}");
    }
    let names = TaskStateMachine::new()
        .lifecycle_events()
        .into_iter()
        .chain(StepStateMachine::new().lifecycle_events());
    for name in names {
        assert!(markdown.contains(&format!("| `{name}` |")), "{name}");
    }
    assert_eq!(markdown.matches("```mermaid\nstateDiagram-v2\n").count(), 2);
}
