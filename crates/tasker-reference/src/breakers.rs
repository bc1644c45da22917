//! `common.circuit_breakers` mapped onto tasker-resilience's breakers: one per component
//! (`task_readiness`, `messaging`, `web`, `cache`, and `default_config` for any other), with
//! the global damping interval in each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tasker_shared::config::common::{CircuitBreakerSettings, CircuitBreakersConfig as Configured};
use tasker_shared::metrics::instruments::Metrics;
use tasker_shared::resilience::config::{BreakerConfig, CircuitBreakersConfig};
use tasker_shared::resilience::registry::CircuitBreakers;
use tasker_shared::resilience::state::StateChange;

/// The breakers the configuration describes (pass-throughs when `enabled = false`), each
/// state change recorded as its `tasker.breaker.state` gauge at once.
pub(crate) fn circuit_breakers(
    configured: &Configured,
    metrics: &Metrics,
) -> anyhow::Result<CircuitBreakers> {
    let damping = Duration::from_secs_f64(
        configured
            .global_settings
            .min_state_transition_interval_seconds,
    );
    let breaker = |settings: &CircuitBreakerSettings| BreakerConfig {
        failure_threshold: settings.failure_threshold,
        timeout: Duration::from_secs(u64::from(settings.timeout_seconds)),
        success_threshold: settings.success_threshold,
        min_state_transition_interval: damping,
        ..BreakerConfig::default()
    };
    let components = &configured.component_configs;
    let component_configs = BTreeMap::from([
        (
            "task_readiness".to_owned(),
            breaker(&components.task_readiness),
        ),
        ("messaging".to_owned(), breaker(&components.messaging)),
        ("web".to_owned(), breaker(&components.web)),
        ("cache".to_owned(), breaker(&components.cache)),
    ]);
    let config = CircuitBreakersConfig {
        enabled: configured.enabled,
        default_config: breaker(&configured.default_config),
        component_configs,
    };
    let resilience = metrics.resilience.clone();
    CircuitBreakers::builder(config)
        .on_state_change(Arc::new(move |change: &StateChange| {
            resilience.breaker_state(&change.component, change.to.as_gauge());
        }))
        .build()
        .context("common.circuit_breakers describes a breaker that cannot work")
}
