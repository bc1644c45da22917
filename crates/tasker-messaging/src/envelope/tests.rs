//! Tests for the envelope: round trips, the wire shape and every decode failure.

use tasker_models::ids::{CorrelationId, StepId, TaskId};
use uuid::Uuid;

use super::*;
use crate::messages::{StepMessage, StepResultMessage};

fn step() -> StepMessage {
    StepMessage {
        task_id: TaskId::from_uuid(Uuid::from_u128(1)),
        step_id: StepId::from_uuid(Uuid::from_u128(2)),
        correlation_id: CorrelationId::from_uuid(Uuid::from_u128(3)),
    }
}

#[test]
fn round_trip() {
    let payload = Payload::encode(&step()).unwrap();
    let decoded: StepMessage = decode(payload.as_str().as_bytes()).unwrap();
    assert_eq!(decoded, step());
}

#[test]
fn wire_shape() {
    let payload = Payload::encode(&step()).unwrap();
    let value: serde_json::Value = serde_json::from_str(payload.as_str()).unwrap();
    insta::assert_yaml_snapshot!(value);
}

#[test]
fn debug_hides_the_body() {
    let payload = Payload::encode(&step()).unwrap();
    assert_eq!(
        format!("{payload:?}"),
        format!("Payload({} bytes)", payload.len())
    );
}

/// Every way a message can fail to decode, with the reason a consumer records.
#[test]
fn decode_failures() {
    let body = r#"{"task_uuid":"00000000-0000-0000-0000-000000000001","step_uuid":"00000000-0000-0000-0000-000000000002","correlation_id":"00000000-0000-0000-0000-000000000003"}"#;
    let cases = [
        ("not json".to_owned()),
        (r#"{"hello":"world"}"#.to_owned()),
        (format!(r#"{{"version":2,"kind":"step","body":{body}}}"#)),
        (format!(r#"{{"version":1,"kind":"step_result","body":{body}}}"#)),
        (r#"{"version":1,"kind":"step","body":{"task_uuid":"nope"}}"#.to_owned()),
        (format!(
            r#"{{"version":1,"kind":"step","body":{{"extra":1,{}}}}}"#,
            &body[1..body.len() - 1]
        )),
    ];
    let reasons: Vec<String> = cases
        .iter()
        .map(|text| {
            decode::<StepMessage>(text.as_bytes())
                .expect_err(text)
                .reason()
        })
        .collect();
    insta::assert_yaml_snapshot!(reasons);
}

#[test]
fn kinds_are_distinct_on_the_wire() {
    let result = StepResultMessage {
        task_id: TaskId::from_uuid(Uuid::from_u128(1)),
        step_id: StepId::from_uuid(Uuid::from_u128(2)),
        correlation_id: CorrelationId::from_uuid(Uuid::from_u128(3)),
    };
    let payload = Payload::encode(&result).unwrap();
    assert!(matches!(
        decode::<StepMessage>(payload.as_str().as_bytes()),
        Err(DecodeError::WrongKind {
            expected: MessageKind::Step,
            ..
        })
    ));
    for kind in [
        MessageKind::Step,
        MessageKind::StepResult,
        MessageKind::TaskRequest,
        MessageKind::TaskFinalization,
        MessageKind::DomainEvent,
    ] {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
    }
}

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn the_traceparent_travels_in_the_envelope() {
    let payload = Payload::encode_traced(&step(), Some(TRACEPARENT)).unwrap();
    let value: serde_json::Value = serde_json::from_str(payload.as_str()).unwrap();
    assert_eq!(value["traceparent"], TRACEPARENT);
    let traced = decode_traced::<StepMessage>(payload.as_str().as_bytes()).unwrap();
    assert_eq!(
        traced,
        Traced {
            message: step(),
            traceparent: Some(TRACEPARENT.to_owned()),
        }
    );
    // A consumer that does not care still reads the message.
    assert_eq!(
        decode::<StepMessage>(payload.as_str().as_bytes()).unwrap(),
        step()
    );
}

#[test]
fn without_a_traceparent_the_field_is_left_out() {
    let payload = Payload::encode_traced(&step(), None).unwrap();
    assert!(!payload.as_str().contains("traceparent"));
    assert_eq!(payload, Payload::encode(&step()).unwrap());
}

/// A message written by a producer from before the field (the exact text it sent) decodes,
/// with no trace context.
#[test]
fn an_old_message_without_the_field_decodes() {
    let old = r#"{"version":1,"kind":"step","body":{"task_uuid":"00000000-0000-0000-0000-000000000001","step_uuid":"00000000-0000-0000-0000-000000000002","correlation_id":"00000000-0000-0000-0000-000000000003"}}"#;
    let traced = decode_traced::<StepMessage>(old.as_bytes()).unwrap();
    assert_eq!(traced.message, step());
    assert_eq!(traced.traceparent, None);
}

/// The sender's text is carried as it is (escapes included); a malformed one is the tracer's
/// business, not a reason to refuse the message.
#[test]
fn an_odd_traceparent_does_not_fail_the_message() {
    let body = r#"{"task_uuid":"00000000-0000-0000-0000-000000000001","step_uuid":"00000000-0000-0000-0000-000000000002","correlation_id":"00000000-0000-0000-0000-000000000003"}"#;
    let text =
        format!(r#"{{"version":1,"kind":"step","traceparent":"not\u0020one","body":{body}}}"#);
    let traced = decode_traced::<StepMessage>(text.as_bytes()).unwrap();
    assert_eq!(traced.traceparent.as_deref(), Some("not one"));
}
