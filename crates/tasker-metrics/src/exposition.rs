//! The Prometheus text exposition (format 0.0.4) of collected metrics, rendered here rather
//! than through the `prometheus` crate.
//!
//! Names follow the OpenTelemetry "Prometheus and OpenMetrics compatibility" rules: characters
//! outside `[a-zA-Z0-9_:]` become `_` (runs collapse to one), the unit is appended as a suffix
//! (`s` → `_seconds`, `By` → `_bytes`, `1` → `_ratio` on gauges; annotations like `{message}`
//! add nothing), monotonic sums are counters with `_total`, non-monotonic sums and gauges are
//! gauges, and histograms get `_bucket`/`_sum`/`_count` with cumulative `le` buckets. One
//! deviation: a gauge whose name would end in `_count`, `_sum` or `_bucket` (suffixes
//! Prometheus reserves for histograms and summaries, e.g. `db.client.connection.count`) gets
//! `_value` appended, so that `promtool check metrics` accepts it.
//!
//! The output is deterministic: families are sorted by name and samples by labels, and no
//! timestamps are written (the scrape time is the sample time). The resource becomes
//! `target_info`.

use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Gauge, Histogram, Metric, MetricData, ResourceMetrics, Sum,
};

/// Renders collected metrics as Prometheus text.
pub(crate) fn render(resource_metrics: &ResourceMetrics) -> String {
    let mut families: Vec<Family> = Vec::new();
    let target_labels = labels(
        resource_metrics
            .resource()
            .iter()
            .map(|(key, value)| (key.as_str().to_owned(), value.as_str().into_owned())),
    );
    if !target_labels.is_empty() {
        families.push(Family {
            name: "target_info".to_owned(),
            help: "Target metadata".to_owned(),
            kind: "gauge",
            samples: vec![format!("target_info{target_labels} 1")],
        });
    }
    for scope_metrics in resource_metrics.scope_metrics() {
        for metric in scope_metrics.metrics() {
            if let Some(family) = family(metric) {
                families.push(family);
            }
        }
    }
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for sample in family.samples {
            out.push_str(&sample);
            out.push('\n');
        }
    }
    out
}

/// One metric family: its HELP and TYPE lines and its sample lines, already sorted.
struct Family {
    name: String,
    help: String,
    kind: &'static str,
    samples: Vec<String>,
}

/// A value as Prometheus writes it.
trait PromValue: Copy {
    fn render(self) -> String;
    /// The value as `f64`, for a histogram's sum (exact for the magnitudes observed).
    fn to_f64(self) -> f64;
}

impl PromValue for u64 {
    fn render(self) -> String {
        self.to_string()
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl PromValue for i64 {
    fn render(self) -> String {
        self.to_string()
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl PromValue for f64 {
    fn render(self) -> String {
        render_f64(self)
    }
    fn to_f64(self) -> f64 {
        self
    }
}

fn family(metric: &Metric) -> Option<Family> {
    match metric.data() {
        AggregatedMetrics::F64(data) => family_of(metric, data),
        AggregatedMetrics::U64(data) => family_of(metric, data),
        AggregatedMetrics::I64(data) => family_of(metric, data),
    }
}

fn family_of<T: PromValue>(metric: &Metric, data: &MetricData<T>) -> Option<Family> {
    let base = sanitize_name(metric.name());
    let help = metric.description().to_owned();
    let family = match data {
        MetricData::Gauge(gauge) => gauge_family(&base, metric.unit(), help, gauge),
        MetricData::Sum(sum) if sum.is_monotonic() => sum_family(&base, metric.unit(), help, sum),
        MetricData::Sum(sum) => nonmonotonic_family(&base, metric.unit(), help, sum),
        MetricData::Histogram(histogram) => histogram_family(&base, metric.unit(), help, histogram),
        // No Tasker instrument uses exponential histograms, which the text format cannot carry.
        MetricData::ExponentialHistogram(_) => return None,
    };
    Some(family)
}

fn gauge_family<T: PromValue>(base: &str, unit: &str, help: String, gauge: &Gauge<T>) -> Family {
    let points = gauge
        .data_points()
        .map(|point| (attribute_labels(point.attributes()), point.value().render()));
    gauge_samples(gauge_name(base, unit), help, points)
}

/// An up-down counter is exposed as a gauge.
fn nonmonotonic_family<T: PromValue>(base: &str, unit: &str, help: String, sum: &Sum<T>) -> Family {
    let points = sum
        .data_points()
        .map(|point| (attribute_labels(point.attributes()), point.value().render()));
    gauge_samples(gauge_name(base, unit), help, points)
}

/// A gauge family from (labels, value) pairs, its samples sorted.
fn gauge_samples(
    name: String,
    help: String,
    points: impl Iterator<Item = (String, String)>,
) -> Family {
    let mut samples: Vec<String> = points
        .map(|(labels, value)| format!("{name}{labels} {value}"))
        .collect();
    samples.sort();
    Family {
        name,
        help,
        kind: "gauge",
        samples,
    }
}

fn sum_family<T: PromValue>(base: &str, unit: &str, help: String, sum: &Sum<T>) -> Family {
    let name = format!("{}_total", with_unit(base, unit, false));
    let mut samples: Vec<String> = sum
        .data_points()
        .map(|point| {
            let labels = attribute_labels(point.attributes());
            format!("{name}{labels} {}", point.value().render())
        })
        .collect();
    samples.sort();
    Family {
        name,
        help,
        kind: "counter",
        samples,
    }
}

fn histogram_family<T: PromValue>(
    base: &str,
    unit: &str,
    help: String,
    histogram: &Histogram<T>,
) -> Family {
    let name = with_unit(base, unit, false);
    let mut points: Vec<(String, String)> = histogram
        .data_points()
        .map(|point| {
            let attributes = attribute_pairs(point.attributes());
            let mut lines = String::new();
            let mut cumulative = 0_u64;
            for (bound, count) in point.bounds().zip(point.bucket_counts()) {
                cumulative += count;
                let mut with_le = attributes.clone();
                with_le.push(("le".to_owned(), render_f64(bound)));
                let _ = writeln!(lines, "{name}_bucket{} {cumulative}", labels(with_le));
            }
            let mut with_le = attributes.clone();
            with_le.push(("le".to_owned(), "+Inf".to_owned()));
            let _ = writeln!(lines, "{name}_bucket{} {}", labels(with_le), point.count());
            let plain = labels(attributes);
            let _ = writeln!(
                lines,
                "{name}_sum{plain} {}",
                render_f64(point.sum().to_f64())
            );
            let _ = write!(lines, "{name}_count{plain} {}", point.count());
            (plain, lines)
        })
        .collect();
    points.sort();
    Family {
        name,
        help,
        kind: "histogram",
        samples: points.into_iter().map(|(_, lines)| lines).collect(),
    }
}

/// A gauge's name: with its unit, and `_value` after a suffix Prometheus reserves.
fn gauge_name(base: &str, unit: &str) -> String {
    let name = with_unit(base, unit, true);
    if ["_count", "_sum", "_bucket"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        format!("{name}_value")
    } else {
        name
    }
}

/// Appends the Prometheus unit suffix unless the name already ends with it.
fn with_unit(base: &str, unit: &str, is_gauge: bool) -> String {
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "1" if is_gauge => "ratio",
        _ => "",
    };
    if suffix.is_empty() || base.ends_with(&format!("_{suffix}")) {
        base.to_owned()
    } else {
        format!("{base}_{suffix}")
    }
}

/// A metric name in `[a-zA-Z_:][a-zA-Z0-9_:]*`, runs of `_` collapsed.
fn sanitize_name(name: &str) -> String {
    sanitize(name, true)
}

/// A label name in `[a-zA-Z_][a-zA-Z0-9_]*`, runs of `_` collapsed.
fn sanitize_label(name: &str) -> String {
    sanitize(name, false)
}

fn sanitize(name: &str, colon: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || (colon && c == ':') {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out
}

fn attribute_pairs<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = attributes
        .map(|kv| {
            (
                sanitize_label(kv.key.as_str()),
                kv.value.as_str().into_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn attribute_labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> String {
    labels(attribute_pairs(attributes))
}

/// `{a="x",b="y"}` in the given order, or nothing without labels.
fn labels(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        out.push(if out.is_empty() { '{' } else { ',' });
        let _ = write!(
            out,
            "{}=\"{}\"",
            sanitize_label(&name),
            escape_label(&value)
        );
    }
    if !out.is_empty() {
        out.push('}');
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', r"\\").replace('\n', r"\n")
}

fn render_f64(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests;
