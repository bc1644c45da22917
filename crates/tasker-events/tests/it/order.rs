//! Per-task order: every subscriber receives each task's events in publish order, for random
//! interleavings of several tasks' publishes and for publishers on several threads.

use std::collections::HashMap;
use std::thread;

use proptest::prelude::*;
use tasker_events::bus::{Bus, Overflow, Subscription};

use crate::support::{key, options, task_event};

/// Drains a subscription and checks each task's sequences strictly increase; returns how many
/// events of each task arrived.
fn drain_in_order(subscription: &mut Subscription) -> HashMap<u128, u64> {
    let mut last: HashMap<u128, u64> = HashMap::new();
    let mut counts: HashMap<u128, u64> = HashMap::new();
    while let Ok(event) = subscription.try_recv() {
        let (task, sequence) = key(&event);
        let previous = last.insert(task, sequence).unwrap_or(0);
        assert!(
            sequence > previous,
            "task {task}: {sequence} after {previous}"
        );
        *counts.entry(task).or_default() += 1;
    }
    counts
}

proptest! {
    /// `schedule` says which task publishes next; one subscriber keeps everything (`Wait`),
    /// one drops (`DropOldest`, small), one reads as it goes. All see each task in order.
    #[test]
    fn per_task_order_holds_for_any_interleaving(
        schedule in prop::collection::vec(0u128..5, 1..300),
        capacity in 1usize..16,
        read_every in 1usize..8,
    ) {
        let bus = Bus::new();
        let mut keep = bus.subscribe("*", options(capacity, Overflow::Wait)).unwrap();
        let mut drop_oldest = bus.subscribe("task.*", options(capacity, Overflow::DropOldest)).unwrap();
        let mut reader = bus.subscribe("task.steps_enqueued", options(capacity, Overflow::DropOldest)).unwrap();

        let mut next: HashMap<u128, u64> = HashMap::new();
        let mut read: Vec<(u128, u64)> = Vec::new();
        for (index, task) in schedule.iter().enumerate() {
            let sequence = next.entry(*task).or_insert(0);
            *sequence += 1;
            prop_assert_eq!(bus.publish(task_event(*task, *sequence)), 3);
            if index % read_every == 0 {
                while let Ok(event) = reader.try_recv() {
                    read.push(key(&event));
                }
            }
        }

        let kept = drain_in_order(&mut keep);
        for (task, count) in &next {
            prop_assert_eq!(kept.get(task), Some(count));
        }
        let kept_total: u64 = kept.values().sum();
        prop_assert_eq!(keep.stats().delivered, kept_total);

        drain_in_order(&mut drop_oldest);
        let stats = drop_oldest.stats();
        prop_assert_eq!(stats.delivered + stats.dropped, schedule.len() as u64);
        prop_assert_eq!(stats.delivered, (schedule.len() as u64).min(capacity as u64));

        let mut last: HashMap<u128, u64> = HashMap::new();
        for (task, sequence) in read {
            let previous = last.insert(task, sequence).unwrap_or(0);
            prop_assert!(sequence > previous);
        }
    }
}

/// Eight publisher threads, one task each, and subscribers reading on a multi-threaded runtime
/// while they publish.
#[test]
fn per_task_order_holds_under_concurrency() {
    const TASKS: u128 = 8;
    const EVENTS: u64 = 2_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let bus = Bus::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut subscription = bus
                .subscribe("task.*", options(64, Overflow::Wait))
                .unwrap();
            runtime.spawn(async move {
                let mut last: HashMap<u128, u64> = HashMap::new();
                let mut total = 0u64;
                while let Some(event) = subscription.recv().await {
                    let (task, sequence) = key(&event);
                    let previous = last.insert(task, sequence).unwrap_or(0);
                    assert_eq!(sequence, previous + 1, "task {task}");
                    total += 1;
                }
                (total, last)
            })
        })
        .collect();

    thread::scope(|scope| {
        for task in 0..TASKS {
            let bus = bus.clone();
            scope.spawn(move || {
                for sequence in 1..=EVENTS {
                    bus.publish(task_event(task, sequence));
                }
            });
        }
    });
    // The last handle: the readers drain their queues and see the bus closed.
    drop(bus);

    for reader in readers {
        let (total, last) = runtime.block_on(reader).unwrap();
        assert_eq!(total, TASKS as u64 * EVENTS);
        assert!((0..TASKS).all(|task| last[&task] == EVENTS));
    }
}
