//! Merge rules, environment overrides and placeholder expansion.

use tasker_config::{
    ConfigError, ConfigLoader, Loaded,
    common::{CacheBackend, MessagingBackend},
    problem::ProblemKind,
    provenance::{Layer, Resolution},
    tasker::TaskerConfig,
};

use crate::support::minimal_root;

fn load(root: &std::path::Path, env: &[(&str, &str)]) -> Result<Loaded<TaskerConfig>, ConfigError> {
    ConfigLoader::builder()
        .env(env.iter().copied())
        .root(root)
        .load()
}

fn layer_file(loaded: &Loaded<TaskerConfig>, key: &str) -> String {
    match loaded.provenance.layer(key).expect("key has an origin") {
        Layer::File(path) => path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned(),
        other => other.to_string(),
    }
}

#[test]
fn tables_merge_deeply_and_later_layers_win() {
    let root = minimal_root(
        "merge",
        &[
            (
                "base/common.toml",
                "[common.database.pool]\nmax_connections = 30\nmin_connections = 4\n",
            ),
            (
                "environments/test/common.toml",
                "[common.database.pool]\nmax_connections = 12\n",
            ),
        ],
    );
    let loaded = load(&root, &[("TASKER_ENV", "test")]).expect("loads");
    let pool = &loaded.config.common.database.pool;
    assert_eq!(
        (
            pool.max_connections,
            pool.min_connections,
            pool.acquire_timeout_seconds
        ),
        (12, 4, 10)
    );
    assert!(
        loaded
            .provenance
            .layer("common.database.pool.max_connections")
            .is_some_and(
                |l| matches!(l, Layer::File(p) if p.ends_with("environments/test/common.toml"))
            )
    );
    assert!(matches!(
        loaded.provenance.layer("common.database.pool.min_connections"),
        Some(Layer::File(p)) if p.ends_with("base/common.toml")
    ));
    assert_eq!(
        loaded
            .provenance
            .layer("common.database.pool.acquire_timeout_seconds"),
        Some(&Layer::Default)
    );
}

#[test]
fn arrays_are_replaced_not_merged() {
    let root = minimal_root(
        "arrays",
        &[
            (
                "base/common.toml",
                "[common.backoff]\ndefault_backoff_seconds = [1, 5, 15, 30]\n",
            ),
            (
                "environments/test/common.toml",
                "[common.backoff]\ndefault_backoff_seconds = [2]\n",
            ),
        ],
    );
    let loaded = load(&root, &[("TASKER_ENV", "test")]).expect("loads");
    assert_eq!(
        loaded.config.common.backoff.default_backoff_seconds,
        vec![2]
    );
    assert_eq!(
        layer_file(&loaded, "common.backoff.default_backoff_seconds"),
        "common.toml"
    );
}

#[test]
fn docs_tables_are_ignored() {
    let root = minimal_root(
        "docs",
        &[(
            "base/common.toml",
            "[common.database.pool]\nmax_connections = 9\n\n[common.database.pool._docs.max_connections]\ndescription = \"x\"\n",
        )],
    );
    let loaded = load(&root, &[]).expect("loads");
    assert_eq!(loaded.config.common.database.pool.max_connections, 9);
}

#[test]
fn environment_variables_override_any_key_with_typed_values() {
    let root = minimal_root("env-override", &[]);
    let loaded = load(
        &root,
        &[
            ("TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS", "40"),
            ("TASKER__COMMON__CACHE__ENABLED", "TRUE"),
            ("TASKER__COMMON__CACHE__BACKEND", "moka"),
            ("TASKER__COMMON__BACKOFF__BACKOFF_MULTIPLIER", "3"),
            (
                "TASKER__COMMON__BACKOFF__DEFAULT_BACKOFF_SECONDS",
                "[2, 4, 8]",
            ),
            (
                "TASKER__COMMON__TASK_TEMPLATES__SEARCH_PATHS",
                "a/*.yml,b/*.yml",
            ),
            ("TASKER__COMMON__QUEUES__BACKEND", "rabbitmq"),
            ("TASKER__WORKER__WORKER_ID", "${NOT_EXPANDED}"),
            ("TASKER__ORCHESTRATION__WEB__BIND_ADDRESS", "[::1]:8088"),
        ],
    )
    .expect("loads");
    let c = &loaded.config;
    assert_eq!(c.common.database.pool.max_connections, 40);
    assert!(c.common.cache.enabled);
    assert_eq!(c.common.cache.backend, CacheBackend::Moka);
    assert!((c.common.backoff.backoff_multiplier - 3.0).abs() < f64::EPSILON);
    assert_eq!(c.common.backoff.default_backoff_seconds, vec![2, 4, 8]);
    assert_eq!(
        c.common.task_templates.search_paths,
        vec!["a/*.yml", "b/*.yml"]
    );
    assert_eq!(c.common.queues.backend, MessagingBackend::RabbitMq);
    assert_eq!(
        c.worker.worker_id, "${NOT_EXPANDED}",
        "override values are taken literally"
    );
    assert_eq!(c.orchestration.web.bind_address.to_string(), "[::1]:8088");
    assert_eq!(
        loaded
            .provenance
            .layer("common.database.pool.max_connections"),
        Some(&Layer::EnvVar(
            "TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS".to_owned()
        ))
    );
}

#[test]
fn a_badly_typed_or_unknown_override_names_its_variable() {
    let root = minimal_root("env-bad", &[]);
    let err = load(
        &root,
        &[
            ("TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS", "forty"),
            ("TASKER__COMMON__DATABASE__POOL__MAX_CONECTIONS", "4"),
        ],
    )
    .expect_err("bad overrides fail");
    let ConfigError::Invalid { errors, .. } = err else {
        panic!("{err}")
    };
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_yaml_snapshot!(shown);
}

#[test]
fn overrides_for_sections_a_service_does_not_load_are_ignored() {
    let root = minimal_root("env-other", &[]);
    let loaded = ConfigLoader::builder()
        .env([
            ("TASKER__WORKER__WORKER_ID", ""),
            (
                "TASKER__COMMON__SYSTEM__DEFAULT_DEPENDENT_SYSTEM",
                "billing",
            ),
        ])
        .root(&root)
        .load_orchestration()
        .expect("worker overrides do not concern orchestration");
    assert_eq!(
        loaded.config.common.system.default_dependent_system,
        "billing"
    );
}

#[test]
fn placeholders_use_the_variable_then_the_default_and_name_unset_ones() {
    let root = minimal_root(
        "placeholders",
        &[(
            "base/common.toml",
            "[common.system]\ndefault_dependent_system = \"${SYSTEM_NAME:-fallback}\"\n\
             [common.execution]\nenvironment = \"${DEPLOYMENT}\"\n",
        )],
    );
    let set = load(
        &root,
        &[("SYSTEM_NAME", "billing"), ("DEPLOYMENT", "staging")],
    )
    .expect("loads");
    assert_eq!(set.config.common.system.default_dependent_system, "billing");
    let origin = set
        .provenance
        .origin("common.system.default_dependent_system")
        .expect("origin");
    assert_eq!(
        origin.placeholders[0].resolution,
        Resolution::FromEnvironment
    );

    let defaulted = load(&root, &[("DEPLOYMENT", "staging")]).expect("loads");
    assert_eq!(
        defaulted.config.common.system.default_dependent_system,
        "fallback"
    );

    let err = load(&root, &[]).expect_err("DEPLOYMENT is required");
    let ConfigError::Invalid { errors, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "common.execution.environment");
    assert_eq!(
        errors[0].kind,
        ProblemKind::UnsetVariable {
            variable: "DEPLOYMENT".to_owned()
        }
    );
    assert!(
        errors[0].to_string().contains("base/common.toml"),
        "{}",
        errors[0]
    );
}

/// Every URL form survives expansion unchanged, from the variable and from the default.
#[test]
fn urls_survive_placeholder_expansion() {
    let urls = [
        (
            "DATABASE_URL",
            "postgres://tasker:p%40ss:w0rd@db.internal:5432/tasker?sslmode=verify-full",
        ),
        (
            "DATABASE_URL",
            "postgresql:///tasker?host=/var/run/postgresql",
        ),
        (
            "DATABASE_URL",
            "postgresql://tasker@%2Fvar%2Frun%2Fpostgresql/tasker",
        ),
        (
            "DATABASE_URL",
            "postgresql://u:p@[2001:db8::10]:5432/tasker",
        ),
        (
            "DATABASE_URL",
            "postgresql://a.internal:5432,b.internal:5433/tasker",
        ),
        ("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/%2F"),
        ("RABBITMQ_URL", "amqps://user:s3cret@[::1]:5671/vhost"),
        ("REDIS_URL", "redis://:s3cret@[::1]:6379/0"),
        ("REDIS_URL", "rediss://user:s3cret@cache.internal:6380/2"),
        ("REDIS_URL", "redis+unix:///run/redis.sock?db=3"),
    ];
    let root = minimal_root("urls", &[]);
    for (variable, url) in urls {
        let config = load(&root, &[(variable, url)])
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .config;
        let actual = match variable {
            "DATABASE_URL" => config.common.database.url.expose().to_owned(),
            "RABBITMQ_URL" => config.common.queues.rabbitmq.url.expose().to_owned(),
            _ => config.common.cache.redis.url.expose().to_owned(),
        };
        assert_eq!(actual, url);

        let as_default = minimal_root(
            "url-default",
            &[(
                "base/common.toml",
                &format!("[common.database]\nurl = \"${{UNSET_URL:-{url}}}\"\n"),
            )],
        );
        if variable == "DATABASE_URL" {
            let config = load(&as_default, &[])
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .config;
            assert_eq!(config.common.database.url.expose(), url);
        }
    }
}
