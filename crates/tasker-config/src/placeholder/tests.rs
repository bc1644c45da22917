//! Tests of placeholder expansion.
