//! Tests for task requests.

use serde_json::json;

use super::*;
use crate::template::{Strictness, ValidatedTemplate};

fn request(context: serde_json::Value) -> TaskRequest {
    TaskRequest::new("payments", "process_refund", "1.0.0", context)
}

fn pointers(error: &RequestError) -> Vec<(&str, RequestRule)> {
    error
        .violations
        .iter()
        .map(|violation| (violation.pointer.as_str(), violation.rule))
        .collect()
}

#[test]
fn a_valid_request_keeps_its_context_exactly() {
    // Keys the predecessor's sanitizer dropped or rewrote.
    let context = json!({
        "online": true, "on_hold": false, "one_time": 1, "onboarding": "x",
        "script": "<script>alert(1)</script>", "link": "javascript:void(0)",
    });
    let validated = request(context.clone())
        .validate(&JsonLimits::default())
        .expect("valid");
    assert_eq!(validated.context, context);
    assert_eq!(validated.name.as_str(), "process_refund");
    assert_eq!(validated.namespace.as_str(), "payments");
}

#[test]
fn wire_format_defaults_and_unknown_fields() {
    let parsed: TaskRequest =
        serde_json::from_value(json!({"namespace": "ns", "name": "t", "version": "1.0.0"}))
            .expect("minimal request");
    assert_eq!(parsed.context, json!({}));
    assert_eq!(parsed.initiator, "system");
    assert_eq!(parsed.priority, 0);
    let err = serde_json::from_value::<TaskRequest>(json!({
        "namespace": "ns", "name": "t", "version": "1.0.0", "contxt": {"a": 1}
    }))
    .expect_err("a misspelled field is an error, not a silently empty context");
    assert!(err.to_string().contains("unknown field `contxt`"), "{err}");
}

#[test]
fn every_field_violation_is_reported_at_once() {
    let mut bad = TaskRequest::new("my-namespace", "", "1.0", json!([1, 2]));
    bad.initiator = " ".to_owned();
    bad.reason = "r".repeat(AUDIT_FIELD_MAX_LEN + 1);
    bad.tags = vec!["ok".to_owned(), String::new()];
    bad.priority = 101;
    bad.idempotency_key = Some(" padded ".to_owned());
    bad.options = Some(serde_json::Map::from_iter([(
        "long_option_key".to_owned(),
        json!(1),
    )]));
    let limits = JsonLimits {
        max_string_chars: 8,
        ..JsonLimits::default()
    };
    let err = bad.validate(&limits).expect_err("invalid");
    insta::assert_snapshot!(
        err.violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        pointers(&err),
        [
            ("/name", RequestRule::Name),
            ("/namespace", RequestRule::Name),
            ("/version", RequestRule::Version),
            ("/context", RequestRule::Context),
            ("/options/long_option_key", RequestRule::Limit),
            ("/initiator", RequestRule::Limit),
            ("/reason", RequestRule::Limit),
            ("/tags/1", RequestRule::Limit),
            ("/priority", RequestRule::Limit),
            ("/idempotency_key", RequestRule::IdempotencyKey),
        ]
    );
}

#[test]
fn json_limits_locate_the_offending_value() {
    let limits = JsonLimits {
        max_bytes: 60,
        max_depth: 3,
        max_object_keys: 2,
        max_array_items: 2,
        max_string_chars: 5,
    };
    let context = json!({
        "deep": {"a": {"b": {"c": 1}}},
        "list": [1, 2, 3],
        "long": "123456",
        "a/b": {"x": 1, "y": 2, "z": 3},
    });
    let err = request(context)
        .validate(&limits)
        .expect_err("over the limits");
    insta::assert_snapshot!(
        err.violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn default_limits_match_the_documented_values() {
    let mut deep = json!(1);
    for _ in 0..15 {
        deep = json!({ "n": deep });
    }
    let err = request(deep)
        .validate(&JsonLimits::default())
        .expect_err("depth 15 fails");
    assert_eq!(err.violations.len(), 1);
    assert_eq!(err.violations[0].pointer, "/context/n/n/n/n/n/n/n/n/n/n");
    let long = request(json!({"s": "x".repeat(10_001)})).validate(&JsonLimits::default());
    assert!(long.is_err());
    let big = request(json!({"s": "x".repeat(9_000), "t": vec!["y".repeat(9_000); 120]}));
    let err = big
        .validate(&JsonLimits::default())
        .expect_err("over 1 MiB");
    assert_eq!(pointers(&err), [("/context", RequestRule::Limit)]);
}

#[test]
fn violations_are_capped() {
    let context: serde_json::Map<String, serde_json::Value> = (0..150)
        .map(|index| (format!("k{index}"), json!("x".repeat(11))))
        .collect();
    let limits = JsonLimits {
        max_string_chars: 10,
        max_object_keys: 1000,
        ..JsonLimits::default()
    };
    let err = request(serde_json::Value::Object(context))
        .validate(&limits)
        .expect_err("too long");
    assert_eq!(err.violations.len(), MAX_VIOLATIONS + 1);
    assert_eq!(
        err.violations[MAX_VIOLATIONS].message,
        "50 more violation(s) not listed"
    );
}

const TEMPLATE: &str = r"
name: process_refund
namespace_name: payments
version: 1.0.0
input_schema:
  type: object
  required: [order_id, customer]
  properties:
    order_id: {type: integer, minimum: 1}
    customer:
      type: object
      required: [email]
      properties:
        email: {type: string, format: email}
    refund_id: {type: string, format: uuid}
steps:
  - name: refund
    handler: {callable: Refunds::Refund}
";

fn template() -> ValidatedTemplate {
    ValidatedTemplate::from_yaml_str(TEMPLATE, Strictness::Strict)
        .expect("valid template")
        .template
}

#[test]
fn context_is_checked_against_the_input_schema() {
    let ok = request(json!({"order_id": 7, "customer": {"email": "a@example.com"}}));
    assert!(ok.validate_for(&template(), &JsonLimits::default()).is_ok());

    let bad =
        request(json!({"order_id": 0, "customer": {"email": "nope"}, "refund_id": "not-a-uuid"}));
    let err = bad
        .validate_for(&template(), &JsonLimits::default())
        .expect_err("schema violations");
    let mut located: Vec<&str> = err
        .violations
        .iter()
        .map(|violation| violation.pointer.as_str())
        .collect();
    located.sort_unstable();
    assert_eq!(
        located,
        [
            "/context/customer/email",
            "/context/order_id",
            "/context/refund_id"
        ]
    );
    assert!(
        err.violations
            .iter()
            .all(|violation| violation.rule == RequestRule::InputSchema)
    );

    let missing = request(json!({}));
    let err = missing
        .validate_for(&template(), &JsonLimits::default())
        .expect_err("required keys");
    assert_eq!(err.violations.len(), 2, "{err}");
    assert!(
        err.violations
            .iter()
            .all(|violation| violation.pointer == "/context")
    );
}

#[test]
fn request_must_name_the_template() {
    let mut other = request(json!({"order_id": 7, "customer": {"email": "a@example.com"}}));
    other.version = "2.0.0".to_owned();
    let err = other
        .validate_for(&template(), &JsonLimits::default())
        .expect_err("mismatch");
    assert_eq!(
        pointers(&err),
        [("/version", RequestRule::TemplateMismatch)]
    );
    assert_eq!(
        err.to_string(),
        "invalid task request: /version: is \"2.0.0\" but the template is payments/process_refund:1.0.0"
    );
}
