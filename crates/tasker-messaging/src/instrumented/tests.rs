//! Tests for [`InstrumentedQueue`] over the in-memory backend, read back through the
//! Prometheus exposition of installed metrics.

use tasker_metrics::config::{MetricsConfig, MetricsExporter};
use tasker_metrics::instruments::Metrics;

use super::*;
use crate::config::MessagingConfig;
use crate::memory::InMemoryQueue;

fn installed() -> Metrics {
    Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Prometheus,
        service_name: "tasker-messaging-test".to_owned(),
    })
    .expect("a valid configuration")
}

fn queue(metrics: &Metrics) -> InstrumentedQueue {
    InstrumentedQueue::new(
        Arc::new(InMemoryQueue::new(&MessagingConfig::default())),
        metrics.messaging.clone(),
    )
}

fn payload(n: u64) -> Payload {
    Payload::from_json(&serde_json::json!({ "n": n }))
}

/// The exposition's sample for `family` on `queue` (the in-memory backend), if any.
fn sample(metrics: &Metrics, family: &str, queue: &str) -> Option<f64> {
    let labels =
        format!(r#"{{messaging_destination_name="{queue}",messaging_system="in_memory"}} "#);
    metrics.render_prometheus().lines().find_map(|line| {
        line.strip_prefix(family)?
            .strip_prefix(labels.as_str())?
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn counts_sends_receives_acks_and_dead_letters_by_queue() {
    let metrics = installed();
    let queue = queue(&metrics);
    let work = QueueName::new("work").unwrap();
    let other = QueueName::new("other").unwrap();
    queue.ensure_queue(&work).await.unwrap();
    queue.ensure_queue(&other).await.unwrap();

    queue.send(&work, &payload(1)).await.unwrap();
    queue
        .send_batch(&work, &[payload(2), payload(3), payload(4)])
        .await
        .unwrap();
    queue.send(&other, &payload(5)).await.unwrap();
    // An empty batch sends nothing and records nothing.
    queue.send_batch(&work, &[]).await.unwrap();

    let received = queue
        .receive(&work, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(received.len(), 4);
    let from_other = queue
        .receive(&other, 10, Duration::from_secs(30))
        .await
        .unwrap();

    queue.ack(received[0].receipt()).await.unwrap();
    let mut receipts: Vec<Receipt> = received[1..3]
        .iter()
        .map(|message| message.receipt().clone())
        .collect();
    receipts.push(from_other[0].receipt().clone());
    // Already acknowledged: refused, and not counted.
    receipts.push(received[0].receipt().clone());
    let outcomes = queue.ack_batch(&receipts).await.unwrap();
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 3);
    queue
        .nack(
            received[3].receipt(),
            Nack::DeadLetter {
                reason: "undecodable".to_owned(),
            },
        )
        .await
        .unwrap();

    let sent = "messaging_client_sent_messages_total";
    let consumed = "messaging_client_consumed_messages_total";
    let acked = "tasker_messages_acked_total";
    let dead = "tasker_messages_dead_lettered_total";
    assert_eq!(sample(&metrics, sent, "work"), Some(4.0));
    assert_eq!(sample(&metrics, sent, "other"), Some(1.0));
    assert_eq!(sample(&metrics, consumed, "work"), Some(4.0));
    assert_eq!(sample(&metrics, consumed, "other"), Some(1.0));
    assert_eq!(sample(&metrics, acked, "work"), Some(3.0));
    assert_eq!(sample(&metrics, acked, "other"), Some(1.0));
    assert_eq!(sample(&metrics, dead, "work"), Some(1.0));
    assert_eq!(sample(&metrics, dead, "other"), None);

    let text = metrics.render_prometheus();
    let receives = r#"messaging_client_operation_duration_seconds_count{messaging_destination_name="work",messaging_operation_name="receive",messaging_system="in_memory"} 1"#;
    let sends = r#"messaging_client_operation_duration_seconds_count{messaging_destination_name="work",messaging_operation_name="send",messaging_system="in_memory"} 2"#;
    assert!(text.contains(receives), "{text}");
    assert!(text.contains(sends), "{text}");
}

#[tokio::test]
async fn failed_calls_record_nothing() {
    let metrics = installed();
    let queue = queue(&metrics);
    let missing = QueueName::new("missing").unwrap();
    assert!(queue.send(&missing, &payload(1)).await.is_err());
    assert!(
        queue
            .receive(&missing, 1, Duration::from_secs(1))
            .await
            .is_err()
    );
    let text = metrics.render_prometheus();
    assert!(!text.contains("missing"), "{text}");
}

#[tokio::test]
async fn a_requeue_is_not_a_dead_letter() {
    let metrics = installed();
    let queue = queue(&metrics);
    let work = QueueName::new("work").unwrap();
    queue.ensure_queue(&work).await.unwrap();
    queue.send(&work, &payload(1)).await.unwrap();
    let received = queue
        .receive(&work, 1, Duration::from_secs(30))
        .await
        .unwrap();
    queue
        .nack(received[0].receipt(), Nack::Requeue)
        .await
        .unwrap();
    assert_eq!(
        sample(&metrics, "tasker_messages_dead_lettered_total", "work"),
        None
    );
    assert_eq!(
        sample(&metrics, "tasker_messages_acked_total", "work"),
        None
    );
}
