//! Rules over the crate graph: the facade is a leaf, edges match the documented allow-list, and
//! only binaries pull in tracing subscribers or exporters.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use anyhow::Context;

use super::{Member, Rule, Violation, by_name, relative};

/// The facade crate, which only re-exports.
const FACADE: &str = "tasker-shared";

/// Crates that may depend on any workspace crate: the facade and the developer tool.
const UNRESTRICTED: [&str; 2] = [FACADE, "xtask"];

/// Dependencies only a binary may initialise.
const SUBSCRIBER_CRATES: [&str; 4] = [
    "tracing-subscriber",
    "opentelemetry_sdk",
    "opentelemetry-otlp",
    "console-subscriber",
];

/// The one library that may depend on `opentelemetry_sdk`: it owns the meter and tracer
/// providers and the Prometheus reader, and only binaries call its `Metrics::install`. It may
/// also depend on `tracing-subscriber` and `opentelemetry-otlp` as *optional* dependencies
/// (its `subscriber` and `otlp` features, which only binaries enable), never unconditionally.
const METRICS: &str = "tasker-metrics";

/// What [`METRICS`] may depend on only optionally.
const METRICS_OPTIONAL: [&str; 2] = ["tracing-subscriber", "opentelemetry-otlp"];

const START: &str = "<!-- tidy:edges:start -->";
const END: &str = "<!-- tidy:edges:end -->";

/// The allowed edges, `crate -> dependencies`, read from docs/ARCHITECTURE.md.
pub(crate) type AllowList = BTreeMap<String, BTreeSet<String>>;

/// Parses the lines `crate -> dep, dep` (or `crate -> (none)`) between the tidy markers.
pub(crate) fn parse_allow_list(text: &str) -> anyhow::Result<AllowList> {
    let start = text
        .find(START)
        .with_context(|| format!("no `{START}` marker"))?;
    let end = text
        .find(END)
        .with_context(|| format!("no `{END}` marker"))?;
    anyhow::ensure!(start < end, "`{END}` comes before `{START}`");
    let mut allow = AllowList::new();
    for line in text[start + START.len()..end].lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("```") || line.starts_with('#') {
            continue;
        }
        let (from, to) = line
            .split_once("->")
            .with_context(|| format!("allow-list line `{line}` is not `crate -> dep, dep`"))?;
        let deps = to
            .split(',')
            .map(str::trim)
            .filter(|dep| !dep.is_empty() && *dep != "(none)")
            .map(str::to_owned)
            .collect();
        if allow.insert(from.trim().to_owned(), deps).is_some() {
            anyhow::bail!("allow-list names `{}` twice", from.trim());
        }
    }
    Ok(allow)
}

/// Library crates never depend on the facade. A binary may (that is what the facade is for), but
/// then it reaches what the facade re-exports through the facade only, never through the
/// sub-crates side by side. Crates the facade does not re-export (the engines) it depends on
/// directly.
pub(super) fn check_facade(members: &[Member], root: &Path, violations: &mut Vec<Violation>) {
    let exported: BTreeSet<&str> = members
        .iter()
        .find(|member| member.name == FACADE)
        .map(|facade| facade.workspace_deps.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for member in members {
        if member.name == FACADE || !member.all_deps.contains(FACADE) {
            continue;
        }
        let message = if member.is_library {
            format!(
                "library `{}` depends on the facade `{FACADE}`; depend on the sub-crates it needs",
                member.name
            )
        } else {
            let others: Vec<&str> = member
                .workspace_deps
                .iter()
                .map(String::as_str)
                .filter(|dep| *dep != FACADE && exported.contains(dep))
                .collect();
            if others.is_empty() {
                continue;
            }
            format!(
                "`{}` uses the facade `{FACADE}` and the sub-crates {} side by side; use one or \
                 the other",
                member.name,
                others.join(", ")
            )
        };
        violations.push(Violation {
            rule: Rule::FacadeDependency,
            path: relative(root, &member.dir.join("Cargo.toml")),
            line: None,
            message,
        });
    }
}

pub(super) fn check_edges(
    root: &Path,
    members: &[Member],
    violations: &mut Vec<Violation>,
) -> anyhow::Result<()> {
    let doc = root.join("docs/ARCHITECTURE.md");
    let text =
        std::fs::read_to_string(&doc).with_context(|| format!("reading {}", doc.display()))?;
    let allow = parse_allow_list(&text).with_context(|| format!("in {}", doc.display()))?;
    let doc_path = relative(root, &doc);
    let members_by_name = by_name(members);

    for member in members {
        if UNRESTRICTED.contains(&member.name.as_str()) {
            continue;
        }
        let manifest = relative(root, &member.dir.join("Cargo.toml"));
        let Some(allowed) = allow.get(&member.name) else {
            violations.push(Violation {
                rule: Rule::DependencyEdge,
                path: doc_path.clone(),
                line: None,
                message: format!(
                    "crate `{}` is missing from the allow-list; add `{} -> ...`",
                    member.name, member.name
                ),
            });
            continue;
        };
        for dep in member.workspace_deps.difference(allowed) {
            violations.push(Violation {
                rule: Rule::DependencyEdge,
                path: manifest.clone(),
                line: None,
                message: format!(
                    "edge `{} -> {dep}` is not in the allow-list of docs/ARCHITECTURE.md",
                    member.name
                ),
            });
        }
        for dep in allowed.difference(&member.workspace_deps) {
            // An edge to a crate that does not exist yet is a plan, not a lie.
            if members_by_name.contains_key(dep.as_str()) {
                violations.push(Violation {
                    rule: Rule::DependencyEdge,
                    path: doc_path.clone(),
                    line: None,
                    message: format!(
                        "allow-list names `{} -> {dep}` but the crate does not depend on it; \
                         keep docs/ARCHITECTURE.md true",
                        member.name
                    ),
                });
            }
        }
    }
    for name in allow.keys() {
        if !members_by_name.contains_key(name.as_str()) && !planned(name) {
            violations.push(Violation {
                rule: Rule::DependencyEdge,
                path: doc_path.clone(),
                line: None,
                message: format!("allow-list names `{name}`, which is not a workspace crate"),
            });
        }
    }
    Ok(())
}

/// Crates the allow-list may describe before they exist, so the intended layering is written down.
fn planned(name: &str) -> bool {
    name.starts_with("tasker-")
}

pub(super) fn check_subscribers(members: &[Member], root: &Path, violations: &mut Vec<Violation>) {
    for member in members.iter().filter(|member| member.is_library) {
        for dep in SUBSCRIBER_CRATES {
            if member.name == METRICS
                && (dep == "opentelemetry_sdk"
                    || (METRICS_OPTIONAL.contains(&dep) && member.optional_deps.contains(dep)))
            {
                continue;
            }
            if member.normal_deps.contains(dep) {
                violations.push(Violation {
                    rule: Rule::SubscriberInLibrary,
                    path: relative(root, &member.dir.join("Cargo.toml")),
                    line: None,
                    message: format!(
                        "library `{}` depends on `{dep}`; only binaries initialise subscribers \
                         and exporters, libraries use `tracing` macros",
                        member.name
                    ),
                });
            }
        }
    }
}
