//! Tests for the signal hub: fan-out, coalescing, unsubscribing and closing.

use super::*;

fn q(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

#[tokio::test]
async fn signals_reach_only_subscribers_of_the_queue() {
    let hub = SignalHub::default();
    let mut a = hub.subscribe(&[q("a")]).unwrap();
    let mut ab = hub.subscribe(&[q("a"), q("b")]).unwrap();
    hub.notify(&q("b"), SignalCause::Sent);
    assert_eq!(a.try_recv(), None);
    assert_eq!(
        ab.recv().await,
        Some(QueueSignal {
            queue: q("b"),
            cause: SignalCause::Sent
        })
    );
    assert_eq!(
        hub.subscribed_queues().into_iter().collect::<Vec<_>>(),
        vec![q("a"), q("b")]
    );
}

#[tokio::test]
async fn pending_signals_coalesce_per_queue() {
    let hub = SignalHub::default();
    let mut sub = hub.subscribe(&[q("a"), q("b")]).unwrap();
    for _ in 0..1000 {
        hub.notify(&q("a"), SignalCause::Sent);
    }
    hub.notify(&q("b"), SignalCause::Sent);
    hub.notify_all(SignalCause::CatchUp);
    let got: Vec<QueueName> = std::iter::from_fn(|| sub.try_recv())
        .map(|signal| signal.queue)
        .collect();
    assert_eq!(got, vec![q("a"), q("b")]);
    // Once taken, a new signal for the queue is delivered again.
    hub.notify(&q("a"), SignalCause::Sent);
    assert_eq!(sub.recv().await.map(|signal| signal.queue), Some(q("a")));
}

#[tokio::test]
async fn a_waiting_subscriber_wakes_up() {
    let hub = SignalHub::default();
    let mut sub = hub.subscribe(&[q("a")]).unwrap();
    let waiter = tokio::spawn(async move { sub.recv().await });
    tokio::task::yield_now().await;
    hub.notify(&q("a"), SignalCause::Sent);
    let signal = waiter.await.unwrap();
    assert_eq!(signal.map(|signal| signal.queue), Some(q("a")));
}

#[tokio::test]
async fn dropping_unsubscribes_and_reports_a_change() {
    let hub = SignalHub::default();
    let mut changes = hub.changes();
    let sub = hub.subscribe(&[q("a")]).unwrap();
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    drop(sub);
    assert!(changes.has_changed().unwrap());
    assert!(hub.subscribed_queues().is_empty());
}

#[tokio::test]
async fn closing_ends_subscriptions() {
    let hub = SignalHub::default();
    let mut sub = hub.subscribe(&[q("a")]).unwrap();
    hub.close();
    assert_eq!(sub.recv().await, None);
    assert!(hub.subscribe(&[q("a")]).is_none());
}
