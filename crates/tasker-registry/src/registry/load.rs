//! Loading the templates of files and directories for registration, every problem at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tasker_models::template::{
    DuplicateTemplate, LoadedTemplate, Problems, Strictness, TemplateError, ValidatedTemplate,
    load_directory,
};

use super::error::{LoadFailure, RegisterError};
use super::outcome::TemplateKey;

/// A template about to be registered.
pub(super) struct Candidate {
    pub(super) key: TemplateKey,
    pub(super) template: ValidatedTemplate,
    pub(super) source: Option<PathBuf>,
    pub(super) warnings: Problems,
}

/// Loads every template of the given files and directories; fails with every problem.
pub(super) fn load(
    paths: &[impl AsRef<Path>],
    strictness: Strictness,
) -> Result<Vec<Candidate>, RegisterError> {
    let mut failures = Vec::new();
    let mut loaded: Vec<(PathBuf, Result<LoadedTemplate, TemplateError>)> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Err(source) => failures.push(LoadFailure {
                path: path.to_owned(),
                error: TemplateError::Read {
                    path: path.to_owned(),
                    source,
                },
            }),
            Ok(metadata) if metadata.is_dir() => match load_directory(path, strictness) {
                Ok(report) => loaded.extend(
                    report
                        .files
                        .into_iter()
                        .map(|file| (file.path, file.result)),
                ),
                Err(error) => failures.push(LoadFailure {
                    path: path.to_owned(),
                    error,
                }),
            },
            Ok(_) => loaded.push((
                path.to_owned(),
                ValidatedTemplate::from_path(path, strictness),
            )),
        }
    }

    let mut seen_files = HashSet::new();
    let mut by_key: HashMap<TemplateKey, PathBuf> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut candidates = Vec::new();
    for (path, result) in loaded {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen_files.insert(canonical) {
            continue;
        }
        match result {
            Err(error) => failures.push(LoadFailure { path, error }),
            Ok(loaded) => {
                let key = TemplateKey::of(&loaded.template);
                if let Some(first) = by_key.get(&key) {
                    duplicates.push(DuplicateTemplate {
                        key: key.to_string(),
                        first: first.clone(),
                        second: path,
                    });
                    continue;
                }
                by_key.insert(key.clone(), path.clone());
                candidates.push(Candidate {
                    key,
                    template: loaded.template,
                    source: Some(path),
                    warnings: loaded.warnings,
                });
            }
        }
    }
    if !failures.is_empty() || !duplicates.is_empty() {
        return Err(RegisterError::Invalid {
            failures,
            duplicates,
        });
    }
    if candidates.is_empty() {
        return Err(RegisterError::NoTemplates {
            paths: paths.iter().map(|path| path.as_ref().to_owned()).collect(),
        });
    }
    Ok(candidates)
}
