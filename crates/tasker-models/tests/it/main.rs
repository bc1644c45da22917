//! Integration tests of tasker-models through its public API.

mod reference_templates;
