//! Template loading throughput on a generated 10,000-step layered DAG (100 layers of 100
//! steps, each depending on two steps of the layer above):
//!
//! - `load_minimal`: parse + validate + topologically sort, steps with only a name, a handler
//!   and dependencies (the target: under 20 ms);
//! - `load_realistic`: the same with retry blocks and timeouts on every step;
//! - `validate_preparsed`: validation and graph building from an already parsed
//!   `serde_yaml_ng::Value`, i.e. everything this crate does on top of a YAML parser (including
//!   borrowing the value into the reader's own value type);
//! - `yaml_parse_only`: `serde_yaml_ng` alone, for reference (the loader reads templates in
//!   the block-style subset with its own reader and falls back to `serde_yaml_ng` otherwise).
//!
//! For instruction counts, which stay steady on a busy machine, run the same template through
//! `examples/template_profile.rs` under `valgrind --tool=callgrind`.

#[path = "support/template_dag.rs"]
mod template_dag;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tasker_models::template::{Strictness, ValidatedTemplate};
use template_dag::{LAYERS, WIDTH, layered_dag};

fn load(text: &str) -> ValidatedTemplate {
    let loaded =
        ValidatedTemplate::from_yaml_str(text, Strictness::Strict).expect("valid template");
    assert_eq!(
        loaded.template.graph().topological_order().len(),
        LAYERS * WIDTH
    );
    loaded.template
}

fn bench_template(c: &mut Criterion) {
    let minimal = layered_dag(false);
    let realistic = layered_dag(true);
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&minimal).expect("yaml");

    let mut group = c.benchmark_group("template_10k_steps");
    group.throughput(Throughput::Elements((LAYERS * WIDTH) as u64));
    group.sample_size(20);
    group.bench_function("load_minimal", |b| b.iter(|| load(&minimal)));
    group.bench_function("load_realistic", |b| b.iter(|| load(&realistic)));
    group.bench_function("validate_preparsed", |b| {
        // `iter` like the other rows, so that each result is dropped as it is in `load`.
        b.iter(|| {
            ValidatedTemplate::from_yaml_value(&parsed, Strictness::Strict).expect("valid template")
        });
    });
    group.bench_function("yaml_parse_only", |b| {
        b.iter(|| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&minimal).expect("yaml"));
    });
    group.finish();
}

criterion_group!(benches, bench_template);
criterion_main!(benches);
