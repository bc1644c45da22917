//! Every validation rule, with a snapshot of its message.

use std::collections::BTreeMap;

use tasker_config::{ConfigError, ConfigLoader, Strictness};

use crate::support::minimal_root;

/// Loads a root made of `files` and returns every error and warning, rendered, with the
/// scratch directory replaced by `<root>`.
fn problems(name: &str, files: &[(&str, &str)]) -> Vec<String> {
    let root = minimal_root(name, files);
    let prefix = root.display().to_string();
    match ConfigLoader::builder()
        .env([("HOME", "/nowhere")])
        .root(&root)
        .load()
    {
        Ok(_) => vec!["no problems".to_owned()],
        Err(ConfigError::Invalid { errors, warnings }) => errors
            .iter()
            .map(|e| format!("error: {e}"))
            .chain(warnings.iter().map(|w| format!("warning: {w}")))
            .map(|line| line.replace(&prefix, "<root>"))
            .collect(),
        Err(other) => vec![format!("fatal: {other}").replace(&prefix, "<root>")],
    }
}

#[test]
fn each_rule_reports_source_key_value_rule_and_hint() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "range",
            &[(
                "base/common.toml",
                "[common.database.pool]\nmax_connections = 0\n",
            )],
        ),
        (
            "min_connections_at_most_max",
            &[(
                "base/common.toml",
                "[common.database.pool]\nmax_connections = 20\nmin_connections = 50\n",
            )],
        ),
        (
            "float_range",
            &[(
                "base/common.toml",
                "[common.backoff]\nbackoff_multiplier = 0.5\n",
            )],
        ),
        (
            "list_length",
            &[(
                "base/common.toml",
                "[common.backoff]\ndefault_backoff_seconds = []\n",
            )],
        ),
        (
            "base_backoff_at_most_max",
            &[(
                "base/common.toml",
                "[common.backoff]\nmax_backoff_seconds = 10\ndefault_backoff_seconds = [1, 30, 7200]\n",
            )],
        ),
        (
            "enum",
            &[(
                "base/common.toml",
                "[common.queues]\nbackend = \"kafka\"\n[common.cache]\nbackend = \"Redis\"\n",
            )],
        ),
        (
            "url_scheme",
            &[(
                "base/common.toml",
                "[common.database]\nurl = \"mysql://app:hunter2@db/tasker\"\n",
            )],
        ),
        (
            "url_port",
            &[(
                "base/common.toml",
                "[common.queues.rabbitmq]\nurl = \"amqp://app:hunter2@mq:port/%2F\"\n",
            )],
        ),
        (
            "bind_address",
            &[(
                "base/orchestration.toml",
                "[orchestration.web]\nbind_address = \"localhost:8080\"\n",
            )],
        ),
        (
            "bind_address_conflict",
            &[(
                "base/worker.toml",
                "[worker.web]\nbind_address = \"0.0.0.0:9000\"\n[worker.grpc]\nbind_address = \"0.0.0.0:9000\"\n",
            )],
        ),
        (
            "identifier",
            &[(
                "base/common.toml",
                "[common.queues.orchestration_queues]\nstep_results = \"Step-Results\"\n",
            )],
        ),
        (
            "empty",
            &[(
                "base/common.toml",
                "[common.system]\ndefault_dependent_system = \"\"\n",
            )],
        ),
        (
            "wrong_type",
            &[(
                "base/common.toml",
                "[common.database]\npool = 5\n[common.queues.pgmq]\npoll_interval_ms = \"500\"\n",
            )],
        ),
        (
            "queue_depth_order",
            &[(
                "base/common.toml",
                "[common.queues.pgmq.queue_depth_thresholds]\ncritical_threshold = 900\noverflow_threshold = 100\n",
            )],
        ),
        (
            "decision_point_warnings",
            &[(
                "base/orchestration.toml",
                "[orchestration.decision_points]\nwarn_threshold_depth = 30\n",
            )],
        ),
        (
            "load_shedding_order",
            &[(
                "base/worker.toml",
                "[worker.mpsc_channels.handler_dispatch.load_shedding]\nwarning_threshold_percent = 90.0\n",
            )],
        ),
        (
            "auth_requires_a_key",
            &[(
                "base/orchestration.toml",
                "[orchestration.web.auth]\nenabled = true\n",
            )],
        ),
        (
            "auth_jwks",
            &[(
                "base/orchestration.toml",
                "[orchestration.web.auth]\nenabled = true\njwt_verification_method = \"jwks\"\njwks_url = \"http://idp/jwks\"\n",
            )],
        ),
        (
            "api_keys",
            &[(
                "base/orchestration.toml",
                "[orchestration.web.auth]\napi_keys_enabled = true\n[[orchestration.web.auth.api_keys]]\nkey = \"\"\npermissions = [\"tasks:read\"]\n[[orchestration.web.auth.api_keys]]\nkey = \"k-123\"\nscope = \"all\"\n",
            )],
        ),
        (
            "grpc_tls",
            &[(
                "base/worker.toml",
                "[worker.grpc]\ntls_enabled = true\nkeepalive_timeout_seconds = 40\n",
            )],
        ),
        (
            "client_auth",
            &[(
                "base/worker.toml",
                "[worker.orchestration_client.auth]\nmethod = \"bearer\"\n",
            )],
        ),
        (
            "malformed_placeholder",
            &[(
                "base/common.toml",
                "[common.system]\ndefault_dependent_system = \"${UNCLOSED\"\n",
            )],
        ),
        (
            "unknown_keys",
            &[(
                "base/common.toml",
                "[common.database.pool]\nmax_conections = 5\n[common.databse]\nurl = \"postgres://x\"\n",
            )],
        ),
        ("unknown_file", &[("base/extras.toml", "[extras]\nx = 1\n")]),
        (
            "misplaced_key",
            &[("base/common.toml", "[worker]\nworker_id = \"w\"\n")],
        ),
    ];
    let mut all = BTreeMap::new();
    for (name, files) in cases {
        let found = problems(name, files);
        assert!(
            found
                .iter()
                .all(|p| p.contains("hint") || !p.contains("unknown")),
            "{found:?}"
        );
        all.insert(*name, found);
    }
    insta::assert_yaml_snapshot!(all);
}

#[test]
fn all_problems_are_reported_at_once() {
    let found = problems(
        "many",
        &[
            (
                "base/common.toml",
                "[common.database.pool]\nmax_lifetime_seconds = 0\nidle_timeout_seconds = 0\n",
            ),
            ("base/worker.toml", "[worker]\nworker_id = \"\"\n"),
        ],
    );
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn lenient_mode_turns_unknown_keys_into_warnings_only() {
    let root = minimal_root(
        "lenient",
        &[(
            "base/common.toml",
            "[common.database.pool]\nmax_conections = 5\nidle_timeout_seconds = 0\n",
        )],
    );
    let lenient = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&root)
        .strictness(Strictness::Lenient);
    let Err(ConfigError::Invalid { errors, warnings }) = lenient.load() else {
        panic!("range error remains")
    };
    assert_eq!((errors.len(), warnings.len()), (1, 1));
    let root = minimal_root(
        "lenient-ok",
        &[(
            "base/common.toml",
            "[common.database.pool]\nmax_conections = 5\n",
        )],
    );
    let loaded = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&root)
        .strictness(Strictness::Lenient)
        .load()
        .expect("unknown keys are warnings");
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn the_legacy_single_api_key_is_refused_with_a_hint_to_api_keys() {
    let found = problems(
        "legacy_api_key",
        &[(
            "base/orchestration.toml",
            "[orchestration.web.auth]\napi_key = \"secret-value\"\n",
        )],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("error:")
            && found[0].contains("orchestration.web.auth.api_key`")
            && found[0].contains("did you mean `orchestration.web.auth.api_keys`"),
        "{found:?}"
    );
    assert!(
        !found[0].contains("secret-value"),
        "the value is not echoed: {found:?}"
    );
}
