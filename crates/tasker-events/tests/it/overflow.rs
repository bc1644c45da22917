//! The overflow policies with a subscriber that never reads, and a subscription's lifetime.

use tasker_events::bus::{Bus, Overflow, SubscriberStats, TryRecvError};

use crate::support::{key, options, task_event};

const EVENTS: u64 = 10_000;

/// A subscriber that never reads, with `DropOldest`, neither blocks the publisher nor costs the
/// fast subscriber an event; it keeps the newest `capacity` events and counts the rest exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drop_oldest_subscriber_never_blocks_and_counts_its_drops() {
    let bus = Bus::new();
    let mut slow = bus
        .subscribe("*", options(16, Overflow::DropOldest))
        .unwrap();
    let mut fast = bus.subscribe("task.*", options(8, Overflow::Wait)).unwrap();
    let reader = tokio::spawn(async move {
        let mut expected = 1;
        while let Some(event) = fast.recv().await {
            assert_eq!(key(&event), (1, expected));
            expected += 1;
        }
        (expected - 1, fast.stats())
    });

    let publisher = bus.clone();
    // On a plain thread, so the test shows publishing completes without any reader's help.
    std::thread::spawn(move || {
        for sequence in 1..=EVENTS {
            assert_eq!(publisher.publish(task_event(1, sequence)), 2);
        }
    })
    .join()
    .unwrap();

    assert_eq!(
        slow.stats(),
        SubscriberStats {
            delivered: 0,
            dropped: EVENTS - 16,
            overflowed: 0,
            backlog: 16,
        }
    );
    let kept: Vec<u64> = std::iter::from_fn(|| slow.try_recv().ok())
        .map(|event| key(&event).1)
        .collect();
    assert_eq!(kept, (EVENTS - 15..=EVENTS).collect::<Vec<_>>());

    drop(bus);
    let (received, stats) = reader.await.unwrap();
    assert_eq!(received, EVENTS);
    assert_eq!(
        (stats.delivered, stats.dropped, stats.backlog),
        (EVENTS, 0, 0)
    );
}

/// `Wait` keeps every event: past `capacity` they wait in the overflow, counted, and come out in
/// order once the subscriber reads. Publishing returns at once, and a `DropOldest` subscriber
/// next to it is unaffected.
#[test]
fn wait_keeps_every_event_without_blocking_the_publisher() {
    let bus = Bus::new();
    let mut waiting = bus.subscribe("task.*", options(4, Overflow::Wait)).unwrap();
    let mut dropping = bus
        .subscribe("task.*", options(4, Overflow::DropOldest))
        .unwrap();
    for sequence in 1..=100 {
        bus.publish(task_event(2, sequence));
    }
    assert_eq!(
        waiting.stats(),
        SubscriberStats {
            delivered: 0,
            dropped: 0,
            overflowed: 96,
            backlog: 100,
        }
    );
    assert_eq!(dropping.stats().dropped, 96);

    let received: Vec<u64> = std::iter::from_fn(|| waiting.try_recv().ok())
        .map(|event| key(&event).1)
        .collect();
    assert_eq!(received, (1..=100).collect::<Vec<_>>());
    assert_eq!(waiting.stats().delivered, 100);
    assert_eq!(dropping.try_recv().map(|event| key(&event).1), Ok(97));

    // Once the queue has room again, nothing more is counted as overflow.
    bus.publish(task_event(2, 101));
    assert_eq!(waiting.stats().overflowed, 96);
}

#[test]
fn dropping_a_subscription_unsubscribes() {
    let bus = Bus::new();
    let first = bus.subscribe("*", options(1, Overflow::Wait)).unwrap();
    let second = bus.subscribe("step.*", options(1, Overflow::Wait)).unwrap();
    assert_eq!(bus.subscriber_count(), 2);
    assert_eq!(bus.publish(task_event(1, 1)), 1);
    drop(first);
    assert_eq!(bus.subscriber_count(), 1);
    assert_eq!(bus.publish(task_event(1, 2)), 0);
    drop(second);
    assert_eq!(bus.subscriber_count(), 0);
}

#[tokio::test]
async fn the_last_bus_handle_closes_every_subscription_after_its_queue() {
    let bus = Bus::new();
    let mut subscription = bus.subscribe("*", options(8, Overflow::Wait)).unwrap();
    assert_eq!(subscription.try_recv(), Err(TryRecvError::Empty));
    let clone = bus.clone();
    clone.publish(task_event(3, 1));
    drop(bus);
    clone.publish(task_event(3, 2));
    drop(clone);
    assert_eq!(
        subscription.recv().await.map(|event| key(&event)),
        Some((3, 1))
    );
    assert_eq!(
        subscription.recv().await.map(|event| key(&event)),
        Some((3, 2))
    );
    assert!(subscription.recv().await.is_none());
    assert_eq!(subscription.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn an_invalid_pattern_is_refused() {
    let bus = Bus::new();
    let error = bus
        .subscribe("task.*.failed", options(1, Overflow::Wait))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "pattern \"task.*.failed\" has a '*' that is not the whole last segment; write `*` or `prefix.*`"
    );
    assert_eq!(bus.subscriber_count(), 0);
}
