//! The shipped files: base files equal the schema's defaults, every environment loads.

use std::fs;

use tasker_config::{ConfigError, ConfigLoader, docs};

use crate::support::shipped_root;

/// Base files are generated from the schema; `TASKER_CONFIG_BLESS=1` rewrites them.
#[test]
fn base_files_are_generated_from_the_schema() {
    let bless = std::env::var_os("TASKER_CONFIG_BLESS").is_some();
    for section in docs::sections() {
        let path = shipped_root().join("base").join(format!("{section}.toml"));
        let expected = docs::base_file(section).expect("known section");
        if bless {
            fs::create_dir_all(path.parent().expect("parent")).expect("create base dir");
            fs::write(&path, &expected).expect("write base file");
        }
        let actual = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is out of date with the schema; run `cargo xtask codegen`",
            path.display()
        );
    }
}

/// What production needs from its environment: the mandatory `${VAR}` placeholders.
const PRODUCTION_ENV: &[(&str, &str)] = &[
    ("TASKER_ENV", "production"),
    (
        "DATABASE_URL",
        "postgresql://tasker:s3cret@db.internal:5432/tasker",
    ),
    ("REDIS_URL", "rediss://:r3dis@cache.internal:6380/0"),
    (
        "TASKER_JWT_PUBLIC_KEY",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
    ),
    ("TASKER_WORKER_ID", "worker-7f9c"),
    ("TASKER_ORCHESTRATION_TOKEN", "t0ken"),
];

#[test]
fn development_and_test_load_strictly_without_any_variable() {
    for environment in ["development", "test"] {
        let loaded = ConfigLoader::builder()
            .env([("TASKER_ENV", environment)])
            .root(shipped_root())
            .load()
            .unwrap_or_else(|e| panic!("{environment}: {e}"));
        assert!(
            loaded.warnings.is_empty(),
            "{environment}: {:?}",
            loaded.warnings
        );
        assert_eq!(loaded.environment, environment);
        assert_eq!(loaded.config.common.execution.environment, environment);
    }
}

#[test]
fn production_loads_with_its_secrets_from_the_environment() {
    let loaded = ConfigLoader::builder()
        .env(PRODUCTION_ENV.iter().copied())
        .root(shipped_root())
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let config = loaded.config;
    assert_eq!(
        config.common.database.url.expose(),
        "postgresql://tasker:s3cret@db.internal:5432/tasker"
    );
    assert_eq!(config.common.database.pool.max_connections, 50);
    assert!(config.orchestration.web.auth.enabled);
    assert!(!config.orchestration.grpc.enable_reflection);
    assert_eq!(config.worker.worker_id, "worker-7f9c");
}

/// Production refuses to start on defaults: each mandatory variable is named.
#[test]
fn production_without_its_variables_names_each_one() {
    let err = ConfigLoader::builder()
        .env([("TASKER_ENV", "production")])
        .root(shipped_root())
        .load()
        .expect_err("production needs its secrets");
    let ConfigError::Invalid { errors, warnings } = err else {
        panic!("unexpected error {err}")
    };
    assert!(warnings.is_empty());
    let found: Vec<(String, String)> = errors
        .iter()
        .map(|p| (p.key.clone(), p.kind.to_string()))
        .collect();
    insta::assert_yaml_snapshot!(found);
}

/// The test environment is tuned for tests: small pools, short timeouts, port 0.
#[test]
fn test_environment_is_small_and_fast() {
    let config = ConfigLoader::builder()
        .env([("TASKER_ENV", "test")])
        .root(shipped_root())
        .load()
        .expect("test environment loads")
        .config;
    assert!(config.common.database.pool.max_connections <= 10);
    assert!(config.common.database.pool.acquire_timeout_seconds <= 5);
    assert_eq!(
        config.orchestration.web.bind_address.socket_addr().port(),
        0
    );
    assert_eq!(config.common.backoff.default_backoff_seconds, vec![1, 2, 4]);
}

/// `show` prints every key with its layer, relative to the root, secrets redacted.
#[test]
fn show_lists_every_key_with_its_layer() {
    let loaded = ConfigLoader::builder()
        .env([
            ("TASKER_ENV", "test"),
            (
                "DATABASE_URL",
                "postgresql://tasker:pw-123@db:5432/tasker_test",
            ),
            ("TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS", "8"),
        ])
        .root(shipped_root())
        .load()
        .expect("test environment loads");
    let shown = loaded
        .show()
        .replace(&shipped_root().display().to_string(), "<root>");
    assert!(!shown.contains("pw-123"));
    insta::assert_snapshot!(shown);
}
