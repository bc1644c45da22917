//! Tests for canonical JSON, including RFC 8785's number test vectors.

use serde_json::json;

use super::*;

fn double(x: f64) -> String {
    let mut out = String::new();
    write_double(x, &mut out);
    out
}

#[test]
fn numbers_follow_ecmascript_formatting() {
    // Test vectors from RFC 8785 appendix B and ECMA-262.
    let cases: &[(&str, &str)] = &[
        ("0", "0"),
        ("-0", "0"),
        ("1", "1"),
        ("-1.5", "-1.5"),
        ("4.50", "4.5"),
        ("2e-3", "0.002"),
        ("0.000001", "0.000001"),
        ("0.0000001", "1e-7"),
        ("0.000000000000000000000000001", "1e-27"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("1E30", "1e+30"),
        ("123456789012345680000", "123456789012345680000"),
        ("333333333.33333329", "333333333.3333333"),
        ("9007199254740992", "9007199254740992"),
        ("295147905179352830000", "295147905179352830000"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("-1.2345e-10", "-1.2345e-10"),
        ("0.1", "0.1"),
        ("0.3333333333333333", "0.3333333333333333"),
    ];
    for (input, expected) in cases {
        let parsed: f64 = input.parse().expect("valid float");
        assert_eq!(double(parsed), *expected, "formatting {input}");
    }
}

#[test]
fn integers_are_exact_even_beyond_two_to_the_53() {
    let value: Value = serde_json::from_str(
        "[9007199254740993, -9223372036854775808, 18446744073709551615, 0, -0]",
    )
    .expect("valid json");
    assert_eq!(
        canonical_json(&value),
        "[9007199254740993,-9223372036854775808,18446744073709551615,0,0]"
    );
}

#[test]
fn integral_floats_equal_integers() {
    let floats: Value = serde_json::from_str("[1.0, 1e2, -3.0e0, 2.50]").expect("valid json");
    let ints: Value = serde_json::from_str("[1, 100, -3, 2.5]").expect("valid json");
    assert_eq!(canonical_json(&floats), canonical_json(&ints));
    assert_eq!(canonical_json(&floats), "[1,100,-3,2.5]");
}

#[test]
fn keys_sort_recursively_and_arrays_keep_order() {
    let value = json!({"zebra": 1, "alpha": {"z": [3, 1, 2], "a": null}, "beta": [{"b": true, "a": false}]});
    assert_eq!(
        canonical_json(&value),
        r#"{"alpha":{"a":null,"z":[3,1,2]},"beta":[{"a":false,"b":true}],"zebra":1}"#
    );
}

#[test]
fn keys_sort_by_utf16_code_units() {
    // U+FB33 sorts after U+1F600 in UTF-16 (surrogate 0xD83D < 0xFB33) but before it in UTF-8.
    let value = json!({"\u{fb33}": 1, "\u{1f600}": 2, "a": 3});
    assert_eq!(
        canonical_json(&value),
        "{\"a\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}"
    );
}

#[test]
fn strings_escape_minimally() {
    let value = json!(
        "quote\" backslash\\ nl\n tab\t cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f} é \u{2028}"
    );
    assert_eq!(
        canonical_json(&value),
        "\"quote\\\" backslash\\\\ nl\\n tab\\t cr\\r bs\\b ff\\f nul\\u0000 us\\u001f del\u{7f} é \u{2028}\""
    );
}

#[test]
fn rfc_8785_example_object() {
    let value: Value = serde_json::from_str(
        r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#,
    )
    .expect("valid json");
    assert_eq!(
        canonical_json(&value),
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
}
