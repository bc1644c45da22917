//! The catalogue against the state machines: every rule is listed, every name builds an event.

use tasker_state::{StepEventKind, TaskEventKind};

use super::*;

fn occurrence() -> Occurrence {
    Occurrence {
        processor_id: None,
        occurred_at: DateTime::UNIX_EPOCH,
        sequence: 1,
    }
}

#[test]
fn the_catalogue_listing() {
    insta::assert_snapshot!(catalog_markdown());
}

#[test]
fn every_structural_transition_has_a_named_event() {
    let tasks = TaskStateMachine::new();
    for from in TaskState::ALL {
        for kind in TaskEventKind::ALL {
            if let Ok(to) = tasks.transition(from, kind) {
                let rule = tasks
                    .lifecycle_transitions()
                    .into_iter()
                    .find(|rule| rule.connects(&from, &to))
                    .unwrap_or_else(|| panic!("{from} + {kind}"));
                let transition = Transition::Task { from, to };
                let event =
                    LifecycleEvent::new(Uuid::nil(), transition, rule.name, occurrence()).unwrap();
                assert!(names().contains(&event.name()));
            }
        }
    }
    let steps = StepStateMachine::new();
    for from in StepState::ALL {
        for kind in StepEventKind::ALL {
            if let Ok(to) = steps.transition(from, kind) {
                let rule = steps
                    .lifecycle_transitions()
                    .into_iter()
                    .find(|rule| rule.connects(&from, &to))
                    .unwrap_or_else(|| panic!("{from} + {kind}"));
                let transition = Transition::Step {
                    step_id: Uuid::nil(),
                    from,
                    to,
                };
                let event =
                    LifecycleEvent::new(Uuid::nil(), transition, rule.name, occurrence()).unwrap();
                assert_eq!(event.step_id(), Some(Uuid::nil()));
            }
        }
    }
}

#[test]
fn the_catalogue_lists_every_rule_and_every_name() {
    let entries = catalog();
    let rules = TaskStateMachine::new().lifecycle_transitions().len()
        + StepStateMachine::new().lifecycle_transitions().len();
    assert_eq!(entries.len(), rules);
    for name in names() {
        assert!(entries.iter().any(|entry| entry.name == name), "{name}");
    }
    for entry in &entries {
        let prefix = format!("{}.", entry.machine);
        assert!(entry.name.starts_with(&prefix), "{}", entry.name);
        crate::name::check_name(entry.name).unwrap();
    }
}

#[test]
fn a_name_the_rules_do_not_have_is_refused() {
    let transition = Transition::Task {
        from: TaskState::Pending,
        to: TaskState::Complete,
    };
    let error =
        LifecycleEvent::new(Uuid::nil(), transition, "task.completed", occurrence()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no task rule named `task.completed` moves from `pending` to `complete`"
    );
}
