//! The SQL the PGMQ backend issues itself, kept in this one file.
//!
//! Queues are created, measured and cleaned up through the `pgmq` crate's API. These statements
//! exist because that API lacks them or is slower:
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
//! - small probes: is pgmq installed, does a queue exist, and which server process serves the
//!   LISTEN connection.
//!
//! The hot statements (send, read, pop, delete, and the outbox's send-and-remove) work on the
//! queue tables directly, as pgmq's own functions do inside: those functions build their
//! statement with `format` and `EXECUTE` it, so the server plans it again on every call, which
//! cost more than the work itself (about 0.15–0.35 ms per call here). Written out here, each
//! statement is prepared once per connection. They read and write the columns every pgmq 1.x
//! queue table has (`msg_id`, `read_ct`, `enqueued_at`, `vt`, `message`), plus
//! `last_read_at` where the installed version has it ([`Layout`]); archiving and the cold
//! paths still call pgmq's functions. A queue's table name comes from its validated
//! [`QueueName`] (lowercase letters, digits, underscores), quoted; values are bound as
//! parameters. The notification channel is derived from the same name.

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

/// `pgmq.<prefix>_<queue>`: a queue's table (`q`) or its archive (`a`), as pgmq names them.
/// Queue names are lowercase letters, digits and underscores ([`QueueName`]), so the name is
/// a plain identifier; it is quoted all the same.
fn table(prefix: &str, queue: &QueueName) -> String {
    format!("pgmq.\"{prefix}_{}\"", queue.as_str().replace('"', "\"\""))
}

/// What differs between pgmq versions in the columns these statements touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    /// Whether messages have `last_read_at` (pgmq 1.8 and later), which a read sets.
    pub(crate) last_read_at: bool,
}

/// The layout of the installed pgmq, read from its message record type; `None` when pgmq is
/// not installed.
pub(crate) async fn layout(executor: impl PgExecutor<'_>) -> Result<Option<Layout>, sqlx::Error> {
    let row: (bool, bool) = sqlx::query_as(
        "SELECT count(*) > 0, coalesce(bool_or(a.attname = 'last_read_at'), false) \
         FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid \
         WHERE t.oid = to_regtype('pgmq.message_record') AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .fetch_one(executor)
    .await?;
    Ok(row.0.then_some(Layout {
        last_read_at: row.1,
    }))
}

/// Sends `body` (JSON text) to `queue` and notifies the queue's channel with
/// `{"queue":..,"msg_id":..,"count":1}` in the same statement; returns the message id.
pub(crate) async fn send(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    body: &str,
) -> Result<i64, sqlx::Error> {
    send_batch(executor, queue, &[body])
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)
}

/// Sends `bodies` (JSON texts) to `queue` in order and notifies the queue's channel once with
/// the last id and the count, in the same statement; returns the ids in order (sorted here
/// rather than by the server: cheaper, and ids grow in insertion order).
pub(crate) async fn send_batch(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    bodies: &[&str],
) -> Result<Vec<i64>, sqlx::Error> {
    let sql = format!(
        "WITH sent AS ( \
             INSERT INTO {} (vt, message) \
             SELECT clock_timestamp(), unnest($1::text[]::jsonb[]) \
             RETURNING msg_id \
         ), notified AS MATERIALIZED ( \
             SELECT pg_notify($2, json_build_object('queue', $3::text, 'msg_id', max(msg_id), \
                                                    'count', count(*))::text) \
             FROM sent \
         ) \
         SELECT sent.msg_id FROM sent CROSS JOIN notified",
        table("q", queue)
    );
    sqlx::query_scalar(&sql)
        .bind(bodies)
        .bind(channel(queue))
        .bind(queue.as_str())
        .fetch_all(executor)
        .await
        .map(|mut ids: Vec<i64>| {
            ids.sort_unstable();
            ids
        })
}

/// `WITH cte AS (...)`: the ids of up to `$1` visible messages of table `q`, oldest first,
/// locked, skipping those another transaction holds (what pgmq's read and pop select).
fn pick_visible(q: &str) -> String {
    format!(
        "WITH cte AS ( \
             SELECT msg_id FROM {q} \
             WHERE vt <= clock_timestamp() \
             ORDER BY msg_id \
             LIMIT $1 \
             FOR UPDATE SKIP LOCKED \
         )"
    )
}

/// The read and the pop take the rows their `cte` picked through `= ANY(ARRAY(...))`, not a
/// join: pooled connections plan once (`force_generic_plan`), and a generic plan cannot know
/// `LIMIT $1` is small, so a join became a hash join over a sequential scan of the whole queue.
/// pgmq's own functions escaped that by being planned on every call.
///
/// Reads up to `qty` visible messages of `queue`, oldest first, hiding them for `vt_seconds`
/// (what `pgmq.read` does). With `asynchronous`, the transaction the read belongs to commits
/// without waiting for the WAL flush (`set_config('synchronous_commit', 'off', true)`,
/// evaluated only when a message was read, i.e. only when the read wrote something).
pub(crate) async fn read(
    executor: impl PgExecutor<'_>,
    layout: Layout,
    queue: &QueueName,
    vt_seconds: i32,
    qty: i32,
    asynchronous: bool,
) -> Result<Vec<::pgmq::Message<Box<RawValue>>>, sqlx::Error> {
    let q = table("q", queue);
    let pick = pick_visible(&q);
    let sql = format!(
        "{pick}, taken AS ( \
             UPDATE {q} m SET {last_read}vt = clock_timestamp() + make_interval(secs => $2::integer), \
                              read_ct = m.read_ct + 1 \
             WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM cte)) \
             RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message \
         ) \
         SELECT msg_id, read_ct, enqueued_at, vt, message{commit_mode} FROM taken ORDER BY msg_id",
        last_read = if layout.last_read_at {
            "last_read_at = clock_timestamp(), "
        } else {
            ""
        },
        commit_mode = if asynchronous {
            ", set_config('synchronous_commit', 'off', true) AS commit_mode"
        } else {
            ""
        },
    );
    sqlx::query_as(&sql)
        .bind(qty)
        .bind(vt_seconds)
        .fetch_all(executor)
        .await
}

/// Takes up to `qty` visible messages of `queue` out of it, oldest first (what `pgmq.pop`
/// does: deleted, not hidden), reporting each read count as this delivery's (one more than
/// pgmq's).
pub(crate) async fn pop(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    qty: i32,
) -> Result<Vec<::pgmq::Message<Box<RawValue>>>, sqlx::Error> {
    let q = table("q", queue);
    let pick = pick_visible(&q);
    let sql = format!(
        "{pick}, gone AS ( \
             DELETE FROM {q} m WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM cte)) \
             RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message \
         ) \
         SELECT msg_id, read_ct + 1 AS read_ct, enqueued_at, vt, message FROM gone ORDER BY msg_id"
    );
    sqlx::query_as(&sql).bind(qty).fetch_all(executor).await
}

/// Removes messages `ids` of `queue` in one statement, deleting them or, with `archive`,
/// moving them to pgmq's archive (`pgmq.archive`, which copies every column its version
/// has); returns the ids that were there to remove.
pub(crate) async fn remove_batch(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
    ids: &[i64],
    archive: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    if archive {
        return sqlx::query_scalar(
            "SELECT msg_id FROM pgmq.archive($1::text, $2::bigint[]) AS removed(msg_id)",
        )
        .bind(queue.as_str())
        .bind(ids)
        .fetch_all(executor)
        .await;
    }
    let sql = format!(
        "WITH removed AS (DELETE FROM {} WHERE msg_id = ANY($1::bigint[]) RETURNING msg_id) \
         SELECT msg_id FROM removed",
        table("q", queue)
    );
    sqlx::query_scalar(&sql).bind(ids).fetch_all(executor).await
}

/// Messages to send to one queue, in order.
pub(crate) struct Outgoing<'a> {
    pub(crate) queue: &'a QueueName,
    pub(crate) bodies: Vec<&'a str>,
}

/// Messages of one queue to remove.
pub(crate) struct Removal<'a> {
    pub(crate) queue: &'a QueueName,
    pub(crate) ids: Vec<i64>,
}

/// In one statement: sends each queue's `bodies` (JSON texts, in order), notifying each
/// queue's channel once as [`send_batch`] does, and removes each removal's messages (deleting
/// them or, with `archive`, archiving them with `pgmq.archive`). Returns the removed messages
/// as (queue, id).
///
/// The statement has one part per queue, because a queue is a table; its text therefore
/// depends on which queues take part (the connection's statement cache holds one prepared
/// statement per combination, and a process uses few).
pub(crate) async fn send_and_remove(
    executor: impl PgExecutor<'_>,
    sends: &[Outgoing<'_>],
    removals: &[Removal<'_>],
    archive: bool,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = send_and_remove_sql(sends, removals, archive);
    let channels: Vec<String> = sends.iter().map(|send| channel(send.queue)).collect();
    let mut query = sqlx::query_as::<_, (Option<String>, Option<i64>)>(&sql);
    for (send, channel) in sends.iter().zip(&channels) {
        query = query
            .bind(&send.bodies)
            .bind(channel)
            .bind(send.queue.as_str());
    }
    for removal in removals {
        query = query.bind(&removal.ids).bind(removal.queue.as_str());
    }
    let rows = query.fetch_all(executor).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(queue, id)| queue.zip(id))
        .collect())
}

/// The text of [`send_and_remove`]'s statement. Parameters: per send, its bodies, channel and
/// queue name; then per removal, its ids and queue name.
pub(crate) fn send_and_remove_sql(
    sends: &[Outgoing<'_>],
    removals: &[Removal<'_>],
    archive: bool,
) -> String {
    use std::fmt::Write as _;

    let mut sql = String::from("WITH ");
    let mut param = 0;
    let mut next = || {
        param += 1;
        param
    };
    let mut notified = Vec::with_capacity(sends.len());
    for (i, send) in sends.iter().enumerate() {
        let (bodies, channel, name) = (next(), next(), next());
        let _ = write!(
            sql,
            "s{i} AS ( \
                 INSERT INTO {table} (vt, message) \
                 SELECT clock_timestamp(), unnest(${bodies}::text[]::jsonb[]) RETURNING msg_id \
             ), n{i} AS MATERIALIZED ( \
                 SELECT pg_notify(${channel}, json_build_object('queue', ${name}::text, \
                        'msg_id', max(msg_id), 'count', count(*))::text) FROM s{i} \
             ), ",
            table = table("q", send.queue),
        );
        notified.push(format!("(SELECT count(*) FROM n{i})"));
    }
    let mut removed = Vec::with_capacity(removals.len());
    for (i, removal) in removals.iter().enumerate() {
        let (ids, name) = (next(), next());
        if archive {
            let _ = write!(
                sql,
                "r{i} AS MATERIALIZED ( \
                     SELECT msg_id FROM pgmq.archive(${name}::text, ${ids}::bigint[]) AS a (msg_id) \
                 ), "
            );
        } else {
            let _ = write!(
                sql,
                "r{i} AS (DELETE FROM {table} WHERE msg_id = ANY(${ids}::bigint[]) \
                 RETURNING msg_id), ",
                table = table("q", removal.queue),
            );
        }
        removed.push(format!("SELECT ${name}::text AS queue, msg_id FROM r{i}"));
    }
    if notified.is_empty() {
        notified.push("0".to_owned());
    }
    if removed.is_empty() {
        removed.push("SELECT NULL::text AS queue, NULL::bigint AS msg_id WHERE false".to_owned());
    }
    // Every SELECT part is referenced by the final SELECT (an unreferenced one would not run;
    // the data-modifying ones run regardless); `counted` makes the statement return a row
    // even when nothing is removed.
    let _ = write!(
        sql,
        "counted AS MATERIALIZED (SELECT {} AS notified) \
         SELECT r.queue, r.msg_id FROM counted c LEFT JOIN ({}) r ON true",
        notified.join(" + "),
        removed.join(" UNION ALL "),
    );
    sql
}

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
/// Whether queue `queue` exists (pgmq's `drop_queue` refuses a missing one).
pub(crate) async fn queue_exists(
    executor: impl PgExecutor<'_>,
    queue: &QueueName,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1)")
        .bind(queue.as_str())
        .fetch_one(executor)
        .await
}

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
