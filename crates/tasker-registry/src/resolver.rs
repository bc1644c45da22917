//! Step handler resolution: turning a step's `handler.callable` into a [`StepHandler`].
//!
//! A [`ResolverChain`] asks its resolvers in a fixed order of tiers: the explicit mapping
//! ([`ExplicitMapping`], callable string → handler) first, then the custom resolvers by
//! ascending priority (ties in the order they were added), then the fallback. The first
//! resolver that finds a handler wins. A step whose `handler.resolver` names a resolver skips
//! the chain and asks that resolver only.
//!
//! Resolution is synchronous and happens once per template, before any of its tasks run
//! ([`ResolverChain::resolve_template`]): a resolver that needs IO to find its handlers does
//! it when it is built, not per step.

mod chain;
mod error;
mod explicit;

use std::fmt;
use std::sync::Arc;

use tasker_models::names::{NamespaceName, StepName, TaskName, TemplateVersion};
use tasker_models::template::{HandlerDefinition, StepDefinition, TaskTemplate};

use crate::handler::StepHandler;

pub use chain::{ResolvedHandler, ResolverChain, ResolverInfo, ResolverTier, TemplateHandlers};
pub use error::{Declined, DuplicateResolver, ResolveError, ResolverAttempt, UnresolvedHandlers};
pub use explicit::{EXPLICIT_MAPPING, ExplicitMapping};

/// An error a resolver or a handler factory reports while building a handler.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Finds handlers for callables of some form (a prefix, a naming scheme, a plugin registry).
///
/// Keep implementations cheap and free of IO: the chain may ask every resolver about every
/// step of every template.
pub trait StepHandlerResolver: Send + Sync {
    /// The resolver's name: what a step's `handler.resolver` hint names, and what errors list.
    /// Unique within a chain.
    fn name(&self) -> &str;

    /// Looks up the handler for a step.
    fn resolve(&self, request: &HandlerRequest<'_>) -> Resolution;

    /// The callables this resolver knows by name, for diagnostics; empty for resolvers that
    /// recognise callables by their form.
    fn callables(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a resolver answered.
pub enum Resolution {
    /// The handler for the step.
    Found(Arc<dyn StepHandler>),
    /// The callable is not of a form this resolver handles.
    NotApplicable,
    /// The callable is of this resolver's form, but it knows no handler by that name.
    NotFound,
    /// The resolver knows the callable but could not build its handler (for example the
    /// step's `initialization` lacks a setting the handler needs). Resolution stops here:
    /// falling through to a later resolver would hide a configuration error.
    Failed(BoxError),
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Found(_) => f.write_str("Found(..)"),
            Self::NotApplicable => f.write_str("NotApplicable"),
            Self::NotFound => f.write_str("NotFound"),
            Self::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// The step a handler is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct HandlerRequest<'a> {
    /// The template's namespace.
    pub namespace: &'a NamespaceName,
    /// The template's name.
    pub task_name: &'a TaskName,
    /// The template's version.
    pub version: &'a TemplateVersion,
    /// The step.
    pub step_name: &'a StepName,
    /// The step's handler definition: callable, method, resolver hint and initialization.
    pub handler: &'a HandlerDefinition,
}

impl<'a> HandlerRequest<'a> {
    /// The request for one step of a template.
    #[must_use]
    pub fn for_step(template: &'a TaskTemplate, step: &'a StepDefinition) -> Self {
        Self {
            namespace: &template.namespace_name,
            task_name: &template.name,
            version: &template.version,
            step_name: &step.name,
            handler: &step.handler,
        }
    }

    /// The lookup key.
    #[must_use]
    pub fn callable(&self) -> &'a str {
        &self.handler.callable
    }

    /// The method the step runs (`call` unless the template names another).
    #[must_use]
    pub fn method(&self) -> &'a str {
        self.handler.effective_method()
    }

    /// The step's `handler.initialization`.
    #[must_use]
    pub fn initialization(&self) -> &'a serde_json::Map<String, serde_json::Value> {
        &self.handler.initialization
    }
}

/// A resolver made from a name and a closure: the quickest way to write a custom resolver or
/// a fallback.
pub struct FnResolver<F> {
    name: String,
    function: F,
}

impl<F> FnResolver<F>
where
    F: Fn(&HandlerRequest<'_>) -> Resolution + Send + Sync,
{
    /// A resolver named `name` that answers with `function`.
    pub fn new(name: impl Into<String>, function: F) -> Self {
        Self {
            name: name.into(),
            function,
        }
    }
}

impl<F> StepHandlerResolver for FnResolver<F>
where
    F: Fn(&HandlerRequest<'_>) -> Resolution + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn resolve(&self, request: &HandlerRequest<'_>) -> Resolution {
        (self.function)(request)
    }
}

impl<F> fmt::Debug for FnResolver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnResolver")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
