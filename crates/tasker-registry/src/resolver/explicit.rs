//! [`ExplicitMapping`]: handlers registered under their callable string, the first resolver of
//! every chain.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::handler::StepHandler;

use super::{BoxError, HandlerRequest, Resolution, StepHandlerResolver};

/// The explicit mapping's resolver name, as a step's `handler.resolver` hint writes it.
pub const EXPLICIT_MAPPING: &str = "explicit_mapping";

type Factory =
    Arc<dyn Fn(&HandlerRequest<'_>) -> Result<Arc<dyn StepHandler>, BoxError> + Send + Sync>;

#[derive(Clone)]
enum Entry {
    /// One handler shared by every step that names the callable.
    Instance(Arc<dyn StepHandler>),
    /// Builds a handler per step, from the step's request (its initialization, ...).
    Factory(Factory),
}

/// Handlers registered under callable strings.
///
/// The mapping knows nothing but its keys: a callable that is not registered is
/// [`Resolution::NotFound`], never [`Resolution::NotApplicable`]. Registering a callable again
/// replaces its handler.
#[derive(Clone, Default)]
pub struct ExplicitMapping {
    entries: HashMap<String, Entry>,
}

impl ExplicitMapping {
    /// An empty mapping.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `callable`; every step naming it shares the one instance.
    /// Returns whether a registration was replaced.
    pub fn register(
        &mut self,
        callable: impl Into<String>,
        handler: impl StepHandler + 'static,
    ) -> bool {
        self.register_shared(callable, Arc::new(handler))
    }

    /// Registers an already shared handler under `callable`. Returns whether a registration
    /// was replaced.
    pub fn register_shared(
        &mut self,
        callable: impl Into<String>,
        handler: Arc<dyn StepHandler>,
    ) -> bool {
        self.entries
            .insert(callable.into(), Entry::Instance(handler))
            .is_some()
    }

    /// Registers a factory under `callable`: it builds a new handler for each step that names
    /// the callable, from that step's request (typically its `initialization`). A factory error
    /// fails resolution of that step. Returns whether a registration was replaced.
    pub fn register_factory<F>(&mut self, callable: impl Into<String>, factory: F) -> bool
    where
        F: Fn(&HandlerRequest<'_>) -> Result<Arc<dyn StepHandler>, BoxError>
            + Send
            + Sync
            + 'static,
    {
        self.entries
            .insert(callable.into(), Entry::Factory(Arc::new(factory)))
            .is_some()
    }

    /// Removes the registration of `callable`; returns whether there was one.
    pub fn unregister(&mut self, callable: &str) -> bool {
        self.entries.remove(callable).is_some()
    }

    /// Removes every registration.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Whether `callable` is registered.
    #[must_use]
    pub fn contains(&self, callable: &str) -> bool {
        self.entries.contains_key(callable)
    }

    /// How many callables are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StepHandlerResolver for ExplicitMapping {
    fn name(&self) -> &str {
        EXPLICIT_MAPPING
    }

    fn resolve(&self, request: &HandlerRequest<'_>) -> Resolution {
        match self.entries.get(request.callable()) {
            None => Resolution::NotFound,
            Some(Entry::Instance(handler)) => Resolution::Found(Arc::clone(handler)),
            Some(Entry::Factory(factory)) => match factory(request) {
                Ok(handler) => Resolution::Found(handler),
                Err(error) => Resolution::Failed(error),
            },
        }
    }

    /// The registered callables, sorted.
    fn callables(&self) -> Vec<String> {
        let mut callables: Vec<String> = self.entries.keys().cloned().collect();
        callables.sort_unstable();
        callables
    }
}

impl fmt::Debug for ExplicitMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<(&str, &str)> = self
            .entries
            .iter()
            .map(|(callable, entry)| {
                let kind = match entry {
                    Entry::Instance(_) => "instance",
                    Entry::Factory(_) => "factory",
                };
                (callable.as_str(), kind)
            })
            .collect();
        entries.sort_unstable();
        f.debug_map().entries(entries).finish()
    }
}
