//! The conformance suite on the no-op backend (caching off): every get misses.

use tasker_cache::Cache;
use tasker_cache::config::CacheConfig;

use crate::suite::{Harness, conformance};

fn setup() -> anyhow::Result<Harness> {
    // `enabled = false` builds the no-op backend whatever `backend` says.
    let cache = Cache::from_config(&CacheConfig::default())?;
    anyhow::ensure!(
        cache.backend_kind() == tasker_cache::config::BackendKind::Noop,
        "caching off is noop"
    );
    Ok(Harness {
        cache,
        stores: false,
    })
}

conformance!(setup());
