//! Where the configuration comes from (root directory, pre-merged file or compiled defaults),
//! which environment applies, and reading the files into layers.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use super::resolve::LayerInput;
use crate::{
    error::{ConfigError, TomlSyntaxError},
    problem::{ConfigProblem, ProblemKind},
    provenance::Layer,
    tasker::TaskerConfig,
};

/// The environment used when `TASKER_ENV` is not set.
pub(crate) const DEFAULT_ENVIRONMENT: &str = "development";

/// The environments known when no config root is found.
const BUILT_IN_ENVIRONMENTS: &[&str] = &["development", "production", "test"];

/// Where the configuration files came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A config root with `base/` and `environments/`.
    Root(PathBuf),
    /// A single pre-merged file (`TASKER_CONFIG_PATH`).
    File(PathBuf),
    /// No files: the defaults compiled into this crate.
    Compiled,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Root(path) => write!(f, "config root {}", path.display()),
            ConfigSource::File(path) => write!(f, "pre-merged file {}", path.display()),
            ConfigSource::Compiled => f.write_str("compiled defaults (no config root found)"),
        }
    }
}

/// A source requested explicitly through the builder.
#[derive(Debug, Clone)]
pub(crate) enum Requested {
    Root(PathBuf),
    File(PathBuf),
    Compiled,
}

/// The chosen source and environment.
#[derive(Debug)]
pub(crate) struct Selected {
    pub(crate) source: ConfigSource,
    pub(crate) environment: String,
    /// Whether the environment was asked for (and so must exist) or is the default.
    explicit_environment: bool,
}

/// Chooses the source (builder option, then `TASKER_CONFIG_PATH`/`TASKER_CONFIG_ROOT`, then
/// the nearest `config/tasker` above `current_dir`, then compiled defaults) and the
/// environment (builder option, then `TASKER_ENV`, then `development`).
pub(crate) fn select(
    requested: Option<&Requested>,
    environment: Option<&str>,
    env: &BTreeMap<String, String>,
    current_dir: Option<&Path>,
) -> Result<Selected, ConfigError> {
    let non_empty = |name: &str| env.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let source = match requested {
        Some(Requested::Root(root)) => {
            ConfigSource::Root(existing_root(root, "the loader's root option")?)
        }
        Some(Requested::File(file)) => ConfigSource::File(file.clone()),
        Some(Requested::Compiled) => ConfigSource::Compiled,
        None => match (
            non_empty("TASKER_CONFIG_PATH"),
            non_empty("TASKER_CONFIG_ROOT"),
        ) {
            (Some(file), Some(root)) => return Err(ConfigError::AmbiguousSource { file, root }),
            (Some(file), None) => ConfigSource::File(file),
            (None, Some(root)) => ConfigSource::Root(existing_root(&root, "TASKER_CONFIG_ROOT")?),
            (None, None) => current_dir
                .and_then(discover_root)
                .map_or(ConfigSource::Compiled, ConfigSource::Root),
        },
    };
    let requested_env = environment
        .map(str::to_owned)
        .or_else(|| env.get("TASKER_ENV").filter(|v| !v.is_empty()).cloned());
    let explicit_environment = requested_env.is_some();
    let environment = requested_env.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
    let known = match &source {
        ConfigSource::Root(root) => Some(known_environments(root)),
        ConfigSource::Compiled => Some(
            BUILT_IN_ENVIRONMENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
        ),
        // A pre-merged file is already specific to one environment; the name is a label.
        ConfigSource::File(_) => None,
    };
    let valid_name = !environment.is_empty()
        && environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if let Some(known) = known {
        if !valid_name || (explicit_environment && !known.contains(&environment)) {
            return Err(ConfigError::UnknownEnvironment {
                name: environment,
                known,
            });
        }
    } else if !valid_name {
        return Err(ConfigError::UnknownEnvironment {
            name: environment,
            known: Vec::new(),
        });
    }
    Ok(Selected {
        source,
        environment,
        explicit_environment,
    })
}

fn existing_root(root: &Path, origin: &'static str) -> Result<PathBuf, ConfigError> {
    if root.is_dir() {
        Ok(root.to_path_buf())
    } else {
        Err(ConfigError::RootNotFound {
            path: root.to_path_buf(),
            origin,
        })
    }
}

/// The nearest `config/tasker` directory at or above `start`.
pub(crate) fn discover_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("config").join("tasker"))
        .find(|dir| dir.is_dir())
}

/// The sub-directories of `root/environments`, sorted.
fn known_environments(root: &Path) -> Vec<String> {
    let mut known: Vec<String> = fs::read_dir(root.join("environments"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .collect();
    known.sort();
    known
}

/// Reads the file layers of `sections` from the selected source.
pub(crate) fn read_layers(
    selected: &Selected,
    sections: &[&'static str],
    problems: &mut Vec<ConfigProblem>,
) -> Result<Vec<LayerInput>, ConfigError> {
    match &selected.source {
        ConfigSource::Compiled => Ok(Vec::new()),
        ConfigSource::File(path) => {
            let mut table = read_toml(path)?;
            for section in sections {
                if !table.contains_key(*section) {
                    problems.push(missing_section(path, section));
                }
            }
            retain_loaded_sections(&mut table, sections);
            Ok(vec![LayerInput::file(path.clone(), table)])
        }
        ConfigSource::Root(root) => {
            let base = root.join("base");
            let mut layers = read_directory(&base, sections, true, problems)?;
            let env_dir = root.join("environments").join(&selected.environment);
            if env_dir.is_dir() || selected.explicit_environment {
                layers.extend(read_directory(&env_dir, sections, false, problems)?);
            }
            Ok(layers)
        }
    }
}

/// Reads `<dir>/<section>.toml` for each section (required in `base/`), and reports other
/// `.toml` files in `dir` that no service reads.
fn read_directory(
    dir: &Path,
    sections: &[&'static str],
    required: bool,
    problems: &mut Vec<ConfigProblem>,
) -> Result<Vec<LayerInput>, ConfigError> {
    let all_sections: Vec<&'static str> =
        TaskerConfig::meta().fields.iter().map(|f| f.key).collect();
    let mut strays: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            !all_sections.contains(&stem)
        })
        .collect();
    strays.sort();
    for path in strays {
        problems.push(ConfigProblem {
            source: Layer::File(path),
            key: String::new(),
            value: None,
            kind: ProblemKind::UnknownFile {
                expected: all_sections.iter().map(|s| format!("{s}.toml")).collect(),
            },
        });
    }
    let mut layers = Vec::new();
    for section in sections {
        let path = dir.join(format!("{section}.toml"));
        if !path.is_file() {
            if required {
                problems.push(missing_section(&path, section));
            }
            continue;
        }
        let mut table = read_toml(&path)?;
        let misplaced: Vec<String> = table.keys().filter(|k| k != section).cloned().collect();
        for key in misplaced {
            table.remove(&key);
            problems.push(ConfigProblem {
                source: Layer::File(path.clone()),
                key,
                value: None,
                kind: ProblemKind::MisplacedKey {
                    file_section: (*section).to_owned(),
                },
            });
        }
        layers.push(LayerInput::file(path, table));
    }
    Ok(layers)
}

fn missing_section(path: &Path, section: &str) -> ConfigProblem {
    ConfigProblem {
        source: Layer::File(path.to_path_buf()),
        key: section.to_owned(),
        value: None,
        kind: ProblemKind::MissingSection {
            section: section.to_owned(),
        },
    }
}

/// Drops the top-level tables of known sections this service does not load (a worker
/// ignores `[orchestration]` in a pre-merged file); unknown top-level keys stay, to be
/// reported.
pub(crate) fn retain_loaded_sections(table: &mut toml::Table, sections: &[&'static str]) {
    let all = TaskerConfig::meta();
    table.retain(|key, _| sections.contains(&key) || all.field(key).is_none());
}

/// Reads and parses a TOML file, dropping every `_docs` table (documentation carried by
/// the reference configuration files).
fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|error| ConfigError::Parse {
        path: path.to_path_buf(),
        error: TomlSyntaxError::new(&text, &error),
    })?;
    strip_docs(&mut table);
    Ok(table)
}

fn strip_docs(table: &mut toml::Table) {
    table.retain(|key, value| !(key == "_docs" && value.is_table()));
    for (_, value) in table.iter_mut() {
        if let toml::Value::Table(inner) = value {
            strip_docs(inner);
        }
    }
}
