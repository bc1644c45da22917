//! Benchmark (placeholder until the loader exists).
fn main() {}
