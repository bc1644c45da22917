//! `ConfigError`: why loading the configuration failed.

use std::{fmt, path::PathBuf};

use crate::problem::ConfigProblem;

/// Loading the configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `TASKER_ENV` (or the requested environment) names no known environment.
    #[error(
        "unknown environment `{name}`; known environments: {}",
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    )]
    UnknownEnvironment {
        /// The requested environment.
        name: String,
        /// The environments the config root defines.
        known: Vec<String>,
    },
    /// `TASKER_CONFIG_ROOT` (or the requested root) is not a directory.
    #[error("config root {} (from {origin}) is not a directory", path.display())]
    RootNotFound {
        /// The path given.
        path: PathBuf,
        /// Where the path came from: `TASKER_CONFIG_ROOT` or the loader's `root()` option.
        origin: &'static str,
    },
    /// Both `TASKER_CONFIG_PATH` and `TASKER_CONFIG_ROOT` are set.
    #[error(
        "both TASKER_CONFIG_PATH ({}) and TASKER_CONFIG_ROOT ({}) are set; set only one",
        file.display(),
        root.display()
    )]
    AmbiguousSource {
        /// The value of `TASKER_CONFIG_PATH`.
        file: PathBuf,
        /// The value of `TASKER_CONFIG_ROOT`.
        root: PathBuf,
    },
    /// A configuration file could not be read.
    #[error("failed to read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML.
    ///
    /// The syntax error is part of the message, not a [`source`](std::error::Error::source):
    /// it says what is wrong with this file, and a chain printer would otherwise print it twice.
    #[error("config file {} is not valid TOML: {error}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        error: TomlSyntaxError,
    },
    /// The `config` crate failed to merge the layers.
    #[error("failed to merge configuration layers")]
    Merge(#[source] config::ConfigError),
    /// The configuration has problems; every one is listed.
    #[error("{}", Problems { errors, warnings })]
    Invalid {
        /// Problems that make the configuration unusable.
        errors: Vec<ConfigProblem>,
        /// Problems tolerated in lenient mode (unknown and misplaced keys).
        warnings: Vec<ConfigProblem>,
    },
}

/// A TOML syntax error, with position but without the source line (which could hold a
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct TomlSyntaxError {
    /// The parser's message.
    pub message: String,
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column of the error.
    pub column: usize,
}

impl TomlSyntaxError {
    pub(crate) fn new(text: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start).min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Self {
            message: error.message().trim().to_owned(),
            line,
            column,
        }
    }
}

struct Problems<'a> {
    errors: &'a [ConfigProblem],
    warnings: &'a [ConfigProblem],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "configuration has {count} problem{}",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in self.errors {
            write!(f, "\n  error: {problem}")?;
        }
        for problem in self.warnings {
            write!(f, "\n  warning: {problem}")?;
        }
        Ok(())
    }
}
