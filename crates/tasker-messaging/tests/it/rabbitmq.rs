//! The conformance suite on the RabbitMQ backend (the broker at 127.0.0.1:5672, guest/guest),
//! with per-test queue names, and the fault test of a forced connection close.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use tasker_messaging::config::RabbitMqConfig;
use tasker_messaging::queue::{MessageId, MessageQueue};
use tasker_messaging::queue_name::QueueName;
use tasker_messaging::rabbitmq::RabbitMqQueue;
use tokio::time::Instant;

use crate::suite::{Harness, conformance, index_of, payload};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn unique_prefix() -> String {
    format!("t{:08x}_", rand::random::<u32>())
}

async fn backend(connection_name: &str) -> anyhow::Result<Arc<RabbitMqQueue>> {
    let config = RabbitMqConfig {
        messaging: Harness::config(),
        url: URL.to_owned(),
        connection_name: connection_name.to_owned(),
        ..RabbitMqConfig::default()
    };
    let backend = RabbitMqQueue::connect(config)
        .await
        .context("connecting to RabbitMQ at 127.0.0.1:5672 (the tests need it)")?;
    Ok(Arc::new(backend))
}

/// Deletes the queues (and dead-letter exchanges) a test created.
struct DeleteQueues;

impl DeleteQueues {
    async fn finish(self, harness: &Harness) -> anyhow::Result<()> {
        let created = harness.created.lock().expect("not poisoned").clone();
        delete_queues(&created).await
    }
}

async fn delete_queues(queues: &[QueueName]) -> anyhow::Result<()> {
    let connection = Connection::connect(URL, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    for queue in queues {
        for name in std::iter::once(queue.clone()).chain(queue.dead_letter()) {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(
                format!("{queue}_dlx").as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await?;
    }
    connection.close(200, "cleaned up".into()).await?;
    Ok(())
}

async fn setup() -> anyhow::Result<(Harness, DeleteQueues)> {
    let prefix = unique_prefix();
    let harness = Harness {
        backend: backend(&format!("tasker-test-{prefix}")).await?,
        prefix,
        vt_unit: Duration::from_secs(1),
        created: Default::default(),
    };
    Ok((harness, DeleteQueues))
}

conformance!(tokio::test(flavor = "multi_thread", worker_threads = 2); setup());

/// Two deployments on one broker, with different queue prefixes, use the same queue names
/// without seeing each other's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_prefixes_keep_deployments_apart() -> anyhow::Result<()> {
    let run = unique_prefix();
    let connect = |deployment: &str| {
        let config = RabbitMqConfig {
            messaging: Harness::config(),
            url: URL.to_owned(),
            connection_name: format!("tasker-test-{run}{deployment}"),
            queue_prefix: format!("{run}{deployment}."),
            ..RabbitMqConfig::default()
        };
        RabbitMqQueue::connect(config)
    };
    let (first, second) = (connect("first").await?, connect("second").await?);
    let queue = QueueName::new("shared_name")?;
    let outcome = async {
        first.ensure_queue(&queue).await?;
        second.ensure_queue(&queue).await?;
        first.send(&queue, &payload(1)).await?;
        second.send(&queue, &payload(2)).await?;
        for (backend, expected) in [(&first, 1), (&second, 2)] {
            let got = crate::suite::receive_n(backend, &queue, 1, Duration::from_secs(30)).await?;
            ensure!(index_of(&got[0])? == expected);
            backend.ack(got[0].receipt()).await?;
            let depth = backend.depth(&queue).await?;
            ensure!(depth.ready == 0, "{depth:?}");
        }
        anyhow::Ok(())
    }
    .await;
    first.delete_queue(&queue).await?;
    second.delete_queue(&queue).await?;
    outcome
}

/// A prefix outside the rules is refused before connecting.
#[tokio::test]
async fn invalid_queue_prefix_is_refused() {
    let config = RabbitMqConfig {
        queue_prefix: "has space".to_owned(),
        ..RabbitMqConfig::default()
    };
    let error = RabbitMqQueue::connect(config).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid RabbitMQ queue prefix \"has space\": it contains ' '; use letters, digits, '_', '.' and '-'"
    );
}

/// Closes this test's connection from the broker's side with `rabbitmqctl`, as an operator (or
/// a broker restart) would.
fn force_close(connection_name: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q"])
        .output()
        .context("running rabbitmqctl (needed to force-close a connection)")?;
    ensure!(
        output.status.success(),
        "rabbitmqctl list_connections failed: {output:?}"
    );
    let listing = String::from_utf8_lossy(&output.stdout);
    // One line per connection: the pid (`<rabbit@host.1.2.3>`), a tab, the client properties.
    let pid = listing
        .lines()
        .find(|line| line.contains(connection_name))
        .and_then(|line| line.split('\t').next())
        .with_context(|| format!("no connection named {connection_name} in {listing}"))?
        .trim()
        .to_owned();
    let closed = std::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pid, "forced by the fault test"])
        .output()
        .context("running rabbitmqctl close_connection")?;
    ensure!(
        closed.status.success(),
        "rabbitmqctl close_connection failed: {closed:?}"
    );
    Ok(())
}

/// The broker closes the connection mid-stream while a producer publishes and a consumer
/// consumes: both resume after the reconnect, and every confirmed message is consumed exactly
/// once after acks (a message whose confirm was lost may arrive once or not at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_forced_close() -> anyhow::Result<()> {
    let prefix = unique_prefix();
    let connection_name = format!("tasker-fault-{prefix}");
    let backend = backend(&connection_name).await?;
    let queue = QueueName::new(format!("{prefix}faults"))?;
    backend.ensure_queue(&queue).await?;
    let result = async {
        let stop = Arc::new(AtomicBool::new(false));
        let confirmed_count = Arc::new(AtomicUsize::new(0));
        let producer = {
            let backend = Arc::clone(&backend);
            let queue = queue.clone();
            let stop = Arc::clone(&stop);
            let confirmed_count = Arc::clone(&confirmed_count);
            tokio::spawn(async move {
                let mut confirmed = Vec::new();
                let mut unconfirmed = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    match backend.send(&queue, &payload(n)).await {
                        Ok(id) => {
                            confirmed.push((n, id));
                            confirmed_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => unconfirmed.push(n),
                    }
                    n += 1;
                }
                (confirmed, unconfirmed)
            })
        };
        let mut status = backend.connection_status();
        let mut seen: HashMap<usize, usize> = HashMap::new();
        let mut ids: HashMap<usize, MessageId> = HashMap::new();
        let mut closed_at_confirmed: Option<usize> = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut receive_errors = 0;
        loop {
            ensure!(
                Instant::now() < deadline,
                "did not finish; seen {}",
                seen.len()
            );
            if closed_at_confirmed.is_none() && seen.len() >= 50 {
                force_close(&connection_name)?;
                tokio::time::timeout(
                    Duration::from_secs(10),
                    status.wait_for(|status| status.connected && status.connections >= 2),
                )
                .await
                .context("no reconnect within 10 s")??;
                closed_at_confirmed = Some(confirmed_count.load(Ordering::SeqCst));
            }
            // Publishing resumed: 200 more confirmed sends after the reconnect, then stop.
            if let Some(at) = closed_at_confirmed
                && confirmed_count.load(Ordering::SeqCst) >= at + 200
            {
                stop.store(true, Ordering::SeqCst);
            }
            let batch = match backend.receive(&queue, 20, Duration::from_secs(30)).await {
                Ok(batch) => batch,
                Err(_) => {
                    receive_errors += 1;
                    continue;
                }
            };
            if batch.is_empty() {
                if producer.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            for message in batch {
                // Acks on the lost connection fail; those messages come back and are counted
                // when an ack succeeds.
                if backend.ack(message.receipt()).await.is_ok() {
                    let index = index_of(&message)?;
                    *seen.entry(index).or_default() += 1;
                    ids.insert(index, message.id);
                }
            }
        }
        let (confirmed, unconfirmed) = producer.await?;
        ensure!(
            closed_at_confirmed.is_some(),
            "the connection was never closed"
        );
        ensure!(receive_errors < 1000, "{receive_errors} receive errors");
        // Drain what is still in flight, until every confirmed message was consumed.
        let drain_deadline = Instant::now() + Duration::from_secs(30);
        while confirmed.iter().any(|(index, _)| !seen.contains_key(index)) {
            ensure!(
                Instant::now() < drain_deadline,
                "confirmed messages missing"
            );
            for message in backend.receive(&queue, 50, Duration::from_secs(30)).await? {
                backend.ack(message.receipt()).await?;
                *seen.entry(index_of(&message)?).or_default() += 1;
                ids.insert(index_of(&message)?, message.id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (index, id) in &confirmed {
            ensure!(
                seen.get(index) == Some(&1),
                "confirmed message {index} consumed {:?} times",
                seen.get(index)
            );
            ensure!(ids.get(index) == Some(id), "message {index} has another id");
        }
        for index in &unconfirmed {
            ensure!(
                seen.get(index).copied().unwrap_or(0) <= 1,
                "unconfirmed {index} twice"
            );
        }
        ensure!(backend.depth(&queue).await?.ready == 0);
        Ok(())
    }
    .await;
    drop(backend);
    delete_queues(&[queue]).await?;
    result
}
