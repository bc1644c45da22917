//! `cargo xtask`: development tasks for the Tasker workspace.
//!
//! Run `cargo xtask --help` for the list. Every command works from any directory inside the
//! repository; failures print one clear paragraph and exit non-zero.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a command-line tool"
)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod ci;
mod codegen;
mod config;
mod db;
mod events;
mod otlp_sink;
mod proto;
mod template;
mod tidy;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Development tasks for the Tasker workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, migrate, reset or inspect the database at `DATABASE_URL`.
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Regenerate committed generated files (docs, protobuf code).
    Codegen {
        /// Fail instead of writing when a generated file is out of date.
        #[arg(long)]
        check: bool,
    },
    /// Check the house rules: module docs, file sizes, layering, SQL placement, migrations.
    Tidy,
    /// Show or check the layered configuration.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Validate task templates.
    #[command(subcommand)]
    Template(template::TemplateCmd),
    /// Run the whole CI sequence locally, as `.ci/run` does.
    Ci,
    /// Receive OTLP/gRPC spans and metrics, count them and drop them (for benchmarks).
    OtlpSink {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:4317")]
        listen: std::net::SocketAddr,
    },
}

fn main() {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Db(cmd) => db::run(cmd),
        Command::Codegen { check } => codegen::run(&root, check),
        Command::Tidy => tidy::run(&root),
        Command::Ci => ci::run(&root),
        Command::Config(cmd) => config::run(cmd),
        Command::Template(cmd) => template::run(cmd),
        Command::OtlpSink { listen } => otlp_sink::run(listen),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// The repository root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
