//! Dependency hygiene: one version of each foundational crate in the tree, and licenses from
//! the checked-in allow-list (`xtask/license-allow-list.txt`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Rule, Violation};

/// Crates of which two versions in one tree mean two runtimes, two HTTP stacks, two TLS
/// providers or two database drivers: each must appear once.
pub(crate) const SINGLE_VERSION: &[&str] =
    &["tokio", "hyper", "http", "tonic", "prost", "rustls", "sqlx"];

/// The allow-list file, relative to the root.
pub(crate) const ALLOW_LIST: &str = "xtask/license-allow-list.txt";

/// A package of the resolved tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
    /// The SPDX expression; `None` when the package declares only a license file.
    pub(crate) license: Option<String>,
}

/// Checks the tree of the workspace at `root` (through `cargo metadata`).
pub(crate) fn check(root: &Path, violations: &mut Vec<Violation>) -> anyhow::Result<()> {
    if !root.join("Cargo.lock").is_file() {
        return Ok(());
    }
    let packages = packages(root)?;
    check_single_versions(&packages, violations);
    let allow_text = std::fs::read_to_string(root.join(ALLOW_LIST))
        .with_context(|| format!("reading {ALLOW_LIST}"))?;
    check_licenses(&packages, &allow_list(&allow_text), violations);
    Ok(())
}

fn packages(root: &Path) -> anyhow::Result<Vec<Package>> {
    let output =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(root)
            .output()
            .context("running `cargo metadata`")?;
    anyhow::ensure!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing `cargo metadata`")?;
    let workspace: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str())
        .collect();
    Ok(metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| !workspace.contains(package["id"].as_str().unwrap_or_default()))
        .map(|package| Package {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            version: package["version"].as_str().unwrap_or_default().to_owned(),
            license: package["license"].as_str().map(str::to_owned),
        })
        .collect())
}

pub(crate) fn check_single_versions(packages: &[Package], violations: &mut Vec<Violation>) {
    let mut versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for package in packages {
        if SINGLE_VERSION.contains(&package.name.as_str()) {
            versions
                .entry(&package.name)
                .or_default()
                .insert(&package.version);
        }
    }
    for (name, found) in versions {
        if found.len() > 1 {
            violations.push(Violation {
                rule: Rule::DependencyHygiene,
                path: PathBuf::from("Cargo.lock"),
                line: None,
                message: format!(
                    "{name} is in the tree in {} versions ({}); one is allowed (hint: `cargo tree -i {name}@<version>` shows who brings each)",
                    found.len(),
                    found.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
}

/// The allowed licenses of the allow-list's text.
pub(crate) fn allow_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn check_licenses(
    packages: &[Package],
    allowed: &BTreeSet<String>,
    violations: &mut Vec<Violation>,
) {
    for package in packages {
        let problem = match &package.license {
            None => Some("declares no SPDX license expression".to_owned()),
            Some(expression) => match satisfiable(expression, allowed) {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "has license `{expression}`, outside the allow-list"
                )),
                Err(error) => Some(format!(
                    "has license `{expression}`, which does not parse: {error}"
                )),
            },
        };
        if let Some(problem) = problem {
            violations.push(Violation {
                rule: Rule::DependencyHygiene,
                path: PathBuf::from(ALLOW_LIST),
                line: None,
                message: format!(
                    "{} {} {problem} (hint: replace the dependency, or add the license to {ALLOW_LIST} on purpose)",
                    package.name, package.version
                ),
            });
        }
    }
}

/// Whether an SPDX expression can be satisfied with the allowed licenses: an `OR` needs one
/// side, an `AND` both; `A WITH B` needs the exact `A WITH B` entry or `A`. The legacy `/`
/// separator means `OR`.
pub(crate) fn satisfiable(expression: &str, allowed: &BTreeSet<String>) -> Result<bool, String> {
    let spaced = expression
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        allowed,
    };
    let result = parser.or()?;
    if parser.at != tokens.len() {
        return Err(format!("unexpected `{}`", tokens[parser.at]));
    }
    Ok(result)
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    at: usize,
    allowed: &'a BTreeSet<String>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut result = self.and()?;
        while self.peek() == Some("OR") {
            self.at += 1;
            result |= self.and()?;
        }
        Ok(result)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut result = self.term()?;
        while self.peek() == Some("AND") {
            self.at += 1;
            result &= self.term()?;
        }
        Ok(result)
    }

    fn term(&mut self) -> Result<bool, String> {
        match self.peek() {
            Some("(") => {
                self.at += 1;
                let result = self.or()?;
                if self.peek() != Some(")") {
                    return Err("a `(` is not closed".to_owned());
                }
                self.at += 1;
                Ok(result)
            }
            Some(license) if !matches!(license, ")" | "AND" | "OR" | "WITH") => {
                self.at += 1;
                if self.peek() == Some("WITH") {
                    self.at += 1;
                    let exception = self.peek().ok_or("`WITH` without an exception")?;
                    self.at += 1;
                    return Ok(self
                        .allowed
                        .contains(&format!("{license} WITH {exception}"))
                        || self.allowed.contains(license));
                }
                Ok(self.allowed.contains(license))
            }
            Some(token) => Err(format!("unexpected `{token}`")),
            None => Err("the expression ends too early".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_satisfied_as_spdx_says() {
        let allowed = allow_list("MIT\nApache-2.0\nUnicode-3.0\n# comment\n");
        let cases = [
            ("MIT", Ok(true)),
            ("GPL-3.0", Ok(false)),
            ("MIT OR GPL-3.0", Ok(true)),
            ("MIT AND GPL-3.0", Ok(false)),
            ("(MIT OR Apache-2.0) AND Unicode-3.0", Ok(true)),
            ("MIT/Apache-2.0", Ok(true)),
            ("Apache-2.0 WITH LLVM-exception OR GPL-3.0", Ok(true)),
            ("GPL-2.0 WITH Classpath-exception-2.0", Ok(false)),
            ("(MIT", Err("a `(` is not closed".to_owned())),
            ("MIT OR", Err("the expression ends too early".to_owned())),
            ("MIT MIT", Err("unexpected `MIT`".to_owned())),
        ];
        for (expression, expected) in cases {
            assert_eq!(satisfiable(expression, &allowed), expected, "{expression}");
        }
    }

    fn package(name: &str, version: &str, license: Option<&str>) -> Package {
        Package {
            name: name.to_owned(),
            version: version.to_owned(),
            license: license.map(str::to_owned),
        }
    }

    #[test]
    fn two_versions_of_a_foundational_crate_are_refused() {
        let mut violations = Vec::new();
        check_single_versions(
            &[
                package("hyper", "0.14.32", None),
                package("hyper", "1.6.0", None),
                package("serde", "1.0.0", None),
                package("serde", "0.9.0", None),
            ],
            &mut violations,
        );
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0]
                .message
                .starts_with("hyper is in the tree in 2 versions (0.14.32, 1.6.0)")
        );
    }

    #[test]
    fn licenses_outside_the_list_or_missing_are_refused() {
        let allowed = allow_list("MIT\n");
        let mut violations = Vec::new();
        check_licenses(
            &[
                package("ok", "1.0.0", Some("MIT")),
                package("gpl", "1.0.0", Some("GPL-3.0-only")),
                package("none", "1.0.0", None),
            ],
            &allowed,
            &mut violations,
        );
        let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("gpl 1.0.0 has license `GPL-3.0-only`, outside the allow-list")
        );
        assert!(messages[1].starts_with("none 1.0.0 declares no SPDX license expression"));
    }
}
