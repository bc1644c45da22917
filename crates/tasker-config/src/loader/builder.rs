//! The `ConfigLoader` builder and the load pipeline.

use std::{collections::BTreeMap, path::PathBuf};

use super::{
    Loaded, overrides,
    resolve::{self, Resolved},
    source::{self, Requested},
};
use crate::{
    error::ConfigError,
    problem::ConfigProblem,
    schema::{FieldKind, Setting},
    tasker::{OrchestrationServiceConfig, TaskerConfig, WorkerServiceConfig},
    validate,
};

/// Whether unknown keys, unknown files and misplaced keys are errors or warnings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// They are errors (the default): a typo must not be ignored silently.
    #[default]
    Strict,
    /// They are returned as [`Loaded::warnings`].
    Lenient,
}

/// Loads the Tasker configuration.
///
/// [`ConfigLoader::load_from_env`] is the one-call entry point. For control, build a loader
/// and call [`load`](Self::load), [`load_orchestration`](Self::load_orchestration) or
/// [`load_worker`](Self::load_worker):
///
/// ```
/// use tasker_config::{ConfigLoader, Strictness};
///
/// let loaded = ConfigLoader::builder()
///     .env([("TASKER_ENV", "test"), ("TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS", "7")])
///     .strictness(Strictness::Lenient)
///     .load()
///     .expect("valid configuration");
/// assert_eq!(loaded.config.common.database.pool.max_connections, 7);
/// ```
///
/// The environment is read once per load, from the process unless [`env`](Self::env)
/// injects a map, so tests never race on process variables.
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    env: Option<BTreeMap<String, String>>,
    current_dir: Option<PathBuf>,
    requested: Option<Requested>,
    environment: Option<String>,
    strictness: Strictness,
}

impl ConfigLoader {
    /// Loads the complete configuration from the process environment, strictly.
    ///
    /// Reads `TASKER_ENV` (default `development`), `TASKER_CONFIG_ROOT` or
    /// `TASKER_CONFIG_PATH`, else the nearest `config/tasker` above the current directory,
    /// else the compiled defaults; then `TASKER__...` overrides and `${VAR}` placeholders.
    pub fn load_from_env() -> Result<TaskerConfig, ConfigError> {
        Self::builder().load().map(|loaded| loaded.config)
    }

    /// A loader reading the process environment, strict, with no explicit root.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Reads variables from `vars` instead of the process environment.
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Starts the search for `config/tasker` from `dir` instead of the current directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Uses `dir` as the config root, ignoring `TASKER_CONFIG_ROOT`/`TASKER_CONFIG_PATH`.
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.requested = Some(Requested::Root(dir.into()));
        self
    }

    /// Loads the single pre-merged file `path`, ignoring `TASKER_CONFIG_ROOT`/`TASKER_CONFIG_PATH`.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.requested = Some(Requested::File(path.into()));
        self
    }

    /// Uses the compiled defaults only, ignoring any files.
    pub fn compiled_defaults(mut self) -> Self {
        self.requested = Some(Requested::Compiled);
        self
    }

    /// Applies the overrides of `environment`, ignoring `TASKER_ENV`.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Sets whether unknown keys are errors or warnings.
    pub fn strictness(mut self, strictness: Strictness) -> Self {
        self.strictness = strictness;
        self
    }

    /// Loads the complete configuration: `common`, `orchestration` and `worker`.
    pub fn load(&self) -> Result<Loaded<TaskerConfig>, ConfigError> {
        self.load_root::<TaskerConfig>()
    }

    /// Loads what the orchestration service needs: `common` and `orchestration`.
    ///
    /// Only `common.toml` and `orchestration.toml` are read; a missing
    /// `base/orchestration.toml` (or `[orchestration]` table in a pre-merged file) is an
    /// error naming the section.
    pub fn load_orchestration(&self) -> Result<Loaded<OrchestrationServiceConfig>, ConfigError> {
        self.load_root::<OrchestrationServiceConfig>()
    }

    /// Loads what a worker needs: `common` and `worker`.
    ///
    /// Only `common.toml` and `worker.toml` are read; a missing `base/worker.toml` (or
    /// `[worker]` table in a pre-merged file) is an error naming the section.
    pub fn load_worker(&self) -> Result<Loaded<WorkerServiceConfig>, ConfigError> {
        self.load_root::<WorkerServiceConfig>()
    }

    fn load_root<C: Setting>(&self) -> Result<Loaded<C>, ConfigError> {
        let FieldKind::Section(meta) = C::kind() else {
            unreachable!("configuration roots are sections")
        };
        let env = match &self.env {
            Some(env) => env.clone(),
            None => process_env(),
        };
        let sections: Vec<&'static str> = meta.fields.iter().map(|f| f.key).collect();
        let current_dir = self
            .current_dir
            .clone()
            .or_else(|| std::env::current_dir().ok());
        let selected = source::select(
            self.requested.as_ref(),
            self.environment.as_deref(),
            &env,
            current_dir.as_deref(),
        )?;
        let mut problems = Vec::new();
        let default_table = match toml::Value::try_from(C::Raw::default()) {
            Ok(toml::Value::Table(table)) => table,
            _ => unreachable!("raw defaults serialize to a table"),
        };
        let mut layers = vec![resolve::LayerInput::defaults(default_table)];
        layers.extend(source::read_layers(&selected, &sections, &mut problems)?);
        layers.extend(overrides::env_layers(&env, meta));

        let Resolved {
            tree,
            provenance,
            poisoned,
        } = resolve::resolve(&layers, meta, &env, &mut problems)?;
        let decoded = toml::Value::Table(tree.clone()).try_into::<C::Raw>();
        let validated = match decoded {
            Ok(raw) => validate::validate_root::<C>(&raw, &provenance).map_err(|found| {
                problems.extend(found.into_iter().filter(|p| !poisoned.covers(&p.key)));
            }),
            Err(error) => {
                problems.push(resolve::decode_failure(&error));
                Err(())
            }
        };
        let (warnings, errors): (Vec<ConfigProblem>, Vec<ConfigProblem>) = problems
            .into_iter()
            .partition(|p| self.strictness == Strictness::Lenient && p.is_lenient());
        match validated {
            Ok(config) if errors.is_empty() => Ok(Loaded {
                config,
                warnings,
                provenance,
                source: selected.source,
                environment: selected.environment,
                resolved: tree,
                meta,
            }),
            _ => Err(ConfigError::Invalid { errors, warnings }),
        }
    }
}

/// The process environment; variables that are not valid UTF-8 are decoded lossily so that
/// a mangled `TASKER__...` override still shows up (as a bad value) rather than vanishing.
fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}
