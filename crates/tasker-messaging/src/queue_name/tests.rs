//! Tests for queue-name validation and the queue-name functions.

use super::*;

#[test]
fn queue_name_rules() {
    use tasker_models::names::Alphabet::Lowercase;

    let long_dlq = format!("{}_dlq", "a".repeat(43));
    let too_long_dlq = format!("{}_dlq", "a".repeat(44));
    let cases: Vec<(&str, Result<(), NameError>)> = vec![
        ("orders", Ok(())),
        ("worker_payments_queue", Ok(())),
        ("a1_b2", Ok(())),
        (&long_dlq, Ok(())),
        ("", Err(NameError::Empty)),
        (
            "Orders",
            Err(NameError::InvalidStart {
                found: 'O',
                alphabet: Lowercase,
            }),
        ),
        (
            "1orders",
            Err(NameError::InvalidStart {
                found: '1',
                alphabet: Lowercase,
            }),
        ),
        (
            "_orders",
            Err(NameError::InvalidStart {
                found: '_',
                alphabet: Lowercase,
            }),
        ),
        (
            "orders-eu",
            Err(NameError::InvalidChar {
                found: '-',
                position: 6,
                alphabet: Lowercase,
            }),
        ),
        (
            "ordErs",
            Err(NameError::InvalidChar {
                found: 'E',
                position: 3,
                alphabet: Lowercase,
            }),
        ),
        (
            "q;drop",
            Err(NameError::InvalidChar {
                found: ';',
                position: 1,
                alphabet: Lowercase,
            }),
        ),
        (
            "caf\u{e9}",
            Err(NameError::InvalidChar {
                found: '\u{e9}',
                position: 3,
                alphabet: Lowercase,
            }),
        ),
        (&too_long_dlq, Err(NameError::TooLong { len: 48, max: 47 })),
    ];
    for (name, expected) in cases {
        let got = QueueName::new(name).map(|_| ()).map_err(|e| e.problem);
        assert_eq!(got, expected, "{name:?}");
    }
    let forty_four = "a".repeat(44);
    assert_eq!(
        QueueName::new(forty_four.clone()).unwrap_err().problem,
        NameError::TooLong { len: 44, max: 43 }
    );
    assert!(QueueName::new("a".repeat(43)).is_ok());
}

#[test]
fn dead_letter_names() {
    let queue = QueueName::new("a".repeat(43)).unwrap();
    let dlq = queue.dead_letter().expect("an ordinary queue has a DLQ");
    assert_eq!(dlq.as_str().len(), 47);
    assert!(dlq.is_dead_letter());
    assert_eq!(dlq.dead_letter(), None);
    assert_eq!(
        QueueName::new(dlq.as_str()).unwrap(),
        dlq,
        "a DLQ name is itself valid"
    );
}

/// The shared table of namespace names (tasker-models' `tests/fixtures/namespace_names.txt`):
/// each name and whether the namespace rule accepts it.
fn namespace_cases() -> Vec<(String, bool)> {
    include_str!("../../../tasker-models/tests/fixtures/namespace_names.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (sign, name) = line.split_at(2);
            let name: String = serde_json::from_str(name).expect("the name is a JSON string");
            (name, sign == "+ ")
        })
        .collect()
}

/// A queue namespace is accepted exactly when the shared table says so, and every queue name
/// derived from an accepted one, dead-letter twins included, is a valid queue name.
#[test]
fn namespaces_follow_the_shared_table() {
    let cases = namespace_cases();
    assert!(cases.len() > 40, "the table is read");
    for (name, accepted) in cases {
        let namespace = Namespace::new(name.as_str());
        assert_eq!(namespace.is_ok(), accepted, "{name:?}");
        let Ok(namespace) = namespace else { continue };
        for queue in [worker_queue(&namespace), domain_events_queue(&namespace)] {
            let dlq = queue.dead_letter().expect("an ordinary queue has a DLQ");
            for name in [queue, dlq] {
                assert_eq!(QueueName::new(name.as_str()).as_ref(), Ok(&name));
            }
        }
    }
}

#[test]
fn namespace_rules() {
    assert!(Namespace::new("a".repeat(29)).is_ok());
    assert_eq!(
        Namespace::new("a".repeat(30)).unwrap_err().reason(),
        &NameError::TooLong { len: 30, max: 29 }
    );
    assert!(matches!(
        Namespace::new("Payments").unwrap_err().reason(),
        NameError::InvalidStart { found: 'P', .. }
    ));
    // A template's namespace is already a queue namespace: no second validation.
    let from_template: tasker_models::names::NamespaceName = "payments".parse().unwrap();
    assert_eq!(
        worker_queue(&from_template).as_str(),
        "worker_payments_queue"
    );
}

#[test]
fn derived_names() {
    let ns = Namespace::new("payments").unwrap();
    assert_eq!(worker_queue(&ns).as_str(), "worker_payments_queue");
    assert_eq!(domain_events_queue(&ns).as_str(), "payments_domain_events");
    assert_eq!(step_results_queue().as_str(), "orchestration_step_results");
    assert_eq!(
        task_requests_queue().as_str(),
        "orchestration_task_requests"
    );
    assert_eq!(
        task_finalizations_queue().as_str(),
        "orchestration_task_finalizations"
    );
    assert_eq!(
        domain_events_queue(&ns).dead_letter().unwrap().as_str(),
        "payments_domain_events_dlq"
    );
}

/// The longest namespace fits every pattern and its dead-letter twin.
#[test]
fn longest_namespace_fits_every_pattern() {
    let ns = Namespace::new("n".repeat(Namespace::MAX_LEN)).unwrap();
    for queue in [worker_queue(&ns), domain_events_queue(&ns)]
        .into_iter()
        .chain(orchestration_queues())
    {
        assert_eq!(QueueName::new(queue.as_str()).as_ref(), Ok(&queue));
        let dlq = queue.dead_letter().unwrap();
        assert_eq!(QueueName::new(dlq.as_str()).as_ref(), Ok(&dlq));
    }
}

#[test]
fn error_messages() {
    let messages: Vec<String> = ["", "Orders", "orders-eu", &"a".repeat(44)]
        .into_iter()
        .map(|name| QueueName::new(name).unwrap_err().to_string())
        .chain(["pay ments", "Payments2"].map(|name| Namespace::new(name).unwrap_err().to_string()))
        // As a caller reports it, through anyhow's chain printer: the reason appears once.
        .chain(std::iter::once(format!(
            "{:#}",
            anyhow::Error::new(Namespace::new("Payments2").unwrap_err())
                .context("template payments/charge:1.0.0 has no valid queue namespace")
        )))
        .collect();
    insta::assert_yaml_snapshot!(messages);
    // The problem is in the message once, not also a source a chain printer repeats.
    assert!(std::error::Error::source(&QueueName::new("Orders").unwrap_err()).is_none());
    assert!(std::error::Error::source(&Namespace::new("Orders").unwrap_err()).is_none());
}

proptest::proptest! {
    /// Whatever the input, a name is accepted exactly when it matches the rules, and an accepted
    /// name is safe as an SQL identifier suffix and an AMQP name.
    #[test]
    fn accepted_names_match_the_rules(
        name in proptest::prop_oneof!["\\PC{0,50}", "[a-z0-9_]{0,50}", "[a-zA-Z0-9_;-]{40,48}"]
    ) {
        let accepted = QueueName::new(name.clone()).is_ok();
        let limit = if name.ends_with("_dlq") { 47 } else { 43 };
        let expected = !name.is_empty()
            && name.len() <= limit
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        proptest::prop_assert_eq!(accepted, expected);
    }
}
