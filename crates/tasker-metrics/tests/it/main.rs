//! Integration tests of tasker-metrics through its public API: every instrument in the
//! exposition, the exposition checked by the real `promtool`, a snapshot, and the disabled and
//! misconfigured cases, (feature `otlp`) OTLP export to a receiver on 127.0.0.1, and (feature
//! `listener`) `GET /metrics` over a real socket.

mod exposition;
mod install;
#[cfg(feature = "listener")]
mod listener;
#[cfg(feature = "otlp")]
mod otlp;
mod promtool;
mod support;
