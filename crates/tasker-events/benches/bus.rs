//! Publish-to-subscriber latency of the in-process bus, with one subscriber and with eight:
//! on one thread (publish, then `try_recv` from every subscriber), and across threads (publish
//! from the bench thread until every subscriber's task, waiting in `recv` on a multi-threaded
//! runtime, has the event). Run with `cargo bench -p tasker-events --bench bus`.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use tasker_events::bus::{Bus, Overflow, SubscriberOptions, Subscription};
use tasker_events::lifecycle::{LifecycleEvent, Occurrence};
use tasker_state::{TaskEvent, TaskState, TaskStateMachine};
use uuid::Uuid;

fn event(sequence: u64) -> LifecycleEvent {
    let record = TaskStateMachine::new()
        .apply(TaskState::Pending, TaskEvent::Initialize)
        .expect("pending + initialize is a rule");
    let occurrence = Occurrence {
        processor_id: None,
        occurred_at: DateTime::UNIX_EPOCH,
        sequence,
    };
    LifecycleEvent::task(Uuid::nil(), &record, occurrence)
}

fn options() -> SubscriberOptions {
    SubscriberOptions {
        capacity: NonZeroUsize::new(1024).expect("non-zero"),
        overflow: Overflow::DropOldest,
    }
}

fn subscribers(bus: &Bus, count: usize) -> Vec<Subscription> {
    (0..count)
        .map(|_| bus.subscribe("task.*", options()).expect("valid pattern"))
        .collect()
}

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus: publish + try_recv");
    for count in [1, 8] {
        let bus = Bus::new();
        let mut subscriptions = subscribers(&bus, count);
        let template = event(1);
        group.bench_function(format!("{count} subscriber(s)"), |b| {
            b.iter(|| {
                bus.publish(template.clone());
                for subscription in &mut subscriptions {
                    black_box(subscription.try_recv().expect("queued"));
                }
            });
        });
    }
    group.finish();
}

fn across_threads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("bus: publish -> recv on another thread");
    for count in [1, 8] {
        let bus = Bus::new();
        let (ack, acks) = mpsc::channel::<()>();
        for mut subscription in subscribers(&bus, count) {
            let ack = ack.clone();
            runtime.spawn(async move {
                while subscription.recv().await.is_some() {
                    if ack.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        let template = event(1);
        group.bench_function(format!("{count} subscriber(s)"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let start = Instant::now();
                    bus.publish(template.clone());
                    for _ in 0..count {
                        acks.recv().expect("subscriber alive");
                    }
                    total += start.elapsed();
                }
                total
            });
        });
        // Dropping the bus closes the subscriptions, which ends their tasks.
        drop(bus);
    }
    group.finish();
}

criterion_group!(benches, same_thread, across_threads);
criterion_main!(benches);
