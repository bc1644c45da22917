//! Messaging instruments: messages sent, received, acknowledged and dead-lettered, queue depth
//! and receive latency.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram, Meter},
};

use crate::attribute::{
    CLIENT_DURATION_BOUNDS, MESSAGING_DESTINATION, MESSAGING_OPERATION, MESSAGING_SYSTEM,
};

/// The messaging instruments (semantic conventions `messaging.client.*` where they exist).
///
/// Every recording names the messaging system (`pgmq`, `rabbitmq`, `in_memory`) and the queue.
#[derive(Debug, Clone)]
pub struct MessagingMetrics {
    sent: Counter<u64>,
    consumed: Counter<u64>,
    acked: Counter<u64>,
    dead_lettered: Counter<u64>,
    queue_depth: Gauge<u64>,
    operation_duration: Histogram<f64>,
}

impl MessagingMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            sent: meter
                .u64_counter("messaging.client.sent.messages")
                .with_unit("{message}")
                .with_description("Messages sent to a queue.")
                .build(),
            consumed: meter
                .u64_counter("messaging.client.consumed.messages")
                .with_unit("{message}")
                .with_description("Messages received from a queue.")
                .build(),
            acked: meter
                .u64_counter("tasker.messages.acked")
                .with_unit("{message}")
                .with_description("Messages acknowledged (deleted or archived) after processing.")
                .build(),
            dead_lettered: meter
                .u64_counter("tasker.messages.dead_lettered")
                .with_unit("{message}")
                .with_description("Messages moved to a dead-letter queue.")
                .build(),
            queue_depth: meter
                .u64_gauge("tasker.queue.depth")
                .with_unit("{message}")
                .with_description("Messages waiting in a queue, when last sampled.")
                .build(),
            operation_duration: meter
                .f64_histogram("messaging.client.operation.duration")
                .with_unit("s")
                .with_description(
                    "Duration of messaging operations, by operation (`send`, `receive`, ...).",
                )
                .with_boundaries(CLIENT_DURATION_BOUNDS.to_vec())
                .build(),
        }
    }

    /// Counts `count` messages sent to `queue`.
    pub fn sent(&self, system: &'static str, queue: &str, count: u64) {
        self.sent.add(count, &queue_attributes(system, queue));
    }

    /// Counts `count` messages received from `queue`.
    pub fn received(&self, system: &'static str, queue: &str, count: u64) {
        self.consumed.add(count, &queue_attributes(system, queue));
    }

    /// Counts `count` messages acknowledged on `queue`.
    pub fn acked(&self, system: &'static str, queue: &str, count: u64) {
        self.acked.add(count, &queue_attributes(system, queue));
    }

    /// Counts one message of `queue` moved to its dead-letter queue.
    pub fn dead_lettered(&self, system: &'static str, queue: &str) {
        self.dead_lettered.add(1, &queue_attributes(system, queue));
    }

    /// Records a sample of how many messages wait in `queue`.
    pub fn queue_depth(&self, system: &'static str, queue: &str, depth: u64) {
        self.queue_depth
            .record(depth, &queue_attributes(system, queue));
    }

    /// Records how long one receive from `queue` took.
    pub fn receive_latency(&self, system: &'static str, queue: &str, duration: Duration) {
        self.operation_latency(system, queue, "receive", duration);
    }

    /// Records how long one operation on `queue` took: `operation` is the semantic
    /// conventions' `messaging.operation.name` (`send`, `receive`, `ack`, ...).
    pub fn operation_latency(
        &self,
        system: &'static str,
        queue: &str,
        operation: &'static str,
        duration: Duration,
    ) {
        let [system, queue] = queue_attributes(system, queue);
        self.operation_duration.record(
            duration.as_secs_f64(),
            &[system, queue, KeyValue::new(MESSAGING_OPERATION, operation)],
        );
    }
}

fn queue_attributes(system: &'static str, queue: &str) -> [KeyValue; 2] {
    [
        KeyValue::new(MESSAGING_SYSTEM, system),
        KeyValue::new(MESSAGING_DESTINATION, queue.to_owned()),
    ]
}
