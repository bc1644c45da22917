//! Tests for template differences: paths, named lists, order, quoting and rendering.

use serde_json::{Value, json};
use tasker_models::template::{Strictness, ValidatedTemplate};

use super::*;

fn rendered(stored: &Value, new: &Value) -> Vec<String> {
    differences(stored, new)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn differences_name_each_changed_field() {
    let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        ("identical", json!({"a": 1}), json!({"a": 1}), vec![]),
        (
            "scalar",
            json!({"retry": {"max_attempts": 3}}),
            json!({"retry": {"max_attempts": 5}}),
            vec!["retry.max_attempts: 3 → 5"],
        ),
        (
            "added and removed keys, sorted",
            json!({"b": true, "description": "old"}),
            json!({"a": null, "b": true}),
            vec!["a: added null", "description: removed \"old\""],
        ),
        (
            "type change",
            json!({"timeout": 30}),
            json!({"timeout": "30"}),
            vec!["timeout: 30 → \"30\""],
        ),
        (
            "positional list",
            json!({"dependencies": ["a", "b"]}),
            json!({"dependencies": ["a", "c", "d"]}),
            vec![
                "dependencies[1]: \"b\" → \"c\"",
                "dependencies[2]: added \"d\"",
            ],
        ),
        (
            "named list: changed, added and removed elements",
            json!({"steps": [
                {"name": "fetch", "retry": {"max_attempts": 3}},
                {"name": "store", "timeout": 5},
            ]}),
            json!({"steps": [
                {"name": "fetch", "retry": {"max_attempts": 4}},
                {"name": "notify"},
            ]}),
            vec![
                "steps[fetch].retry.max_attempts: 3 → 4",
                "steps[notify]: added {\"name\":\"notify\"}",
                "steps[store]: removed {\"name\":\"store\",\"timeout\":5}",
            ],
        ),
        (
            "named list: reordered",
            json!({"steps": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
            json!({"steps": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}),
            vec!["steps: reordered [a, b, c] → [b, a, c]"],
        ),
        (
            "named list from empty",
            json!({"steps": []}),
            json!({"steps": [{"name": "a"}]}),
            vec!["steps[a]: added {\"name\":\"a\"}"],
        ),
        (
            "duplicate names fall back to positions",
            json!({"events": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]}),
            json!({"events": [{"name": "x", "v": 1}, {"name": "x", "v": 3}]}),
            vec!["events[1].v: 2 → 3"],
        ),
        (
            "keys that are not identifiers are quoted",
            json!({"initialization": {"api-url": "a", "a.b": 1, "ok_key": 1}}),
            json!({"initialization": {"api-url": "b", "a.b": 2, "ok_key": 1}}),
            vec![
                "initialization[\"a.b\"]: 1 → 2",
                "initialization[\"api-url\"]: \"a\" → \"b\"",
            ],
        ),
        (
            "names that are not identifiers are quoted",
            json!({"steps": [{"name": "a b", "v": 1}]}),
            json!({"steps": [{"name": "a b", "v": 2}]}),
            vec!["steps[\"a b\"].v: 1 → 2"],
        ),
        (
            "whole document",
            json!([1]),
            json!({"a": 1}),
            vec!["(template): [1] → {\"a\":1}"],
        ),
    ];
    for (name, stored, new, expected) in cases {
        assert_eq!(rendered(&stored, &new), expected, "{name}");
    }
}

#[test]
fn long_values_are_cut_short_in_messages() {
    let long = "x".repeat(100);
    let lines = rendered(&json!({"a": long}), &json!({"a": "y"}));
    let expected = format!("a: \"{}… → \"y\"", "x".repeat(58));
    assert_eq!(lines, [expected]);
    // The difference itself keeps the whole value.
    let difference = &differences(&json!({"a": long}), &json!({"a": "y"}))[0];
    assert_eq!(
        difference.kind,
        DifferenceKind::Changed {
            stored: json!(long),
            new: json!("y"),
        }
    );
}

fn template_json(yaml: &str) -> Value {
    match ValidatedTemplate::from_yaml_str(yaml, Strictness::Strict) {
        Ok(loaded) => loaded.template.to_json(),
        Err(error) => panic!("{error}: {:?}", error.problems()),
    }
}

#[test]
fn differences_between_two_versions_of_a_template() {
    let stored = template_json(
        r"
name: payment
namespace_name: billing
version: 1.0.0
description: charge a card
steps:
  - name: validate
    handler: {callable: Billing::Validate}
  - name: charge
    handler:
      callable: Billing::Charge
      initialization: {gateway: stripe, timeout_ms: 500}
    dependencies: [validate]
    retry: {max_attempts: 3}
",
    );
    let new = template_json(
        r"
name: payment
namespace_name: billing
version: 1.0.0
steps:
  - name: validate
    handler: {callable: Billing::Validate, method: check}
  - name: charge
    handler:
      callable: Billing::Charge
      initialization: {gateway: adyen, timeout_ms: 500, region: eu}
    dependencies: [validate]
    retry: {max_attempts: 5, backoff: linear}
  - name: receipt
    handler: {callable: Billing::Receipt}
    dependencies: [charge]
",
    );
    insta::assert_snapshot!(rendered(&stored, &new).join("\n"));
}
