//! `ConfigLoader`: finds the configuration, merges its layers and validates the result.
//!
//! Layers, lowest precedence first:
//! 1. the defaults compiled into this crate (the typed schema);
//! 2. `base/<section>.toml` of the config root, then `environments/<env>/<section>.toml`
//!    (or the single pre-merged file of `TASKER_CONFIG_PATH`);
//! 3. `TASKER__<SECTION>__<KEY>...` environment variables, one key each.
//!
//! Tables merge deeply; arrays and scalars are replaced by the later layer. String values
//! then have their `${VAR}` placeholders expanded, every key is checked against the schema
//! and the raw configuration is validated, reporting every problem at once.

mod builder;
mod overrides;
mod resolve;
mod source;

pub use builder::{ConfigLoader, Strictness};
pub use source::ConfigSource;

use crate::{problem::ConfigProblem, provenance::Provenance, schema::SectionMeta};

/// A loaded, validated configuration with what was learned while loading it.
#[derive(Clone)]
pub struct Loaded<C> {
    /// The validated configuration.
    pub config: C,
    /// Problems tolerated because the loader is lenient (unknown and misplaced keys).
    pub warnings: Vec<ConfigProblem>,
    /// Which layer set each key.
    pub provenance: Provenance,
    /// Where the files came from.
    pub source: ConfigSource,
    /// The environment whose overrides were applied.
    pub environment: String,
    /// The merged raw tree after placeholder expansion, for [`Loaded::show`].
    pub(crate) resolved: toml::Table,
    pub(crate) meta: &'static SectionMeta,
}

/// Omits the raw merged tree: it holds secrets in clear text.
impl<C: std::fmt::Debug> std::fmt::Debug for Loaded<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("warnings", &self.warnings)
            .field("provenance", &self.provenance)
            .field("source", &self.source)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}
