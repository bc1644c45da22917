//! Security instruments: authentication results and permission denials.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Meter},
};

use crate::attribute::{AUTH_OUTCOME, PERMISSION};

/// The outcome of one authentication, the `tasker.auth.outcome` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials were valid.
    Success,
    /// No credentials were presented where they are required.
    Missing,
    /// The credentials were malformed, forged or for another audience.
    Invalid,
    /// The credentials had expired.
    Expired,
}

impl AuthOutcome {
    /// The attribute value: `success`, `missing`, `invalid`, `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Success => "success",
            AuthOutcome::Missing => "missing",
            AuthOutcome::Invalid => "invalid",
            AuthOutcome::Expired => "expired",
        }
    }
}

/// The security instruments.
#[derive(Debug, Clone)]
pub struct SecurityMetrics {
    results: Counter<u64>,
    denials: Counter<u64>,
}

impl SecurityMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            results: meter
                .u64_counter("tasker.auth.results")
                .with_unit("{attempt}")
                .with_description("Authentications, by outcome.")
                .build(),
            denials: meter
                .u64_counter("tasker.auth.denials")
                .with_unit("{request}")
                .with_description("Authenticated requests denied for a missing permission.")
                .build(),
        }
    }

    /// Counts one authentication with its outcome.
    pub fn auth_result(&self, outcome: AuthOutcome) {
        self.results
            .add(1, &[KeyValue::new(AUTH_OUTCOME, outcome.as_str())]);
    }

    /// Counts one request denied for lacking `permission` (e.g. `tasks:create`).
    pub fn permission_denied(&self, permission: &'static str) {
        self.denials
            .add(1, &[KeyValue::new(PERMISSION, permission)]);
    }
}
