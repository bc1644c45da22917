//! Database instruments: operation duration, how long a connection took to acquire, and the
//! pool's connections.

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
    wait_time: Histogram<f64>,
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
            wait_time: meter
                .f64_histogram("db.client.connection.wait_time")
                .with_unit("s")
                .with_description("Time it took to obtain a connection from the pool.")
                .with_boundaries(CLIENT_DURATION_BOUNDS.to_vec())
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

    /// Records how long obtaining a connection (or beginning a transaction) from the pool
    /// took.
    pub fn acquire_wait(&self, duration: Duration) {
        self.wait_time.record(duration.as_secs_f64(), &[]);
    }

    /// Records a sample of the pool: connections in use and idle. (sqlx does not tell how many
    /// requests wait for a connection; [`DbMetrics::acquire_wait`] shows the waiting instead.)
    pub fn pool(&self, used: u64, idle: u64) {
        self.connection_count
            .record(used, &[KeyValue::new(DB_CONNECTION_STATE, "used")]);
        self.connection_count
            .record(idle, &[KeyValue::new(DB_CONNECTION_STATE, "idle")]);
    }
}
