//! Tests for the events: the JSON wire format, round trips and strict parsing.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::test_support::{arb_step_event, arb_task_event};

#[test]
fn every_event_kind_has_a_unique_name_equal_to_its_json_tag() {
    let mut names = std::collections::HashSet::new();
    for kind in TaskEventKind::ALL {
        assert!(names.insert(("task", kind.as_str())));
        let event = kind.example();
        assert_eq!(event.kind(), kind);
        assert_eq!(TaskEventKind::from(&event), kind);
        assert_eq!(event.to_json()["type"], kind.as_str());
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for kind in StepEventKind::ALL {
        assert!(names.insert(("step", kind.as_str())));
        let event = kind.example();
        assert_eq!(event.kind(), kind);
        assert_eq!(StepEventKind::from(&event), kind);
        assert_eq!(event.to_json()["type"], kind.as_str());
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

#[test]
fn the_json_wire_format_of_every_event() {
    let mut out = String::new();
    for kind in TaskEventKind::ALL {
        out.push_str(&format!(
            "task {kind}: {}\n",
            serde_json::to_string(&kind.example()).unwrap()
        ));
    }
    for kind in StepEventKind::ALL {
        out.push_str(&format!(
            "step {kind}: {}\n",
            serde_json::to_string(&kind.example()).unwrap()
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn every_event_round_trips_through_json() {
    for kind in TaskEventKind::ALL {
        let event = kind.example();
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<TaskEvent>(&json).unwrap(),
            event,
            "{json}"
        );
    }
    for kind in StepEventKind::ALL {
        let event = kind.example();
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<StepEvent>(&json).unwrap(),
            event,
            "{json}"
        );
    }
}

#[test]
fn parsing_is_strict_and_errors_name_the_problem() {
    let cases = [
        r#"{"type":"initialise"}"#,
        r#"{"type":"ready_steps_found","count":1,"extra":true}"#,
        r#"{"type":"ready_steps_found"}"#,
        r#"{"type":"ready_steps_found","count":-1}"#,
        r#"{"count":3}"#,
        r#""initialize""#,
    ];
    let mut out = String::new();
    for json in cases {
        let error = serde_json::from_str::<TaskEvent>(json).unwrap_err();
        out.push_str(&format!("task {json}: {error}\n"));
    }
    let cases = [
        r#"{"type":"fail","error":{"message":"x"}}"#,
        r#"{"type":"fail","error":{"message":"x","retryable":true,"backoff":5}}"#,
        r#"{"type":"start"}"#,
        r#"{"type":"start","worker_id":"not-a-uuid"}"#,
    ];
    for json in cases {
        let error = serde_json::from_str::<StepEvent>(json).unwrap_err();
        out.push_str(&format!("step {json}: {error}\n"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn a_step_error_without_a_requested_backoff_may_omit_it() {
    let event: StepEvent =
        serde_json::from_str(r#"{"type":"fail","error":{"message":"boom","retryable":false}}"#)
            .unwrap();
    assert_eq!(
        event,
        StepEvent::Fail {
            error: StepError::permanent("boom")
        }
    );
}

#[test]
fn requested_backoff_is_whole_milliseconds() {
    let error =
        StepError::retryable("slow down").with_requested_backoff(Duration::from_millis(1500));
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(json["requested_backoff_ms"], 1500);
    assert_eq!(serde_json::from_value::<StepError>(json).unwrap(), error);
}

proptest! {
    #[test]
    fn any_task_event_round_trips_as_a_tagged_object(event in arb_task_event()) {
        let json = event.to_json();
        prop_assert!(json.is_object());
        prop_assert_eq!(&json["type"], event.kind().as_str());
        prop_assert_eq!(serde_json::from_value::<TaskEvent>(json).unwrap(), event);
    }

    #[test]
    fn any_step_event_round_trips_as_a_tagged_object(event in arb_step_event()) {
        let json = event.to_json();
        prop_assert!(json.is_object());
        prop_assert_eq!(&json["type"], event.kind().as_str());
        prop_assert_eq!(serde_json::from_value::<StepEvent>(json).unwrap(), event);
    }
}
