//! Provenance: which layer set each key, and which environment variables its placeholders read.

use std::{collections::BTreeMap, fmt, path::PathBuf};

/// A layer of the merged configuration, from lowest to highest precedence: compiled
/// defaults, then files, then `TASKER__...` environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The default compiled into this crate.
    Default,
    /// A TOML file.
    File(PathBuf),
    /// An environment variable overriding one key (`TASKER__COMMON__...`).
    EnvVar(String),
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Default => f.write_str("compiled default"),
            Layer::File(path) => write!(f, "{}", path.display()),
            Layer::EnvVar(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// How one `${VAR}` placeholder in a value was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderUse {
    /// The environment variable named by the placeholder.
    pub variable: String,
    /// Whether the variable's value or the placeholder's default was used.
    pub resolution: Resolution,
}

/// See [`PlaceholderUse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The variable was set (and not empty).
    FromEnvironment,
    /// The variable was unset or empty, and the placeholder's default was used.
    Default,
}

impl fmt::Display for PlaceholderUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resolution {
            Resolution::FromEnvironment => write!(f, "${{{}}} from the environment", self.variable),
            Resolution::Default => write!(f, "${{{}}} unset, default used", self.variable),
        }
    }
}

/// Where the final value of one key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The layer whose value won the merge.
    pub layer: Layer,
    /// The placeholders expanded inside that value, in order.
    pub placeholders: Vec<PlaceholderUse>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.layer)?;
        for used in &self.placeholders {
            write!(f, "; {used}")?;
        }
        Ok(())
    }
}

/// The origin of every leaf key of a loaded configuration, by dotted key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    origins: BTreeMap<String, Origin>,
}

impl Provenance {
    /// The origin of a dotted key such as `common.database.pool.max_connections`.
    ///
    /// For a list element (`...api_keys[0].key`) this is the origin of the list: lists are
    /// replaced as a whole by a later layer, never merged element by element.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        let mut key = key;
        loop {
            if let Some(origin) = self.origins.get(key) {
                return Some(origin);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }

    /// The layer that set `key`, if the key exists.
    pub fn layer(&self, key: &str) -> Option<&Layer> {
        self.origin(key).map(|origin| &origin.layer)
    }

    /// Every key with its origin, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.origins
            .iter()
            .map(|(key, origin)| (key.as_str(), origin))
    }

    pub(crate) fn insert(&mut self, key: String, origin: Origin) {
        self.origins.insert(key, origin);
    }
}
