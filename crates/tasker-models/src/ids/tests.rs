//! Tests for typed ids.

use super::*;

#[test]
fn new_v7_is_version_7_and_time_ordered() {
    let first = TaskId::new_v7();
    let second = TaskId::new_v7();
    assert_eq!(first.as_uuid().get_version_num(), 7);
    assert!(
        first < second,
        "v7 ids generated in sequence sort in sequence"
    );
}

#[test]
fn display_parse_and_serde_round_trip() {
    let id = StepId::new_v7();
    let text = id.to_string();
    assert_eq!(text.parse::<StepId>().expect("parses"), id);
    let json = serde_json::to_string(&id).expect("serializes");
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<StepId>(&json).expect("deserializes"),
        id
    );
}

#[test]
fn debug_names_the_type() {
    let uuid = Uuid::nil();
    assert_eq!(
        format!("{:?}", NamedTaskId::from_uuid(uuid)),
        "NamedTaskId(00000000-0000-0000-0000-000000000000)"
    );
}

#[test]
fn parse_error_names_the_id_kind() {
    let err = "not-a-uuid".parse::<TaskId>().expect_err("rejects");
    assert_eq!(err.to_string(), "invalid TaskId: expected a UUID");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn converts_to_and_from_uuid() {
    let uuid = Uuid::now_v7();
    let id = DlqEntryId::from(uuid);
    assert_eq!(Uuid::from(id), uuid);
    assert_eq!(id.into_uuid(), uuid);
}
