//! Helpers: unique key prefixes and waiting on conditions with a deadline.

use std::time::Duration;

use anyhow::ensure;
use tokio::time::Instant;

/// How long a wait for something that should happen may take before the test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A key prefix no other test uses.
#[cfg(any(feature = "moka", feature = "redis", feature = "memcached"))]
pub(crate) fn unique_prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

/// Polls `check` every 25 ms until it returns true, failing after [`PATIENCE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        ensure!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}
