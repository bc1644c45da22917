//! Tests for URL parsing and redaction.

use super::*;

#[test]
fn redacts_passwords_everywhere() {
    let cases = [
        (
            "postgres://user:s3cret@db:5432/tasker",
            "postgres://user:***@db:5432/tasker",
        ),
        ("postgres://user@db/tasker", "postgres://user@db/tasker"),
        (
            "postgresql://db/tasker?user=u&password=s3cret",
            "postgresql://db/tasker?user=u&password=***",
        ),
        (
            "postgres://user:s3cret@[::1]:5432/x",
            "postgres://user:***@[::1]:5432/x",
        ),
        ("not a url s3cret", "<unparseable>"),
        ("postgres://u:s3cret@host:notaport/db", "postgres://…"),
    ];
    for (input, expected) in cases {
        let redacted = redact_url(input);
        assert_eq!(redacted, expected, "input {input}");
        assert!(!redacted.contains("s3cret"));
    }
}

#[test]
fn parse_errors_never_contain_the_password() {
    for input in [
        "postgres://u:s3cret@host:notaport/db",
        "mysql://u:s3cret@host/db",
        "s3cret",
    ] {
        let err = parse_url(input).expect_err(input);
        let message = err.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    }
}

#[test]
fn target_names_host_port_and_database() {
    let options = parse_url("postgres://u:pw@db.example:6543/tasker_test").unwrap();
    let target = DatabaseTarget::from_options(&options);
    assert_eq!(
        target.to_string(),
        "database `tasker_test` on db.example:6543"
    );
    let options = parse_url("postgres://alice@localhost").unwrap();
    assert_eq!(DatabaseTarget::from_options(&options).database, "alice");
}

#[test]
fn scrubs_encoded_and_decoded_passwords() {
    let url = "postgres://u:p%40ss@db/x";
    assert_eq!(
        scrub_password("auth failed for p@ss and p%40ss", url),
        "auth failed for *** and ***"
    );
    assert_eq!(
        scrub_password("nothing to hide", "postgres://u@db/x"),
        "nothing to hide"
    );
}
