//! Why a step's handler could not be resolved.

use std::fmt;

use tasker_models::names::StepName;

use super::BoxError;
use super::chain::ResolverTier;

/// Why one resolver did not give a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// The callable is not of a form the resolver handles.
    NotApplicable,
    /// The callable is of the resolver's form but it knows no handler by that name.
    NotFound,
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotApplicable => "does not handle callables of this form",
            Self::NotFound => "knows no handler by this name",
        })
    }
}

/// One resolver asked, and why it declined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverAttempt {
    /// The resolver's name.
    pub resolver: String,
    /// Its place in the chain.
    pub tier: ResolverTier,
    /// Why it gave no handler.
    pub declined: Declined,
}

impl fmt::Display for ResolverAttempt {
    /// `payments (custom, priority 20: not its form)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let declined = match self.declined {
            Declined::NotApplicable => "not its form",
            Declined::NotFound => "unknown callable",
        };
        write!(f, "{} ({}: {declined})", self.resolver, self.tier)
    }
}

/// Why the handler of one step could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No resolver of the chain knows the callable.
    #[error(
        "no resolver knows callable `{callable}` of step `{step}`; tried in order: {}; hint: \
         register the callable in the explicit mapping, add a resolver that knows it, or \
         correct `handler.callable`",
        list(tried)
    )]
    NotResolved {
        /// The step.
        step: StepName,
        /// Its `handler.callable`.
        callable: String,
        /// Every resolver asked, in order, with why it declined. The explicit mapping is
        /// always first.
        tried: Vec<ResolverAttempt>,
    },
    /// The step's `handler.resolver` names a resolver that is not in the chain.
    #[error(
        "step `{step}` names resolver `{hint}` (for callable `{callable}`), which is not in the \
         chain; {}",
        unknown_hint(suggestion.as_deref(), available)
    )]
    UnknownResolver {
        /// The step.
        step: StepName,
        /// Its `handler.callable`.
        callable: String,
        /// Its `handler.resolver`.
        hint: String,
        /// The names of the chain's resolvers, in order.
        available: Vec<String>,
        /// The available name closest to the hint, if one is close.
        suggestion: Option<String>,
    },
    /// The resolver the step's `handler.resolver` names has no handler for it. The rest of the
    /// chain is not asked.
    #[error(
        "resolver `{}` named by step `{step}` has no handler for callable `{callable}`: it {}; \
         hint: register the callable with that resolver, or remove `handler.resolver` to let \
         the whole chain resolve it",
        attempt.resolver,
        attempt.declined
    )]
    HintedResolverDeclined {
        /// The step.
        step: StepName,
        /// Its `handler.callable`.
        callable: String,
        /// The hinted resolver and why it declined.
        attempt: ResolverAttempt,
    },
    /// A resolver knows the callable but could not build its handler.
    #[error("resolver `{resolver}` could not build the handler `{callable}` for step `{step}`")]
    HandlerFailed {
        /// The step.
        step: StepName,
        /// Its `handler.callable`.
        callable: String,
        /// The resolver that knows it.
        resolver: String,
        /// Why the handler could not be built.
        #[source]
        source: BoxError,
    },
    /// The handler found does not implement the step's `handler.method`.
    #[error(
        "handler `{callable}` (from resolver `{resolver}`) of step `{step}` does not support \
         method `{method}`; hint: correct `handler.method`, or implement \
         `StepHandler::supports_method` for it"
    )]
    UnsupportedMethod {
        /// The step.
        step: StepName,
        /// Its `handler.callable`.
        callable: String,
        /// Its `handler.method`.
        method: String,
        /// The resolver that gave the handler.
        resolver: String,
    },
}

impl ResolveError {
    /// The step whose handler could not be resolved.
    #[must_use]
    pub fn step(&self) -> &StepName {
        match self {
            Self::NotResolved { step, .. }
            | Self::UnknownResolver { step, .. }
            | Self::HintedResolverDeclined { step, .. }
            | Self::HandlerFailed { step, .. }
            | Self::UnsupportedMethod { step, .. } => step,
        }
    }

    /// The step's `handler.callable`.
    #[must_use]
    pub fn callable(&self) -> &str {
        match self {
            Self::NotResolved { callable, .. }
            | Self::UnknownResolver { callable, .. }
            | Self::HintedResolverDeclined { callable, .. }
            | Self::HandlerFailed { callable, .. }
            | Self::UnsupportedMethod { callable, .. } => callable,
        }
    }
}

fn list(tried: &[ResolverAttempt]) -> String {
    tried
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_hint(suggestion: Option<&str>, available: &[String]) -> String {
    let names = available
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match suggestion {
        Some(suggestion) => {
            format!("hint: did you mean `{suggestion}`? the chain has {names}")
        }
        None => format!("hint: the chain has {names}"),
    }
}

/// Steps of one template whose handlers could not be resolved, every one of them.
#[derive(Debug, thiserror::Error)]
#[error("template {template} has {} step(s) without a usable handler:{}", errors.len(), lines(errors))]
pub struct UnresolvedHandlers {
    /// The template, `namespace/name:version`.
    pub template: String,
    /// One error per step, in the template's step order.
    pub errors: Vec<ResolveError>,
}

fn lines(errors: &[ResolveError]) -> String {
    let mut text = String::new();
    for error in errors {
        text.push_str("\n  - ");
        text.push_str(&error.to_string());
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
    }
    text
}

/// A resolver was added under a name the chain already has; step hints would be ambiguous.
#[derive(Debug, thiserror::Error)]
#[error("the resolver chain already has a resolver named `{name}`; resolver names must be unique")]
pub struct DuplicateResolver {
    /// The name.
    pub name: String,
}
