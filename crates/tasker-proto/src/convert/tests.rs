//! Round trips of every converted type, through the wire encoding, and the refusals.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use tasker_models::ids::CorrelationId;
use tasker_models::request::TaskRequest;
use tasker_state::{StepState, TaskState};

use super::*;
use crate::v1;

/// Encodes and decodes, so the round trips cover the wire too.
fn wire<M: prost::Message + Default>(message: &M) -> M {
    M::decode(message.encode_to_vec().as_slice()).expect("decodes")
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Years 1 to 9999.
    (-62_135_596_800_i64..253_402_300_799, 0_u32..1_000_000_000)
        .prop_map(|(seconds, nanos)| DateTime::from_timestamp(seconds, nanos).expect("in range"))
}

fn task_request() -> impl Strategy<Value = TaskRequest> {
    (
        ("[a-z_]{1,12}", "[a-z_]{1,12}", "[0-9]\\.[0-9]\\.[0-9]"),
        prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4),
        (".{0,10}", ".{0,10}", ".{0,10}"),
        prop::collection::vec(".{0,6}", 0..3),
        -100_i32..=100,
        (any::<u128>(), prop::option::of(any::<u128>())),
        prop::option::of(".{1,20}"),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{1,6}",
            json_value(),
            0..3,
        )),
        instant(),
    )
        .prop_map(
            |(
                (namespace, name, version),
                context,
                (initiator, source, reason),
                tags,
                priority,
                (correlation, parent),
                key,
                options,
                at,
            )| {
                let mut request = TaskRequest::new(
                    namespace,
                    name,
                    version,
                    Value::Object(context.into_iter().collect()),
                );
                request.initiator = initiator;
                request.source_system = source;
                request.reason = reason;
                request.tags = tags;
                request.priority = priority;
                request.correlation_id =
                    CorrelationId::from_uuid(uuid::Uuid::from_u128(correlation));
                request.parent_correlation_id =
                    parent.map(|p| CorrelationId::from_uuid(uuid::Uuid::from_u128(p)));
                request.idempotency_key = key;
                request.options = options.map(|o| o.into_iter().collect());
                request.requested_at = at;
                request
            },
        )
}

proptest! {
    #[test]
    fn json_round_trips_exactly(value in json_value()) {
        let back = json_from_proto(&wire(&json_to_proto(&value)), "value").expect("converts");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn timestamps_round_trip(at in instant()) {
        prop_assert_eq!(timestamp_from_proto(&wire(&timestamp_to_proto(at)), "at"), Ok(at));
    }

    #[test]
    fn task_requests_round_trip(request in task_request()) {
        let proto = wire(&task_request_to_proto(&request));
        let back = task_request_from_proto(&proto, "request").expect("converts");
        prop_assert_eq!(back, request);
    }

    #[test]
    fn unknown_enum_values_are_refused(value in 13_i32..) {
        prop_assert_eq!(
            task_state_from_proto(value, "state").map_err(|e| e.problem),
            Err(Problem::UnknownEnum(value))
        );
        prop_assert!(step_state_from_proto(value, "state").is_err());
    }
}

#[test]
fn every_state_round_trips_and_unspecified_is_refused() {
    for state in TaskState::ALL {
        let value = task_state_to_proto(state) as i32;
        assert_eq!(task_state_from_proto(value, "state"), Ok(state));
    }
    for state in StepState::ALL {
        let value = step_state_to_proto(state) as i32;
        assert_eq!(step_state_from_proto(value, "state"), Ok(state));
    }
    assert_eq!(
        task_state_from_proto(0, "filter.state")
            .unwrap_err()
            .to_string(),
        "field `filter.state`: must be specified (it is UNSPECIFIED)"
    );
    assert_eq!(
        step_state_from_proto(-1, "step.state")
            .unwrap_err()
            .to_string(),
        "field `step.state`: -1 is not a known value"
    );
}

#[test]
fn integers_above_two_to_the_53_stay_exact() {
    for value in [
        json!(9_007_199_254_740_993_u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-9_007_199_254_740_993_i64),
    ] {
        let back = json_from_proto(&wire(&json_to_proto(&value)), "v").expect("converts");
        assert_eq!(back.to_string(), value.to_string());
    }
}

/// A change that makes a request unconvertible.
type Breakage = Box<dyn Fn(&mut v1::TaskRequest)>;

#[test]
fn invalid_values_name_their_field() {
    use crate::v1::json::Kind;
    let mut request = task_request_to_proto(&TaskRequest::new("ns", "t", "1.0.0", json!({})));
    let cases: Vec<(Breakage, &str)> = vec![
        (
            Box::new(|r| r.context = None),
            "field `request.context`: is required",
        ),
        (
            Box::new(|r| r.context = Some(json_to_proto(&json!([1])))),
            "field `request.context`: must be a JSON object",
        ),
        (
            Box::new(|r| {
                let mut object = object_to_proto(&serde_json::Map::new());
                object.fields.insert(
                    "amount".into(),
                    v1::Json {
                        kind: Some(Kind::Number(f64::NAN)),
                    },
                );
                object.fields.insert(
                    "items".into(),
                    v1::Json {
                        kind: Some(Kind::Array(v1::JsonArray {
                            items: vec![json_to_proto(&json!(1)), v1::Json { kind: None }],
                        })),
                    },
                );
                r.context = Some(v1::Json {
                    kind: Some(Kind::Object(object)),
                });
            }),
            "field `request.context.amount`: NaN is not a finite number",
        ),
        (
            Box::new(|r| r.correlation_id = Some("not-a-uuid".into())),
            "field `request.correlation_id`: \"not-a-uuid\" is not a UUID",
        ),
        (
            Box::new(|r| {
                r.requested_at = Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 1_000_000_000,
                })
            }),
            "field `request.requested_at`: seconds 0 and nanos 1000000000 are not a valid timestamp",
        ),
        (
            Box::new(|r| {
                r.requested_at = Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                })
            }),
            "field `request.requested_at`: seconds 9223372036854775807 and nanos 0 are not a valid timestamp",
        ),
    ];
    for (break_it, message) in cases {
        let mut broken = request.clone();
        break_it(&mut broken);
        let error = task_request_from_proto(&broken, "request").expect_err(message);
        assert_eq!(error.to_string(), message);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
    request.initiator = None;
    let converted = task_request_from_proto(&request, "request").expect("defaults apply");
    assert_eq!(converted.initiator, "system");
}
