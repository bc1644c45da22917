//! `common.telemetry`'s metrics keys mapped onto tasker-metrics, and what a process serves:
//! the `GET /metrics` listener, and the sampler that brings the gauges and counters other
//! crates keep themselves (the pool's connections, the cache's and the breakers' counters,
//! the queues' depths) into the instruments.
//!
//! Sampling is the composition root's job because those crates already count with atomics of
//! their own (`CacheStats`, `BreakerCounters`, `PgPool::size`): reading them here costs the
//! hot paths nothing and gives tasker-cache, tasker-resilience and tasker-db no edge to
//! tasker-metrics. The synchronous part runs before every scrape (so a scrape sees them as
//! they are) and every [`SAMPLE_INTERVAL`]; queue depths, which cost a round trip each, only
//! on the interval.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use tasker_shared::cache::Cache;
use tasker_shared::config::common::{MetricsExporter as Configured, TelemetryConfig};
use tasker_shared::messaging::outbox::Messaging;
use tasker_shared::messaging::queue_name::QueueName;
use tasker_shared::metrics::config::{MetricsConfig, MetricsExporter};
use tasker_shared::metrics::instruments::Metrics;
use tasker_shared::metrics::listener::MetricsListener;
use tasker_shared::metrics::otlp::OtlpEndpoint;
use tasker_shared::resilience::registry::CircuitBreakers;
use tokio::task::JoinHandle;

/// How often the sampler records the pool, the cache, the breakers and the queue depths.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How often metrics are pushed with `metrics_exporter = "otlp"` (the cumulative points of
/// the last interval are pushed once more when the process stops).
const OTLP_INTERVAL: Duration = Duration::from_secs(15);

/// The `cache.kind` of the reference's cache: it holds templates only.
const CACHE_KIND: &str = "template";

/// Installs the metrics `common.telemetry` asks for, and the address its listener is to bind
/// (`None`: no listener).
pub(crate) fn install(
    telemetry: &TelemetryConfig,
) -> anyhow::Result<(Metrics, Option<SocketAddr>)> {
    let exporter = match telemetry.metrics_exporter {
        Configured::Prometheus => MetricsExporter::Prometheus,
        Configured::None => MetricsExporter::None,
        Configured::Otlp => MetricsExporter::Otlp {
            endpoint: OtlpEndpoint::new(telemetry.otlp_endpoint.expose()),
            interval: OTLP_INTERVAL,
        },
    };
    let listen = matches!(exporter, MetricsExporter::Prometheus)
        .then(|| telemetry.metrics_listen.socket_addr());
    let metrics = Metrics::install(&MetricsConfig {
        exporter,
        service_name: telemetry.service_name.clone(),
    })
    .context("common.telemetry: installing metrics")?;
    Ok((metrics, listen))
}

/// What the sampler reads, and the counters' values at its last sample.
#[derive(Debug)]
pub(crate) struct Sampled {
    metrics: Metrics,
    pool: PgPool,
    cache: Cache,
    breakers: CircuitBreakers,
    last: Mutex<LastSample>,
}

#[derive(Debug, Default)]
struct LastSample {
    cache_hits: u64,
    cache_misses: u64,
    rejections: HashMap<String, u64>,
}

impl Sampled {
    pub(crate) fn new(
        metrics: Metrics,
        pool: PgPool,
        cache: Cache,
        breakers: CircuitBreakers,
    ) -> Self {
        Self {
            metrics,
            pool,
            cache,
            breakers,
            last: Mutex::new(LastSample::default()),
        }
    }

    /// Records the pool's connections, the cache's hits and misses since the last sample, and
    /// every breaker's state and rejections since the last sample. No IO.
    pub(crate) fn sample(&self) {
        let size = u64::from(self.pool.size());
        let idle = self.pool.num_idle() as u64;
        self.metrics.db.pool(size.saturating_sub(idle), idle);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = self.cache.stats();
        self.metrics.cache.lookups(
            CACHE_KIND,
            stats.hits.saturating_sub(last.cache_hits),
            stats.misses.saturating_sub(last.cache_misses),
        );
        (last.cache_hits, last.cache_misses) = (stats.hits, stats.misses);
        for breaker in self.breakers.all() {
            let component = breaker.component();
            self.metrics
                .resilience
                .breaker_state(component, breaker.state().as_gauge());
            let rejected = breaker.counters().rejected;
            let seen = last.rejections.entry(component.to_owned()).or_default();
            if rejected > *seen {
                self.metrics
                    .resilience
                    .rejections(component, rejected - *seen);
            }
            *seen = rejected;
        }
    }

    /// Records how many messages wait in each of `queues` (ready and in flight).
    async fn sample_queues(&self, messaging: &Messaging, queues: &[QueueName]) {
        let system = messaging.queue.backend().as_str();
        for queue in queues {
            match messaging.queue.depth(queue).await {
                Ok(depth) => self.metrics.messaging.queue_depth(
                    system,
                    queue.as_str(),
                    depth.ready + depth.in_flight.unwrap_or(0),
                ),
                Err(error) => {
                    tracing::debug!(%queue, error = &error as &dyn std::error::Error, "sampling a queue's depth failed")
                }
            }
        }
    }
}

/// A process's metrics at work: its listener, if any, and its sampler.
#[derive(Debug)]
pub(crate) struct Serving {
    listener: Option<MetricsListener>,
    sampler: JoinHandle<()>,
}

impl Serving {
    /// Starts the sampler over `queues` and, at `listen`, the `GET /metrics` listener; prints
    /// `metrics listening on http://<address>/metrics` on stdout (tests started on port 0
    /// learn the port from it). Nothing runs when metrics are disabled.
    pub(crate) async fn start(
        sampled: Arc<Sampled>,
        listen: Option<SocketAddr>,
        messaging: Messaging,
        queues: Vec<QueueName>,
    ) -> anyhow::Result<Self> {
        let enabled = sampled.metrics.is_enabled();
        let listener = match listen.filter(|_| enabled) {
            Some(address) => {
                let hook = Arc::clone(&sampled);
                let listener = MetricsListener::bind(
                    address,
                    sampled.metrics.clone(),
                    Some(Arc::new(move || hook.sample())),
                )
                .await
                .with_context(|| {
                    format!("common.telemetry.metrics_listen: serving metrics on {address}")
                })?;
                tracing::info!(url = %listener.url(), "serving metrics");
                crate::write_out(&format!("metrics listening on {}\n", listener.url()))?;
                Some(listener)
            }
            None => None,
        };
        let sampler = tokio::spawn(async move {
            if !enabled {
                return;
            }
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sampled.sample();
                sampled.sample_queues(&messaging, &queues).await;
            }
        });
        Ok(Self { listener, sampler })
    }

    /// Stops the sampler and the listener (dropping [`Serving`] stops both without waiting).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.sampler.abort();
        if let Some(listener) = self.listener.take() {
            listener
                .shutdown()
                .await
                .context("stopping the metrics listener")?;
        }
        Ok(())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

#[cfg(test)]
mod tests;
