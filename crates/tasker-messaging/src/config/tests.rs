//! Tests for the settings: parsing, backoff bounds and redaction.

use super::*;

#[test]
fn deployment_modes_round_trip() {
    for mode in [
        DeploymentMode::Polling,
        DeploymentMode::EventDriven,
        DeploymentMode::Hybrid,
    ] {
        assert_eq!(DeploymentMode::parse(mode.as_str()), Ok(mode));
    }
    assert_eq!(
        DeploymentMode::parse("push").unwrap_err().to_string(),
        "unknown deployment mode \"push\"; expected polling, event_driven or hybrid"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    for (attempt, base_ms) in [
        (0, 100),
        (1, 200),
        (2, 400),
        (3, 800),
        (4, 1000),
        (40, 1000),
    ] {
        let delay = backoff.delay(attempt);
        let base = Duration::from_millis(base_ms);
        assert!(
            delay <= base && delay >= base.mul_f64(0.75),
            "attempt {attempt}: {delay:?} not within 75-100 % of {base:?}"
        );
    }
}

#[test]
fn urls_are_redacted() {
    let cases = [
        (
            "amqp://guest:secret@host:5672/%2f",
            "amqp://guest:***@host:5672/%2f",
        ),
        ("amqp://user@host/vh", "amqp://user:***@host/vh"),
        ("amqp://host:5672", "amqp://host:5672"),
        ("not a url", "***"),
    ];
    for (url, expected) in cases {
        assert_eq!(redact_url(url), expected, "{url}");
    }
    let config = RabbitMqConfig {
        url: "amqp://guest:hunter2@host/%2f".to_owned(),
        ..RabbitMqConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));
}
