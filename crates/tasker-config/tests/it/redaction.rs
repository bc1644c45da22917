//! Secrets never appear in `Debug`, `Display`, errors or `show` output.

use tasker_config::{ConfigError, ConfigLoader};

use crate::support::minimal_root;

const PASSWORD: &str = "hunter2-pw";
const TOKEN: &str = "tok-9f8e7d";
const API_KEY: &str = "key-abc123";

fn secret_free(text: &str) {
    for secret in [PASSWORD, TOKEN, API_KEY] {
        assert!(!text.contains(secret), "secret {secret} leaked in:\n{text}");
    }
}

#[test]
fn secrets_are_redacted_in_debug_display_show_and_errors() {
    let root = minimal_root(
        "redaction",
        &[
            (
                "base/common.toml",
                "[common.queues.rabbitmq]\nurl = \"amqps://app:${MQ_PASSWORD}@mq:5671/%2F\"\n\
                 [common.cache.redis]\nurl = \"rediss://:${REDIS_PASSWORD}@cache:6380/0\"\n",
            ),
            (
                "base/orchestration.toml",
                "[orchestration.web.auth]\napi_keys_enabled = true\n\
                 [[orchestration.web.auth.api_keys]]\nkey = \"${API_KEY}\"\npermissions = [\"tasks:read\"]\n",
            ),
            (
                "base/worker.toml",
                "[worker.orchestration_client.auth]\nmethod = \"bearer\"\ntoken = \"${TOKEN}\"\n",
            ),
        ],
    );
    let database_url =
        format!("postgresql://tasker:{PASSWORD}@db:5432/tasker?sslpassword={PASSWORD}");
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("MQ_PASSWORD", PASSWORD),
        ("REDIS_PASSWORD", PASSWORD),
        ("API_KEY", API_KEY),
        ("TOKEN", TOKEN),
    ];
    let loaded = ConfigLoader::builder()
        .env(env)
        .root(&root)
        .load()
        .expect("loads");
    let config = &loaded.config;
    assert_eq!(config.common.database.url.expose(), database_url);
    assert_eq!(
        config.worker.orchestration_client.auth.token.expose(),
        TOKEN
    );
    assert_eq!(
        config.orchestration.web.auth.api_keys[0].key.expose(),
        API_KEY
    );

    secret_free(&format!("{config:?}"));
    secret_free(&format!("{config:#?}"));
    secret_free(&format!("{loaded:?}"));
    secret_free(&config.common.database.url.to_string());
    secret_free(&config.common.queues.rabbitmq.url.to_string());
    let shown = loaded.show();
    secret_free(&shown);
    assert!(
        shown.contains("url = \"postgresql://tasker:***@db:5432/tasker?sslpassword=***\""),
        "{shown}"
    );
    assert!(shown.contains("token = \"***\""), "{shown}");

    // The same secrets in values that fail validation.
    let broken = minimal_root(
        "redaction-broken",
        &[
            (
                "base/common.toml",
                &format!("[common.database]\nurl = \"mysql://tasker:{PASSWORD}@db/tasker\"\n"),
            ),
            (
                "base/worker.toml",
                &format!("[worker.orchestration_client.auth]\ntoken = {}\n", 42),
            ),
        ],
    );
    let err = ConfigLoader::builder()
        .env([("TASKER__WORKER__ORCHESTRATION_CLIENT__AUTH__KEY", API_KEY)])
        .root(&broken)
        .load()
        .expect_err("invalid");
    secret_free(&err.to_string());
    secret_free(&format!("{err:?}"));
    let ConfigError::Invalid { errors, .. } = err else {
        panic!("unexpected")
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn toml_syntax_errors_do_not_quote_the_line() {
    let root = minimal_root(
        "syntax",
        &[(
            "base/common.toml",
            &format!("[common.database]\nurl = \"postgres://u:{PASSWORD}@db\n"),
        )],
    );
    let err = ConfigLoader::builder()
        .env([("X", "y")])
        .root(&root)
        .load()
        .expect_err("bad TOML");
    let shown = format!("{err} {err:?}");
    secret_free(&shown);
    assert!(
        matches!(err, ConfigError::Parse { ref error, .. } if error.line == 2),
        "{shown}"
    );
    // The syntax error is in the message once, not also a source a chain printer repeats.
    assert!(std::error::Error::source(&err).is_none(), "{shown}");
}
