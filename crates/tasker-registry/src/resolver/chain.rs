//! [`ResolverChain`]: the explicit mapping, custom resolvers by priority and a fallback, asked
//! in that order; and [`TemplateHandlers`], every step of a template resolved up front.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tasker_models::template::ValidatedTemplate;

use crate::handler::StepHandler;

use super::error::{DuplicateResolver, ResolveError, ResolverAttempt, UnresolvedHandlers};
use super::explicit::ExplicitMapping;
use super::{BoxError, Declined, HandlerRequest, Resolution, StepHandlerResolver};

/// Where a resolver sits in the chain. Tiers are asked in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverTier {
    /// The explicit mapping, always first.
    Explicit,
    /// A custom resolver; lower priorities are asked first, ties in the order they were added.
    Custom {
        /// Its priority.
        priority: u32,
    },
    /// The fallback, always last.
    Fallback,
}

impl fmt::Display for ResolverTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("explicit"),
            Self::Custom { priority } => write!(f, "custom, priority {priority}"),
            Self::Fallback => f.write_str("fallback"),
        }
    }
}

/// A resolver of the chain, as [`ResolverChain::resolvers`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverInfo {
    /// Its name.
    pub name: String,
    /// Its place.
    pub tier: ResolverTier,
}

struct Custom {
    priority: u32,
    resolver: Arc<dyn StepHandlerResolver>,
}

/// Resolvers asked in order until one knows a step's callable (see the module docs).
///
/// Build it once at start-up, then share it (`&ResolverChain`, or an `Arc`); resolving takes
/// `&self`.
#[derive(Default)]
pub struct ResolverChain {
    explicit: ExplicitMapping,
    custom: Vec<Custom>,
    fallback: Option<Arc<dyn StepHandlerResolver>>,
}

impl ResolverChain {
    /// A chain with an empty explicit mapping, no custom resolvers and no fallback.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The explicit mapping.
    #[must_use]
    pub fn explicit(&self) -> &ExplicitMapping {
        &self.explicit
    }

    /// The explicit mapping, to register, replace or remove handlers.
    pub fn explicit_mut(&mut self) -> &mut ExplicitMapping {
        &mut self.explicit
    }

    /// Registers `handler` under `callable` in the explicit mapping; returns whether a
    /// registration was replaced. See [`ExplicitMapping::register`].
    pub fn register(
        &mut self,
        callable: impl Into<String>,
        handler: impl StepHandler + 'static,
    ) -> bool {
        self.explicit.register(callable, handler)
    }

    /// Registers a handler factory under `callable` in the explicit mapping; returns whether a
    /// registration was replaced. See [`ExplicitMapping::register_factory`].
    pub fn register_factory<F>(&mut self, callable: impl Into<String>, factory: F) -> bool
    where
        F: Fn(&HandlerRequest<'_>) -> Result<Arc<dyn StepHandler>, BoxError>
            + Send
            + Sync
            + 'static,
    {
        self.explicit.register_factory(callable, factory)
    }

    /// Adds a custom resolver, asked after the explicit mapping and before the fallback, in
    /// ascending `priority` (ties in the order they were added). By convention custom
    /// priorities are 20–99.
    ///
    /// # Errors
    /// If the chain already has a resolver with the same name.
    pub fn add_resolver(
        &mut self,
        priority: u32,
        resolver: impl StepHandlerResolver + 'static,
    ) -> Result<(), DuplicateResolver> {
        self.check_unique(resolver.name(), false)?;
        let position = self
            .custom
            .partition_point(|custom| custom.priority <= priority);
        self.custom.insert(
            position,
            Custom {
                priority,
                resolver: Arc::new(resolver),
            },
        );
        Ok(())
    }

    /// Sets the fallback, asked after every other resolver, replacing any previous fallback.
    ///
    /// # Errors
    /// If another resolver of the chain has the same name.
    pub fn set_fallback(
        &mut self,
        resolver: impl StepHandlerResolver + 'static,
    ) -> Result<(), DuplicateResolver> {
        self.check_unique(resolver.name(), true)?;
        self.fallback = Some(Arc::new(resolver));
        Ok(())
    }

    /// Every resolver, in the order they are asked.
    #[must_use]
    pub fn resolvers(&self) -> Vec<ResolverInfo> {
        self.ordered()
            .map(|(tier, resolver)| ResolverInfo {
                name: resolver.name().to_owned(),
                tier,
            })
            .collect()
    }

    /// The callables the resolvers know by name, sorted and without duplicates.
    #[must_use]
    pub fn callables(&self) -> Vec<String> {
        let mut callables: Vec<String> = self
            .ordered()
            .flat_map(|(_, resolver)| resolver.callables())
            .collect();
        callables.sort_unstable();
        callables.dedup();
        callables
    }

    /// Resolves the handler of one step.
    ///
    /// With a `handler.resolver` hint, only the resolver of that name is asked. Otherwise the
    /// tiers are asked in order, and the first handler found wins; a resolver that knows the
    /// callable but fails to build its handler stops the search. The handler must support the
    /// step's method.
    ///
    /// # Errors
    /// A [`ResolveError`] naming the step, the callable and the resolvers asked.
    pub fn resolve(&self, request: &HandlerRequest<'_>) -> Result<ResolvedHandler, ResolveError> {
        let step = request.step_name;
        let callable = request.callable();
        if let Some(hint) = request.handler.resolver.as_deref() {
            let Some((tier, resolver)) =
                self.ordered().find(|(_, resolver)| resolver.name() == hint)
            else {
                let available: Vec<String> = self
                    .ordered()
                    .map(|(_, resolver)| resolver.name().to_owned())
                    .collect();
                return Err(ResolveError::UnknownResolver {
                    step: step.clone(),
                    callable: callable.to_owned(),
                    hint: hint.to_owned(),
                    suggestion: closest(hint, &available),
                    available,
                });
            };
            return match resolver.resolve(request) {
                Resolution::Found(handler) => finish(request, resolver.name(), handler),
                Resolution::NotApplicable => Err(hinted_declined(
                    request,
                    resolver.name(),
                    tier,
                    Declined::NotApplicable,
                )),
                Resolution::NotFound => Err(hinted_declined(
                    request,
                    resolver.name(),
                    tier,
                    Declined::NotFound,
                )),
                Resolution::Failed(source) => Err(handler_failed(request, resolver.name(), source)),
            };
        }

        let mut tried = Vec::new();
        for (tier, resolver) in self.ordered() {
            let declined = match resolver.resolve(request) {
                Resolution::Found(handler) => return finish(request, resolver.name(), handler),
                Resolution::Failed(source) => {
                    return Err(handler_failed(request, resolver.name(), source));
                }
                Resolution::NotApplicable => Declined::NotApplicable,
                Resolution::NotFound => Declined::NotFound,
            };
            tried.push(ResolverAttempt {
                resolver: resolver.name().to_owned(),
                tier,
                declined,
            });
        }
        Err(ResolveError::NotResolved {
            step: step.clone(),
            callable: callable.to_owned(),
            tried,
        })
    }

    /// Resolves the handler of every step of a template, so that a missing handler is found
    /// before any task of the template runs. Resolve the template an environment sees
    /// ([`ValidatedTemplate::resolve_for_environment`]) when handler factories read the
    /// step's initialization.
    ///
    /// # Errors
    /// [`UnresolvedHandlers`] with one error per step that could not be resolved, every one
    /// of them.
    pub fn resolve_template(
        &self,
        template: &ValidatedTemplate,
    ) -> Result<TemplateHandlers, UnresolvedHandlers> {
        let mut steps = BTreeMap::new();
        let mut errors = Vec::new();
        for step in template.steps() {
            let request = HandlerRequest::for_step(template.template(), step);
            match self.resolve(&request) {
                Ok(resolved) => {
                    steps.insert(step.name.as_str().to_owned(), resolved);
                }
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(TemplateHandlers {
                template: template.routing_key(),
                steps,
            })
        } else {
            Err(UnresolvedHandlers {
                template: template.routing_key(),
                errors,
            })
        }
    }

    fn ordered(&self) -> impl Iterator<Item = (ResolverTier, &dyn StepHandlerResolver)> + '_ {
        let explicit = std::iter::once((
            ResolverTier::Explicit,
            &self.explicit as &dyn StepHandlerResolver,
        ));
        let custom = self.custom.iter().map(|custom| {
            (
                ResolverTier::Custom {
                    priority: custom.priority,
                },
                custom.resolver.as_ref(),
            )
        });
        let fallback = self
            .fallback
            .iter()
            .map(|resolver| (ResolverTier::Fallback, resolver.as_ref()));
        explicit.chain(custom).chain(fallback)
    }

    fn check_unique(&self, name: &str, replacing_fallback: bool) -> Result<(), DuplicateResolver> {
        let taken = self.ordered().any(|(tier, resolver)| {
            resolver.name() == name && !(replacing_fallback && tier == ResolverTier::Fallback)
        });
        if taken {
            Err(DuplicateResolver {
                name: name.to_owned(),
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for ResolverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverChain")
            .field("explicit", &self.explicit)
            .field("resolvers", &self.resolvers())
            .finish()
    }
}

fn finish(
    request: &HandlerRequest<'_>,
    resolver: &str,
    handler: Arc<dyn StepHandler>,
) -> Result<ResolvedHandler, ResolveError> {
    let method = request.method();
    if !handler.supports_method(method) {
        return Err(ResolveError::UnsupportedMethod {
            step: request.step_name.clone(),
            callable: request.callable().to_owned(),
            method: method.to_owned(),
            resolver: resolver.to_owned(),
        });
    }
    tracing::debug!(
        step = %request.step_name,
        callable = request.callable(),
        resolver,
        "resolved step handler"
    );
    Ok(ResolvedHandler {
        handler,
        resolver: resolver.to_owned(),
        callable: request.callable().to_owned(),
        method: method.to_owned(),
    })
}

fn hinted_declined(
    request: &HandlerRequest<'_>,
    resolver: &str,
    tier: ResolverTier,
    declined: Declined,
) -> ResolveError {
    ResolveError::HintedResolverDeclined {
        step: request.step_name.clone(),
        callable: request.callable().to_owned(),
        attempt: ResolverAttempt {
            resolver: resolver.to_owned(),
            tier,
            declined,
        },
    }
}

fn handler_failed(request: &HandlerRequest<'_>, resolver: &str, source: BoxError) -> ResolveError {
    ResolveError::HandlerFailed {
        step: request.step_name.clone(),
        callable: request.callable().to_owned(),
        resolver: resolver.to_owned(),
        source,
    }
}

/// The name closest to a mistyped hint: equal once case and separators are ignored, one
/// containing the other (`ExplicitMappingResolver` → `explicit_mapping`), or a few edits away.
pub(super) fn closest(hint: &str, names: &[String]) -> Option<String> {
    let fold = |text: &str| -> String {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let hint = fold(hint);
    if hint.is_empty() {
        return None;
    }
    names
        .iter()
        .map(|name| {
            let folded = fold(name);
            let score = if folded.is_empty() {
                0.0
            } else if folded.contains(&hint) || hint.contains(&folded) {
                1.0
            } else {
                strsim::normalized_damerau_levenshtein(&hint, &folded)
            };
            (score, name)
        })
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .map(|(_, name)| name.clone())
}

/// A step's handler, with where it came from.
#[derive(Clone)]
pub struct ResolvedHandler {
    handler: Arc<dyn StepHandler>,
    resolver: String,
    callable: String,
    method: String,
}

impl ResolvedHandler {
    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &Arc<dyn StepHandler> {
        &self.handler
    }

    /// The name of the resolver that found it.
    #[must_use]
    pub fn resolver(&self) -> &str {
        &self.resolver
    }

    /// The step's callable.
    #[must_use]
    pub fn callable(&self) -> &str {
        &self.callable
    }

    /// The method the step runs.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }
}

impl fmt::Debug for ResolvedHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedHandler")
            .field("callable", &self.callable)
            .field("method", &self.method)
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

/// The handler of every step of one template.
#[derive(Clone)]
pub struct TemplateHandlers {
    template: String,
    steps: BTreeMap<String, ResolvedHandler>,
}

impl TemplateHandlers {
    /// The template, `namespace/name:version`.
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The handler of a step, `None` for a name the template does not have.
    #[must_use]
    pub fn get(&self, step: &str) -> Option<&ResolvedHandler> {
        self.steps.get(step)
    }

    /// Every step with its handler, by step name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &ResolvedHandler)> + '_ {
        self.steps
            .iter()
            .map(|(step, handler)| (step.as_str(), handler))
    }

    /// How many steps.
    #[must_use]
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the template has no steps.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Debug for TemplateHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateHandlers")
            .field("template", &self.template)
            .field("steps", &self.steps)
            .finish()
    }
}
