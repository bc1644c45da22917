//! Root discovery order, environments, pre-merged files and per-service loading.

use std::fs;

use tasker_config::{ConfigError, ConfigLoader, ConfigSource, problem::ProblemKind};

use crate::support::{minimal_root, scratch, shipped_root};

#[test]
fn tasker_config_root_wins_over_the_directory_walk() {
    let chosen = minimal_root(
        "root-env",
        &[(
            "base/common.toml",
            "[common.system]\ndefault_dependent_system = \"from-root\"\n",
        )],
    );
    let loaded = ConfigLoader::builder()
        .env([("TASKER_CONFIG_ROOT", chosen.to_str().expect("utf-8"))])
        .current_dir(shipped_root())
        .load()
        .expect("loads");
    assert_eq!(loaded.source, ConfigSource::Root(chosen));
    assert_eq!(
        loaded.config.common.system.default_dependent_system,
        "from-root"
    );
}

#[test]
fn the_nearest_config_tasker_above_the_current_directory_is_found() {
    let project = scratch("walk");
    let root = project.join("config/tasker");
    fs::create_dir_all(root.join("base")).expect("dirs");
    for section in ["common", "orchestration", "worker"] {
        fs::write(root.join(format!("base/{section}.toml")), "").expect("write");
    }
    let deep = project.join("crates/app/src");
    fs::create_dir_all(&deep).expect("dirs");
    let loaded = ConfigLoader::builder()
        .env([("X", "y")])
        .current_dir(&deep)
        .load()
        .expect("loads");
    assert_eq!(loaded.source, ConfigSource::Root(root));
}

#[test]
fn without_any_root_the_compiled_defaults_are_used() {
    // Outside the repository, so the walk up finds no `config/tasker`.
    let empty = std::env::temp_dir().join(format!("tasker-config-nothing-{}", std::process::id()));
    fs::create_dir_all(&empty).expect("create dir");
    let loaded = ConfigLoader::builder()
        .env([("TASKER_ENV", "test")])
        .current_dir(&empty)
        .load()
        .expect("loads");
    assert_eq!(loaded.source, ConfigSource::Compiled);
    assert_eq!(loaded.config.common.database.pool.max_connections, 25);
    let defaults = ConfigLoader::builder()
        .env([("X", "y")])
        .compiled_defaults()
        .load()
        .expect("loads");
    let shipped_base = ConfigLoader::builder()
        .env([("X", "y")])
        .root(minimal_root("base-copy", &[]))
        .load()
        .expect("loads");
    assert_eq!(defaults.config, shipped_base.config);
    let err = ConfigLoader::builder()
        .env([("TASKER_ENV", "staging")])
        .current_dir(&empty)
        .load()
        .expect_err("unknown env");
    assert_eq!(
        err.to_string(),
        "unknown environment `staging`; known environments: development, production, test"
    );
}

#[test]
fn compiled_defaults_equal_the_shipped_base_files() {
    let base_only = scratch("shipped-base");
    fs::create_dir_all(base_only.join("base")).expect("dirs");
    for section in ["common", "orchestration", "worker"] {
        let file = format!("base/{section}.toml");
        fs::copy(shipped_root().join(&file), base_only.join(&file)).expect("copy");
    }
    let from_files = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&base_only)
        .load()
        .expect("loads");
    let compiled = ConfigLoader::builder()
        .env([("X", "y")])
        .compiled_defaults()
        .load()
        .expect("loads");
    assert_eq!(from_files.config, compiled.config);
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let err = ConfigLoader::builder()
        .env([("TASKER_ENV", "prod")])
        .root(shipped_root())
        .load()
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown environment `prod`; known environments: development, production, test"
    );
}

#[test]
fn a_missing_root_and_an_ambiguous_source_are_errors() {
    let err = ConfigLoader::builder()
        .env([("TASKER_CONFIG_ROOT", "/definitely/not/here")])
        .load()
        .expect_err("missing");
    assert!(matches!(err, ConfigError::RootNotFound { .. }), "{err}");
    let err = ConfigLoader::builder()
        .env([
            ("TASKER_CONFIG_ROOT", "/a"),
            ("TASKER_CONFIG_PATH", "/b.toml"),
        ])
        .load()
        .expect_err("ambiguous");
    assert!(matches!(err, ConfigError::AmbiguousSource { .. }), "{err}");
}

#[test]
fn a_pre_merged_file_provides_every_section() {
    let dir = scratch("premerged");
    let file = dir.join("complete.toml");
    fs::write(&file, "[common.database.pool]\nmax_connections = 3\nmin_connections = 1\n[orchestration]\n[worker]\n").expect("write");
    let loaded = ConfigLoader::builder()
        .env([("TASKER_CONFIG_PATH", file.to_str().expect("utf-8"))])
        .load()
        .expect("loads");
    assert_eq!(loaded.source, ConfigSource::File(file.clone()));
    assert_eq!(loaded.config.common.database.pool.max_connections, 3);

    let partial = dir.join("orchestration-only.toml");
    fs::write(&partial, "[common]\n[orchestration]\n").expect("write");
    let loaded = ConfigLoader::builder()
        .env([("X", "y")])
        .file(&partial)
        .load_orchestration()
        .expect("enough for orchestration");
    assert_eq!(loaded.config.orchestration.shutdown_timeout_ms, 30_000);
    let err = ConfigLoader::builder()
        .env([("X", "y")])
        .file(&partial)
        .load_worker()
        .expect_err("no [worker]");
    let ConfigError::Invalid { errors, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(
        errors[0].kind,
        ProblemKind::MissingSection {
            section: "worker".to_owned()
        }
    );
}

#[test]
fn each_service_reads_only_its_own_files_and_needs_its_section() {
    let root = minimal_root(
        "per-service",
        &[(
            "base/orchestration.toml",
            "[orchestration]\nshutdown_timeout_ms = \"broken\"\n",
        )],
    );
    let worker = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&root)
        .load_worker()
        .expect("orchestration.toml is not read");
    assert_eq!(worker.config.worker.worker_id, "worker-default-001");
    assert!(
        ConfigLoader::builder()
            .env([("X", "y")])
            .root(&root)
            .load_orchestration()
            .is_err()
    );

    fs::remove_file(root.join("base/worker.toml")).expect("remove");
    let err = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&root)
        .load_worker()
        .expect_err("worker section missing");
    let shown = err
        .to_string()
        .replace(&root.display().to_string(), "<root>");
    insta::assert_snapshot!(shown);
}
