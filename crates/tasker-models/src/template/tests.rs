//! Tests for template loading and validation.
