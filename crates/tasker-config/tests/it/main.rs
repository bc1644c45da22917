//! Integration tests of tasker-config: the shipped files, the reference fixture, loading
//! rules, problems and redaction.

mod loading;
mod reference;
mod shipped;
mod support;
