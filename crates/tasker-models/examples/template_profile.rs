//! Runs one phase of template loading on the benchmark's 10,000-step DAG, for profilers,
//! which need a short, deterministic run rather than Criterion's sampling:
//!
//! ```text
//! cargo build --release -p tasker-models --example template_profile
//! valgrind --tool=callgrind target/release/examples/template_profile load 3
//! ```
//!
//! Phases: `load` (parse, validate, sort; the benchmark's `load_minimal`), `load_realistic`,
//! `validate` (from a `serde_yaml_ng::Value` parsed once up front) and `serde` (`serde_yaml_ng`
//! alone). The optional second argument is the number of iterations.

#[path = "../benches/support/template_dag.rs"]
mod template_dag;

use tasker_models::template::{Strictness, ValidatedTemplate};
use template_dag::{LAYERS, WIDTH, layered_dag};

fn main() {
    let mut args = std::env::args().skip(1);
    let phase = args.next().unwrap_or_else(|| "load".to_owned());
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let text = layered_dag(phase == "load_realistic");
    let parsed: serde_yaml_ng::Value = if phase == "validate" {
        serde_yaml_ng::from_str(&text).expect("yaml")
    } else {
        serde_yaml_ng::Value::Null
    };
    for _ in 0..iterations {
        match phase.as_str() {
            "load" | "load_realistic" => {
                let loaded = ValidatedTemplate::from_yaml_str(&text, Strictness::Strict)
                    .expect("valid template");
                assert_eq!(loaded.template.graph().len(), LAYERS * WIDTH);
            }
            "validate" => {
                let loaded = ValidatedTemplate::from_yaml_value(&parsed, Strictness::Strict)
                    .expect("valid template");
                assert_eq!(loaded.template.graph().len(), LAYERS * WIDTH);
            }
            "serde" => {
                let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
                assert!(value.is_mapping());
            }
            other => panic!("unknown phase {other}"),
        }
    }
}
