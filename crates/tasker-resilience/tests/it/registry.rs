//! `CircuitBreakers`: per-component configurations, the default, one breaker per name,
//! the callback and the disabled switch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tasker_resilience::breaker::BreakerCounters;
use tasker_resilience::config::{BreakerConfig, CircuitBreakersConfig};
use tasker_resilience::registry::CircuitBreakers;
use tasker_resilience::state::BreakerState;

use crate::support::{Recorder, fail};

/// `common.circuit_breakers` as shipped in config/tasker/base/common.toml.
fn shipped(enabled: bool) -> CircuitBreakersConfig {
    let min_state_transition_interval = Duration::from_secs_f64(5.0);
    let breaker = |failure_threshold, success_threshold| BreakerConfig {
        failure_threshold,
        timeout: Duration::from_secs(30),
        success_threshold,
        half_open_max_calls: 1,
        failure_rate: None,
        min_state_transition_interval,
    };
    let component_configs = [
        ("task_readiness", breaker(10, 3)),
        ("messaging", breaker(5, 2)),
        ("web", breaker(5, 2)),
        ("cache", breaker(5, 2)),
    ]
    .into_iter()
    .map(|(name, config)| (name.to_owned(), config))
    .collect();
    CircuitBreakersConfig {
        enabled,
        default_config: BreakerConfig {
            failure_threshold: 7,
            ..breaker(5, 2)
        },
        component_configs,
    }
}

#[tokio::test(start_paused = true)]
async fn each_component_gets_its_configuration_and_others_the_default() {
    let breakers = CircuitBreakers::new(shipped(true)).expect("valid");
    // (component, failure threshold, success threshold)
    let cases = [
        ("task_readiness", 10, 3),
        ("messaging", 5, 2),
        ("web", 5, 2),
        ("cache", 5, 2),
        ("ffi_completion_send", 7, 2),
        ("", 7, 2),
    ];
    for (component, failure_threshold, success_threshold) in cases {
        let breaker = breakers.get(component);
        assert_eq!(breaker.component(), component);
        assert_eq!(
            breaker.config().failure_threshold,
            failure_threshold,
            "{component}"
        );
        assert_eq!(
            breaker.config().success_threshold,
            success_threshold,
            "{component}"
        );
        assert!(breaker.is_enabled());
    }
}

#[tokio::test(start_paused = true)]
async fn one_breaker_per_name_shared_by_clones() {
    let breakers = CircuitBreakers::new(shipped(true)).expect("valid");
    let names: Vec<String> = breakers
        .all()
        .iter()
        .map(|b| b.component().to_owned())
        .collect();
    assert_eq!(
        names,
        ["cache", "messaging", "task_readiness", "web"],
        "configured ones from the start"
    );
    let clone = breakers.clone();
    assert!(Arc::ptr_eq(
        &breakers.get("messaging"),
        &clone.get("messaging")
    ));
    assert!(Arc::ptr_eq(&breakers.get("other"), &clone.get("other")));
    assert_eq!(breakers.all().len(), 5);
    fail(&breakers.get("messaging"), 5);
    assert_eq!(clone.get("messaging").state(), BreakerState::Open);
    assert_eq!(
        clone.get("web").state(),
        BreakerState::Closed,
        "breakers are independent"
    );
}

#[tokio::test(start_paused = true)]
async fn the_callback_sees_every_breakers_changes() {
    let recorder = Recorder::default();
    let breakers = CircuitBreakers::builder(shipped(true))
        .on_state_change(recorder.callback())
        .build()
        .expect("valid");
    fail(&breakers.get("web"), 5);
    fail(&breakers.get("other"), 7);
    let changes: Vec<(String, i64)> = recorder
        .changes()
        .iter()
        .map(|c| (c.component.to_string(), c.to.as_gauge()))
        .collect();
    assert_eq!(changes, [("web".to_owned(), 2), ("other".to_owned(), 2)]);
}

#[tokio::test(start_paused = true)]
async fn disabled_breakers_are_pass_throughs() {
    let breakers = CircuitBreakers::new(shipped(false)).expect("valid");
    for component in ["task_readiness", "messaging", "other"] {
        let breaker = breakers.get(component);
        assert!(!breaker.is_enabled());
        fail(&breaker, 1000);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.counters(), BreakerCounters::default());
    }
}

#[test]
fn an_invalid_component_configuration_is_named() {
    let mut config = shipped(true);
    config.component_configs.insert(
        "cache".to_owned(),
        BreakerConfig {
            success_threshold: 0,
            ..BreakerConfig::default()
        },
    );
    let error = CircuitBreakers::new(config).expect_err("invalid");
    insta::assert_snapshot!(
        error,
        @"invalid circuit breaker configuration for `cache`: success_threshold must be at least 1"
    );
    let config = CircuitBreakersConfig {
        enabled: true,
        default_config: BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        component_configs: BTreeMap::new(),
    };
    let error = CircuitBreakers::new(config).expect_err("invalid");
    assert_eq!(error.component, "default_config");
}
