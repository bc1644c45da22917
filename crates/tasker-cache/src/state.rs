//! What the typed cache knows about its backend: whether it is up, when to probe it next while
//! it is down, and the counters of what happened.
//!
//! The state changes (up to down, down to up) are logged once each, not per call. While the
//! backend is down, calls are answered locally, except one call per probe interval, which goes
//! through to find out whether the backend is back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::BackendKind;
use crate::error::CacheError;

/// A snapshot of the cache's counters, for metrics. Every counter only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Gets answered with a value.
    pub hits: u64,
    /// Gets answered without one: missing, expired, invalidated, undecodable, or the backend
    /// failed or was down.
    pub misses: u64,
    /// Backend operations that failed.
    pub errors: u64,
    /// Values the backend stored.
    pub sets: u64,
    /// Sets and deletes that were not applied: the backend failed or was down, or the value
    /// could not be encoded.
    pub dropped_writes: u64,
    /// Deletes the backend applied.
    pub deletes: u64,
    /// Stored values that did not decode (and were deleted).
    pub decode_failures: u64,
    /// Namespace invalidations the backend applied.
    pub invalidations: u64,
    /// Calls answered locally because the backend was down (a subset of misses and dropped
    /// writes).
    pub short_circuited: u64,
}

/// Whether the backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// It answers.
    Up,
    /// It does not; calls are misses and writes are dropped until it does.
    Down,
}

/// The result of [`crate::Cache::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The backend.
    pub backend: BackendKind,
    /// Whether it answered the health check.
    pub status: HealthStatus,
    /// How long the check took.
    pub latency: Duration,
    /// Why the check failed, when it did (the error and its sources, with secrets redacted).
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) sets: AtomicU64,
    pub(crate) dropped_writes: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) decode_failures: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) short_circuited: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.hits),
            misses: read(&self.misses),
            errors: read(&self.errors),
            sets: read(&self.sets),
            dropped_writes: read(&self.dropped_writes),
            deletes: read(&self.deletes),
            decode_failures: read(&self.decode_failures),
            invalidations: read(&self.invalidations),
            short_circuited: read(&self.short_circuited),
        }
    }
}

/// Up or down, and when a call may next go through while down.
#[derive(Debug)]
pub(crate) struct Circuit {
    backend: BackendKind,
    up: AtomicBool,
    next_probe: Mutex<Instant>,
    probe_interval: Duration,
}

impl Circuit {
    pub(crate) fn new(backend: BackendKind, probe_interval: Duration) -> Self {
        Self {
            backend,
            up: AtomicBool::new(true),
            next_probe: Mutex::new(Instant::now()),
            probe_interval,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether a call may go to the backend: always while it is up; while it is down, the first
    /// call after each probe interval.
    pub(crate) fn admit(&self) -> bool {
        if self.is_up() {
            return true;
        }
        let mut next_probe = self.next_probe.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now >= *next_probe {
            *next_probe = now + self.probe_interval;
            true
        } else {
            false
        }
    }

    pub(crate) fn succeeded(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!(backend = %self.backend, "cache backend answers again; serving from it");
        }
    }

    /// Records a failure; only a transient one marks the backend down.
    pub(crate) fn failed(&self, error: &CacheError) {
        if !error.is_transient() {
            tracing::debug!(backend = %self.backend, error = %chain(error), "cache request refused");
            return;
        }
        *self.next_probe.lock().unwrap_or_else(|e| e.into_inner()) =
            Instant::now() + self.probe_interval;
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                backend = %self.backend,
                error = %chain(error),
                probe_interval = ?self.probe_interval,
                "cache backend is unreachable; gets miss and writes are dropped until it answers again"
            );
        }
    }
}

/// The error and its sources, joined with `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
