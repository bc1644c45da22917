//! Unit tests of the PGMQ backend's pure parts; the behaviour is tested against PostgreSQL by
//! the conformance suite in `tests/it`.

use std::time::Duration;

use super::*;

#[test]
fn visibility_timeouts_round_up_to_whole_seconds() {
    let cases = [
        (Duration::ZERO, 0),
        (Duration::from_millis(1), 1),
        (Duration::from_millis(1000), 1),
        (Duration::from_millis(1001), 2),
        (Duration::from_secs(30), 30),
        (Duration::from_secs(u64::MAX), i32::MAX),
    ];
    for (duration, seconds) in cases {
        assert_eq!(whole_seconds(duration), seconds, "{duration:?}");
    }
}

#[test]
fn channels_fit_postgres_identifiers() {
    let longest = QueueName::new(format!("{}_dlq", "q".repeat(43))).unwrap();
    let channel = sql::channel(&longest);
    assert!(channel.len() <= 63, "{channel}");
    assert_eq!(
        sql::channel(&QueueName::new("orders").unwrap()),
        "tasker_queue_orders"
    );
}
