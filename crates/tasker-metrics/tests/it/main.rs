//! Integration tests of tasker-metrics through its public API: every instrument in the
//! exposition, the exposition checked by the real `promtool`, a snapshot, and the disabled and
//! misconfigured cases, and (feature `otlp`) OTLP export to a receiver on 127.0.0.1.

mod exposition;
mod install;
#[cfg(feature = "otlp")]
mod otlp;
mod promtool;
mod support;
