//! `cargo xtask config show|check`: inspect the layered Tasker configuration, and the files
//! generated from its schema (`docs/configuration.md`, `config/tasker/base/*.toml`).

use std::path::PathBuf;

use tasker_config::{ConfigError, ConfigLoader, Strictness, docs};

use crate::codegen::Generated;

/// `cargo xtask config ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCmd {
    /// Print the merged, validated configuration (secrets redacted) and, per key, the layer
    /// that set it.
    Show {
        /// Environment whose overrides apply (default: `TASKER_ENV`, else `development`).
        #[arg(long)]
        env: Option<String>,
        /// Config root (default: `TASKER_CONFIG_ROOT`, else the nearest `config/tasker`).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print every problem of the configuration; exit non-zero on any error.
    Check {
        /// Environment whose overrides apply (default: `TASKER_ENV`, else `development`).
        #[arg(long)]
        env: Option<String>,
        /// Config root (default: `TASKER_CONFIG_ROOT`, else the nearest `config/tasker`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Report unknown and misplaced keys as warnings instead of errors.
        #[arg(long)]
        lenient: bool,
    },
}

/// Runs a `config` subcommand.
pub(crate) fn run(cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Show { env, root } => {
            // Show what a lenient load sees, so a stray key does not hide the rest.
            let loaded = loader(env, root, Strictness::Lenient)
                .load()
                .map_err(report)?;
            for warning in &loaded.warnings {
                println!("# warning: {warning}");
            }
            print!("{}", loaded.show());
            Ok(())
        }
        ConfigCmd::Check { env, root, lenient } => {
            let strictness = if lenient {
                Strictness::Lenient
            } else {
                Strictness::Strict
            };
            let loaded = loader(env, root, strictness).load().map_err(report)?;
            for warning in &loaded.warnings {
                println!("warning: {warning}");
            }
            println!(
                "config ok: {}, environment `{}`, {} warning(s)",
                loaded.source,
                loaded.environment,
                loaded.warnings.len()
            );
            Ok(())
        }
    }
}

/// The files `cargo xtask codegen` writes from the configuration schema.
pub(crate) fn generated() -> Vec<Generated> {
    let mut files = vec![Generated {
        path: "docs/configuration.md",
        contents: docs::configuration_markdown(),
    }];
    for (section, path) in [
        ("common", "config/tasker/base/common.toml"),
        ("orchestration", "config/tasker/base/orchestration.toml"),
        ("worker", "config/tasker/base/worker.toml"),
    ] {
        if let Some(contents) = docs::base_file(section) {
            files.push(Generated { path, contents });
        }
    }
    files
}

fn loader(env: Option<String>, root: Option<PathBuf>, strictness: Strictness) -> ConfigLoader {
    let mut loader = ConfigLoader::builder().strictness(strictness);
    if let Some(env) = env {
        loader = loader.environment(env);
    }
    if let Some(root) = root {
        loader = loader.root(root);
    }
    loader
}

/// Prints every problem of an invalid configuration and turns the error into a summary.
fn report(error: ConfigError) -> anyhow::Error {
    match error {
        ConfigError::Invalid { errors, warnings } => {
            for problem in &errors {
                println!("error: {problem}");
            }
            for problem in &warnings {
                println!("warning: {problem}");
            }
            anyhow::anyhow!(
                "configuration has {} error(s) and {} warning(s)",
                errors.len(),
                warnings.len()
            )
        }
        other => anyhow::Error::new(other),
    }
}
