//! [`CircuitBreakers`]: the breakers of a process, one per component name.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::breaker::CircuitBreaker;
use crate::config::{CircuitBreakersConfig, ConfigError};
use crate::state::StateChangeCallback;

/// The breakers of a process, one per component name, created once and shared.
///
/// A component listed in `component_configs` gets its own configuration, any other name the
/// default; the listed ones exist from the start (so metrics see them before their first
/// call), the others from their first [`CircuitBreakers::get`]. Cloning is cheap and clones
/// share the breakers.
#[derive(Clone)]
pub struct CircuitBreakers {
    inner: Arc<Registry>,
}

struct Registry {
    config: CircuitBreakersConfig,
    on_state_change: Option<StateChangeCallback>,
    breakers: RwLock<HashMap<String, Arc<CircuitBreaker>>>,
}

/// Builds [`CircuitBreakers`] with a state-change callback.
#[must_use]
pub struct CircuitBreakersBuilder {
    config: CircuitBreakersConfig,
    on_state_change: Option<StateChangeCallback>,
}

impl CircuitBreakersBuilder {
    /// Calls `callback` on every state change of every breaker (see [`StateChangeCallback`]).
    pub fn on_state_change(mut self, callback: StateChangeCallback) -> Self {
        self.on_state_change = Some(callback);
        self
    }

    /// The registry with a breaker for every configured component; fails if a configuration
    /// cannot work.
    pub fn build(self) -> Result<CircuitBreakers, ConfigError> {
        self.config.validate()?;
        let registry = Registry {
            config: self.config,
            on_state_change: self.on_state_change,
            breakers: RwLock::new(HashMap::new()),
        };
        let breakers = registry
            .config
            .component_configs
            .keys()
            .map(|component| (component.clone(), Arc::new(registry.create(component))))
            .collect();
        *registry
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = breakers;
        Ok(CircuitBreakers {
            inner: Arc::new(registry),
        })
    }
}

impl CircuitBreakers {
    /// The registry for `config`, without a state-change callback.
    pub fn new(config: CircuitBreakersConfig) -> Result<Self, ConfigError> {
        Self::builder(config).build()
    }

    /// A builder, for a state-change callback.
    pub fn builder(config: CircuitBreakersConfig) -> CircuitBreakersBuilder {
        CircuitBreakersBuilder {
            config,
            on_state_change: None,
        }
    }

    /// The breaker of `component`, created on first use with its configuration or the default.
    pub fn get(&self, component: &str) -> Arc<CircuitBreaker> {
        let breakers = &self.inner.breakers;
        if let Some(breaker) = breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(component)
        {
            return Arc::clone(breaker);
        }
        let mut breakers = breakers.write().unwrap_or_else(PoisonError::into_inner);
        let breaker = breakers
            .entry(component.to_owned())
            .or_insert_with(|| Arc::new(self.inner.create(component)));
        Arc::clone(breaker)
    }

    /// Every breaker created so far, ordered by component name (for metrics).
    pub fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        let breakers = self
            .inner
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = breakers.values().map(Arc::clone).collect();
        all.sort_by(|a, b| a.component().cmp(b.component()));
        all
    }

    /// The configuration the registry was built from.
    pub fn config(&self) -> &CircuitBreakersConfig {
        &self.inner.config
    }
}

impl Registry {
    fn create(&self, component: &str) -> CircuitBreaker {
        let mut builder =
            CircuitBreaker::builder(component, self.config.for_component(component).clone())
                .enabled(self.config.enabled);
        if let Some(callback) = &self.on_state_change {
            builder = builder.on_state_change(Arc::clone(callback));
        }
        match builder.build() {
            Ok(breaker) => breaker,
            // `CircuitBreakersBuilder::build` validated every configuration.
            Err(error) => unreachable!("a validated configuration failed: {error}"),
        }
    }
}

impl fmt::Debug for CircuitBreakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakers")
            .field("config", &self.inner.config)
            .field("breakers", &self.all())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CircuitBreakersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakersBuilder")
            .field("config", &self.config)
            .field("on_state_change", &self.on_state_change.is_some())
            .finish()
    }
}
