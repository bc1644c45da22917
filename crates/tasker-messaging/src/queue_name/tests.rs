//! Tests for queue-name validation and the queue-name functions.

use super::*;

#[test]
fn queue_name_rules() {
    let long_dlq = format!("{}_dlq", "a".repeat(43));
    let too_long_dlq = format!("{}_dlq", "a".repeat(44));
    let cases: Vec<(&str, Result<(), NameProblem>)> = vec![
        ("orders", Ok(())),
        ("worker_payments_queue", Ok(())),
        ("a1_b2", Ok(())),
        (&long_dlq, Ok(())),
        ("", Err(NameProblem::Empty)),
        ("Orders", Err(NameProblem::BadStart { found: 'O' })),
        ("1orders", Err(NameProblem::BadStart { found: '1' })),
        ("_orders", Err(NameProblem::BadStart { found: '_' })),
        (
            "orders-eu",
            Err(NameProblem::BadChar {
                found: '-',
                position: 6,
            }),
        ),
        (
            "ordErs",
            Err(NameProblem::BadChar {
                found: 'E',
                position: 3,
            }),
        ),
        (
            "q;drop",
            Err(NameProblem::BadChar {
                found: ';',
                position: 1,
            }),
        ),
        (
            "caf\u{e9}",
            Err(NameProblem::BadChar {
                found: '\u{e9}',
                position: 3,
            }),
        ),
        (
            &too_long_dlq,
            Err(NameProblem::TooLong { len: 48, max: 47 }),
        ),
    ];
    for (name, expected) in cases {
        let got = QueueName::new(name).map(|_| ()).map_err(|e| e.problem);
        assert_eq!(got, expected, "{name:?}");
    }
    let forty_four = "a".repeat(44);
    assert_eq!(
        QueueName::new(forty_four.clone()).unwrap_err().problem,
        NameProblem::TooLong { len: 44, max: 43 }
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

#[test]
fn namespace_rules() {
    assert!(Namespace::new("a".repeat(29)).is_ok());
    assert_eq!(
        Namespace::new("a".repeat(30)).unwrap_err().problem,
        NameProblem::TooLong { len: 30, max: 29 }
    );
    assert_eq!(
        Namespace::new("Payments").unwrap_err().problem,
        NameProblem::BadStart { found: 'P' }
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
        .chain(std::iter::once(
            Namespace::new("pay ments").unwrap_err().to_string(),
        ))
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
