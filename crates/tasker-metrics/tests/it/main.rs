//! Integration tests of tasker-metrics through its public API: every instrument in the
//! exposition, the exposition checked by the real `promtool`, a snapshot, and the disabled and
//! misconfigured cases; with the `listener` feature, `GET /metrics` over a real socket.

mod exposition;
mod install;
#[cfg(feature = "listener")]
mod listener;
mod promtool;
mod support;
