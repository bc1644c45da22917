//! `cargo xtask template validate [--lenient] <files or dirs>...`: loads every template, prints
//! per file OK or every problem, then a summary, and fails if any file has an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use tasker_models::template::{
    LoadedTemplate, Strictness, TemplateError, ValidatedTemplate, is_template_file, load_directory,
};

/// Task template commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TemplateCmd {
    /// Validate task template files, or every `*.yml`/`*.yaml` under directories.
    Validate {
        /// Report unknown keys and legacy values as warnings instead of errors.
        #[arg(long)]
        lenient: bool,
        /// Template files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub(crate) fn run(cmd: TemplateCmd) -> anyhow::Result<()> {
    match cmd {
        TemplateCmd::Validate { lenient, paths } => {
            let strictness = if lenient {
                Strictness::Lenient
            } else {
                Strictness::Strict
            };
            let summary = validate(&paths, strictness);
            println!("{}", summary.line());
            if summary.failed > 0 {
                bail!(
                    "{} of {} template file(s) failed validation",
                    summary.failed,
                    summary.files
                );
            }
            Ok(())
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    files: usize,
    failed: usize,
    errors: usize,
    warnings: usize,
}

impl Summary {
    fn line(&self) -> String {
        format!(
            "checked {} file(s): {} ok, {} failed; {} error(s), {} warning(s)",
            self.files,
            self.files - self.failed,
            self.failed,
            self.errors,
            self.warnings
        )
    }
}

/// Loads every path, printing each file's outcome; returns the totals.
fn validate(paths: &[PathBuf], strictness: Strictness) -> Summary {
    let mut summary = Summary::default();
    // Which file registered each `namespace/name:version` first.
    let mut registered: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        if path.is_dir() {
            match load_directory(path, strictness) {
                Ok(report) => {
                    if report.files.is_empty() {
                        println!("WARN  {}: no *.yml or *.yaml files", path.display());
                    }
                    for file in &report.files {
                        report_file(&file.path, &file.result, &mut registered, &mut summary);
                    }
                }
                Err(error) => report_file(path, &Err(error), &mut registered, &mut summary),
            }
        } else {
            if path.exists() && !is_template_file(path) {
                println!(
                    "note  {}: not a .yml/.yaml file; validating it anyway",
                    path.display()
                );
            }
            let result = ValidatedTemplate::from_path(path, strictness);
            report_file(path, &result, &mut registered, &mut summary);
        }
    }
    summary
}

fn report_file(
    path: &Path,
    result: &Result<LoadedTemplate, TemplateError>,
    registered: &mut HashMap<String, PathBuf>,
    summary: &mut Summary,
) {
    summary.files += 1;
    match result {
        Ok(loaded) => {
            let key = loaded.template.routing_key();
            let warnings = loaded.warnings.len();
            summary.warnings += warnings;
            if let Some(first) = registered.get(&key) {
                summary.failed += 1;
                summary.errors += 1;
                println!("FAIL  {}", path.display());
                println!(
                    "  error: {key} is already defined by {}; registering both would replace one with the other",
                    first.display()
                );
            } else {
                registered.insert(key.clone(), path.to_owned());
                match warnings {
                    0 => println!("OK    {} ({key})", path.display()),
                    count => println!("OK    {} ({key}, {count} warning(s))", path.display()),
                }
            }
            for warning in &loaded.warnings {
                println!("  {}", indent(&warning.to_string()));
            }
        }
        Err(error) => {
            summary.failed += 1;
            println!("FAIL  {}", path.display());
            let problems = error.problems();
            if problems.is_empty() {
                summary.errors += 1;
                println!("  error: {}", chain(error));
            } else {
                for problem in problems {
                    if problem.is_error() {
                        summary.errors += 1;
                    } else {
                        summary.warnings += 1;
                    }
                    println!("  {}", indent(&problem.to_string()));
                }
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

/// An error and its sources, joined with `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
