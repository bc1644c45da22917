//! Tests for the consumer loop, on the in-memory backend under tokio's paused clock.

use std::sync::Arc;

use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::*;
use crate::envelope::Payload;
use crate::memory::InMemoryQueue;
use crate::messages::StepMessage;
use crate::queue::QueueDepth;

fn step(n: u128) -> StepMessage {
    StepMessage {
        task_id: TaskId::from_uuid(Uuid::from_u128(n)),
        step_id: StepId::from_uuid(Uuid::from_u128(n + 1)),
        correlation_id: CorrelationId::from_uuid(Uuid::from_u128(n + 2)),
    }
}

async fn setup(mode: DeploymentMode) -> (Arc<InMemoryQueue>, QueueName, Consumer) {
    let config = MessagingConfig {
        deployment_mode: mode,
        batch_size: 2,
        ..MessagingConfig::default()
    };
    let backend = Arc::new(InMemoryQueue::new(&config));
    let queue = QueueName::new("consumer_test").unwrap();
    backend.ensure_queue(&queue).await.unwrap();
    let consumer = Consumer::new(backend.clone(), queue.clone(), config);
    (backend, queue, consumer)
}

#[tokio::test(start_paused = true)]
async fn outcomes_settle_messages() {
    let (backend, queue, consumer) = setup(DeploymentMode::Polling).await;
    for n in [10, 20] {
        backend
            .send(&queue, &Payload::encode(&step(n)).unwrap())
            .await
            .unwrap();
    }
    let mut handler = |message: StepMessage, delivery: Delivery| async move {
        assert_eq!(delivery.read_count, 1);
        if message == step(10) {
            Outcome::Done
        } else {
            Outcome::Retry
        }
    };
    let report = consumer.run_once(&mut handler).await.unwrap();
    assert_eq!(
        report,
        BatchReport {
            received: 2,
            acked: 1,
            requeued: 1,
            ..BatchReport::default()
        }
    );
    let mut reject = |_: StepMessage, _: Delivery| async {
        Outcome::Reject {
            reason: "bad step".to_owned(),
        }
    };
    let report = consumer.run_once(&mut reject).await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    let dlq = queue.dead_letter().unwrap();
    let dead = backend
        .receive(&dlq, 10, Duration::from_secs(1))
        .await
        .unwrap();
    let info = dead[0].dead_letter.as_ref().unwrap();
    assert_eq!(info.reason, "bad step");
    assert_eq!(info.read_count, 2);
    assert_eq!(dead[0].decode::<StepMessage>().unwrap(), step(20));
}

#[tokio::test(start_paused = true)]
async fn a_poison_message_is_dead_lettered_and_the_consumer_goes_on() {
    let (backend, queue, consumer) = setup(DeploymentMode::Polling).await;
    backend
        .send(
            &queue,
            &Payload::from_json(&serde_json::json!({"poison": true})),
        )
        .await
        .unwrap();
    backend
        .send(&queue, &Payload::encode(&step(1)).unwrap())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut handler = |message: StepMessage, _: Delivery| {
        seen.push(message);
        async { Outcome::Done }
    };
    let report = consumer.run_once(&mut handler).await.unwrap();
    assert_eq!((report.acked, report.dead_lettered), (1, 1));
    assert_eq!(seen, vec![step(1)]);
    let dead = backend
        .receive(&queue.dead_letter().unwrap(), 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        dead[0]
            .dead_letter
            .as_ref()
            .unwrap()
            .reason
            .starts_with("the message (15 bytes) is not a Tasker envelope"),
        "{:?}",
        dead[0].dead_letter
    );
}

/// Runs the loop in `mode`, sends `count` messages one at a time after it started, and waits
/// until the handler saw them all; then shuts the loop down.
async fn run_mode(mode: DeploymentMode, count: u128) {
    let (backend, queue, consumer) = setup(mode).await;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handler = move |message: StepMessage, _: Delivery| {
        let seen_tx = seen_tx.clone();
        async move {
            let _ = seen_tx.send(message);
            Outcome::Done
        }
    };
    let running = tokio::spawn(async move {
        consumer
            .run(handler, async {
                let _ = stop_rx.await;
            })
            .await
    });
    for n in 0..count {
        backend
            .send(&queue, &Payload::encode(&step(n * 10)).unwrap())
            .await
            .unwrap();
        assert_eq!(seen_rx.recv().await, Some(step(n * 10)));
    }
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(
        backend.depth(&queue).await.unwrap(),
        QueueDepth {
            ready: 0,
            in_flight: Some(0)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn polling_mode_consumes() {
    run_mode(DeploymentMode::Polling, 5).await;
}

#[tokio::test(start_paused = true)]
async fn event_driven_mode_consumes_on_signals() {
    run_mode(DeploymentMode::EventDriven, 5).await;
}

#[tokio::test(start_paused = true)]
async fn hybrid_mode_consumes() {
    run_mode(DeploymentMode::Hybrid, 5).await;
}

/// In event-driven mode nothing polls: with no signal the consumer sleeps however much time
/// passes, and a signal wakes it at once.
#[tokio::test(start_paused = true)]
async fn event_driven_mode_waits_for_signals_only() {
    let (backend, queue, consumer) = setup(DeploymentMode::EventDriven).await;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        consumer
            .run(
                move |message: StepMessage, _: Delivery| {
                    let seen_tx = seen_tx.clone();
                    async move {
                        let _ = seen_tx.send(message);
                        Outcome::Done
                    }
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(seen_rx.try_recv().is_err());
    backend
        .send(&queue, &Payload::encode(&step(7)).unwrap())
        .await
        .unwrap();
    assert_eq!(seen_rx.recv().await, Some(step(7)));
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
}
