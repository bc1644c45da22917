//! Publishing domain events from a handler: declared names and valid payloads only, with
//! errors that say which event, where in the payload and schema, and what to do; conditions
//! keep the events that match the step's outcome.

use std::sync::Arc;

use serde_json::json;
use tasker_models::template::{Strictness, ValidatedTemplate};

use super::*;
use crate::handler::StepFailure;

/// The events of step `charge` of a template declaring one event per condition.
fn events() -> StepEvents {
    let template = ValidatedTemplate::from_yaml_str(
        r#"
name: payments
namespace_name: billing
version: 1.0.0
steps:
  - name: charge
    handler: {callable: Billing::Charge}
    publishes_events:
      - name: payment.processed
        description: the card was charged
        schema:
          type: object
          required: [payment_id, amount]
          additionalProperties: false
          properties:
            payment_id: {type: string}
            amount: {type: number, minimum: 0}
      - name: payment.failed
        description: the charge failed
        condition: failure
        schema: {type: object, required: [reason]}
      - name: payment.retrying
        description: the charge is tried again
        condition: retryable_failure
        schema: {type: object}
      - name: payment.abandoned
        description: the charge failed for good
        condition: permanent_failure
        schema: {type: object}
      - name: payment.attempted
        description: a charge was attempted
        condition: always
        schema: {type: object}
"#,
        Strictness::Strict,
    )
    .expect("a valid template")
    .template;
    let step = template.step_by_name("charge").expect("the step");
    let declared = DeclaredEvent::compile_all(&step.publishes_events).expect("schemas compile");
    StepEvents::new("charge", Arc::from(declared))
}

fn publish_all(events: &StepEvents) {
    events
        .publish(
            "payment.processed",
            json!({"payment_id": "p-1", "amount": 12.5}),
        )
        .expect("valid");
    events
        .publish("payment.failed", json!({"reason": "declined"}))
        .expect("valid");
    for name in ["payment.retrying", "payment.abandoned", "payment.attempted"] {
        events.publish(name, json!({})).expect("valid");
    }
}

fn kept(events: &StepEvents, outcome: &StepOutcome, will_retry: bool) -> Vec<String> {
    events
        .take(outcome, will_retry)
        .into_iter()
        .map(|event| event.name)
        .collect()
}

#[test]
fn an_undeclared_name_is_refused_with_the_closest_declared_one() {
    let events = events();
    let error = events
        .publish("payment.procesed", json!({}))
        .expect_err("undeclared");
    assert!(matches!(error, PublishError::Undeclared { .. }));
    insta::assert_snapshot!(error.to_string());
    let error = StepEvents::new("plain", Arc::from(Vec::new()))
        .publish("payment.processed", json!({}))
        .expect_err("nothing declared");
    insta::assert_snapshot!("nothing_declared", error.to_string());
}

#[test]
fn a_payload_that_breaks_the_schema_is_refused_with_every_violation() {
    let events = events();
    let error = events
        .publish(
            "payment.processed",
            json!({"payment_id": 7, "amount": -1, "card": "4111"}),
        )
        .expect_err("invalid");
    let PublishError::InvalidPayload { violations, .. } = &error else {
        panic!("expected an invalid payload, got {error:?}");
    };
    assert_eq!(violations.len(), 3, "{violations:?}");
    insta::assert_snapshot!(error.to_string());
    // Nothing refused is held.
    assert!(
        events
            .take(&StepOutcome::success(json!(1)), false)
            .is_empty()
    );
}

#[test]
fn conditions_keep_the_events_that_match_the_outcome() {
    let events = events();
    publish_all(&events);
    assert_eq!(
        kept(&events, &StepOutcome::success(json!(1)), true),
        ["payment.processed", "payment.attempted"]
    );
    publish_all(&events);
    assert_eq!(
        kept(
            &events,
            &StepOutcome::retryable(StepFailure::new("timeout")),
            true
        ),
        ["payment.failed", "payment.retrying", "payment.attempted"]
    );
    // A retryable failure on the last attempt fails the step for good.
    publish_all(&events);
    assert_eq!(
        kept(
            &events,
            &StepOutcome::retryable(StepFailure::new("timeout")),
            false
        ),
        ["payment.failed", "payment.abandoned", "payment.attempted"]
    );
    publish_all(&events);
    assert_eq!(
        kept(
            &events,
            &StepOutcome::permanent(StepFailure::new("declined")),
            true
        ),
        ["payment.failed", "payment.abandoned", "payment.attempted"]
    );
    // Taking empties the run's events.
    assert!(
        events
            .take(&StepOutcome::success(json!(1)), true)
            .is_empty()
    );
}

#[test]
fn clones_share_what_was_published() {
    let events = events();
    let clone = events.clone();
    clone
        .publish("payment.attempted", json!({}))
        .expect("valid");
    let taken = events.take(&StepOutcome::success(json!(1)), true);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].payload, json!({}));
    assert_eq!(events, clone);
}
