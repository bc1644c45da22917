//! The cost of one recording with one attribute: a counter increment and a histogram
//! observation, on installed metrics (Prometheus reader) and on disabled ones. Run with
//! `cargo bench -p tasker-metrics --bench record`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tasker_metrics::config::{MetricsConfig, MetricsExporter};
use tasker_metrics::instruments::Metrics;

fn record(c: &mut Criterion) {
    let installed = Metrics::install(&MetricsConfig {
        exporter: MetricsExporter::Prometheus,
        service_name: "bench".to_owned(),
    })
    .expect("a valid configuration");
    let disabled = Metrics::disabled();
    let duration = Duration::from_micros(1500);

    c.bench_function("counter_add/installed", |b| {
        b.iter(|| {
            installed
                .orchestration
                .task_completed(black_box("payments"))
        });
    });
    c.bench_function("histogram_record/installed", |b| {
        b.iter(|| {
            installed
                .orchestration
                .step_duration(black_box("charge_card"), black_box(duration));
        });
    });
    c.bench_function("counter_add/disabled", |b| {
        b.iter(|| disabled.orchestration.task_completed(black_box("payments")));
    });
    c.bench_function("histogram_record/disabled", |b| {
        b.iter(|| {
            disabled
                .orchestration
                .step_duration(black_box("charge_card"), black_box(duration));
        });
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
