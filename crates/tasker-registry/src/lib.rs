//! Tasker's registries: step handlers by callable, and (next) task templates in PostgreSQL.
//!
//! - [`handler`]: the async [`handler::StepHandler`] trait, the [`handler::StepContext`] a
//!   handler receives and the [`handler::StepOutcome`] it returns.
//! - [`resolver`]: the [`resolver::ResolverChain`] that turns a step's `handler.callable` into
//!   a handler (explicit mapping, custom resolvers by priority, fallback; `handler.resolver`
//!   hints), and [`resolver::ResolverChain::resolve_template`], which resolves every step of a
//!   template up front.
//!
//! This crate must not depend on messaging, caching, web or orchestration crates; it writes no
//! SQL (that is `tasker-db`'s job).

pub mod handler;
pub mod resolver;
