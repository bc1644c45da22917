//! Integration tests of tasker-models through its public API.

mod invalid_templates;
mod properties;
mod reference_templates;
