//! The conformance suite on the in-memory backend, under tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use tasker_messaging::memory::InMemoryQueue;

use crate::suite::{Harness, conformance};

/// The in-memory backend needs no cleanup.
struct NoCleanup;

impl NoCleanup {
    async fn finish(self, _: &Harness) -> anyhow::Result<()> {
        Ok(())
    }
}

async fn setup() -> anyhow::Result<(Harness, NoCleanup)> {
    let harness = Harness {
        backend: Arc::new(InMemoryQueue::new(&Harness::config())),
        prefix: String::new(),
        vt_unit: Duration::from_secs(1),
        created: Default::default(),
    };
    Ok((harness, NoCleanup))
}

conformance!(tokio::test(start_paused = true); setup());
