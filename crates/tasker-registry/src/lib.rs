//! Tasker's registries: task templates in PostgreSQL, and step handlers by callable.
//!
//! Entry points:
//! - `registry::TemplateRegistry`: registers every template of a directory (or of given files
//!   and directories) in one all-or-nothing transaction, idempotently: an unchanged template is
//!   left alone, a template changed without a new version is an error naming every changed
//!   field (unless forced). `TemplateRegistry::get` looks a template up by namespace, name and
//!   version, or its highest version by semantic-version precedence.
//! - [`handler::StepHandler`]: the async code that runs a step. It receives a
//!   [`handler::StepContext`] (the step's inputs, its dependencies' results, the task's context,
//!   ids and attempt number) and returns a [`handler::StepOutcome`]: success with a result, a
//!   retryable failure (optionally asking for a backoff) or a permanent failure.
//! - [`resolver::ResolverChain`]: turns a step's `handler.callable` into a handler, asking the
//!   explicit mapping (callable → handler) first, then custom
//!   [`resolver::StepHandlerResolver`]s by priority, then a fallback; a step's
//!   `handler.resolver` hint asks one resolver directly.
//!   [`resolver::ResolverChain::resolve_template`] resolves every step of a template before
//!   any task runs and reports every step without a handler at once.
//!
//! ```
//! use tasker_models::template::{Strictness, ValidatedTemplate};
//! use tasker_registry::handler::{StepContext, StepHandler, StepOutcome};
//! use tasker_registry::resolver::ResolverChain;
//!
//! /// Adds its `operand` input to the result of step `seed`.
//! struct Add;
//!
//! #[async_trait::async_trait]
//! impl StepHandler for Add {
//!     async fn call(&self, context: &StepContext) -> StepOutcome {
//!         let (Ok(seed), Ok(operand)) = (
//!             context.dependency_result_as::<i64>("seed"),
//!             context.input_as::<i64>("operand"),
//!         ) else {
//!             return StepOutcome::permanent("`seed` result or `operand` input missing");
//!         };
//!         StepOutcome::success(serde_json::json!(seed + operand))
//!     }
//! }
//!
//! let template = ValidatedTemplate::from_yaml_str(
//!     "name: sums\nnamespace_name: math\nversion: 1.0.0\nsteps:\n\
//!      - {name: seed, handler: {callable: Math::Add, initialization: {operand: 1}}}\n\
//!      - {name: add, handler: {callable: Math::Mul}, dependencies: [seed]}\n",
//!     Strictness::Strict,
//! )?
//! .template;
//!
//! let mut chain = ResolverChain::new();
//! chain.register("Math::Add", Add);
//! // Every step without a handler is reported before any task runs.
//! let error = chain.resolve_template(&template).unwrap_err();
//! assert_eq!(error.errors.len(), 1);
//! assert_eq!(error.errors[0].callable(), "Math::Mul");
//!
//! chain.register("Math::Mul", Add);
//! let handlers = chain.resolve_template(&template)?;
//! assert_eq!(handlers.get("add").map(|handler| handler.resolver()), Some("explicit_mapping"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate writes no SQL (it calls `tasker-db`) and must not depend on messaging, caching,
//! web or orchestration crates: the orchestrator and the workers build on it, not the other
//! way round.

pub mod handler;
pub mod registry;
pub mod resolver;
