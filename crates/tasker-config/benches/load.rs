//! Benchmarks `ConfigLoader::load_from_env` on the shipped files (target: under 5 ms), plus
//! the compiled-defaults path.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tasker_config::ConfigLoader;

fn load(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tasker");
    c.bench_function("load_from_env (shipped files, development)", |b| {
        b.iter(|| black_box(ConfigLoader::load_from_env().expect("shipped configuration loads")));
    });
    c.bench_function("load (shipped files, test, injected env)", |b| {
        let loader = ConfigLoader::builder()
            .env([("TASKER_ENV", "test")])
            .root(&root);
        b.iter(|| black_box(loader.load().expect("test configuration loads")));
    });
    c.bench_function("load (compiled defaults)", |b| {
        let loader = ConfigLoader::builder()
            .env([("TASKER_ENV", "test")])
            .compiled_defaults();
        b.iter(|| black_box(loader.load().expect("defaults load")));
    });
}

criterion_group!(benches, load);
criterion_main!(benches);
