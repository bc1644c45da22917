//! The predecessor's reference configuration loads: leniently with warnings listing the keys
//! this schema does not know, strictly failing on exactly those keys.

use tasker_config::{ConfigError, ConfigLoader, Strictness, problem::ProblemKind};

use crate::support::reference_root;

/// Unknown keys found in lenient mode, as `source-file-name: key`.
fn unknown_keys(environment: &str) -> Vec<String> {
    let loaded = ConfigLoader::builder()
        .env([("TASKER_ENV", environment)])
        .root(reference_root())
        .strictness(Strictness::Lenient)
        .load()
        .unwrap_or_else(|e| panic!("{environment}: {e}"));
    loaded
        .warnings
        .iter()
        .map(|w| {
            assert!(matches!(w.kind, ProblemKind::UnknownKey { .. }), "{w}");
            let file = w.source.to_string();
            let file = file
                .rsplit_once("config/tasker/")
                .map_or(file.as_str(), |(_, f)| f)
                .to_owned();
            format!("{file}: {}", w.key)
        })
        .collect()
}

#[test]
fn reference_configuration_loads_leniently_and_strict_mode_names_the_same_keys() {
    for environment in ["development", "test", "production"] {
        let lenient = unknown_keys(environment);
        insta::assert_yaml_snapshot!(format!("reference_unknown_keys_{environment}"), lenient);

        let err = ConfigLoader::builder()
            .env([("TASKER_ENV", environment)])
            .root(reference_root())
            .load()
            .expect_err("strict mode rejects unknown keys");
        let ConfigError::Invalid { errors, warnings } = err else {
            panic!("{err}")
        };
        assert!(warnings.is_empty());
        let strict: Vec<String> = errors
            .iter()
            .map(|e| {
                assert!(matches!(e.kind, ProblemKind::UnknownKey { .. }), "{e}");
                let file = e.source.to_string();
                let file = file
                    .rsplit_once("config/tasker/")
                    .map_or(file.as_str(), |(_, f)| f)
                    .to_owned();
                format!("{file}: {}", e.key)
            })
            .collect();
        assert_eq!(strict, lenient, "{environment}");
    }
}
