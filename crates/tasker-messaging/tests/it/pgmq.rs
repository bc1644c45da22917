//! The conformance suite on the PGMQ backend, each test in its own database, and the fault
//! test of the LISTEN connection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use tasker_messaging::config::{AckMode, PgmqConfig, ReadCommit};
use tasker_messaging::error::QueueError;
use tasker_messaging::pgmq::PgmqQueue;
use tasker_messaging::queue::MessageQueue;
use tasker_messaging::queue_name::QueueName;
use tasker_messaging::signal::{QueueSignal, Subscription};
use tokio::time::Instant;

use crate::pg_support::TestDb;
use crate::suite::{Harness, conformance, payload, receive_n};

async fn backend(db: &TestDb) -> Arc<PgmqQueue> {
    let config = PgmqConfig {
        messaging: Harness::config(),
        ..PgmqConfig::default()
    };
    Arc::new(PgmqQueue::new(db.pool.clone(), config).await)
}

async fn setup() -> anyhow::Result<(Harness, TestDb)> {
    let db = TestDb::create().await?;
    let harness = Harness {
        backend: backend(&db).await,
        prefix: String::new(),
        vt_unit: Duration::from_secs(1),
        created: Default::default(),
    };
    Ok((harness, db))
}

conformance!(tokio::test(flavor = "multi_thread", worker_threads = 2); setup());

/// A message sent inside a transaction appears only if the transaction commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_follows_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("outbox")?;
        backend.ensure_queue(&queue).await?;
        let mut tx = db.pool.begin().await?;
        backend.send_in(&mut tx, &queue, &payload(1)).await?;
        tx.rollback().await?;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty()
        );
        let mut tx = db.pool.begin().await?;
        backend.send_in(&mut tx, &queue, &payload(2)).await?;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty(),
            "invisible before commit"
        );
        tx.commit().await?;
        let got = receive_n(&*backend, &queue, 1, Duration::from_secs(30)).await?;
        ensure!(crate::suite::index_of(&got[0])? == 2);
        Ok(())
    })
    .await
}

/// A batch sent inside a transaction appears, in order and with a signal, only if the
/// transaction commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_in_follows_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("outbox_batch")?;
        backend.ensure_queue(&queue).await?;
        let mut subscription = backend.subscribe(std::slice::from_ref(&queue)).await?;
        while subscription.try_recv().is_some() {}
        let mut tx = db.pool.begin().await?;
        let payloads: Vec<_> = (0..3).map(payload).collect();
        ensure!(
            backend
                .send_batch_in(&mut tx, &queue, &payloads)
                .await?
                .len()
                == 3
        );
        tx.rollback().await?;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty()
        );
        let mut tx = db.pool.begin().await?;
        ensure!(
            backend
                .send_batch_in(&mut tx, &queue, &[])
                .await?
                .is_empty()
        );
        let payloads: Vec<_> = (3..6).map(payload).collect();
        let ids = backend.send_batch_in(&mut tx, &queue, &payloads).await?;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty(),
            "invisible before commit"
        );
        tx.commit().await?;
        signal_for(&mut subscription, &queue, Duration::from_secs(5)).await?;
        let got = receive_n(&*backend, &queue, 3, Duration::from_secs(30)).await?;
        let received: Vec<_> = got.iter().map(|message| message.id).collect();
        ensure!(received == ids, "{received:?} != {ids:?}");
        let indices: Vec<usize> = got
            .iter()
            .map(crate::suite::index_of)
            .collect::<anyhow::Result<_>>()?;
        ensure!(indices == vec![3, 4, 5], "{indices:?}");
        Ok(())
    })
    .await
}

/// Acknowledgements made inside a transaction take effect only if it commits: after a
/// rollback the messages come back when their visibility timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_batch_in_follows_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("inbox_batch")?;
        backend.ensure_queue(&queue).await?;
        let payloads: Vec<_> = (0..2).map(payload).collect();
        backend.send_batch(&queue, &payloads).await?;
        let got = receive_n(&*backend, &queue, 2, Duration::from_secs(1)).await?;
        let receipts: Vec<_> = got
            .iter()
            .map(|message| message.receipt().clone())
            .collect();
        let mut tx = db.pool.begin().await?;
        for outcome in backend.ack_batch_in(&mut tx, &receipts).await? {
            outcome?;
        }
        tx.rollback().await?;
        let again = receive_n(&*backend, &queue, 2, Duration::from_secs(1)).await?;
        ensure!(
            again.iter().all(|message| message.read_count == 2),
            "{again:?}"
        );
        let receipts: Vec<_> = again
            .iter()
            .map(|message| message.receipt().clone())
            .collect();
        let mut tx = db.pool.begin().await?;
        for outcome in backend.ack_batch_in(&mut tx, &receipts).await? {
            outcome?;
        }
        tx.commit().await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty(),
            "acknowledged for good"
        );
        Ok(())
    })
    .await
}

/// A receive inside a transaction takes effect only if it commits: after a rollback the
/// messages are visible at once, their read counts unchanged. Both read commit modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_in_follows_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        for read_commit in [ReadCommit::Asynchronous, ReadCommit::Synchronous] {
            let backend = Arc::new(
                PgmqQueue::new(
                    db.pool.clone(),
                    PgmqConfig {
                        messaging: Harness::config(),
                        read_commit,
                        ..PgmqConfig::default()
                    },
                )
                .await,
            );
            let queue = QueueName::new(format!("inbox_tx_{read_commit:?}").to_lowercase())?;
            backend.ensure_queue(&queue).await?;
            backend
                .send_batch(&queue, &[payload(1), payload(2)])
                .await?;
            let mut tx = db.pool.begin().await?;
            let got = backend
                .receive_in(&mut tx, &queue, 10, Duration::from_secs(30))
                .await?;
            ensure!(got.len() == 2, "{got:?}");
            tx.rollback().await?;
            let mut tx = db.pool.begin().await?;
            let again = backend
                .receive_in(&mut tx, &queue, 10, Duration::from_secs(30))
                .await?;
            ensure!(
                again.len() == 2 && again.iter().all(|message| message.read_count == 1),
                "a rolled back receive leaves no trace: {again:?}"
            );
            tx.commit().await?;
            ensure!(
                backend
                    .receive(&queue, 10, Duration::from_secs(30))
                    .await?
                    .is_empty(),
                "a committed receive hides the messages"
            );
            let receipts: Vec<_> = again.iter().map(|m| m.receipt().clone()).collect();
            for outcome in backend.ack_batch(&receipts).await? {
                outcome?;
            }
        }
        Ok(())
    })
    .await
}

/// Messages popped inside a transaction are gone only if it commits (in order, counted as
/// delivered once); a popped message can be dead-lettered in the same transaction; popped
/// receipts are spent. In archive mode popped messages are archived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_in_consumes_with_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("popped")?;
        backend.ensure_queue(&queue).await?;
        let ids = backend
            .send_batch(&queue, &[payload(1), payload(2), payload(3)])
            .await?;
        let mut tx = db.pool.begin().await?;
        let got = backend.pop_in(&mut tx, &queue, 2).await?;
        let popped: Vec<_> = got.iter().map(|message| message.id).collect();
        ensure!(popped == ids[..2], "{popped:?}");
        ensure!(got.iter().all(|message| message.read_count == 1));
        tx.rollback().await?;

        let mut tx = db.pool.begin().await?;
        let got = backend.pop_in(&mut tx, &queue, 10).await?;
        ensure!(got.len() == 3, "a rollback puts them back: {got:?}");
        backend
            .dead_letter_in(&mut tx, &got[1], "cannot be processed".to_owned())
            .await?;
        tx.commit().await?;
        ensure!(
            backend
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty()
        );
        let acked = backend.ack(got[0].receipt()).await;
        ensure!(
            matches!(acked, Err(QueueError::ReceiptInvalid { .. })),
            "{acked:?}"
        );
        let dlq = queue.dead_letter().context("a DLQ")?;
        let dead = receive_n(&*backend, &dlq, 1, Duration::from_secs(30)).await?;
        ensure!(
            crate::suite::index_of(&dead[0])? == 2,
            "the body travels unchanged"
        );
        let info = dead[0].dead_letter.as_ref().context("dead-letter info")?;
        ensure!(info.reason == "cannot be processed" && info.original_id == ids[1]);

        let archiving = PgmqQueue::new(
            db.pool.clone(),
            PgmqConfig {
                messaging: Harness::config(),
                ack_mode: AckMode::Archive,
                ..PgmqConfig::default()
            },
        )
        .await;
        archiving.send(&queue, &payload(4)).await?;
        let mut tx = db.pool.begin().await?;
        ensure!(archiving.pop_in(&mut tx, &queue, 10).await?.len() == 1);
        tx.commit().await?;
        let archived: i64 = sqlx::query_scalar("SELECT count(*) FROM pgmq.a_popped")
            .fetch_one(&db.pool)
            .await?;
        ensure!(archived == 1, "archived {archived}");
        ensure!(
            archiving
                .receive(&queue, 10, Duration::from_secs(30))
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await
}

/// Sends to several queues and acknowledgements in one statement follow the caller's
/// transaction: nothing after a rollback; after the commit the messages are there in order,
/// signalled, and the acknowledged ones gone (a stale receipt reported invalid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_ack_in_follows_the_callers_transaction() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let (inbox, first, second) = (
            QueueName::new("sa_inbox")?,
            QueueName::new("sa_first")?,
            QueueName::new("sa_second")?,
        );
        for queue in [&inbox, &first, &second] {
            backend.ensure_queue(queue).await?;
        }
        let mut subscription = backend.subscribe(&[first.clone(), second.clone()]).await?;
        while subscription.try_recv().is_some() {}
        backend
            .send_batch(&inbox, &[payload(1), payload(2), payload(3)])
            .await?;
        let got = receive_n(&*backend, &inbox, 3, Duration::from_secs(1)).await?;
        backend.ack(got[2].receipt()).await?;
        let receipts: Vec<_> = got.iter().map(|m| m.receipt().clone()).collect();
        let to_first = [payload(10), payload(11)];
        let to_second = [payload(20)];
        let sends = [(&first, &to_first[..]), (&second, &to_second[..])];

        let mut tx = db.pool.begin().await?;
        backend.send_and_ack_in(&mut tx, &sends, &receipts).await?;
        tx.rollback().await?;
        for queue in [&first, &second] {
            ensure!(
                backend
                    .receive(queue, 10, Duration::from_secs(30))
                    .await?
                    .is_empty()
            );
        }
        // The rolled back acknowledgements left the inbox's messages in flight.
        let again = receive_n(&*backend, &inbox, 2, Duration::from_secs(30)).await?;
        let receipts: Vec<_> = again
            .iter()
            .map(|m| m.receipt().clone())
            .chain(std::iter::once(got[2].receipt().clone()))
            .collect();

        let mut tx = db.pool.begin().await?;
        let outcomes = backend.send_and_ack_in(&mut tx, &sends, &receipts).await?;
        tx.commit().await?;
        ensure!(outcomes.len() == 3, "{outcomes:?}");
        ensure!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
        ensure!(
            matches!(outcomes[2], Err(QueueError::ReceiptInvalid { .. })),
            "{outcomes:?}"
        );
        signal_for(&mut subscription, &first, Duration::from_secs(5)).await?;
        let got = receive_n(&*backend, &first, 2, Duration::from_secs(30)).await?;
        let indices: Vec<usize> = got
            .iter()
            .map(crate::suite::index_of)
            .collect::<anyhow::Result<_>>()?;
        ensure!(indices == vec![10, 11], "{indices:?}");
        ensure!(
            receive_n(&*backend, &second, 1, Duration::from_secs(30))
                .await?
                .len()
                == 1
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            backend
                .receive(&inbox, 10, Duration::from_secs(30))
                .await?
                .is_empty(),
            "acknowledged for good"
        );
        let mut tx = db.pool.begin().await?;
        ensure!(backend.send_and_ack_in(&mut tx, &[], &[]).await?.is_empty());
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// Waits up to `within` for a signal for `queue`, skipping others.
async fn signal_for(
    subscription: &mut Subscription,
    queue: &QueueName,
    within: Duration,
) -> anyhow::Result<QueueSignal> {
    tokio::time::timeout(within, async {
        loop {
            match subscription.recv().await {
                Some(signal) if &signal.queue == queue => return Ok(signal),
                Some(_) => {}
                None => anyhow::bail!("subscription closed"),
            }
        }
    })
    .await
    .with_context(|| format!("no signal for {queue} within {within:?}"))?
}

/// Terminating the LISTEN connection's server process mid-stream: the listener reconnects,
/// signals resume within 2 s, and every message sent meanwhile is received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_survives_pg_terminate_backend() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("faults")?;
        backend.ensure_queue(&queue).await?;
        let mut subscription = backend.subscribe(std::slice::from_ref(&queue)).await?;
        let mut status = backend
            .listener_status()
            .await
            .context("subscribing starts the listener")?;
        ensure!(status.borrow().connected, "{:?}", *status.borrow());
        while subscription.try_recv().is_some() {}

        backend.send(&queue, &payload(0)).await?;
        signal_for(&mut subscription, &queue, Duration::from_secs(2)).await?;
        let first = receive_n(&*backend, &queue, 1, Duration::from_secs(30)).await?;
        backend.ack(first[0].receipt()).await?;

        let pid = status
            .borrow()
            .backend_pid
            .context("connected listener has a pid")?;
        ensure!(
            db.terminate_backend(pid).await?,
            "pg_terminate_backend({pid}) failed"
        );
        let killed_at = Instant::now();
        // Sent while the listener is down or reconnecting: their notifications may reach nobody.
        for n in 1..=5 {
            backend.send(&queue, &payload(n)).await?;
        }
        tokio::time::timeout(
            Duration::from_secs(2),
            status.wait_for(|status| status.connected && status.connections >= 2),
        )
        .await
        .context("the listener did not reconnect within 2 s")??;
        signal_for(&mut subscription, &queue, Duration::from_secs(2)).await?;
        let got = receive_n(&*backend, &queue, 5, Duration::from_secs(30)).await?;
        ensure!(
            killed_at.elapsed() < Duration::from_secs(2),
            "signals resumed only after {:?}",
            killed_at.elapsed()
        );
        let mut indices: Vec<usize> = got
            .iter()
            .map(crate::suite::index_of)
            .collect::<anyhow::Result<_>>()?;
        indices.sort_unstable();
        ensure!(indices == vec![1, 2, 3, 4, 5], "{indices:?}");
        for message in &got {
            backend.ack(message.receipt()).await?;
        }
        ensure!(status.borrow().backend_pid != Some(pid));

        // And signals flow as before.
        while subscription.try_recv().is_some() {}
        backend.send(&queue, &payload(6)).await?;
        signal_for(&mut subscription, &queue, Duration::from_secs(2)).await?;
        Ok(())
    })
    .await
}

/// The backend's own statements on the queue tables and pgmq's functions are interchangeable:
/// messages sent by either are read, popped and acknowledged by the other, in order, with the
/// same read counts and `last_read_at`; archiving keeps pgmq's headers; and a queue that does
/// not exist is reported as such by every statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_statements_agree_with_pgmqs_functions() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("interop")?;
        backend.ensure_queue(&queue).await?;
        let raw_send = async |queue: &QueueName, n: usize| -> anyhow::Result<i64> {
            Ok(
                sqlx::query_scalar("SELECT pgmq.send($1, $2::jsonb, '{\"h\": 1}'::jsonb)")
                    .bind(queue.as_str())
                    .bind(payload(n).as_str())
                    .fetch_one(&db.pool)
                    .await?,
            )
        };

        // pgmq sends, we read: read count 1, last_read_at set, the deadline moved.
        let id = raw_send(&queue, 1).await?;
        let got = backend.receive(&queue, 10, Duration::from_secs(30)).await?;
        ensure!(got.len() == 1 && got[0].read_count == 1, "{got:?}");
        let (read_ct, last_read, hidden): (i32, bool, bool) = sqlx::query_as(
            "SELECT read_ct, last_read_at IS NOT NULL, vt > now() + interval '20 seconds' \
             FROM pgmq.q_interop WHERE msg_id = $1",
        )
        .bind(id)
        .fetch_one(&db.pool)
        .await?;
        ensure!(read_ct == 1 && last_read && hidden, "{read_ct} {last_read} {hidden}");
        backend.ack(got[0].receipt()).await?;

        // We send, pgmq reads, in order.
        backend
            .send_batch(&queue, &[payload(2), payload(3), payload(4)])
            .await?;
        let raw: Vec<(i32, serde_json::Value)> =
            sqlx::query_as("SELECT read_ct, message FROM pgmq.read('interop', 30, 10)")
                .fetch_all(&db.pool)
                .await?;
        let expected: Vec<serde_json::Value> = [2, 3, 4]
            .into_iter()
            .map(|n| serde_json::from_str(payload(n).as_str()))
            .collect::<Result<_, _>>()?;
        let bodies: Vec<&serde_json::Value> = raw.iter().map(|(_, message)| message).collect();
        ensure!(
            bodies == expected.iter().collect::<Vec<_>>(),
            "{bodies:?}"
        );
        ensure!(raw.iter().all(|(read_ct, _)| *read_ct == 1), "{raw:?}");

        // pgmq sends, we pop, oldest first; the messages pgmq holds are skipped.
        for n in [5, 6] {
            raw_send(&queue, n).await?;
        }
        let mut tx = db.pool.begin().await?;
        let popped = backend.pop_in(&mut tx, &queue, 10).await?;
        tx.commit().await?;
        let indices: Vec<usize> = popped
            .iter()
            .map(crate::suite::index_of)
            .collect::<anyhow::Result<_>>()?;
        ensure!(indices == vec![5, 6], "{indices:?}");
        ensure!(popped.iter().all(|m| m.read_count == 1), "{popped:?}");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pgmq.q_interop")
            .fetch_one(&db.pool)
            .await?;
        ensure!(left == 3, "the three messages pgmq read are left, not {left}");

        // Archiving through the outbox statement keeps what pgmq's archive keeps.
        let archiving = PgmqQueue::new(
            db.pool.clone(),
            PgmqConfig {
                messaging: Harness::config(),
                ack_mode: AckMode::Archive,
                ..PgmqConfig::default()
            },
        )
        .await;
        let (inbox, outbox) = (QueueName::new("interop_in")?, QueueName::new("interop_out")?);
        for queue in [&inbox, &outbox] {
            backend.ensure_queue(queue).await?;
        }
        for n in [7, 8] {
            raw_send(&inbox, n).await?;
        }
        let got = archiving.receive(&inbox, 10, Duration::from_secs(30)).await?;
        ensure!(got.len() == 2, "{got:?}");
        let receipts: Vec<_> = got.iter().map(|m| m.receipt().clone()).collect();
        let out = [payload(9)];
        let mut tx = db.pool.begin().await?;
        let outcomes = archiving
            .send_and_ack_in(&mut tx, &[(&outbox, &out[..])], &receipts)
            .await?;
        tx.commit().await?;
        ensure!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let archived: Vec<(i32, bool, serde_json::Value)> = sqlx::query_as(
            "SELECT read_ct, last_read_at IS NOT NULL, headers FROM pgmq.a_interop_in \
             ORDER BY msg_id",
        )
        .fetch_all(&db.pool)
        .await?;
        ensure!(archived.len() == 2, "{archived:?}");
        ensure!(
            archived
                .iter()
                .all(|(read_ct, last, headers)| *read_ct == 1 && *last && headers["h"] == 1),
            "{archived:?}"
        );
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM pgmq.q_interop_out")
            .fetch_one(&db.pool)
            .await?;
        ensure!(sent == 1, "{sent}");

        // Archiving from two queues while sending to one of them and to another: one
        // statement, parameters for every part.
        let second = QueueName::new("interop_in_two")?;
        backend.ensure_queue(&second).await?;
        raw_send(&inbox, 10).await?;
        raw_send(&second, 11).await?;
        let mut receipts = Vec::new();
        for queue in [&inbox, &second] {
            let got = archiving.receive(queue, 10, Duration::from_secs(30)).await?;
            ensure!(got.len() == 1, "{queue}: {got:?}");
            receipts.push(got[0].receipt().clone());
        }
        let (to_second, to_out) = ([payload(12)], [payload(13), payload(14)]);
        let mut tx = db.pool.begin().await?;
        let outcomes = archiving
            .send_and_ack_in(
                &mut tx,
                &[(&outbox, &to_out[..]), (&second, &to_second[..])],
                &receipts,
            )
            .await?;
        tx.commit().await?;
        ensure!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        for (table, expected) in [
            ("pgmq.a_interop_in", 3_i64),
            ("pgmq.a_interop_in_two", 1),
            ("pgmq.q_interop_in_two", 1),
            ("pgmq.q_interop_out", 3),
        ] {
            let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&db.pool)
                .await?;
            ensure!(count == expected, "{table}: {count} rows, expected {expected}");
        }

        // A missing queue, statement by statement.
        let missing = QueueName::new("never_created")?;
        let sent = backend.send_batch(&missing, &[payload(1)]).await;
        ensure!(
            matches!(&sent, Err(QueueError::QueueNotFound { queue }) if *queue == missing),
            "send_batch: {sent:?}"
        );
        // Receipts of a queue dropped since.
        let gone = QueueName::new("interop_gone")?;
        backend.ensure_queue(&gone).await?;
        backend.send_batch(&gone, &[payload(1), payload(2)]).await?;
        let held = backend.receive(&gone, 2, Duration::from_secs(30)).await?;
        ensure!(held.len() == 2, "{held:?}");
        sqlx::query("SELECT pgmq.drop_queue('interop_gone')")
            .execute(&db.pool)
            .await?;
        let (stranger, other) = (held[0].receipt().clone(), held[1].receipt().clone());
        // A dropped queue is as missing as one never created.
        let missing = gone;
        let acked = backend.ack(&stranger).await;
        ensure!(
            matches!(&acked, Err(QueueError::QueueNotFound { queue }) if *queue == missing),
            "ack: {acked:?}"
        );
        let mut tx = db.pool.begin().await?;
        let acked = backend
            .ack_batch_in(&mut tx, std::slice::from_ref(&other))
            .await;
        ensure!(
            matches!(&acked, Err(QueueError::QueueNotFound { queue }) if *queue == missing),
            "ack_batch_in: {acked:?}"
        );
        tx.rollback().await?;
        let not_found = |outcome: &Result<_, QueueError>| {
            matches!(outcome, Err(QueueError::QueueNotFound { queue }) if *queue == missing)
        };
        let received = backend.receive(&missing, 1, Duration::from_secs(1)).await;
        ensure!(not_found(&received.map(|_| ())), "receive");
        let mut tx = db.pool.begin().await?;
        let popped = backend.pop_in(&mut tx, &missing, 1).await;
        ensure!(not_found(&popped.map(|_| ())), "pop_in");
        tx.rollback().await?;
        let missing_out = [payload(1)];
        let mut tx = db.pool.begin().await?;
        let sent = backend
            .send_and_ack_in(&mut tx, &[(&missing, &missing_out[..])], &[])
            .await;
        ensure!(not_found(&sent.map(|_| ())), "send_and_ack_in");
        tx.rollback().await?;
        Ok(())
    })
    .await
}

/// Under the generic plans pooled services use, reading and popping one message of a queue with
/// a backlog touch the queue table through its indexes only: no sequential scan (a join with
/// the picked ids planned generically became a hash join over the whole table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_pops_of_a_backlog_use_the_index_under_generic_plans() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let backend = backend(db).await;
        let queue = QueueName::new("backlog")?;
        backend.ensure_queue(&queue).await?;
        sqlx::query(
            "INSERT INTO pgmq.q_backlog (vt, message) \
             SELECT now() + interval '1 hour', '{}'::jsonb FROM generate_series(1, 5000)",
        )
        .execute(&db.pool)
        .await?;
        backend.send(&queue, &payload(1)).await?;
        backend.send(&queue, &payload(2)).await?;
        // Tuples read by sequential scans in this transaction (bitmap heap scans count as
        // scans in `seq_scan`, but read no tuples here).
        let seq_read = "SELECT seq_tup_read FROM pg_stat_xact_user_tables \
                        WHERE schemaname = 'pgmq' AND relname = 'q_backlog'";
        for pop in [false, true] {
            let mut tx = db.pool.begin().await?;
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(&mut *tx)
                .await?;
            let got = if pop {
                backend.pop_in(&mut tx, &queue, 1).await?
            } else {
                backend
                    .receive_in(&mut tx, &queue, 1, Duration::from_secs(30))
                    .await?
            };
            ensure!(got.len() == 1, "pop {pop}: {got:?}");
            let read: i64 = sqlx::query_scalar(seq_read).fetch_one(&mut *tx).await?;
            ensure!(
                read == 0,
                "pop {pop}: a sequential scan read {read} messages"
            );
            tx.commit().await?;
        }
        Ok(())
    })
    .await
}

/// A database without pgmq is reported as such by every operation, not as a missing queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_pgmq_is_reported_as_such() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        sqlx::query("DROP SCHEMA pgmq CASCADE")
            .execute(&db.pool)
            .await?;
        let backend = backend(db).await;
        let queue = QueueName::new("anything")?;
        let not_installed = |outcome: Result<(), QueueError>| {
            let error = outcome.expect_err("pgmq is gone");
            let message = format!("{error} / {:?}", std::error::Error::source(&error));
            ensure!(
                message.contains("PgmqNotInstalled"),
                "expected pgmq not installed, got {message}"
            );
            anyhow::Ok(())
        };
        not_installed(backend.send(&queue, &payload(1)).await.map(|_| ()))?;
        not_installed(
            backend
                .receive(&queue, 1, Duration::from_secs(1))
                .await
                .map(|_| ()),
        )?;
        let mut tx = db.pool.begin().await?;
        not_installed(backend.pop_in(&mut tx, &queue, 1).await.map(|_| ()))?;
        tx.rollback().await?;
        let out = [payload(1)];
        let mut tx = db.pool.begin().await?;
        not_installed(
            backend
                .send_and_ack_in(&mut tx, &[(&queue, &out[..])], &[])
                .await
                .map(|_| ()),
        )?;
        tx.rollback().await?;
        Ok(())
    })
    .await
}
