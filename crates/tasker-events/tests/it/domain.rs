//! The domain event catalogue: declarations checked at once, payloads checked before an event
//! exists, every error as a snapshot of its text.

use serde_json::json;
use tasker_events::bus::{Bus, Overflow};
use tasker_events::domain::{
    DeclarationError, DomainEventCatalog, DomainEventDeclaration, DomainEventError,
};
use tasker_events::event::Event;
use uuid::Uuid;

use crate::support::options;

fn declaration(name: &str, schema: Option<serde_json::Value>) -> DomainEventDeclaration {
    DomainEventDeclaration {
        name: name.to_owned(),
        schema,
    }
}

fn catalog() -> DomainEventCatalog {
    DomainEventCatalog::new([
        declaration(
            "payment.processed",
            Some(json!({
                "type": "object",
                "required": ["payment_id", "amount"],
                "properties": {
                    "payment_id": {"type": "string", "format": "uuid"},
                    "amount": {"type": "number", "minimum": 0},
                    "customer": {
                        "type": "object",
                        "properties": {"email": {"type": "string", "format": "email"}}
                    }
                },
                "additionalProperties": false
            })),
        ),
        declaration("order.shipped", None),
    ])
    .unwrap()
}

#[test]
fn a_valid_payload_makes_an_event_that_the_bus_delivers() {
    let catalog = catalog();
    let bus = Bus::new();
    let mut payments = bus
        .subscribe("payment.*", options(4, Overflow::Wait))
        .unwrap();
    let mut tasks = bus.subscribe("task.*", options(4, Overflow::Wait)).unwrap();
    let event = catalog
        .event(
            "payment.processed",
            Uuid::from_u128(1),
            Some(Uuid::from_u128(2)),
            json!({"payment_id": "0191f1a2-7c3e-7b4a-9f00-000000000001", "amount": 12.5}),
        )
        .unwrap();
    assert_eq!(bus.publish(event), 1);
    let received = payments.try_recv().unwrap();
    assert_eq!(received.name(), "payment.processed");
    assert_eq!(received.task_id(), Uuid::from_u128(1));
    assert_eq!(received.sequence(), None);
    let Event::Domain(domain) = &*received else {
        panic!("a domain event")
    };
    assert_eq!(domain.step_id(), Some(Uuid::from_u128(2)));
    assert!(tasks.try_recv().is_err());

    // Without a declared schema, any payload goes.
    catalog
        .event("order.shipped", Uuid::nil(), None, json!(["anything"]))
        .unwrap();
}

#[test]
fn invalid_payloads_name_the_event_the_field_and_the_reason() {
    let catalog = catalog();
    let cases = [
        json!({"amount": 3}),
        json!({"payment_id": "not-a-uuid", "amount": -1}),
        json!({"payment_id": "0191f1a2-7c3e-7b4a-9f00-000000000001", "amount": "12", "customer": {"email": "nobody"}}),
        json!({"payment_id": "0191f1a2-7c3e-7b4a-9f00-000000000001", "amount": 1, "context": {}}),
        json!("just a string"),
    ];
    let rendered: Vec<String> = cases
        .into_iter()
        .map(|payload| {
            let error = catalog
                .event("payment.processed", Uuid::nil(), None, payload)
                .unwrap_err();
            assert!(matches!(error, DomainEventError::InvalidPayload { .. }));
            error.to_string()
        })
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn an_undeclared_name_is_refused_with_the_closest_declared_one() {
    let catalog = catalog();
    let rendered: Vec<String> = ["payment.procesed", "inventory.reserved"]
        .into_iter()
        .map(|name| {
            let error = catalog
                .event(name, Uuid::nil(), None, json!({}))
                .unwrap_err();
            assert!(matches!(error, DomainEventError::Unknown { .. }));
            error.to_string()
        })
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn every_bad_declaration_is_reported_at_once() {
    let error = DomainEventCatalog::new([
        declaration("payment.processed", None),
        declaration("payment.processed", None),
        declaration("Payment", None),
        declaration("task.completed", None),
        declaration("refund", None),
        declaration(
            "refund.issued",
            Some(json!({"type": "integer", "minimum": "zero"})),
        ),
        declaration("refund.failed", Some(json!(["not", "a", "schema"]))),
        declaration(
            "refund.remote",
            Some(json!({"$ref": "https://example.com/refund.json"})),
        ),
    ])
    .unwrap_err();
    assert!(matches!(
        error.errors[0],
        DeclarationError::Duplicate { .. }
    ));
    let listing: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(listing.join("\n"));
    assert!(
        error
            .to_string()
            .starts_with("7 invalid domain event declaration(s): ")
    );
}
