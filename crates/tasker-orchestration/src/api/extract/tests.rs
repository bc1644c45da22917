//! The JSON scan and the error pointers.

use super::*;

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let body = "[".repeat(100_000);
    let problem = parse_json::<serde_json::Value>(body.as_bytes()).expect_err("refused");
    assert_eq!(problem.kind(), ProblemKind::BadRequest);
    assert!(
        problem.detail().contains("64 levels"),
        "{}",
        problem.detail()
    );
    let fine = format!("{}1{}", "[".repeat(64), "]".repeat(64));
    assert!(parse_json::<serde_json::Value>(fine.as_bytes()).is_ok());
}

#[test]
fn brackets_inside_strings_do_not_count_and_nul_escapes_are_refused() {
    let text = format!("{{\"a\": \"{}\"}}", "[".repeat(1000));
    assert!(parse_json::<serde_json::Value>(text.as_bytes()).is_ok());
    let nul = br#"{"a": "x\u0000y"}"#;
    assert_eq!(
        parse_json::<serde_json::Value>(nul)
            .expect_err("nul")
            .kind(),
        ProblemKind::BadRequest
    );
    // An escaped backslash followed by `u0000` is text, not a NUL.
    assert!(parse_json::<serde_json::Value>(br#"{"a": "\\u0000"}"#).is_ok());
}

#[test]
fn wrong_shapes_are_422_with_a_pointer_and_syntax_errors_400() {
    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only the shape is checked")]
    struct Body {
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only the shape is checked")]
    struct Item {
        count: u32,
    }
    let problem =
        parse_json::<Body>(br#"{"items": [{"count": 1}, {"count": "x"}]}"#).expect_err("422");
    assert_eq!(problem.kind(), ProblemKind::Validation);
    assert_eq!(problem.errors()[0].pointer, "/items/1/count");
    let problem = parse_json::<Body>(b"{\"items\": [").expect_err("400");
    assert_eq!(problem.kind(), ProblemKind::BadRequest);
    let problem = parse_json::<Body>(b"\xff\xfe").expect_err("400");
    assert_eq!(problem.kind(), ProblemKind::BadRequest);
}
