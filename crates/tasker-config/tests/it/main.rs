//! Integration tests of tasker-config: the shipped files, the reference fixture, loading
//! rules, problems and redaction.

mod discovery;
mod loading;
mod problems;
mod redaction;
mod reference;
mod shipped;
mod support;
