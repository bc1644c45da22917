//! Why templates could not be registered or looked up.

use std::fmt;
use std::path::PathBuf;

use tasker_db::error::DbError;
use tasker_models::template::{DuplicateTemplate, TemplateError};

use super::TemplateKey;
use super::diff::Difference;

/// Why a registration wrote nothing. Registration is all or nothing: every template is
/// checked before any is written, and every problem is reported at once.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The paths hold no template file (`*.yml`, `*.yaml`).
    #[error("no template files (*.yml, *.yaml) found under {}", paths_list(paths))]
    NoTemplates {
        /// The paths searched.
        paths: Vec<PathBuf>,
    },
    /// Template files could not be read or are invalid, or two files define the same
    /// template identity.
    #[error(
        "{} problem(s) with the template files; nothing was registered{}",
        failures.len() + duplicates.len(),
        load_details(failures, duplicates)
    )]
    Invalid {
        /// Every file that failed, with why.
        failures: Vec<LoadFailure>,
        /// Every identity defined by more than one file.
        duplicates: Vec<DuplicateTemplate>,
    },
    /// Templates differ from the registered version of the same identity. A changed template
    /// needs a new version; registering with `force` overwrites the stored one instead.
    #[error(
        "{} template(s) changed without a new version; nothing was registered (bump `version`, \
         or register with force to overwrite){}",
        conflicts.len(),
        conflict_details(conflicts)
    )]
    Changed {
        /// Every changed template, with its differences.
        conflicts: Vec<Conflict>,
    },
    /// The database failed; the transaction was rolled back.
    #[error("failed to register templates")]
    Database(#[from] DbError),
    /// The database rejected a template (see the source).
    #[error("failed to register template {key}")]
    Rejected {
        /// The template.
        key: TemplateKey,
        /// Why.
        #[source]
        source: Box<tasker_db::template::RegisterError>,
    },
}

/// A template file that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The file (or the directory that could not be read).
    pub path: PathBuf,
    /// Why.
    pub error: TemplateError,
}

/// A template whose identity is registered with other content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The template.
    pub key: TemplateKey,
    /// The file it was loaded from, if any.
    pub source: Option<PathBuf>,
    /// Every field that differs, stored against new.
    pub differences: Vec<Difference>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(source) = &self.source {
            write!(f, " ({})", source.display())?;
        }
        write!(f, " differs from the registered template in")?;
        for difference in &self.differences {
            write!(f, "\n      {difference}")?;
        }
        Ok(())
    }
}

fn paths_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_details(failures: &[LoadFailure], duplicates: &[DuplicateTemplate]) -> String {
    let mut text = String::new();
    for failure in failures {
        text.push_str(&format!(
            "\n  - {}: {}",
            failure.path.display(),
            failure.error
        ));
        let mut source = std::error::Error::source(&failure.error);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        for problem in failure.error.problems() {
            let problem = problem.to_string().replace('\n', "\n      ");
            text.push_str(&format!("\n      {problem}"));
        }
    }
    for duplicate in duplicates {
        text.push_str(&format!(
            "\n  - {} is defined by both {} and {}",
            duplicate.key,
            duplicate.first.display(),
            duplicate.second.display()
        ));
    }
    text
}

fn conflict_details(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(|conflict| format!("\n  - {conflict}"))
        .collect()
}

/// Why a template could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No version of the template is registered.
    #[error("template {namespace}/{name} is not registered (no version of it)")]
    NotRegistered {
        /// The namespace.
        namespace: String,
        /// The template's name.
        name: String,
    },
    /// The template is registered, but not in this version.
    #[error(
        "template {namespace}/{name} is not registered in version {version}; registered \
         versions: {}",
        registered.join(", ")
    )]
    VersionNotRegistered {
        /// The namespace.
        namespace: String,
        /// The template's name.
        name: String,
        /// The version asked for.
        version: String,
        /// The versions that are registered, ascending.
        registered: Vec<String>,
    },
    /// The stored template does not load with this build's rules (it was stored by an
    /// incompatible build, or edited in the database).
    #[error("the stored template {key} does not load; register it again")]
    Unreadable {
        /// The template.
        key: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
    /// The database failed.
    #[error("failed to look up a template")]
    Database(#[from] DbError),
}
