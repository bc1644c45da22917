//! The conformance suite: every backend must pass each of these functions.
//!
//! A backend module builds a [`Harness`] and instantiates the suite with the `conformance!`
//! macro. Waiting is bounded and driven by conditions (a message arrives, a deadline passes);
//! the in-memory backend runs under tokio's paused clock, where those waits take no real time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use tasker_messaging::config::MessagingConfig;
use tasker_messaging::consumer::{Consumer, Delivery, Outcome};
use tasker_messaging::envelope::Payload;
use tasker_messaging::error::QueueError;
use tasker_messaging::messages::StepMessage;
use tasker_messaging::queue::{Health, MessageQueue, Nack, ReceivedMessage};
use tasker_messaging::queue_name::QueueName;
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tokio::time::Instant;
use uuid::Uuid;

/// The size limit every harness configures, so the oversized test is the same everywhere.
pub(crate) const TEST_MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// How long waits for something that should happen may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A backend under test.
pub(crate) struct Harness {
    pub(crate) backend: Arc<dyn MessageQueue>,
    /// Makes queue names unique where backends share a broker between tests.
    pub(crate) prefix: String,
    /// The backend's visibility-timeout granularity (pgmq counts whole seconds).
    pub(crate) vt_unit: Duration,
    /// Queues the test ensured, for cleanup on brokers shared between tests.
    pub(crate) created: std::sync::Mutex<Vec<QueueName>>,
}

impl Harness {
    pub(crate) fn config() -> MessagingConfig {
        MessagingConfig {
            max_message_bytes: TEST_MAX_MESSAGE_BYTES,
            ..MessagingConfig::default()
        }
    }

    pub(crate) fn name(&self, name: &str) -> QueueName {
        QueueName::new(format!("{}{name}", self.prefix)).expect("test queue names are valid")
    }

    pub(crate) async fn queue(&self, name: &str) -> anyhow::Result<QueueName> {
        let queue = self.name(name);
        self.backend.ensure_queue(&queue).await?;
        self.created
            .lock()
            .expect("not poisoned")
            .push(queue.clone());
        Ok(queue)
    }
}

pub(crate) fn step(n: usize) -> StepMessage {
    StepMessage {
        task_id: TaskId::from_uuid(Uuid::from_u128(n as u128)),
        step_id: StepId::from_uuid(Uuid::from_u128(1_000_000 + n as u128)),
        correlation_id: CorrelationId::from_uuid(Uuid::from_u128(2_000_000 + n as u128)),
    }
}

pub(crate) fn payload(n: usize) -> Payload {
    Payload::encode(&step(n)).expect("step messages encode")
}

pub(crate) fn index_of(message: &ReceivedMessage) -> anyhow::Result<usize> {
    let step: StepMessage = message.decode()?;
    Ok(step.task_id.into_uuid().as_u128() as usize)
}

/// Receives until `count` messages arrived (RabbitMQ delivers in the background, so one receive
/// may see fewer than are there) or [`PATIENCE`] ran out.
pub(crate) async fn receive_n(
    backend: &dyn MessageQueue,
    queue: &QueueName,
    count: usize,
    visibility: Duration,
) -> anyhow::Result<Vec<ReceivedMessage>> {
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::new();
    while received.len() < count {
        let want = u16::try_from(count - received.len()).unwrap_or(u16::MAX);
        let batch = backend.receive(queue, want, visibility).await?;
        if batch.is_empty() {
            ensure!(
                Instant::now() < deadline,
                "received {} of {count} messages from {queue} before the deadline",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        received.extend(batch);
    }
    Ok(received)
}

/// Asserts that nothing can be received from `queue` now.
async fn assert_empty(backend: &dyn MessageQueue, queue: &QueueName) -> anyhow::Result<()> {
    let got = backend.receive(queue, 10, Duration::from_secs(30)).await?;
    ensure!(
        got.is_empty(),
        "expected {queue} to be empty, received {got:?}"
    );
    Ok(())
}

pub(crate) async fn per_queue_order(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("order").await?;
    for n in 0..20 {
        h.backend.send(&queue, &payload(n)).await?;
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let batch = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
        for message in batch {
            seen.push(index_of(&message)?);
            h.backend.ack(message.receipt()).await?;
        }
    }
    ensure!(
        seen == (0..20).collect::<Vec<_>>(),
        "out of order: {seen:?}"
    );
    assert_empty(&*h.backend, &queue).await
}

pub(crate) async fn redelivery_after_visibility_timeout(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("redelivery").await?;
    let id = h.backend.send(&queue, &payload(1)).await?;
    let first = receive_n(&*h.backend, &queue, 1, h.vt_unit).await?;
    ensure!(first[0].id == id && first[0].read_count == 1, "{first:?}");
    assert_empty(&*h.backend, &queue).await?;
    let started = Instant::now();
    let again = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    ensure!(
        again[0].id == id && again[0].read_count == 2,
        "redelivered: {again:?}"
    );
    ensure!(started.elapsed() <= h.vt_unit + Duration::from_secs(2));
    h.backend.ack(again[0].receipt()).await?;
    let depth = h.backend.depth(&queue).await?;
    ensure!(depth.ready == 0, "{depth:?}");
    Ok(())
}

pub(crate) async fn ack_removes_the_message(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("ack").await?;
    h.backend.send(&queue, &payload(1)).await?;
    let got = receive_n(&*h.backend, &queue, 1, h.vt_unit).await?;
    h.backend.ack(got[0].receipt()).await?;
    // Past the visibility timeout nothing comes back.
    tokio::time::sleep(h.vt_unit * 2).await;
    assert_empty(&*h.backend, &queue).await?;
    let depth = h.backend.depth(&queue).await?;
    ensure!(
        depth.ready == 0 && depth.in_flight.unwrap_or(0) == 0,
        "{depth:?}"
    );
    let again = h.backend.ack(got[0].receipt()).await;
    ensure!(
        matches!(again, Err(QueueError::ReceiptInvalid { .. })),
        "a second ack must report the receipt invalid: {again:?}"
    );
    Ok(())
}

/// One batch acknowledges messages of two queues; a receipt already acknowledged is reported
/// invalid without failing the others; a message left out of the batch is not acknowledged
/// with it (it comes back after its visibility timeout); acknowledging the batch again reports
/// every receipt invalid.
pub(crate) async fn ack_batch_settles_each_receipt(h: &Harness) -> anyhow::Result<()> {
    let first = h.queue("ackb_a").await?;
    let second = h.queue("ackb_b").await?;
    ensure!(h.backend.ack_batch(&[]).await?.is_empty());
    h.backend
        .send_batch(&first, &(0..4).map(payload).collect::<Vec<_>>())
        .await?;
    h.backend
        .send_batch(&second, &(10..12).map(payload).collect::<Vec<_>>())
        .await?;
    let mut from_first = receive_n(&*h.backend, &first, 4, h.vt_unit).await?;
    from_first.sort_by_key(|message| index_of(message).unwrap_or(usize::MAX));
    let from_second = receive_n(&*h.backend, &second, 2, Duration::from_secs(30)).await?;
    // Message 0 is acknowledged on its own first; message 3 stays out of the batch.
    h.backend.ack(from_first[0].receipt()).await?;
    let receipts = vec![
        from_first[1].receipt().clone(),
        from_second[0].receipt().clone(),
        from_first[0].receipt().clone(),
        from_first[2].receipt().clone(),
        from_second[1].receipt().clone(),
    ];
    let outcomes = h.backend.ack_batch(&receipts).await?;
    ensure!(outcomes.len() == 5, "one outcome per receipt: {outcomes:?}");
    for (index, outcome) in outcomes.iter().enumerate() {
        if index == 2 {
            ensure!(
                matches!(outcome, Err(QueueError::ReceiptInvalid { .. })),
                "the receipt acknowledged before is invalid: {outcome:?}"
            );
        } else {
            ensure!(outcome.is_ok(), "receipt {index}: {outcome:?}");
        }
    }
    // Past the visibility timeout only the message left out comes back.
    tokio::time::sleep(h.vt_unit * 2).await;
    let again = receive_n(&*h.backend, &first, 1, Duration::from_secs(30)).await?;
    ensure!(
        index_of(&again[0])? == 3 && again[0].read_count == 2,
        "{again:?}"
    );
    h.backend.ack(again[0].receipt()).await?;
    assert_empty(&*h.backend, &first).await?;
    assert_empty(&*h.backend, &second).await?;
    let repeated = h.backend.ack_batch(&receipts).await?;
    ensure!(
        repeated
            .iter()
            .all(|outcome| matches!(outcome, Err(QueueError::ReceiptInvalid { .. }))),
        "{repeated:?}"
    );
    Ok(())
}

/// Several queues consumed through one backend keep their receipts apart: AMQP numbers
/// deliveries per channel, so both first deliveries carry tag 1 there.
pub(crate) async fn receipts_of_different_queues_stay_apart(h: &Harness) -> anyhow::Result<()> {
    let first = h.queue("apart_a").await?;
    let second = h.queue("apart_b").await?;
    h.backend.send(&first, &payload(1)).await?;
    h.backend.send(&second, &payload(2)).await?;
    let from_first = receive_n(&*h.backend, &first, 1, Duration::from_secs(30)).await?;
    let from_second = receive_n(&*h.backend, &second, 1, Duration::from_secs(30)).await?;
    h.backend.ack(from_first[0].receipt()).await?;
    h.backend.ack(from_second[0].receipt()).await?;
    assert_empty(&*h.backend, &first).await?;
    assert_empty(&*h.backend, &second).await?;
    Ok(())
}

pub(crate) async fn nack_requeues(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("requeue").await?;
    let id = h.backend.send(&queue, &payload(5)).await?;
    let got = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    h.backend.nack(got[0].receipt(), Nack::Requeue).await?;
    let again = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    ensure!(
        again[0].id == id && again[0].read_count == 2 && index_of(&again[0])? == 5,
        "{again:?}"
    );
    h.backend.ack(again[0].receipt()).await?;
    Ok(())
}

pub(crate) async fn dead_letter_moves_the_message(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("dead").await?;
    let dlq = queue.dead_letter().context("an ordinary queue has a DLQ")?;
    let id = h.backend.send(&queue, &payload(9)).await?;
    let got = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    h.backend
        .nack(
            got[0].receipt(),
            Nack::DeadLetter {
                reason: "handler said no".to_owned(),
            },
        )
        .await?;
    assert_empty(&*h.backend, &queue).await?;
    let dead = receive_n(&*h.backend, &dlq, 1, Duration::from_secs(30)).await?;
    ensure!(index_of(&dead[0])? == 9, "the body travels unchanged");
    let info = dead[0]
        .dead_letter
        .as_ref()
        .context("a DLQ message carries its dead-letter info")?;
    ensure!(info.reason == "handler said no", "{info:?}");
    ensure!(info.source_queue == queue.as_str(), "{info:?}");
    ensure!(info.original_id == id, "{info:?}");
    ensure!(info.read_count == 1, "{info:?}");
    let nested = h
        .backend
        .nack(
            dead[0].receipt(),
            Nack::DeadLetter {
                reason: "again".to_owned(),
            },
        )
        .await;
    ensure!(
        matches!(nested, Err(QueueError::NoDeadLetterQueue { .. })),
        "{nested:?}"
    );
    h.backend.ack(dead[0].receipt()).await?;
    Ok(())
}

pub(crate) async fn batches(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("batch").await?;
    ensure!(h.backend.send_batch(&queue, &[]).await?.is_empty());
    let payloads: Vec<Payload> = (0..25).map(payload).collect();
    let ids = h.backend.send_batch(&queue, &payloads).await?;
    ensure!(ids.len() == 25);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    ensure!(unique.len() == 25, "ids are distinct: {ids:?}");
    let mut seen = Vec::new();
    for expected in [10, 10, 5] {
        let batch = receive_n(&*h.backend, &queue, expected, Duration::from_secs(30)).await?;
        ensure!(batch.len() == expected, "batch of {}", batch.len());
        for message in &batch {
            seen.push(index_of(message)?);
            h.backend.ack(message.receipt()).await?;
        }
    }
    ensure!(seen == (0..25).collect::<Vec<_>>(), "{seen:?}");
    assert_empty(&*h.backend, &queue).await
}

pub(crate) async fn extend_visibility(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("extend").await?;
    h.backend.send(&queue, &payload(3)).await?;
    let got = receive_n(&*h.backend, &queue, 1, h.vt_unit).await?;
    let receipt = h
        .backend
        .extend_visibility(got[0].receipt(), h.vt_unit * 3)
        .await?;
    // Twice the original timeout later the message is still hidden: the extension added to
    // the deadline instead of resetting it.
    tokio::time::sleep(h.vt_unit * 2).await;
    assert_empty(&*h.backend, &queue).await?;
    h.backend.ack(&receipt).await?;
    tokio::time::sleep(h.vt_unit * 3).await;
    assert_empty(&*h.backend, &queue).await
}

pub(crate) async fn concurrent_consumers_each_message_once(h: &Harness) -> anyhow::Result<()> {
    const MESSAGES: usize = 10_000;
    const CONSUMERS: usize = 16;
    let queue = h.queue("concurrent").await?;
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
        let payloads: Vec<Payload> = chunk.iter().copied().map(payload).collect();
        h.backend.send_batch(&queue, &payloads).await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONSUMERS {
        let backend = Arc::clone(&h.backend);
        let queue = queue.clone();
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::new();
            while done.load(Ordering::SeqCst) < MESSAGES {
                ensure!(Instant::now() < deadline, "consumers timed out");
                let batch = backend.receive(&queue, 10, Duration::from_secs(60)).await?;
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                for message in batch {
                    seen.push(index_of(&message)?);
                    backend.ack(message.receipt()).await?;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
            anyhow::Ok(seen)
        });
    }
    let mut counts: HashMap<usize, usize> = HashMap::new();
    while let Some(result) = tasks.join_next().await {
        for index in result?? {
            *counts.entry(index).or_default() += 1;
        }
    }
    ensure!(
        counts.len() == MESSAGES,
        "{} distinct messages",
        counts.len()
    );
    let duplicates: Vec<_> = counts.iter().filter(|(_, count)| **count != 1).collect();
    ensure!(
        duplicates.is_empty(),
        "received more than once: {duplicates:?}"
    );
    assert_empty(&*h.backend, &queue).await
}

pub(crate) async fn poison_message_is_dead_lettered(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("poison").await?;
    h.backend
        .send(
            &queue,
            &Payload::from_json(&serde_json::json!({"not": "an envelope"})),
        )
        .await?;
    h.backend.send(&queue, &payload(1)).await?;
    let consumer = Consumer::new(Arc::clone(&h.backend), queue.clone(), Harness::config());
    let handled = std::sync::Mutex::new(Vec::new());
    let mut handler = |message: StepMessage, _: Delivery| {
        handled.lock().expect("not poisoned").push(message);
        async { Outcome::Done }
    };
    let deadline = Instant::now() + PATIENCE;
    let mut dead = 0;
    while handled.lock().expect("not poisoned").is_empty() || dead == 0 {
        ensure!(
            Instant::now() < deadline,
            "consumer did not get both messages"
        );
        let report = consumer.run_once(&mut handler).await?;
        dead += report.dead_lettered;
        ensure!(report.settle_failures == 0, "{report:?}");
        if report.received == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let handled = handled.into_inner().expect("not poisoned");
    ensure!(handled == vec![step(1)], "{handled:?}");
    let dlq = queue.dead_letter().context("DLQ")?;
    let dead = receive_n(&*h.backend, &dlq, 1, Duration::from_secs(30)).await?;
    let reason = &dead[0].dead_letter.as_ref().context("info")?.reason;
    ensure!(reason.contains("is not a Tasker envelope"), "{reason}");
    Ok(())
}

pub(crate) async fn oversized_message_is_refused(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("oversized").await?;
    let big =
        Payload::from_json(&serde_json::json!({ "blob": "x".repeat(TEST_MAX_MESSAGE_BYTES) }));
    let refused = h.backend.send(&queue, &big).await;
    let Err(QueueError::TooLarge { size, limit, .. }) = &refused else {
        anyhow::bail!("expected TooLarge, got {refused:?}");
    };
    ensure!(*size == big.len() && *limit == TEST_MAX_MESSAGE_BYTES);
    let message = refused.as_ref().unwrap_err().to_string();
    ensure!(
        message.contains("exceeds the limit of 8192 bytes"),
        "{message}"
    );
    let batch = h.backend.send_batch(&queue, &[payload(1), big]).await;
    ensure!(
        matches!(batch, Err(QueueError::TooLarge { .. })),
        "{batch:?}"
    );
    assert_empty(&*h.backend, &queue).await
}

pub(crate) async fn unknown_queue_is_reported(h: &Harness) -> anyhow::Result<()> {
    let queue = h.name("never_created");
    let sent = h.backend.send(&queue, &payload(1)).await;
    ensure!(
        matches!(&sent, Err(QueueError::QueueNotFound { queue: q }) if *q == queue),
        "{sent:?}"
    );
    Ok(())
}

pub(crate) async fn delete_queue_removes_it_with_its_messages(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("deleted").await?;
    let other = h.queue("kept").await?;
    h.backend.send(&queue, &payload(1)).await?;
    // Consumed before it is deleted: the backend's own consumer must not break the connection.
    let got = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    ensure!(index_of(&got[0])? == 1);
    h.backend.delete_queue(&queue).await?;
    h.backend.send(&other, &payload(3)).await?;
    let got = receive_n(&*h.backend, &other, 1, Duration::from_secs(30)).await?;
    ensure!(index_of(&got[0])? == 3, "the other queue works on");
    let sent = h.backend.send(&queue, &payload(2)).await;
    ensure!(
        matches!(&sent, Err(QueueError::QueueNotFound { queue: q }) if *q == queue),
        "{sent:?}"
    );
    // Idempotent: a missing queue is already deleted.
    h.backend.delete_queue(&queue).await?;
    // Created again, it starts empty.
    h.backend.ensure_queue(&queue).await?;
    let depth = h.backend.depth(&queue).await?;
    ensure!(depth.ready == 0, "{depth:?}");
    Ok(())
}

pub(crate) async fn signals_announce_sends(h: &Harness) -> anyhow::Result<()> {
    let queue = h.queue("signals").await?;
    let other = h.queue("signals_other").await?;
    let mut subscription = h.backend.subscribe(std::slice::from_ref(&queue)).await?;
    h.backend.send(&other, &payload(1)).await?;
    h.backend.send(&queue, &payload(2)).await?;
    let signal = tokio::time::timeout(PATIENCE, async {
        loop {
            match subscription.recv().await {
                Some(signal) if signal.queue == queue => return Some(signal),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .context("no signal before the deadline")?
    .context("subscription closed")?;
    ensure!(signal.queue == queue);
    let got = receive_n(&*h.backend, &queue, 1, Duration::from_secs(30)).await?;
    ensure!(index_of(&got[0])? == 2);
    Ok(())
}

pub(crate) async fn health_is_reported(h: &Harness) -> anyhow::Result<()> {
    let report = h.backend.health().await;
    ensure!(report.backend == h.backend.backend());
    ensure!(report.health == Health::Healthy, "{report:?}");
    Ok(())
}

/// Instantiates every suite function as a test. `$setup` is an async expression producing
/// `anyhow::Result<(Harness, Guard)>`; the guard lives until the test ends and cleans up (drops
/// a database, deletes queues) in its `finish(&Harness)` method, whatever the outcome.
macro_rules! conformance {
    ($attr:meta ; $setup:expr) => {
        conformance!(@tests [$attr] $setup;
            per_queue_order,
            redelivery_after_visibility_timeout,
            ack_removes_the_message,
            ack_batch_settles_each_receipt,
            receipts_of_different_queues_stay_apart,
            nack_requeues,
            dead_letter_moves_the_message,
            batches,
            extend_visibility,
            concurrent_consumers_each_message_once,
            poison_message_is_dead_lettered,
            oversized_message_is_refused,
            unknown_queue_is_reported,
            delete_queue_removes_it_with_its_messages,
            signals_announce_sends,
            health_is_reported,
        );
    };
    (@tests [$attr:meta] $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[$attr]
            async fn $name() -> anyhow::Result<()> {
                let (harness, guard) = $setup.await?;
                let result = $crate::suite::$name(&harness).await;
                let cleanup = guard.finish(&harness).await;
                drop(harness);
                result.and(cleanup)
            }
        )*
    };
}

pub(crate) use conformance;
