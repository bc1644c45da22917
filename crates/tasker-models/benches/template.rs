//! Template loading throughput on a generated 10,000-step layered DAG (100 layers of 100
//! steps, each depending on two steps of the layer above):
//!
//! - `load_minimal`: parse + validate + topologically sort, steps with only a name, a handler
//!   and dependencies (the target: under 20 ms);
//! - `load_realistic`: the same with retry blocks and timeouts on every step;
//! - `validate_preparsed`: validation and graph building from an already parsed YAML value,
//!   i.e. everything this crate does on top of the YAML parser;
//! - `yaml_parse_only`: the YAML parser alone, for reference.

use std::fmt::Write as _;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tasker_models::template::{Strictness, ValidatedTemplate};

const LAYERS: usize = 100;
const WIDTH: usize = 100;

fn layered_dag(realistic: bool) -> String {
    let mut yaml = String::from("name: layered\nnamespace_name: bench\nversion: 1.0.0\nsteps:\n");
    for layer in 0..LAYERS {
        for column in 0..WIDTH {
            let _ = write!(
                yaml,
                "  - name: s_{layer}_{column}\n    handler: {{callable: Bench::Handler}}\n"
            );
            if realistic {
                yaml.push_str(
                    "    retry:\n      max_attempts: 3\n      backoff_base_ms: 100\n      max_backoff_ms: 1000\n    timeout_seconds: 30\n",
                );
            }
            if layer > 0 {
                let previous = layer - 1;
                let other = (column + 1) % WIDTH;
                let _ = writeln!(
                    yaml,
                    "    dependencies: [s_{previous}_{column}, s_{previous}_{other}]"
                );
            }
        }
    }
    yaml
}

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
    let parsed: serde_yaml::Value = serde_yaml::from_str(&minimal).expect("yaml");

    let mut group = c.benchmark_group("template_10k_steps");
    group.throughput(Throughput::Elements((LAYERS * WIDTH) as u64));
    group.sample_size(20);
    group.bench_function("load_minimal", |b| b.iter(|| load(&minimal)));
    group.bench_function("load_realistic", |b| b.iter(|| load(&realistic)));
    group.bench_function("validate_preparsed", |b| {
        b.iter_batched(
            || (),
            |()| {
                ValidatedTemplate::from_yaml_value(&parsed, Strictness::Strict)
                    .expect("valid template")
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("yaml_parse_only", |b| {
        b.iter(|| serde_yaml::from_str::<serde_yaml::Value>(&minimal).expect("yaml"));
    });
    group.finish();
}

criterion_group!(benches, bench_template);
criterion_main!(benches);
