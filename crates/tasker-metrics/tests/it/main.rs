//! Integration tests of tasker-metrics through its public API: every instrument in the
//! exposition, the exposition checked by the real `promtool`, a snapshot, and the disabled and
//! misconfigured cases.

mod exposition;
mod install;
mod promtool;
mod support;
