//! Loading templates from YAML text, files, directory trees and stored JSON.

use std::fs;
use std::io;
use std::path::{Path as FsPath, PathBuf};

use super::limits::{LimitBreach, TemplateLimits, prescan};
use super::problem::{Problem, Problems, Rule, Severity};
use super::reader::Cx;
use super::validated::ValidatedTemplate;
use super::value::Value;
use super::{raw, validate};

/// Largest template file accepted, 16 MiB.
pub const MAX_TEMPLATE_BYTES: u64 = 16 * 1024 * 1024;

/// How unknown keys and values the predecessor tolerated are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strictness {
    /// Unknown keys and tolerated legacy values (`max_attempts: 0`) are errors. The default,
    /// and what registration uses.
    #[default]
    Strict,
    /// They are warnings: for migrating templates written for the predecessor.
    Lenient,
}

/// A template that loaded, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    /// The validated template.
    pub template: ValidatedTemplate,
    /// Every warning, in document order.
    pub warnings: Problems,
}

/// Why a template did not load.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("failed to read template file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_TEMPLATE_BYTES`].
    #[error("template file {path} is {size} bytes; the limit is {MAX_TEMPLATE_BYTES}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The text is not YAML (or holds several documents).
    #[error("template is not valid YAML")]
    Syntax {
        /// The parser's error, with line and column.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The YAML holds more than one document.
    #[error("template file holds {count} YAML documents; write one template per file")]
    MultipleDocuments {
        /// How many documents.
        count: usize,
    },
    /// The text exceeds a limit checked before parsing (size, nesting depth, step count).
    #[error("template exceeds the limit `{}`: {} found, at most {} allowed", breach.limit, breach.found, breach.max)]
    Limit {
        /// The limit, what was found and the maximum.
        breach: LimitBreach,
    },
    /// The template breaks one or more rules.
    #[error("template has {} error(s) and {} warning(s)", problems.error_count(), problems.warning_count())]
    Invalid {
        /// Every problem, errors and warnings, in document order.
        problems: Problems,
    },
}

impl TemplateError {
    /// The problems of an invalid template; empty for the other kinds.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems.as_slice(),
            _ => &[],
        }
    }
}

impl ValidatedTemplate {
    /// Loads a template from YAML text.
    ///
    /// # Errors
    /// [`TemplateError::Limit`] (checked before any parser runs, see [`TemplateLimits`]),
    /// [`TemplateError::Syntax`], [`TemplateError::MultipleDocuments`], or
    /// [`TemplateError::Invalid`] with every problem found.
    pub fn from_yaml_str(
        text: &str,
        strictness: Strictness,
    ) -> Result<LoadedTemplate, TemplateError> {
        Self::from_yaml_str_within(text, strictness, &TemplateLimits::DEFAULT)
    }

    /// [`ValidatedTemplate::from_yaml_str`] with explicit limits.
    ///
    /// # Errors
    /// As [`ValidatedTemplate::from_yaml_str`].
    pub fn from_yaml_str_within(
        text: &str,
        strictness: Strictness,
        limits: &TemplateLimits,
    ) -> Result<LoadedTemplate, TemplateError> {
        prescan(text, limits).map_err(|breach| TemplateError::Limit { breach })?;
        match super::yaml::parse(text) {
            Some(value) => Self::from_value(&value, strictness),
            None => Self::from_yaml_value(&parse_yaml_with_serde(text)?, strictness),
        }
    }

    /// Loads a template from stored JSON, such as `named_tasks.configuration`.
    ///
    /// # Errors
    /// [`TemplateError::Invalid`] with every problem found.
    pub fn from_json_value(
        json: &serde_json::Value,
        strictness: Strictness,
    ) -> Result<LoadedTemplate, TemplateError> {
        let value =
            serde_yaml_ng::to_value(json).map_err(|source| TemplateError::Syntax { source })?;
        Self::from_yaml_value(&value, strictness)
    }

    /// Loads a template from a parsed YAML value.
    ///
    /// # Errors
    /// [`TemplateError::Invalid`] with every problem found.
    pub fn from_yaml_value(
        value: &serde_yaml_ng::Value,
        strictness: Strictness,
    ) -> Result<LoadedTemplate, TemplateError> {
        Self::from_value(&Value::borrowed(value), strictness)
    }

    fn from_value(
        value: &Value<'_>,
        strictness: Strictness,
    ) -> Result<LoadedTemplate, TemplateError> {
        let mut cx = Cx::new(strictness);
        let built =
            raw::read_template(&mut cx, value).and_then(|draft| validate::finish(&mut cx, draft));
        match built {
            Some((template, graph, input_schema)) if !cx.has_errors() => Ok(LoadedTemplate {
                template: ValidatedTemplate::new(template, graph, input_schema),
                warnings: Problems::new(cx.problems),
            }),
            _ => {
                if !cx.has_errors() {
                    cx.problems.push(Problem {
                        severity: Severity::Error,
                        rule: Rule::Document,
                        path: String::new(),
                        value: None,
                        message: "the template could not be built".to_owned(),
                        hint: None,
                    });
                }
                Err(TemplateError::Invalid {
                    problems: Problems::new(cx.problems),
                })
            }
        }
    }

    /// Loads a template file.
    ///
    /// # Errors
    /// As [`ValidatedTemplate::from_yaml_str`], plus [`TemplateError::Read`] and
    /// [`TemplateError::TooLarge`].
    pub fn from_path(
        path: &FsPath,
        strictness: Strictness,
    ) -> Result<LoadedTemplate, TemplateError> {
        let read_error = |source| TemplateError::Read {
            path: path.to_owned(),
            source,
        };
        let size = fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLarge {
                path: path.to_owned(),
                size,
            });
        }
        let text = fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_str(&text, strictness)
    }
}

/// Parses template text with `serde_yaml_ng`: one document, merge keys applied. The fast
/// reader (`yaml.rs`) gives the same value for every text it accepts.
pub(crate) fn parse_yaml_with_serde(text: &str) -> Result<serde_yaml_ng::Value, TemplateError> {
    let mut documents = Vec::with_capacity(1);
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(document)
            .map_err(|source| TemplateError::Syntax { source })?;
        documents.push(value);
    }
    if documents.len() > 1 {
        return Err(TemplateError::MultipleDocuments {
            count: documents.len(),
        });
    }
    let mut value = documents.pop().unwrap_or(serde_yaml_ng::Value::Null);
    value
        .apply_merge()
        .map_err(|source| TemplateError::Syntax { source })?;
    Ok(value)
}

/// The outcome of loading one file of a directory tree.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// What loading it gave.
    pub result: Result<LoadedTemplate, TemplateError>,
}

/// Two files that register the same `namespace/name:version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateTemplate {
    /// `namespace/name:version`.
    pub key: String,
    /// The first file.
    pub first: PathBuf,
    /// The later file.
    pub second: PathBuf,
}

/// Every template file under a directory, loaded.
#[derive(Debug, Default)]
pub struct DirectoryReport {
    /// One outcome per `*.yml`/`*.yaml` file (or unreadable directory), sorted by path.
    pub files: Vec<FileOutcome>,
    /// Files that register the same template identity; registering both would let the later
    /// silently replace the earlier.
    pub duplicates: Vec<DuplicateTemplate>,
}

impl DirectoryReport {
    /// Whether every file loaded and no identity is registered twice.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.duplicates.is_empty() && self.files.iter().all(|file| file.result.is_ok())
    }
}

/// Loads every `*.yml` and `*.yaml` file under `dir`, recursively, in path order. Each file
/// gets its own outcome; a directory that cannot be read becomes a [`TemplateError::Read`]
/// outcome for that directory. Symbolic links to directories are not followed.
///
/// # Errors
/// If `dir` itself cannot be read.
pub fn load_directory(
    dir: &FsPath,
    strictness: Strictness,
) -> Result<DirectoryReport, TemplateError> {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    collect(dir, &mut files, &mut failures, true)?;
    files.sort();
    let mut report = DirectoryReport::default();
    let mut seen: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for path in files {
        let result = ValidatedTemplate::from_path(&path, strictness);
        if let Ok(loaded) = &result {
            let key = loaded.template.routing_key();
            if let Some(first) = seen.get(&key) {
                report.duplicates.push(DuplicateTemplate {
                    key,
                    first: first.clone(),
                    second: path.clone(),
                });
            } else {
                seen.insert(key, path.clone());
            }
        }
        report.files.push(FileOutcome { path, result });
    }
    report.files.extend(failures);
    report.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// Whether a path names a template file by its extension.
#[must_use]
pub fn is_template_file(path: &FsPath) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext == "yml" || ext == "yaml")
}

fn collect(
    dir: &FsPath,
    files: &mut Vec<PathBuf>,
    failures: &mut Vec<FileOutcome>,
    root: bool,
) -> Result<(), TemplateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if root => {
            return Err(TemplateError::Read {
                path: dir.to_owned(),
                source,
            });
        }
        Err(source) => {
            failures.push(FileOutcome {
                path: dir.to_owned(),
                result: Err(TemplateError::Read {
                    path: dir.to_owned(),
                    source,
                }),
            });
            return Ok(());
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(source) => {
                failures.push(FileOutcome {
                    path: dir.to_owned(),
                    result: Err(TemplateError::Read {
                        path: dir.to_owned(),
                        source,
                    }),
                });
                continue;
            }
        };
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(source) => {
                failures.push(read_failure(path, source));
                continue;
            }
        };
        if file_type.is_dir() {
            collect(&path, files, failures, false)?;
        } else if is_template_file(&path) {
            if file_type.is_file() {
                files.push(path);
            } else {
                // A symbolic link: follow it to a file, report it when it is broken.
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => files.push(path),
                    Ok(_) => {}
                    Err(source) => failures.push(read_failure(path, source)),
                }
            }
        }
    }
    Ok(())
}

fn read_failure(path: PathBuf, source: io::Error) -> FileOutcome {
    FileOutcome {
        result: Err(TemplateError::Read {
            path: path.clone(),
            source,
        }),
        path,
    }
}
