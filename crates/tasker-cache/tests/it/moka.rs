//! The conformance suite on the moka backend, and its capacity bound.

use anyhow::ensure;
use tasker_cache::config::{BackendKind, CacheConfig, MokaConfig};
use tasker_cache::{Cache, Namespace};

use crate::suite::{Harness, conformance};
use crate::support::unique_prefix;

fn cache(max_capacity: u64) -> anyhow::Result<Cache> {
    let config = CacheConfig {
        enabled: true,
        backend: BackendKind::Moka,
        key_prefix: unique_prefix(),
        moka: MokaConfig { max_capacity },
        ..CacheConfig::default()
    };
    Ok(Cache::from_config(&config)?)
}

fn setup() -> anyhow::Result<Harness> {
    Ok(Harness {
        cache: cache(10_000)?,
        stores: true,
    })
}

conformance!(setup());

#[tokio::test]
async fn capacity_bounds_the_entries() -> anyhow::Result<()> {
    let cache = cache(100)?;
    let ns = Namespace::new("bounded")?;
    for n in 0..1_000 {
        cache.set(&ns, &n.to_string(), &n).await;
    }
    let mut kept = 0;
    for n in 0..1_000 {
        kept += usize::from(cache.get::<i32>(&ns, &n.to_string()).await.is_some());
    }
    // moka applies its bound as it catches up on pending work, so allow some slack.
    ensure!(
        kept <= 150,
        "{kept} of 1000 entries kept with max_capacity 100"
    );
    Ok(())
}
