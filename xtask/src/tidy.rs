//! `cargo xtask tidy`: mechanical checks of the house rules that review would otherwise miss.
//!
//! Each rule is a function over the workspace root, so the tests can run every rule against a
//! small workspace written to a temporary directory and watch it fail.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Context;

mod deps;
pub(crate) mod edges;
mod files;

/// Longest `.rs` file tidy accepts outside generated code.
pub(crate) const MAX_LINES: usize = 800;

/// The rules tidy enforces; each violation names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rule {
    /// Every `.rs` file starts with a `//!` doc comment.
    ModuleDoc,
    /// No `.rs` file over [`MAX_LINES`] lines outside generated code.
    FileLength,
    /// No ignored tests and no unfinished-code macros.
    UnfinishedCode,
    /// No workspace crate depends on the facade.
    FacadeDependency,
    /// Edges between workspace crates match the allow-list in docs/ARCHITECTURE.md.
    DependencyEdge,
    /// Only `tasker-db` writes SQL.
    SqlOutsideDb,
    /// Only binaries initialise tracing subscribers and exporters.
    SubscriberInLibrary,
    /// Migration files are named `YYYYMMDDHHMMSS_<what>.sql` with unique versions.
    MigrationName,
    /// One version of each foundational crate; licenses from the allow-list.
    DependencyHygiene,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Rule::ModuleDoc => "module-doc",
            Rule::FileLength => "file-length",
            Rule::UnfinishedCode => "unfinished-code",
            Rule::FacadeDependency => "facade-dependency",
            Rule::DependencyEdge => "dependency-edge",
            Rule::SqlOutsideDb => "sql-outside-db",
            Rule::SubscriberInLibrary => "subscriber-in-library",
            Rule::MigrationName => "migration-name",
            Rule::DependencyHygiene => "dependency-hygiene",
        };
        f.write_str(name)
    }
}

/// One broken rule at one place.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) rule: Rule,
    /// Path relative to the workspace root.
    pub(crate) path: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": [{}] {}", self.rule, self.message)
    }
}

/// A workspace crate as tidy sees it: its manifest, its kind and its workspace dependencies.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) is_library: bool,
    /// Workspace crates this one depends on, over all dependency kinds.
    pub(crate) workspace_deps: BTreeSet<String>,
    /// Every dependency name over all kinds, third-party ones included.
    pub(crate) all_deps: BTreeSet<String>,
    /// Names under `[dependencies]` only: what ships in the built crate.
    pub(crate) normal_deps: BTreeSet<String>,
    /// The `[dependencies]` marked `optional = true`: built only with a feature that names them.
    pub(crate) optional_deps: BTreeSet<String>,
}

/// Runs every rule and returns the violations, sorted by path.
pub(crate) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let members = members(root)?;
    let mut violations = Vec::new();
    files::check_sources(root, &members, &mut violations)?;
    edges::check_facade(&members, root, &mut violations);
    edges::check_edges(root, &members, &mut violations)?;
    edges::check_subscribers(&members, root, &mut violations);
    files::check_migrations(root, &mut violations)?;
    deps::check(root, &mut violations)?;
    violations.sort_by(|a, b| (&a.path, a.line, a.rule).cmp(&(&b.path, b.line, b.rule)));
    Ok(violations)
}

/// `cargo xtask tidy`: prints every violation and fails when there is one.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let violations = check(root)?;
    if violations.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for violation in &violations {
        eprintln!("{violation}");
    }
    anyhow::bail!(
        "tidy found {} problem(s); fix them or update docs/ARCHITECTURE.md",
        violations.len()
    )
}

/// Reads `crates/*/Cargo.toml` and `xtask/Cargo.toml`.
pub(crate) fn members(root: &Path) -> anyhow::Result<Vec<Member>> {
    let mut dirs = Vec::new();
    let crates = root.join("crates");
    if crates.is_dir() {
        for entry in
            std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))?
        {
            let path = entry?.path();
            if path.join("Cargo.toml").is_file() {
                dirs.push(path);
            }
        }
    }
    if root.join("xtask/Cargo.toml").is_file() {
        dirs.push(root.join("xtask"));
    }
    dirs.sort();

    let mut parsed = Vec::new();
    for dir in dirs {
        let manifest_path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let name = manifest
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(|name| name.as_str())
            .with_context(|| format!("{} has no package.name", manifest_path.display()))?
            .to_owned();
        let mut all_deps = BTreeSet::new();
        let normal_deps: BTreeSet<String> = manifest
            .get("dependencies")
            .and_then(|deps| deps.as_table())
            .map(|table| table.keys().cloned().collect())
            .unwrap_or_default();
        let optional_deps: BTreeSet<String> = manifest
            .get("dependencies")
            .and_then(|deps| deps.as_table())
            .map(|table| {
                table
                    .iter()
                    .filter(|(_, spec)| {
                        spec.get("optional").and_then(toml::Value::as_bool) == Some(true)
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(table) = manifest.get(kind).and_then(|deps| deps.as_table()) {
                all_deps.extend(table.keys().cloned());
            }
        }
        let is_library = dir.join("src/lib.rs").is_file();
        parsed.push((name, dir, is_library, all_deps, normal_deps, optional_deps));
    }
    let names: BTreeSet<String> = parsed.iter().map(|(name, ..)| name.clone()).collect();
    Ok(parsed
        .into_iter()
        .map(
            |(name, dir, is_library, all_deps, normal_deps, optional_deps)| Member {
                workspace_deps: all_deps
                    .iter()
                    .filter(|dep| names.contains(*dep))
                    .cloned()
                    .collect(),
                name,
                dir,
                is_library,
                all_deps,
                normal_deps,
                optional_deps,
            },
        )
        .collect())
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// Groups members by name, for lookups.
fn by_name(members: &[Member]) -> BTreeMap<&str, &Member> {
    members
        .iter()
        .map(|member| (member.name.as_str(), member))
        .collect()
}

#[cfg(test)]
mod tests;
