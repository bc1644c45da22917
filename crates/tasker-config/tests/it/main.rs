//! Integration tests of tasker-config: the shipped files, the reference fixture, loading
//! rules, problems and redaction.

mod shipped;
mod support;
