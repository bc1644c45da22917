//! Unit tests of the RabbitMQ backend's pure parts; the behaviour is tested against the broker
//! by the conformance suite in `tests/it`.

use lapin::types::{AMQPValue, ShortString};

use super::*;

#[test]
fn delivery_counts_of_every_integer_type() {
    let cases = [
        (AMQPValue::ShortShortUInt(3), Some(3)),
        (AMQPValue::ShortUInt(3), Some(3)),
        (AMQPValue::LongUInt(3), Some(3)),
        (AMQPValue::ShortShortInt(3), Some(3)),
        (AMQPValue::ShortInt(3), Some(3)),
        (AMQPValue::LongInt(3), Some(3)),
        (AMQPValue::LongLongInt(3), Some(3)),
        (AMQPValue::LongLongInt(-1), None),
        (AMQPValue::LongString("3".into()), None),
    ];
    for (value, expected) in cases {
        assert_eq!(as_u64(&value), expected, "{value:?}");
    }
}

#[test]
fn published_messages_are_persistent_json_with_an_id() {
    let id = Uuid::from_u128(7);
    let properties = message_properties(id);
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(
        properties.content_type().as_ref().map(ShortString::as_str),
        Some("application/json")
    );
    assert_eq!(
        properties.message_id().as_ref().map(ShortString::as_str),
        Some(id.to_string().as_str())
    );
}

#[test]
fn invalid_urls_are_refused_without_leaking_the_password() {
    let config = RabbitMqConfig {
        url: "not a url with secret".to_owned(),
        ..RabbitMqConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime
        .block_on(RabbitMqQueue::connect(config))
        .unwrap_err();
    assert!(matches!(error, ConnectError::InvalidUrl { .. }), "{error}");
    assert!(!error.to_string().contains("secret"), "{error}");
}
