//! The conformance suite on the PGMQ backend, each test in its own database, and the fault
//! test of the LISTEN connection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use tasker_messaging::config::PgmqConfig;
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
    let db = TestDb::create().await?;
    let result = async {
        let backend = backend(&db).await;
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
    }
    .await;
    db.drop_database().await?;
    result
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
    let db = TestDb::create().await?;
    let result = async {
        let backend = backend(&db).await;
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
    }
    .await;
    db.drop_database().await?;
    result
}
