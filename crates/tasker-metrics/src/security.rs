//! Security instruments: authentication attempts by method and outcome, their verification
//! time, and permission denials.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter},
};

use crate::attribute::{AUTH_METHOD, AUTH_OUTCOME, PERMISSION, VERIFICATION_DURATION_BOUNDS};

/// The security instruments (recorded by tasker-web).
#[derive(Debug, Clone)]
pub struct SecurityMetrics {
    attempts: Counter<u64>,
    verification: Histogram<f64>,
    denials: Counter<u64>,
}

impl SecurityMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            attempts: meter
                .u64_counter("tasker.auth.attempts")
                .with_unit("{attempt}")
                .with_description(
                    "Authentication attempts, by method (jwt, api_key, none) and outcome (success or the failure's reason).",
                )
                .build(),
            verification: meter
                .f64_histogram("tasker.auth.verification.duration")
                .with_unit("s")
                .with_description("Time to verify a credential, by method and outcome.")
                .with_boundaries(VERIFICATION_DURATION_BOUNDS.to_vec())
                .build(),
            denials: meter
                .u64_counter("tasker.auth.denials")
                .with_unit("{request}")
                .with_description("Authenticated requests denied for a missing permission, by permission.")
                .build(),
        }
    }

    /// Records one authentication attempt: `method` is `jwt`, `api_key` or `none` (no
    /// credential); `outcome` is `success` or the failure's reason (`missing`, `expired`,
    /// `invalid`, ...); `duration` is the verification time.
    pub fn authentication(&self, method: &'static str, outcome: &'static str, duration: Duration) {
        let attributes = [
            KeyValue::new(AUTH_METHOD, method),
            KeyValue::new(AUTH_OUTCOME, outcome),
        ];
        self.attempts.add(1, &attributes);
        self.verification
            .record(duration.as_secs_f64(), &attributes);
    }

    /// Counts one request denied for lacking `permission` (`tasks:create`).
    pub fn permission_denied(&self, permission: &'static str) {
        self.denials
            .add(1, &[KeyValue::new(PERMISSION, permission)]);
    }
}
