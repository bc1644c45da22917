//! The failure-rate window: outcomes counted in ten time buckets, one atomic word each, so
//! recording an outcome takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::FailureRateRule;

/// Buckets of the window; the window slides in steps of a tenth of its length.
const BUCKETS: u64 = 10;
/// A bucket word is `tag | calls | failures`. The tag is the bucket's epoch (time divided by
/// the bucket length) modulo 2^20, which tells a current bucket from a stale one; a stale
/// bucket could only be mistaken for a current one after 2^20 bucket lengths untouched.
const COUNT_BITS: u32 = 22;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const TAG_MASK: u64 = (1 << (64 - 2 * COUNT_BITS)) - 1;

/// Calls and failures of the recent past, and the rule that judges them.
#[derive(Debug)]
pub(crate) struct FailureWindow {
    buckets: [AtomicU64; BUCKETS as usize],
    bucket_nanos: u64,
    threshold: f64,
    minimum_calls: u32,
}

/// What the window holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowTotals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
}

impl FailureWindow {
    pub(crate) fn new(rule: &FailureRateRule) -> Self {
        let window_nanos = u64::try_from(rule.window.as_nanos()).unwrap_or(u64::MAX);
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            bucket_nanos: (window_nanos / BUCKETS).max(1),
            threshold: rule.threshold,
            minimum_calls: rule.minimum_calls,
        }
    }

    /// Counts one outcome at `now` (nanoseconds on the breaker's clock).
    pub(crate) fn record(&self, now: u64, failed: bool) {
        let epoch = now / self.bucket_nanos;
        let tag = epoch & TAG_MASK;
        let slot = &self.buckets[(epoch % BUCKETS) as usize];
        let update = |word: u64| {
            let (word_tag, calls, failures) = unpack(word);
            let (calls, failures) = if word_tag == tag {
                (calls, failures)
            } else {
                (0, 0)
            };
            let calls = (calls + 1).min(COUNT_MAX);
            let failures = (failures + u64::from(failed)).min(calls);
            Some(pack(tag, calls, failures))
        };
        // The closure always returns `Some`, so the update always succeeds.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, update);
    }

    /// Calls and failures of the buckets that cover `now` and the nine before it.
    pub(crate) fn totals(&self, now: u64) -> WindowTotals {
        let epoch = now / self.bucket_nanos;
        let mut calls = 0u64;
        let mut failures = 0u64;
        for back in 0..BUCKETS.min(epoch + 1) {
            let bucket_epoch = epoch - back;
            let word = self.buckets[(bucket_epoch % BUCKETS) as usize].load(Ordering::Relaxed);
            let (tag, bucket_calls, bucket_failures) = unpack(word);
            if tag == bucket_epoch & TAG_MASK {
                calls += bucket_calls;
                failures += bucket_failures;
            }
        }
        WindowTotals {
            calls: u32::try_from(calls).unwrap_or(u32::MAX),
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        }
    }

    /// Whether `totals` trip the rule: enough calls, and a failure share at the threshold or
    /// above.
    pub(crate) fn trips(&self, totals: WindowTotals) -> bool {
        totals.calls >= self.minimum_calls
            && f64::from(totals.failures) >= self.threshold * f64::from(totals.calls)
    }

    /// Forgets every outcome (the breaker closed).
    pub(crate) fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }
}

fn pack(tag: u64, calls: u64, failures: u64) -> u64 {
    (tag << (2 * COUNT_BITS)) | (calls << COUNT_BITS) | failures
}

fn unpack(word: u64) -> (u64, u64, u64) {
    (
        word >> (2 * COUNT_BITS),
        (word >> COUNT_BITS) & COUNT_MAX,
        word & COUNT_MAX,
    )
}

#[cfg(test)]
mod tests;
