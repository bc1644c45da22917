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

/// The outbox statement has one part per queue; its parameters are numbered in the order
/// `send_and_remove` binds them (per send: bodies, channel, name; per removal: ids, name).
#[test]
fn send_and_remove_statement_has_a_part_per_queue() {
    let (a, b, c) = (
        QueueName::new("a").unwrap(),
        QueueName::new("b").unwrap(),
        QueueName::new("c").unwrap(),
    );
    let sends = [
        sql::Outgoing {
            queue: &a,
            bodies: vec!["{}"],
        },
        sql::Outgoing {
            queue: &b,
            bodies: vec!["{}", "{}"],
        },
    ];
    let removals = [sql::Removal {
        queue: &c,
        ids: vec![1, 2],
    }];
    let spaced = |sql: String| sql.split_whitespace().collect::<Vec<_>>().join(" ");
    insta::assert_snapshot!(
        spaced(sql::send_and_remove_sql(&sends, &removals, false)),
        @r#"WITH s0 AS ( INSERT INTO pgmq."q_a" (vt, message) SELECT clock_timestamp(), unnest($1::text[]::jsonb[]) RETURNING msg_id ), n0 AS MATERIALIZED ( SELECT pg_notify($2, json_build_object('queue', $3::text, 'msg_id', max(msg_id), 'count', count(*))::text) FROM s0 ), s1 AS ( INSERT INTO pgmq."q_b" (vt, message) SELECT clock_timestamp(), unnest($4::text[]::jsonb[]) RETURNING msg_id ), n1 AS MATERIALIZED ( SELECT pg_notify($5, json_build_object('queue', $6::text, 'msg_id', max(msg_id), 'count', count(*))::text) FROM s1 ), r0 AS (DELETE FROM pgmq."q_c" WHERE msg_id = ANY($7::bigint[]) RETURNING msg_id), counted AS MATERIALIZED (SELECT (SELECT count(*) FROM n0) + (SELECT count(*) FROM n1) AS notified) SELECT r.queue, r.msg_id FROM counted c LEFT JOIN (SELECT $8::text AS queue, msg_id FROM r0) r ON true"#
    );
    insta::assert_snapshot!(
        spaced(sql::send_and_remove_sql(&[], &removals, true)),
        @r#"WITH r0 AS MATERIALIZED ( SELECT msg_id FROM pgmq.archive($2::text, $1::bigint[]) AS a (msg_id) ), counted AS MATERIALIZED (SELECT 0 AS notified) SELECT r.queue, r.msg_id FROM counted c LEFT JOIN (SELECT $2::text AS queue, msg_id FROM r0) r ON true"#
    );
    insta::assert_snapshot!(
        spaced(sql::send_and_remove_sql(&sends[..1], &[], false)),
        @r#"WITH s0 AS ( INSERT INTO pgmq."q_a" (vt, message) SELECT clock_timestamp(), unnest($1::text[]::jsonb[]) RETURNING msg_id ), n0 AS MATERIALIZED ( SELECT pg_notify($2, json_build_object('queue', $3::text, 'msg_id', max(msg_id), 'count', count(*))::text) FROM s0 ), counted AS MATERIALIZED (SELECT (SELECT count(*) FROM n0) AS notified) SELECT r.queue, r.msg_id FROM counted c LEFT JOIN (SELECT NULL::text AS queue, NULL::bigint AS msg_id WHERE false) r ON true"#
    );
}
