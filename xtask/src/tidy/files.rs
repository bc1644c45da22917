//! Rules over source files: module docs, file length, unfinished code, SQL placement, migrations.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{MAX_LINES, Member, Rule, Violation, relative};

/// Spelled in pieces so this file does not trip its own rule.
const UNFINISHED_MARKERS: [&str; 3] = [
    concat!("#[", "ignore"),
    concat!("todo", "!("),
    concat!("unimplemented", "!("),
];

/// Spelled in pieces for the same reason.
const SQL_MARKERS: [&str; 10] = [
    concat!("sqlx::", "query"),
    concat!("sqlx::", "raw_sql"),
    concat!("query_as", "!("),
    // Statements handed to sqlx by other routes: `begin_with` runs its argument, and SQL text
    // in a string literal is SQL whoever runs it.
    concat!("begin", "_with("),
    concat!("SET ", "LOCAL"),
    concat!("\x22", "BEG", "IN"),
    concat!("\x22", "SEL", "ECT "),
    concat!("\x22", "INS", "ERT INTO"),
    concat!("\x22", "UPD", "ATE "),
    concat!("\x22", "DEL", "ETE FROM"),
];

/// Where SQL may be written besides `tasker-db`: the pgmq backend speaks pgmq's own SQL API
/// (its queue functions, `pg_notify`, `LISTEN`) and never touches the `tasker` schema, and its
/// tests create and drop their own databases.
const SQL_EXEMPT_DIRS: [&str; 2] = [
    "crates/tasker-messaging/src/pgmq/",
    "crates/tasker-messaging/tests/",
];

/// Directories that hold data rather than code.
const SKIPPED_DIRS: [&str; 4] = ["target", "fixtures", "snapshots", "test_data"];

pub(super) fn check_sources(
    root: &Path,
    members: &[Member],
    violations: &mut Vec<Violation>,
) -> anyhow::Result<()> {
    for member in members {
        let mut files = Vec::new();
        rust_files(&member.dir, &mut files)?;
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            check_file(&relative(root, &file), &member.name, &text, violations);
        }
    }
    Ok(())
}

fn check_file(path: &Path, crate_name: &str, text: &str, violations: &mut Vec<Violation>) {
    let generated = text.lines().take(5).any(|line| line.contains("@generated"));
    let first = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if !first.trim_start().starts_with("//!") {
        violations.push(Violation {
            rule: Rule::ModuleDoc,
            path: path.to_path_buf(),
            line: Some(1),
            message: "file does not start with a `//!` doc comment saying what it is for".into(),
        });
    }
    let line_count = text.lines().count();
    if !generated && line_count > MAX_LINES {
        violations.push(Violation {
            rule: Rule::FileLength,
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "{line_count} lines, over the limit of {MAX_LINES}; split it by concept"
            ),
        });
    }
    for (index, line) in text.lines().enumerate() {
        for marker in UNFINISHED_MARKERS {
            if line.contains(marker) {
                violations.push(Violation {
                    rule: Rule::UnfinishedCode,
                    path: path.to_path_buf(),
                    line: Some(index + 1),
                    message: format!(
                        "`{marker}` is not allowed: finish the code, or assert today's \
                         behaviour and leave a FIXME"
                    ),
                });
            }
        }
        let sql_allowed = crate_name == "tasker-db"
            || SQL_EXEMPT_DIRS
                .iter()
                .any(|dir| path.to_string_lossy().starts_with(dir));
        if !sql_allowed {
            for marker in SQL_MARKERS {
                if line.contains(marker) {
                    violations.push(Violation {
                        rule: Rule::SqlOutsideDb,
                        path: path.to_path_buf(),
                        line: Some(index + 1),
                        message: format!(
                            "`{marker}` outside tasker-db: only tasker-db writes SQL; \
                             add a function there and call it"
                        ),
                    });
                }
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if !SKIPPED_DIRS.iter().any(|skipped| name == *skipped) {
                rust_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

pub(super) fn check_migrations(root: &Path, violations: &mut Vec<Violation>) -> anyhow::Result<()> {
    let dir = root.join("migrations");
    if !dir.is_dir() {
        return Ok(());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut seen = std::collections::BTreeMap::new();
    for name in names {
        let path = relative(root, &dir.join(&name));
        let Some(version) = migration_version(&name) else {
            violations.push(Violation {
                rule: Rule::MigrationName,
                path,
                line: None,
                message: "migration files are named `YYYYMMDDHHMMSS_<what>.sql` with a \
                          lowercase snake_case description"
                    .into(),
            });
            continue;
        };
        if let Some(previous) = seen.insert(version.to_owned(), name.clone()) {
            violations.push(Violation {
                rule: Rule::MigrationName,
                path,
                line: None,
                message: format!("version {version} is also used by {previous}"),
            });
        }
    }
    Ok(())
}

/// The 14-digit version of a well-formed migration file name.
fn migration_version(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".sql")?;
    let (version, what) = stem.split_once('_')?;
    let well_formed = version.len() == 14
        && version.bytes().all(|byte| byte.is_ascii_digit())
        && !what.is_empty()
        && what
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    well_formed.then_some(version)
}
