//! Cache instruments: hits and misses.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Meter},
};

use crate::attribute::CACHE_KIND;

/// The cache instruments. `kind` names what was looked up (e.g. `template`).
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    hits: Counter<u64>,
    misses: Counter<u64>,
}

impl CacheMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            hits: meter
                .u64_counter("tasker.cache.hits")
                .with_unit("{lookup}")
                .with_description("Cache lookups answered from the cache.")
                .build(),
            misses: meter
                .u64_counter("tasker.cache.misses")
                .with_unit("{lookup}")
                .with_description(
                    "Cache lookups not answered from the cache (absent, or the backend failed).",
                )
                .build(),
        }
    }

    /// Counts one lookup of `kind` answered from the cache.
    pub fn hit(&self, kind: &'static str) {
        self.hits.add(1, &[KeyValue::new(CACHE_KIND, kind)]);
    }

    /// Counts one lookup of `kind` the cache did not answer.
    pub fn miss(&self, kind: &'static str) {
        self.misses.add(1, &[KeyValue::new(CACHE_KIND, kind)]);
    }

    /// Counts `hits` and `misses` lookups of `kind` at once (a cache that keeps its own
    /// counters reports the growth since its last sample).
    pub fn lookups(&self, kind: &'static str, hits: u64, misses: u64) {
        let attributes = [KeyValue::new(CACHE_KIND, kind)];
        if hits > 0 {
            self.hits.add(hits, &attributes);
        }
        if misses > 0 {
            self.misses.add(misses, &attributes);
        }
    }
}
