//! The generated template of the template benchmark (`benches/template.rs`) and of the
//! profiling example (`examples/template_profile.rs`): a layered DAG of 100 layers of 100
//! steps, each depending on two steps of the layer above.

use std::fmt::Write as _;

pub(crate) const LAYERS: usize = 100;
pub(crate) const WIDTH: usize = 100;

/// The template's YAML; `realistic` adds a retry block and a timeout to every step.
pub(crate) fn layered_dag(realistic: bool) -> String {
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
