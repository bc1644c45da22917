//! Tests for the YAML reader helpers.

use super::*;

#[test]
fn paths_render_like_yaml_paths() {
    let root = Path::Root;
    let steps = root.key("steps");
    let step = steps.index(3);
    let deps = step.key("dependencies");
    assert_eq!(deps.index(1).render(), "steps[3].dependencies[1]");
    let environments = root.key("environments");
    assert_eq!(
        environments.key("my env").key("steps").render(),
        "environments[\"my env\"].steps"
    );
    assert_eq!(root.render(), "");
}

#[test]
fn values_render_compactly() {
    let parsed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str("{a: [1, 'two', null], b: true}").expect("yaml");
    let value = Value::borrowed(&parsed);
    assert_eq!(
        render_value(&value),
        "{\"a\": [1, \"two\", null], \"b\": true}"
    );
    let long = Value::String("x".repeat(100).into());
    let rendered = render_value(&long);
    assert_eq!(rendered.chars().count(), RENDER_BUDGET + 1);
    assert!(rendered.ends_with('…'));
}

#[test]
fn suggestions_pick_the_closest_candidate() {
    let candidates = ["validate_order", "process_payment", "ship"];
    assert_eq!(
        did_you_mean("validate_ordr", candidates),
        Some("validate_order")
    );
    assert_eq!(
        did_you_mean("proces_payment", candidates),
        Some("process_payment")
    );
    assert_eq!(did_you_mean("zzz", candidates), None);
}

#[test]
fn wrong_types_get_useful_hints() {
    let cases = [
        ("'30'", "an integer", Some("write 30 without quotes")),
        ("'yes'", "a boolean", Some("write true without quotes")),
        (
            "42",
            "a string",
            Some("quote the value to make it a string"),
        ),
        ("[1]", "a string", None),
    ];
    for (yaml, expected, hint) in cases {
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("yaml");
        let value = Value::borrowed(&parsed);
        let mut cx = Cx::new(Strictness::Strict);
        cx.wrong_type(&Path::Root, &value, expected);
        let problem = &cx.problems[0];
        assert_eq!(problem.hint.as_deref(), hint, "{yaml}");
        assert!(
            problem
                .message
                .starts_with(&format!("expected {expected}, found")),
            "{}",
            problem.message
        );
    }
}

#[test]
fn json_conversion_reports_what_json_cannot_hold() {
    let parsed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str("{ok: 1, 2: two, nan: .nan, tagged: !foo bar}").expect("yaml");
    let value = Value::borrowed(&parsed);
    let mut cx = Cx::new(Strictness::Strict);
    assert!(to_json(&mut cx, &Path::Root.key("input_schema"), &value).is_none());
    let messages: Vec<String> = cx
        .problems
        .iter()
        .map(|problem| format!("{}: {}", problem.path, problem.message))
        .collect();
    assert_eq!(
        messages,
        [
            "input_schema: expected a string key, found an integer",
            "input_schema.nan: JSON cannot represent NaN or infinity",
            "input_schema.tagged: YAML tags such as `!foo` are not supported",
        ]
    );
}
