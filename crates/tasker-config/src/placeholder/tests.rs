//! Tests of `${VAR}` expansion.

use super::{PlaceholderError, expand};
use crate::provenance::Resolution;

fn env(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".to_owned()),
        "EMPTY" => Some(String::new()),
        "URL" => Some("postgresql://u:p@[::1]:5432/db?sslmode=require".to_owned()),
        "BRACES" => Some("${NOT_EXPANDED}".to_owned()),
        _ => None,
    }
}

fn check(input: &str, expected: Result<&str, PlaceholderError>) {
    let actual = expand(input, env).map(|e| e.value);
    assert_eq!(
        actual.as_deref().map_err(Clone::clone),
        expected,
        "input: {input}"
    );
}

#[test]
fn expansion_table() {
    check("plain", Ok("plain"));
    check("${SET}", Ok("value"));
    check("a-${SET}-b", Ok("a-value-b"));
    check("${SET}${SET}", Ok("valuevalue"));
    check("${UNSET:-fallback}", Ok("fallback"));
    check("${SET:-fallback}", Ok("value"));
    check("${EMPTY:-fallback}", Ok("fallback"));
    check("${EMPTY}", Ok(""));
    check("${UNSET:-}", Ok(""));
    check(
        "${UNSET:-postgresql://u:p@[::1]:5432/db}",
        Ok("postgresql://u:p@[::1]:5432/db"),
    );
    check("${UNSET:-a:-b}", Ok("a:-b"));
    check(
        "${URL}",
        Ok("postgresql://u:p@[::1]:5432/db?sslmode=require"),
    );
    check("${BRACES}", Ok("${NOT_EXPANDED}"));
    check("$${SET}", Ok("${SET}"));
    check("cost: $5", Ok("cost: $5"));
    check("trailing $", Ok("trailing $"));
    check(
        "${UNSET}",
        Err(PlaceholderError::Unset {
            variable: "UNSET".to_owned(),
        }),
    );
    check("${SET", Err(PlaceholderError::Unterminated));
    check(
        "${}",
        Err(PlaceholderError::InvalidName {
            name: String::new(),
        }),
    );
    check(
        "${1ABC}",
        Err(PlaceholderError::InvalidName {
            name: "1ABC".to_owned(),
        }),
    );
    check(
        "${A B}",
        Err(PlaceholderError::InvalidName {
            name: "A B".to_owned(),
        }),
    );
}

#[test]
fn uses_record_each_variable_and_how_it_resolved() {
    let expanded = expand("${SET}/${UNSET:-x}", env).expect("expands");
    let uses: Vec<(&str, Resolution)> = expanded
        .uses
        .iter()
        .map(|u| (u.variable.as_str(), u.resolution))
        .collect();
    assert_eq!(
        uses,
        [
            ("SET", Resolution::FromEnvironment),
            ("UNSET", Resolution::Default)
        ]
    );
}
