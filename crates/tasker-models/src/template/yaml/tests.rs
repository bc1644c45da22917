//! Tests of the fast YAML reader: hand-picked documents it must accept (with the value
//! `serde_yaml_ng` gives) or decline, every fixture file, and differential property tests
//! (`differential.rs`).

mod differential;

use std::fs;
use std::path::{Path, PathBuf};

use super::parse;
use crate::template::load::parse_yaml_with_serde;
use crate::template::value::Value;

/// Structural equality that, unlike `Value`'s `PartialEq`, also compares number
/// representation (integer or float, and the float's bits).
pub(super) fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => {
            x.as_u64() == y.as_u64()
                && x.as_i64() == y.as_i64()
                && x.is_f64() == y.is_f64()
                && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Tagged(x), Value::Tagged(y)) => x.tag == y.tag && same(&x.value, &y.value),
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => false,
    }
}

/// If the fast reader accepts `text`, `serde_yaml_ng` must accept it with the same value.
/// Returns whether the fast reader accepted.
pub(super) fn agrees(text: &str) -> Result<bool, String> {
    let Some(fast) = parse(text) else {
        return Ok(false);
    };
    let slow = parse_yaml_with_serde(text);
    match slow.as_ref().map(Value::borrowed) {
        Ok(slow) if same(&fast, &slow) => Ok(true),
        Ok(slow) => Err(format!(
            "values differ for {text:?}:\n fast: {fast:?}\n serde_yaml_ng: {slow:?}"
        )),
        Err(error) => Err(format!(
            "fast reader accepted {text:?} as {fast:?}, serde_yaml_ng refused it: {error:?}"
        )),
    }
}

#[track_caller]
fn accepts(text: &str) {
    assert_eq!(
        agrees(text),
        Ok(true),
        "the fast reader should accept {text:?}"
    );
}

#[track_caller]
fn declines(text: &str) {
    assert!(
        parse(text).is_none(),
        "the fast reader should decline {text:?}, gave {:?}",
        parse(text)
    );
}

#[test]
fn accepts_template_shapes() {
    accepts(
        "# leading comment\n---\nname: layered   # trailing comment\nnamespace_name: bench\n\
         version: 1.0.0\nsteps:\n  - name: s_0_0\n    handler: {callable: Bench::Handler}\n\
         \n    # comment between keys\n    dependencies: [s_a, s_b]\n  - name: s_0_1\n\
         \x20   handler:\n      callable: 'Bench::Other'\n      initialization:\n\
         \x20       url: http://localhost:8080/x\n        threshold: 0.8\n        limit: 5000\n\
         \x20       flags: [true, false, null]\n    dependencies:\n    - s_0_0\n    retry:\n",
    );
    accepts("steps:\n- name: a\n  dependencies:\n  - b\n- name: b\n");
    accepts("-   name: wide\n    handler: x\n-\n  - nested\n- \n");
    accepts("a:\n  b:\n    c:\n      - [x]\n      -\n        - z\n");
    accepts("key:\nother: value\n");
    // No final line break, blank lines holding spaces, comments at any indentation.
    accepts("a: 1");
    accepts("a:\n   \n  b: 1\n# outdented comment\n      # indented comment\n  c: [x]   \n");
    accepts("- a:\n  - x\n- b\n");
    accepts("- a:\n- x\n");
}

#[test]
fn accepts_scalars_with_the_value_serde_yaml_gives() {
    for text in [
        "a: 12\nb: -12\nc: 0\nd: 18446744073709551615\ne: -9223372036854775808\n",
        "a: 0.5\nb: -0.25\nc: 10.0\nd: 3.14159265358979323846\n",
        "a: 1.0.0\nb: 10.20.30.40\nc: 5 minutes\nd: 1 2\ne: 15_minutes\nf: 3rd\n",
        "a: null\nb: true\nc: false\nd: nullable\ne: truthy\nf: 'null'\ng: \"true\"\n",
        "a: $VAR\nb: ${VAR}\nc: /path/x\nd: (x)\ne: _x\nf: héllo\ng: 日本\n",
        "a: it's\nb: a \"quoted\" word\nc: a#b\nd: a, b [c] {d}\ne: x:y\nf: 'a # b'\n",
        "a: 'it''s'\nb: ''\nc: \"\"\nd: \"tab\\there\\nnew \\\"q\\\" \\\\ \\/ \\x41 \\u00e9 \\U0001F600\"\n",
        "a: \"\\0\\a\\b\\v\\f\\r\\e\\ \\N\\_\\L\\P\"\n",
        "1: one\n-2: minus two\ntrue: yes-ish\nnull: nothing\n\"quoted key\": v\n'single': v\n",
        "a: [1, -2, 0.5, x y, 'q', \"d\", [], {}, [[a]], {k: v, o: {m: [1]}}]\n",
        "a: {x: 1, 'y': 2, \"z\": 3, 1: 4}\nb: [a , b]\n",
        "- plain\n- 'single'\n- \"double\"\n- [flow]\n- {k: v}\n- k: v\n",
        "  indented: root\n  second: key\n",
    ] {
        accepts(text);
    }
}

#[test]
fn declines_what_is_outside_the_subset() {
    for text in [
        // Not a document we handle.
        "",
        "# only a comment\n",
        "---\n",
        "scalar\n",
        "[a, b]\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\n---\nb: 2\n",
        "a: 1\n...\n",
        "--- a: 1\n",
        // Anchors, aliases, tags, merge keys.
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: !custom x\n",
        "<<: {a: 1}\n",
        "'<<': {a: 1}\n",
        "a: {<<: {b: 1}}\n",
        // Block scalars, multi-line and complex keys.
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: first\n  continued\n",
        "a:\n  scalar on its own line\n",
        "a: 'open\n  quote'\n",
        "a: \"open\n  quote\"\n",
        "a: \"continued \\\n  line\"\n",
        "? complex\n: key\n",
        "a: [1,\n  2]\n",
        // Whitespace and characters.
        "a:\t1\n",
        "a: 1\r\n",
        "\u{FEFF}a: 1\n",
        "a: x\u{85}y\n",
        "a: x\u{2028}y\n",
        "a: \u{7}\n",
        // Structure.
        "a: 1\na: 2\n",
        "1: a\n'1': b\n0x1: c\n",
        "0.5: float keys\n",
        "a: {0.5: float keys}\n",
        "a: {x: 1, x: 2}\n",
        "a : 1\n",
        "\"a\" : 1\n",
        "a:1\n",
        "a: b: c\n",
        "a: b:\n",
        "- - a\n",
        "a: 1\n  b: 2\n",
        "a:\n  - x\n  y: 1\n",
        "- a\nb: 1\n",
        "a: - b\n",
        "a: [a, b,]\n",
        "a: [a, , b]\n",
        "a: {k}\n",
        "a: {k: }\n",
        "a: {k:v}\n",
        "a: [k: v]\n",
        "a: [x] y\n",
        "a: 'x' y\n",
        "a: 'x'# c\n",
        "a: [x # c]\n",
        "a: [x]# c\n",
        "a: [b[c]]\n",
        "a:b: c\n",
        "http://x: 1\n",
        // Scalars whose resolution is not ours to decide.
        "a: ~\n",
        "a: Null\n",
        "a: NULL\n",
        "a: True\n",
        "a: FALSE\n",
        "a: yes\n",
        "a: No\n",
        "a: on\n",
        "a: y\n",
        "a: 0x1f\n",
        "a: 0o7\n",
        "a: 0b11\n",
        "a: 1_000\n",
        "a: .inf\n",
        "a: -.inf\n",
        "a: .nan\n",
        "a: nan\n",
        "a: inf\n",
        "a: 1e3\n",
        "a: 1.5e3\n",
        "a: +1\n",
        "a: 007\n",
        "a: -0\n",
        "a: 1.\n",
        "a: .5\n",
        "a: 2024-01-01\n",
        "a: 12:30\n",
        "a: 18446744073709551616\n",
        "a: -9223372036854775809\n",
        "a: -foo\n",
        "a: '\n",
        "a: \"\\q\"\n",
        "a: \"\\ud800\"\n",
        "a: @x\n",
        "a: `x\n",
        "a: %x\n",
        "a: ?x\n",
        "a: =\n",
    ] {
        declines(text);
    }
}

#[test]
fn declines_keys_longer_than_libyaml_allows() {
    let long = "x".repeat(1100);
    for text in [
        format!("{long}: 1\n"),
        format!("\"{long}\": 1\n"),
        format!("'{long}': 1\n"),
        format!("- \"{long}\": 1\n"),
        format!("f: {{\"{long}\": 1}}\n"),
        format!("f: {{'{long}': 1}}\n"),
    ] {
        declines(&text);
        // serde_yaml_ng refuses them, so the loader reports its syntax error.
        assert!(serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text).is_err());
    }
    let fits = "x".repeat(500);
    accepts(&format!("\"{fits}\": 1\n"));
    accepts(&format!("f: {{'{fits}': 1}}\n"));
}

#[test]
fn duplicate_keys_decline_in_small_and_large_mappings() {
    for count in [3, 30] {
        let keys: Vec<String> = (0..count).map(|index| format!("k{index}")).collect();
        let block: String = keys.iter().map(|key| format!("{key}: 1\n")).collect();
        let flow = format!(
            "f: {{{}}}\n",
            keys.iter()
                .map(|key| format!("{key}: 1"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        accepts(&block);
        accepts(&flow);
        declines(&format!("{block}k1: 2\n"));
        declines(&format!("{block}\"k1\": 2\n"));
        declines(&flow.replace("k0:", "k1:"));
        let numbers: String = (0..count).map(|index| format!("{index}: v\n")).collect();
        accepts(&numbers);
        declines(&format!("{numbers}1: again\n"));
        accepts(&format!("{numbers}'1': a string\ntrue: t\nnull: v\n"));
        declines(&format!("{numbers}true: t\ntrue: t\n"));
    }
}

#[test]
fn declines_deep_nesting() {
    let mut text = String::new();
    for depth in 0..80 {
        text.push_str(&" ".repeat(depth));
        text.push_str("k:\n");
    }
    declines(&text);
    let flow = format!("a: {}{}\n", "[".repeat(80), "]".repeat(80));
    declines(&flow);
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if crate::template::is_template_file(&path) {
            out.push(path);
        }
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The predecessor's templates: every one the fast reader accepts gives serde_yaml_ng's value,
/// and it accepts all of them but the two that spell a description over several lines.
#[test]
fn reference_templates_take_the_fast_path() {
    let dir = manifest_dir().join("../../../shared/fixtures/reference/templates");
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    assert!(files.len() >= 30, "the reference fixtures are found");
    let mut declined = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).expect("fixture is readable");
        match agrees(&text) {
            Ok(true) => {}
            Ok(false) => declined.push(
                path.strip_prefix(&dir)
                    .unwrap_or(path)
                    .display()
                    .to_string(),
            ),
            Err(message) => panic!("{}: {message}", path.display()),
        }
    }
    assert_eq!(
        declined,
        [
            // A plain scalar continued on the next lines.
            "config-tasks/integration/diamond_workflow/1.0.0.yaml",
            // A folded block scalar (`description: >`).
            "rust/conditional_approval_rust.yaml",
        ]
    );
}

/// This crate's own fixtures (templates with mistakes): the same value or a decline.
#[test]
fn test_fixtures_agree() {
    let mut files = Vec::new();
    yaml_files(&manifest_dir().join("tests/fixtures"), &mut files);
    assert!(!files.is_empty());
    for path in &files {
        let text = fs::read_to_string(path).expect("fixture is readable");
        if let Err(message) = agrees(&text) {
            panic!("{}: {message}", path.display());
        }
    }
}
