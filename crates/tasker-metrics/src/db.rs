//! Database instruments: operation duration and the pool's connections.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Gauge, Histogram, Meter},
};

use crate::attribute::{
    CLIENT_DURATION_BOUNDS, DB_CONNECTION_STATE, DB_OPERATION_NAME, DB_SYSTEM_NAME,
};

/// The database's instruments (semantic conventions `db.client.*`).
#[derive(Debug, Clone)]
pub struct DbMetrics {
    operation_duration: Histogram<f64>,
    connection_count: Gauge<u64>,
    pending_requests: Gauge<u64>,
}

impl DbMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            operation_duration: meter
                .f64_histogram("db.client.operation.duration")
                .with_unit("s")
                .with_description("Duration of database client operations.")
                .with_boundaries(CLIENT_DURATION_BOUNDS.to_vec())
                .build(),
            connection_count: meter
                .u64_gauge("db.client.connection.count")
                .with_unit("{connection}")
                .with_description(
                    "Connections of the pool, by state (used or idle), when last sampled.",
                )
                .build(),
            pending_requests: meter
                .u64_gauge("db.client.connection.pending_requests")
                .with_unit("{request}")
                .with_description("Requests waiting for a connection of the pool.")
                .build(),
        }
    }

    /// Records how long one database operation (e.g. `claim_steps`) took.
    pub fn operation(&self, operation: &'static str, duration: Duration) {
        self.operation_duration.record(
            duration.as_secs_f64(),
            &[
                KeyValue::new(DB_SYSTEM_NAME, "postgresql"),
                KeyValue::new(DB_OPERATION_NAME, operation),
            ],
        );
    }

    /// Records a sample of the pool: connections in use, idle, and requests waiting for one.
    pub fn pool(&self, used: u64, idle: u64, waiting: u64) {
        self.connection_count
            .record(used, &[KeyValue::new(DB_CONNECTION_STATE, "used")]);
        self.connection_count
            .record(idle, &[KeyValue::new(DB_CONNECTION_STATE, "idle")]);
        self.pending_requests.record(waiting, &[]);
    }
}
