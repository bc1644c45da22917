//! Circuit breaker instruments: each breaker's state and its rejections.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Meter},
};

use crate::attribute::COMPONENT;

/// The circuit breaker instruments, by component (`messaging`, `cache`, ...).
#[derive(Debug, Clone)]
pub struct ResilienceMetrics {
    state: Gauge<i64>,
    rejections: Counter<u64>,
}

impl ResilienceMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            state: meter
                .i64_gauge("tasker.breaker.state")
                .with_unit("{state}")
                .with_description("Circuit breaker state: 0 closed, 1 half-open, 2 open.")
                .build(),
            rejections: meter
                .u64_counter("tasker.breaker.rejections")
                .with_unit("{call}")
                .with_description("Calls an open or saturated half-open breaker rejected.")
                .build(),
        }
    }

    /// Records the state of `component`'s breaker as its gauge value: 0 closed, 1 half-open,
    /// 2 open (tasker-resilience's `BreakerState::as_gauge`).
    pub fn breaker_state(&self, component: &str, gauge: i64) {
        self.state.record(gauge, &[component_attribute(component)]);
    }

    /// Counts one call `component`'s breaker rejected.
    pub fn rejection(&self, component: &str) {
        self.rejections(component, 1);
    }

    /// Counts `count` calls `component`'s breaker rejected (a breaker keeps its own counters;
    /// its growth since the last sample is reported here).
    pub fn rejections(&self, component: &str, count: u64) {
        self.rejections
            .add(count, &[component_attribute(component)]);
    }
}

fn component_attribute(component: &str) -> KeyValue {
    KeyValue::new(COMPONENT, component.to_owned())
}
