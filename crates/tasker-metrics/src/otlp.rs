//! OTLP export over gRPC (tonic): the endpoint, kept redacted, and the exporters built from it.
//!
//! Since OpenTelemetry 0.28 the SDK's default batch span processor and periodic metric reader
//! run on a thread of their own and drive the exporter with a plain executor there; the tonic
//! exporter needs a tokio runtime, and where it does not find one its exports fail, and the
//! spans or points are dropped with nothing but an internal log line. So both pipelines here
//! use the SDK's async-runtime variants (`span_processor_with_async_runtime::BatchSpanProcessor`
//! and `periodic_reader_with_async_runtime::PeriodicReader` with `runtime::Tokio`): the batches
//! are exported from a tokio task of the process's runtime, where tonic works. They must be
//! built inside that runtime, which `current_runtime` checks instead of letting the SDK
//! panic; the tests' OTLP receivers prove that the spans and points arrive.

use std::fmt;

use opentelemetry_otlp::WithExportConfig as _;

/// Where OTLP goes: a collector's gRPC endpoint, e.g. `http://localhost:4317`.
///
/// The URL may carry credentials (`http://user:token@collector:4317`, or a token in the
/// query): `Debug` and `Display` mask them, and so does every error and log line of this
/// crate; only the exporter sees the URL as written.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpEndpoint(String);

impl OtlpEndpoint {
    /// The endpoint `url`, as the collector's address.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its user information and query masked, for logs and errors.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// The URL as written (for the exporter only: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OtlpEndpoint")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why an OTLP pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// No tokio runtime on this thread: the exporters run on one (see the module docs).
    #[error("build the OTLP exporter for {endpoint}: no tokio runtime (enter the runtime first)")]
    NoRuntime {
        /// The endpoint, redacted.
        endpoint: String,
    },
    /// The exporter refused its configuration (e.g. an invalid endpoint).
    #[error("build the OTLP exporter for {endpoint}")]
    Build {
        /// The endpoint, redacted.
        endpoint: String,
        /// What the exporter reported.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Checks that this thread is inside a tokio runtime, which the async-runtime processor and
/// reader spawn their task on.
pub(crate) fn current_runtime(endpoint: &OtlpEndpoint) -> Result<(), OtlpError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| OtlpError::NoRuntime {
            endpoint: endpoint.redacted(),
        })
}

/// The span exporter for `endpoint`.
#[cfg(feature = "subscriber")]
pub(crate) fn span_exporter(
    endpoint: &OtlpEndpoint,
) -> Result<opentelemetry_otlp::SpanExporter, OtlpError> {
    current_runtime(endpoint)?;
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.expose())
        .build()
        .map_err(|source| OtlpError::Build {
            endpoint: endpoint.redacted(),
            source,
        })
}

/// The metric exporter for `endpoint`, cumulative like the Prometheus exposition.
pub(crate) fn metric_exporter(
    endpoint: &OtlpEndpoint,
) -> Result<opentelemetry_otlp::MetricExporter, OtlpError> {
    current_runtime(endpoint)?;
    opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.expose())
        .with_temporality(opentelemetry_sdk::metrics::Temporality::Cumulative)
        .build()
        .map_err(|source| OtlpError::Build {
            endpoint: endpoint.redacted(),
            source,
        })
}

/// `url` with the user information (between `://` and the last `@` of the authority) and the
/// query and fragment masked.
fn redact(url: &str) -> String {
    const MASK: &str = "***";
    let (head, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("{MASK}@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.find(['?', '#']) {
        Some(at) => format!("{}{}{MASK}", &tail[..at], &tail[at..=at]),
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        for (url, shown) in [
            ("http://localhost:4317", "http://localhost:4317"),
            (
                "https://user:s3cret@collector.example:4317/v1",
                "https://***@collector.example:4317/v1",
            ),
            (
                "http://collector:4317/?token=s3cret",
                "http://collector:4317/?***",
            ),
            ("http://tok@en@collector:4317", "http://***@collector:4317"),
        ] {
            let endpoint = OtlpEndpoint::new(url);
            assert_eq!(endpoint.redacted(), shown);
            assert!(!format!("{endpoint:?} {endpoint}").contains("s3cret"));
        }
    }
}
