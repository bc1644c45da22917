//! Tests for the step context accessors, outcomes, failures and closure handlers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tasker_models::names::{NamespaceName, StepName, TaskName, TemplateVersion};

use super::*;

fn context() -> StepContext {
    let mut dependency_results = BTreeMap::new();
    dependency_results.insert(StepName::new("add").expect("valid"), json!({"sum": 5}));
    StepContext {
        task_id: TaskId::new_v7(),
        step_id: StepId::new_v7(),
        correlation_id: CorrelationId::new_v7(),
        namespace: NamespaceName::new("math").expect("valid"),
        task_name: TaskName::new("arithmetic").expect("valid"),
        version: TemplateVersion::new("1.0.0").expect("valid"),
        step_name: StepName::new("double").expect("valid"),
        method: "call".to_owned(),
        attempt: 1,
        max_attempts: 3,
        inputs: json!({"factor": 2, "label": "x"})
            .as_object()
            .cloned()
            .expect("object"),
        dependency_results,
        task_context: json!({"start": 7}),
        events: StepEvents::none(),
    }
}

#[test]
fn values_are_read_from_inputs_dependencies_and_the_task_context() {
    let context = context();
    assert_eq!(context.input("factor"), Some(&json!(2)));
    assert_eq!(context.input_as::<u32>("factor").expect("present"), 2);
    assert_eq!(context.dependency_result("add"), Some(&json!({"sum": 5})));
    #[derive(serde::Deserialize)]
    struct Sum {
        sum: i64,
    }
    assert_eq!(
        context
            .dependency_result_as::<Sum>("add")
            .expect("present")
            .sum,
        5
    );
    assert_eq!(context.task_context_as::<i64>("start").expect("present"), 7);
    assert!(context.has_attempts_left());
}

#[test]
fn missing_and_malformed_values_are_typed_errors() {
    let context = context();
    let cases = [
        (
            context.input_as::<u32>("offset").expect_err("missing"),
            "input `offset` is missing",
        ),
        (
            context.input_as::<u32>("label").expect_err("a string"),
            "input `label` has an unexpected shape",
        ),
        (
            context
                .dependency_result_as::<i64>("subtract")
                .expect_err("missing"),
            "result of dependency `subtract` is missing",
        ),
        (
            context
                .dependency_result_as::<i64>("add")
                .expect_err("an object"),
            "result of dependency `add` has an unexpected shape",
        ),
        (
            context.task_context_as::<i64>("end").expect_err("missing"),
            "task context key `end` is missing",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn a_bad_value_is_a_permanent_failure_with_its_cause() {
    let error = context().input_as::<u32>("label").expect_err("a string");
    let outcome = StepOutcome::from(error);
    let StepOutcome::PermanentFailure { error } = &outcome else {
        panic!("expected a permanent failure, got {outcome:?}");
    };
    assert_eq!(error.kind.as_deref(), Some("invalid_input"));
    assert_eq!(
        error.message,
        "input `label` has an unexpected shape: invalid type: string \"x\", expected u32"
    );
    assert_eq!(
        error.to_string(),
        "[invalid_input] input `label` has an unexpected shape: invalid type: string \"x\", \
         expected u32"
    );
}

#[test]
fn outcomes_are_built_and_inspected() {
    let success = StepOutcome::success(json!(1));
    assert!(success.is_success());
    assert!(success.failure().is_none());

    let retry = StepOutcome::retry_after("rate limited", Duration::from_secs(2));
    assert_eq!(
        retry,
        StepOutcome::RetryableFailure {
            error: StepFailure::new("rate limited"),
            requested_backoff: Some(Duration::from_secs(2)),
        }
    );
    let retry = StepOutcome::retryable(String::from("timeout"));
    assert!(matches!(
        retry,
        StepOutcome::RetryableFailure {
            requested_backoff: None,
            ..
        }
    ));
    let permanent = StepOutcome::permanent(
        StepFailure::new("card declined")
            .with_kind("declined")
            .with_details(json!({"code": 51})),
    );
    assert_eq!(
        permanent.failure().map(ToString::to_string).as_deref(),
        Some("[declined] card declined")
    );
}

#[test]
fn failures_round_trip_through_json_without_empty_fields() {
    let bare = StepFailure::new("boom");
    assert_eq!(
        serde_json::to_value(&bare).expect("serializes"),
        json!({"message": "boom"})
    );
    let full = StepFailure::new("boom")
        .with_kind("io")
        .with_details(json!([1]));
    let value = serde_json::to_value(&full).expect("serializes");
    assert_eq!(
        value,
        json!({"message": "boom", "kind": "io", "details": [1]})
    );
    let back: StepFailure = serde_json::from_value(value).expect("deserializes");
    assert_eq!(back, full);
}

#[tokio::test]
async fn closures_are_handlers() {
    let handler = handler_fn(|context: StepContext| async move {
        let factor = match context.input_as::<i64>("factor") {
            Ok(factor) => factor,
            Err(error) => return error.into(),
        };
        let start = context.task_context_as::<i64>("start").unwrap_or_default();
        StepOutcome::success(json!(start * factor))
    });
    assert_eq!(
        handler.call(&context()).await,
        StepOutcome::success(json!(14))
    );
    assert!(handler.supports_method("call"));
    assert!(!handler.supports_method("refund"));
}
