//! Logs and traces of a process: `common.telemetry` mapped onto tasker-metrics's one tracing
//! init, plus tokio-console's layer with the `tokio-console` feature.
//!
//! The log filter is `RUST_LOG` when set (tasker-metrics applies it), else `TASKER_LOG` when
//! set (this binary's own variable, kept for scripts), else `common.telemetry.log_filter`.
//! Every log line carries this process's id after its time.

use anyhow::Context as _;
use tasker_shared::config::common::LogFormat as ConfiguredFormat;
use tasker_shared::metrics::otlp::OtlpEndpoint;
use tasker_shared::metrics::subscriber::{
    self, LogFormat, TraceExport, TracingConfig, TracingGuard,
};

/// This binary's own filter variable, below `RUST_LOG` and above the configuration.
const TASKER_LOG: &str = "TASKER_LOG";

#[cfg(all(
    feature = "tokio-console",
    not(tokio_unstable),
    not(feature = "_tokio-console-unchecked")
))]
compile_error!(
    "the `tokio-console` feature needs tokio's unstable instrumentation: build with \
     RUSTFLAGS=\"--cfg tokio_unstable\" (e.g. `RUSTFLAGS=\"--cfg tokio_unstable\" cargo run -p \
     tasker-reference --features tokio-console`)"
);

/// Installs the subscriber `common.telemetry` asks for; must run inside the tokio runtime.
pub(crate) fn init(process_id: uuid::Uuid) -> anyhow::Result<TracingGuard> {
    let (config, _) = crate::setup::load_config()?;
    let telemetry = &config.common.telemetry;
    let log_filter = std::env::var(TASKER_LOG)
        .ok()
        .filter(|filter| !filter.trim().is_empty())
        .unwrap_or_else(|| telemetry.log_filter.clone());
    let tracing_config = TracingConfig {
        service_name: telemetry.service_name.clone(),
        log_filter,
        log_format: match telemetry.log_format {
            ConfiguredFormat::Pretty => LogFormat::Pretty,
            ConfiguredFormat::Compact => LogFormat::Compact,
            ConfiguredFormat::Json => LogFormat::Json,
        },
        line_label: Some(format!("process={process_id}")),
        export: telemetry.enabled.then(|| TraceExport {
            endpoint: OtlpEndpoint::new(telemetry.otlp_endpoint.expose()),
            sample_ratio: telemetry.sample_ratio,
        }),
    };
    subscriber::init_with(&tracing_config, console_layer())
        .context("setting up logs and traces (common.telemetry)")
}

/// tokio-console's layer (feature `tokio-console`, built with `--cfg tokio_unstable`).
#[cfg(all(feature = "tokio-console", tokio_unstable))]
fn console_layer() -> Option<subscriber::ExtraLayer> {
    use tracing_subscriber::Layer as _;
    Some(
        console_subscriber::ConsoleLayer::builder()
            .with_default_env()
            .spawn()
            .boxed(),
    )
}

/// No console: the `tokio-console` feature is off, or (only with the private
/// `_tokio-console-unchecked`, which `--all-features` runs turn on) tokio has no instrumentation
/// to show because `--cfg tokio_unstable` is missing.
#[cfg(not(all(feature = "tokio-console", tokio_unstable)))]
fn console_layer() -> Option<subscriber::ExtraLayer> {
    None
}
