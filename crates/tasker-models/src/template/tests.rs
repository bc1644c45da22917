//! Tests for template loading: field values, derived views, environments and round trips.

use serde_json::json;

use super::*;

fn load(yaml: &str) -> ValidatedTemplate {
    match ValidatedTemplate::from_yaml_str(yaml, Strictness::Strict) {
        Ok(loaded) => {
            assert!(
                loaded.warnings.is_empty(),
                "unexpected warnings: {}",
                loaded.warnings
            );
            loaded.template
        }
        Err(error) => panic!("{error}:\n{}", Problems::new(error.problems().to_vec())),
    }
}

fn names<'a>(steps: impl IntoIterator<Item = &'a StepDefinition>) -> Vec<&'a str> {
    steps.into_iter().map(|step| step.name.as_str()).collect()
}

const FULL: &str = r#"
name: order_fulfillment
namespace_name: ecommerce
version: 1.2.0
description: Fulfil an order
identity_strategy: caller_provided
metadata:
  author: platform team
  tags: [orders, critical]
  documentation_url: https://docs.example.com/orders
  created_at: "2025-08-17T20:18:41Z"
system_dependencies:
  primary: warehouse
  secondary: [payments, email]
domain_events:
  - name: order.fulfilled
    description: all items shipped
    schema: {type: object}
input_schema:
  type: object
  required: [order_id]
  properties:
    order_id: {type: integer}
lifecycle: {}
steps:
  - name: validate
    handler:
      callable: Orders::Validate
      method: validate
      initialization: {url: "http://validator", strict: true}
    timeout_seconds: 30
    retry: {retryable: true, max_attempts: 5, backoff: linear, backoff_base_ms: 200, max_backoff_ms: 2000}
    publishes_events:
      - name: order.validated
        description: validated
        condition: always
        delivery_mode: fast
        publisher: Orders::Publisher
        schema: {type: object}
  - name: ship
    handler: {callable: Orders::Ship, resolver: explicit_mapping}
    dependencies: [validate]
environments:
  development:
    steps:
      - name: validate
        handler: {initialization: {url: "http://localhost"}}
        timeout_seconds: 60
        retry: {max_attempts: 1}
  test:
    steps:
      - name: ALL
        timeout_seconds: 5
"#;

#[test]
fn full_template_fields() {
    let template = load(FULL);
    let data = template.template();
    assert_eq!(template.routing_key(), "ecommerce/order_fulfillment:1.2.0");
    assert_eq!(
        data.identity_strategy,
        crate::identity::IdentityStrategy::CallerProvided
    );
    assert_eq!(data.system_dependencies.secondary, ["payments", "email"]);
    assert_eq!(data.metadata.as_ref().map(|meta| meta.tags.len()), Some(2));
    let lifecycle = data.lifecycle.expect("lifecycle: {} is present");
    assert_eq!(lifecycle.staleness_action, StalenessAction::Dlq);
    assert_eq!(lifecycle.max_duration_minutes, None);

    let validate = template.step_by_name("validate").expect("step");
    assert_eq!(validate.retry.max_attempts, 5);
    assert_eq!(validate.retry.backoff, BackoffKind::Linear);
    assert_eq!(validate.timeout_seconds, Some(30));
    assert!(validate.handler.uses_method_dispatch());
    assert_eq!(
        validate.publishes_events[0].condition,
        EventCondition::Always
    );
    let ship = template.step_by_name("ship").expect("step");
    assert_eq!(ship.handler.effective_method(), "call");
    assert!(!ship.handler.uses_method_dispatch());
    assert!(ship.handler.has_resolver_hint());
    assert_eq!(ship.retry, RetryPolicy::default());
    assert!(
        template
            .input_schema()
            .is_some_and(|schema| schema.is_valid(&json!({"order_id": 1})))
    );
}

#[test]
fn environment_overrides_merge() {
    let template = load(FULL);
    let development = template.resolve_for_environment("development");
    let validate = development.step_by_name("validate").expect("step");
    assert_eq!(
        validate.handler.initialization["url"],
        json!("http://localhost")
    );
    assert_eq!(
        validate.handler.initialization["strict"],
        json!(true),
        "other keys are kept"
    );
    assert_eq!(validate.timeout_seconds, Some(60));
    assert_eq!(validate.retry.max_attempts, 1);
    assert_eq!(
        validate.retry.backoff,
        BackoffKind::Linear,
        "only the given retry fields change"
    );
    assert_eq!(validate.retry.max_backoff_ms, Some(2000));

    let test = template.resolve_for_environment("test");
    assert!(
        test.steps()
            .iter()
            .all(|step| step.timeout_seconds == Some(5)),
        "ALL targets every step"
    );
    assert_eq!(
        template.resolve_for_environment("production"),
        template,
        "no overrides: unchanged"
    );
}

#[test]
fn stored_json_round_trips_without_warnings() {
    let template = load(FULL);
    let json = template.to_json();
    let loaded =
        ValidatedTemplate::from_json_value(&json, Strictness::Strict).expect("stored JSON loads");
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    assert_eq!(loaded.template, template);
    let via_serde: ValidatedTemplate = serde_json::from_value(json.clone()).expect("deserializes");
    assert_eq!(via_serde, template);
    assert_eq!(json["steps"][0]["type"], json!("standard"));
    assert_eq!(json["lifecycle"]["staleness_action"], json!("dlq"));

    let mut broken = json;
    broken["steps"][1]["dependencies"] = json!(["nowhere"]);
    let error =
        serde_json::from_value::<ValidatedTemplate>(broken).expect_err("validated on the way in");
    assert!(error.to_string().contains("`nowhere`"), "{error}");
}

#[test]
fn execution_order_puts_parents_first_regardless_of_declaration_order() {
    let template = load(
        "name: t\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n\
         - {name: step3, handler: {callable: H}, dependencies: [step2]}\n\
         - {name: step1, handler: {callable: H}}\n\
         - {name: step2, handler: {callable: H}, dependencies: [step1]}\n",
    );
    assert_eq!(
        names(template.steps_in_order()),
        ["step1", "step2", "step3"]
    );
}

#[test]
fn initial_steps_and_decision_branches() {
    let template = load(
        "name: t\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n\
         - {name: root, handler: {callable: H}}\n\
         - {name: decide, type: decision, handler: {callable: H}, dependencies: [root]}\n\
         - {name: branch_a, handler: {callable: H}, dependencies: [decide]}\n\
         - {name: branch_b, handler: {callable: H}, dependencies: [decide]}\n\
         - {name: merge, type: deferred_convergence, handler: {callable: H}, dependencies: [branch_a, branch_b]}\n",
    );
    assert_eq!(names(template.initial_steps()), ["root", "decide"]);
    assert_eq!(
        names(template.decision_branch("decide")),
        ["branch_a", "branch_b", "merge"]
    );
    assert!(template.decision_branch("root").is_empty());
    let graph = template.graph();
    assert_eq!(graph.width_per_level(), [1, 1, 2, 1]);
    assert_eq!(graph.roots(), [0]);
    assert_eq!(graph.leaves(), [4]);
}

#[test]
fn step_type_defaults_and_alias() {
    let template = load(
        "name: t\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n\
         - {name: a, handler: {callable: H}}\n\
         - {name: b, type: decision, handler: {callable: H}, dependencies: [a]}\n\
         - {name: c, handler: {callable: H}, dependencies: [b]}\n",
    );
    assert_eq!(template.steps()[0].step_type, StepType::Standard);
    assert_eq!(template.steps()[1].step_type, StepType::Decision);
    let aliased = ValidatedTemplate::from_yaml_str(
        "name: t\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n\
         - {name: a, handler: {callable: H}}\n\
         - {name: b, step_type: decision, handler: {callable: H}, depends_on: [a]}\n\
         - {name: c, handler: {callable: H}, depends_on: [b]}\n",
        Strictness::Strict,
    )
    .expect("aliases are accepted in strict mode too");
    assert_eq!(aliased.template, template);
    assert_eq!(aliased.warnings.len(), 3);
}

#[test]
fn event_conditions() {
    let cases = [
        (EventCondition::Success, [true, false, false]),
        (EventCondition::Failure, [false, true, true]),
        (EventCondition::RetryableFailure, [false, true, false]),
        (EventCondition::PermanentFailure, [false, false, true]),
        (EventCondition::Always, [true, true, true]),
    ];
    for (condition, [on_success, on_retryable_failure, on_permanent_failure]) in cases {
        assert_eq!(
            condition.should_publish(true, false),
            on_success,
            "{condition:?}"
        );
        assert_eq!(
            condition.should_publish(false, true),
            on_retryable_failure,
            "{condition:?}"
        );
        assert_eq!(
            condition.should_publish(false, false),
            on_permanent_failure,
            "{condition:?}"
        );
    }
    assert!(EventName::new("payment.refund.failed").is_ok());
    assert_eq!(EventName::new("ordercreated"), Err(InvalidEventName::NoDot));
}

#[test]
fn directory_loading_reports_each_file() {
    let dir = std::env::temp_dir().join(format!(
        "tasker-models-dir-{}",
        crate::ids::TaskId::new_v7()
    ));
    let nested = dir.join("nested");
    std::fs::create_dir_all(&nested).expect("temp dir");
    std::fs::write(
        dir.join("a.yaml"),
        "name: a\nnamespace_name: ns\nversion: 1.0.0\nsteps: []\n",
    )
    .expect("write");
    std::fs::write(nested.join("b.yml"), "name: b\nnamespace_name: ns\n").expect("write");
    std::fs::write(nested.join("notes.txt"), "ignored").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("missing.yaml"), dir.join("broken.yaml")).expect("symlink");
    let report = load_directory(&dir, Strictness::Strict).expect("readable");
    let outcomes: Vec<(String, bool)> = report
        .files
        .iter()
        .map(|file| {
            (
                file.path
                    .strip_prefix(&dir)
                    .expect("inside")
                    .display()
                    .to_string(),
                file.result.is_ok(),
            )
        })
        .collect();
    let mut expected = vec![
        ("a.yaml".to_owned(), true),
        ("nested/b.yml".to_owned(), false),
    ];
    if cfg!(unix) {
        expected.insert(1, ("broken.yaml".to_owned(), false));
    }
    assert_eq!(outcomes, expected);
    assert!(!report.is_ok());
    assert!(matches!(
        load_directory(&dir.join("missing"), Strictness::Strict),
        Err(TemplateError::Read { .. })
    ));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn hostile_yaml_is_rejected_quickly() {
    // "Billion laughs": each level references the previous one ten times.
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = level - 1;
        yaml.push_str(&format!(
            "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let result = ValidatedTemplate::from_yaml_str(&yaml, Strictness::Lenient);
    assert!(result.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // Refused by the pre-scan, before the YAML library (whose time grows with the depth).
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        ValidatedTemplate::from_yaml_str(&deep, Strictness::Strict),
        Err(TemplateError::Limit { .. })
    ));
}

#[test]
fn a_step_event_without_a_schema_takes_the_template_declarations() {
    let template = load(
        r#"
name: payments
namespace_name: billing
version: 1.0.0
domain_events:
  - name: payment.processed
    description: the card was charged
    schema: {type: object, required: [payment_id]}
steps:
  - name: charge
    handler: {callable: Billing::Charge}
    publishes_events:
      - {name: payment.processed, description: charged}
      - {name: payment.audited, description: its own schema, schema: {type: object}}
"#,
    );
    let charge = template.step_by_name("charge").expect("the step");
    assert_eq!(
        charge.publishes_events[0].schema.as_value(),
        &json!({"type": "object", "required": ["payment_id"]})
    );
    assert_eq!(
        charge.publishes_events[1].schema.as_value(),
        &json!({"type": "object"})
    );
}
