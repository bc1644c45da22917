//! The SQL the PGMQ backend issues itself, kept in this one file.
//!
//! Everything else goes through the `pgmq` crate's API. These statements exist because that
//! API lacks them:
//! - sending and notifying in one statement (one round trip, one implicit transaction), so a
//!   listener learns of a message exactly when it becomes visible, and the backend keeps pace
//!   with raw pgmq;
//! - `pgmq.set_vt` with an absolute deadline (the crate only offers seconds from now), so that
//!   extending a visibility timeout adds to the deadline instead of resetting it;
//! - popping with the read count of this delivery;
//! - reading with an asynchronous commit (see [`crate::config::ReadCommit`]);
//! - sending to several queues and acknowledging in one statement (the outbox of a transaction
//!   that consumed messages);
//! - deleting or archiving many messages by id in one statement (the crate takes one id);
//! - small probes: is pgmq installed, and which server process serves the LISTEN connection.
//!
//! Queue names are bound as parameters; pgmq's functions quote them as identifiers. The
//! notification channel is derived from a validated [`QueueName`].

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::PgExecutor;

use crate::queue_name::QueueName;

/// The prefix of the notification channel of a queue.
pub(crate) const CHANNEL_PREFIX: &str = "tasker_queue_";

/// The notification channel of `queue`: `tasker_queue_<queue>` (at most 60 characters, within
/// PostgreSQL's 63).
pub(crate) fn channel(queue: &QueueName) -> String {
    format!("{CHANNEL_PREFIX}{queue}")
}

/// Sends `body` (JSON text) to `queue` and notifies the queue's channel with
/// `{"queue":..,"msg_id":..,"count":1}` in the same statement; returns the message id.
pub(crate) async fn send(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    body: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT sent.msg_id, \
                pg_notify($3, json_build_object('queue', $1::text, 'msg_id', sent.msg_id, \
                                                'count', 1)::text) \
         FROM pgmq.send($1::text, $2::text::jsonb) AS sent(msg_id)",
    )
    .bind(queue.as_str())
    .bind(body)
    .bind(channel(queue))
    .fetch_one(executor)
    .await
}

/// Sends `bodies` (JSON texts) to `queue` in order and notifies the queue's channel once with
/// the last id and the count, in the same statement; returns the ids in order (sorted here
/// rather than by the server: cheaper, and ids grow in insertion order).
pub(crate) async fn send_batch(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    bodies: &[&str],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH sent AS MATERIALIZED ( \
             SELECT batch.msg_id FROM pgmq.send_batch($1::text, $2::text[]::jsonb[]) \
                 AS batch(msg_id) \
         ), notified AS MATERIALIZED ( \
             SELECT pg_notify($3, json_build_object('queue', $1::text, 'msg_id', max(msg_id), \
                                                    'count', count(*))::text) \
             FROM sent \
         ) \
         SELECT sent.msg_id FROM sent CROSS JOIN notified",
    )
    .bind(queue.as_str())
    .bind(bodies)
    .bind(channel(queue))
    .fetch_all(executor)
    .await
    .map(|mut ids: Vec<i64>| {
        ids.sort_unstable();
        ids
    })
}

/// Reads up to `qty` visible messages of `queue`, hiding them for `vt_seconds` (pgmq's
/// `read`). With `asynchronous`, the transaction the read belongs to commits without waiting
/// for the WAL flush (`set_config('synchronous_commit', 'off', true)`, evaluated only when a
/// message was read, i.e. only when the read wrote something).
pub(crate) async fn read(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    vt_seconds: i32,
    qty: i32,
    asynchronous: bool,
) -> Result<Vec<::pgmq::Message<Box<RawValue>>>, sqlx::Error> {
    let sql = if asynchronous {
        "SELECT msg_id, read_ct, enqueued_at, vt, message, \
                set_config('synchronous_commit', 'off', true) AS commit_mode \
         FROM pgmq.read($1::text, $2::integer, $3::integer)"
    } else {
        "SELECT msg_id, read_ct, enqueued_at, vt, message \
         FROM pgmq.read($1::text, $2::integer, $3::integer)"
    };
    sqlx::query_as(sql)
        .bind(queue.as_str())
        .bind(vt_seconds)
        .bind(qty)
        .fetch_all(executor)
        .await
}

/// Takes up to `qty` visible messages of `queue` out of it (pgmq's `pop`: deleted, not hidden),
/// reporting each read count as this delivery's (one more than pgmq's).
pub(crate) async fn pop(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    qty: i32,
) -> Result<Vec<::pgmq::Message<Box<RawValue>>>, sqlx::Error> {
    sqlx::query_as(
        "SELECT msg_id, read_ct + 1 AS read_ct, enqueued_at, vt, message \
         FROM pgmq.pop($1::text, $2::integer)",
    )
    .bind(queue.as_str())
    .bind(qty)
    .fetch_all(executor)
    .await
}

/// Removes messages `ids` of `queue` in one statement, deleting them or, with `archive`,
/// moving them to pgmq's archive; returns the ids that were there to remove.
pub(crate) async fn remove_batch(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    ids: &[i64],
    archive: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    let sql = if archive {
        "SELECT msg_id FROM pgmq.archive($1::text, $2::bigint[]) AS removed(msg_id)"
    } else {
        "SELECT msg_id FROM pgmq.delete($1::text, $2::bigint[]) AS removed(msg_id)"
    };
    sqlx::query_scalar(sql)
        .bind(queue.as_str())
        .bind(ids)
        .fetch_all(executor)
        .await
}

/// In one statement: sends `bodies` (JSON texts) to their `queues` (parallel arrays, in order
/// per queue), notifying each queue's channel once as [`send_batch`] does, and removes messages
/// `remove_ids` of `remove_queues` (deleting them or, with `archive`, archiving them). Returns
/// the removed messages as (queue, id).
pub(crate) async fn send_and_remove(
    executor: impl PgExecutor<'_>,
    queues: &[&str],
    bodies: &[&str],
    channels: &[String],
    remove_queues: &[&str],
    remove_ids: &[i64],
    archive: bool,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = if archive {
        SEND_AND_ARCHIVE
    } else {
        SEND_AND_DELETE
    };
    let rows: Vec<(Option<String>, Option<i64>)> = sqlx::query_as(sql)
        .bind(queues)
        .bind(bodies)
        .bind(channels)
        .bind(remove_queues)
        .bind(remove_ids)
        .fetch_all(executor)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(queue, id)| queue.zip(id))
        .collect())
}

/// Every CTE is referenced by the final SELECT (an unreferenced one would not run); `counted`
/// makes the statement return a row even when nothing is removed.
macro_rules! send_and_remove_sql {
    ($remove:literal) => {
        concat!("\
    WITH outgoing AS MATERIALIZED ( \
        SELECT o.queue, o.channel, array_agg(o.body::jsonb ORDER BY o.ord) AS bodies \
        FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS o (queue, body, channel, ord) \
        GROUP BY o.queue, o.channel \
    ), sent AS MATERIALIZED ( \
        SELECT g.queue, g.channel, s.msg_id \
        FROM outgoing g CROSS JOIN LATERAL pgmq.send_batch(g.queue, g.bodies) AS s (msg_id) \
    ), notified AS MATERIALIZED ( \
        SELECT pg_notify(sent.channel, json_build_object('queue', sent.queue, \
                         'msg_id', max(sent.msg_id), 'count', count(*))::text) \
        FROM sent GROUP BY sent.queue, sent.channel \
    ), incoming AS MATERIALIZED ( \
        SELECT a.queue, array_agg(a.id) AS ids \
        FROM unnest($4::text[], $5::bigint[]) AS a (queue, id) \
        GROUP BY a.queue \
    ), removed AS MATERIALIZED ( \
        SELECT i.queue, r.msg_id \
        FROM incoming i CROSS JOIN LATERAL ", $remove, "(i.queue, i.ids) AS r (msg_id) \
    ), counted AS MATERIALIZED ( \
        SELECT (SELECT count(*) FROM notified) AS notified \
    ) \
    SELECT r.queue, r.msg_id FROM counted c LEFT JOIN removed r ON true")
    };
}

const SEND_AND_DELETE: &str = send_and_remove_sql!("pgmq.delete");
const SEND_AND_ARCHIVE: &str = send_and_remove_sql!("pgmq.archive");

/// Sets the visibility deadline of message `msg_id` to `deadline`; returns its read count and
/// new deadline, or `None` when the message does not exist.
pub(crate) async fn set_deadline(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    msg_id: i64,
    deadline: DateTime<Utc>,
) -> Result<Option<(i32, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as("SELECT read_ct, vt FROM pgmq.set_vt($1::text, $2::bigint, $3::timestamptz)")
        .bind(queue.as_str())
        .bind(msg_id)
        .bind(deadline)
        .fetch_optional(executor)
        .await
}

/// Whether pgmq's functions are installed in the database.
pub(crate) async fn pgmq_installed(executor: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT to_regprocedure('pgmq.read(text,integer,integer,jsonb)') IS NOT NULL",
    )
    .fetch_one(executor)
    .await
}

/// The process id of the server process behind a connection (the LISTEN connection's is
/// reported in [`super::ListenerStatus`]).
pub(crate) async fn backend_pid(executor: impl PgExecutor<'_>) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(executor)
        .await
}
