//! Differential property tests against `serde_yaml_ng`: the fast reader never panics, and
//! whenever it accepts a document its value is exactly `serde_yaml_ng`'s.
//!
//! Three generators: template-shaped documents built only from constructs of the subset
//! (which the fast reader must accept), the same shapes salted with scalars, keys and layout
//! at and beyond the subset's edges, and YAML-ish token soup.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::super::parse;
use super::agrees;

/// A document tree with its layout choices.
#[derive(Debug, Clone)]
enum Node {
    /// A scalar as written, and whether a block-position occurrence gets a trailing comment.
    Scalar(String, bool),
    Map {
        entries: Vec<(String, Node)>,
        flow: bool,
        /// For a mapping that is a sequence item: written as `- key: value`.
        compact: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
        /// For a sequence that is a mapping value: written at the key's indentation.
        indentless: bool,
    },
}

/// Words YAML 1.1 or 1.2 give a meaning other than a string, which the subset leaves to
/// `serde_yaml_ng` (`null`, `true` and `false` excepted).
fn is_keyword(word: &str) -> bool {
    ["y", "n", "yes", "no", "on", "off", "inf", "infinity", "nan"].contains(&word)
}

/// Scalars of the subset, as written.
fn safe_scalar() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,10}".prop_filter("keyword", |word| !is_keyword(word)),
        "[A-Z][a-zA-Z]{0,6}::[A-Z][a-zA-Z]{0,6}",
        (0_u64..2_000_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0_u32..1000, 0_u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        (0_u32..20, 0_u32..20, 0_u32..20).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        Just("\"${SERVICE_URL}\"".to_owned()),
        Just("http://localhost:8080/a".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
        Just("héllo wörld".to_owned()),
        Just("/var/data".to_owned()),
        "[a-z]{1,6}( [a-z]{1,6}){1,3}",
        any::<String>().prop_map(|text| double_quote(&text)),
        "[ -~é→]{0,12}".prop_map(|text| single_quote(&text)),
    ]
    .boxed()
}

/// Scalars at and beyond the subset's edges; `serde_yaml_ng` decides what they mean.
fn edge_scalar() -> BoxedStrategy<String> {
    prop_oneof![
        safe_scalar(),
        prop::sample::select(vec![
            "~",
            "Null",
            "NULL",
            "True",
            "FALSE",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "0x1f",
            "0o17",
            "0b101",
            "-0x1f",
            "+12",
            "+0.5",
            "1_000",
            ".inf",
            "-.inf",
            ".NaN",
            "nan",
            "inf",
            "infinity",
            "1e3",
            "1.5E-3",
            "-1e400",
            "007",
            "-007",
            "-0",
            "0.",
            ".5",
            "1.",
            "-",
            "--",
            "---",
            "...",
            "12:30",
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            "1 2",
            "a: b",
            "a:b",
            "a #b",
            "a#b",
            "#",
            ":",
            "::",
            "&anchor x",
            "*alias",
            "!tag x",
            "!!str 1",
            "|",
            ">",
            "? x",
            "%x",
            "@x",
            "`x",
            "'",
            "\"",
            "[",
            "]",
            "{",
            "}",
            ",",
            "a, b",
            "<<",
            "=",
            "<",
            "a [b]",
            "http://x/y",
            "$",
            "(",
            "_",
            "\\",
            "é",
            "\u{A0}x",
            "x\u{A0}",
            "${X}",
            "a:,",
            "a:[",
            "a::b",
            "a: ",
            "x # y",
            "[a, b]",
            "{a: b}",
            "18446744073709551616",
            "-9223372036854775809",
            "99999999999999999999999",
            "0.1000000000000000055511151231257827",
            "\"\\q\"",
            "\"\\x4\"",
            "\"\\ud800\"",
            "\"\\U00110000\"",
            "'a''b'",
            "\"a\\\"b\"",
            "'unclosed",
            "\"unclosed",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

fn safe_key() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[a-z_][a-z0-9_]{0,8}".prop_filter("keyword", |word| !is_keyword(word)),
        1 => (0_u32..100).prop_map(|n| n.to_string()),
        1 => "[a-z]{1,5}".prop_map(|text| format!("\"{text} key\"")),
        1 => "[a-z]{1,5}".prop_map(|text| format!("'{text}'")),
    ]
    .boxed()
}

fn edge_key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => safe_key(),
        1 => edge_scalar(),
        1 => prop::sample::select(vec!["a ", "a:b", "\"<<\"", "true", "~", "-1", "1.5", "?"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

fn double_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            // Raw where libyaml reads it as printable (most of the time), escaped otherwise.
            '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') && u32::from(c) % 3 != 0 =>
            {
                out.push(c);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn tree(
    scalar: BoxedStrategy<String>,
    key: BoxedStrategy<String>,
    unique_keys: bool,
) -> impl Strategy<Value = Node> {
    let leaf =
        (scalar, prop::bool::weighted(0.2)).prop_map(|(text, comment)| Node::Scalar(text, comment));
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            (
                prop::collection::vec((key.clone(), inner.clone()), 0..6),
                prop::bool::weighted(0.2),
                any::<bool>(),
            )
                .prop_map(move |(mut entries, flow, compact)| {
                    if unique_keys {
                        let mut seen = std::collections::HashSet::new();
                        entries.retain(|(key, _)| {
                            seen.insert(key.trim_matches(['"', '\'']).to_owned())
                        });
                    }
                    Node::Map {
                        entries,
                        flow,
                        compact,
                    }
                }),
            (
                prop::collection::vec(inner, 0..6),
                prop::bool::weighted(0.2),
                any::<bool>(),
            )
                .prop_map(|(items, flow, indentless)| Node::Seq {
                    items,
                    flow,
                    indentless
                }),
        ]
    })
}

/// Layout of a whole document.
#[derive(Debug, Clone)]
struct Layout {
    /// Indentation of nested blocks.
    step: usize,
    /// Spaces between `-` and an item on its line.
    gap: usize,
    header: bool,
    comments: bool,
    /// Spaces at the ends of lines with a value.
    trailing: usize,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        1_usize..5,
        1_usize..4,
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0, 0, 1, 3]),
    )
        .prop_map(|(step, gap, header, comments, trailing)| Layout {
            step,
            gap,
            header,
            comments,
            trailing,
        })
}

fn render_document(root: &Node, layout: &Layout) -> String {
    let mut out = String::new();
    if layout.comments {
        out.push_str("# a template\n\n");
    }
    if layout.header {
        out.push_str("---\n");
    }
    match root {
        Node::Map { entries, .. } => render_map(entries, 0, layout, &mut out),
        Node::Seq { items, .. } => render_seq(items, 0, layout, &mut out),
        Node::Scalar(text, _) => {
            let _ = writeln!(out, "{text}");
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn render_flow(node: &Node, out: &mut String) {
    match node {
        Node::Scalar(text, _) => out.push_str(text),
        Node::Map { entries, .. } => {
            out.push('{');
            for (index, (key, value)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{key}: ");
                render_flow(value, out);
            }
            out.push('}');
        }
        Node::Seq { items, .. } => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                render_flow(item, out);
            }
            out.push(']');
        }
    }
}

fn is_inline(node: &Node) -> bool {
    match node {
        Node::Scalar(..) => true,
        Node::Map { entries, flow, .. } => *flow || entries.is_empty(),
        Node::Seq { items, flow, .. } => *flow || items.is_empty(),
    }
}

/// Writes the rest of a line after `key:` or `-`, and the lines of a nested block.
fn render_value(node: &Node, indent: usize, in_seq: bool, layout: &Layout, out: &mut String) {
    let gap = if in_seq { layout.gap } else { 1 };
    if is_inline(node) {
        pad(out, gap);
        render_flow(node, out);
        pad(out, layout.trailing);
        if matches!(node, Node::Scalar(_, true)) && layout.comments {
            out.push_str(" # note");
        }
        out.push('\n');
        return;
    }
    match node {
        Node::Map {
            entries, compact, ..
        } if in_seq && *compact => {
            // `- key: value`, the other keys at the column of the first.
            pad(out, gap);
            let column = indent + 1 + gap;
            let (first_key, first_value) = &entries[0];
            out.push_str(first_key);
            out.push(':');
            render_value(first_value, column, false, layout, out);
            render_map(&entries[1..], column, layout, out);
        }
        Node::Map { entries, .. } => {
            pad(out, layout.trailing);
            out.push('\n');
            render_map(entries, indent + layout.step, layout, out);
        }
        Node::Seq {
            items, indentless, ..
        } => {
            out.push('\n');
            let at = if *indentless && !in_seq {
                indent
            } else {
                indent + layout.step
            };
            render_seq(items, at, layout, out);
        }
        Node::Scalar(..) => {}
    }
}

fn render_map(entries: &[(String, Node)], indent: usize, layout: &Layout, out: &mut String) {
    for (index, (key, value)) in entries.iter().enumerate() {
        if layout.comments && index % 3 == 1 {
            pad(out, indent / 2);
            out.push_str("# between keys\n\n");
        }
        pad(out, indent);
        out.push_str(key);
        out.push(':');
        render_value(value, indent, false, layout, out);
    }
}

fn render_seq(items: &[Node], indent: usize, layout: &Layout, out: &mut String) {
    for item in items {
        pad(out, indent);
        out.push('-');
        render_value(item, indent, true, layout, out);
    }
}

/// A root collection with at least one entry.
fn root(node: Node) -> Node {
    match node {
        Node::Map { ref entries, .. } if !entries.is_empty() => node,
        Node::Seq { ref items, .. } if !items.is_empty() => node,
        other => Node::Map {
            entries: vec![("root".to_owned(), other)],
            flow: false,
            compact: false,
        },
    }
}

/// Lines of YAML-ish tokens, including every kind of thing the fast reader declines.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "- ", "-", "key", "other", "k", ": ", ":", " ", "  ", "[", "]", "{", "}", ", ", ",", "'q'",
        "'", "''", "\"d\\n\"", "\"", "\\", "#c", " # c", "&a ", "*a", "!t ", "!!str ", "|", ">",
        "? ", "1", "-1", "1.5", "0x1", "~", "true", "yes", "null", "---", "...", "<<", "\t", "\r",
        "é", "\u{85}", "\u{FEFF}", "x y", "%", "@", "`", "1.0.0", "_", "$", "/",
    ]);
    let line = (0_usize..9, prop::collection::vec(token, 0..8))
        .prop_map(|(indent, tokens)| format!("{}{}", " ".repeat(indent), tokens.concat()));
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// Lines shaped like `[indent][- ][key: ][value][ # comment]` with random indentation, so
/// that many documents are in the subset and the rest sit just outside it.
fn line_soup() -> impl Strategy<Value = String> {
    let value = prop::sample::select(vec![
        "",
        "x",
        "x y",
        "1",
        "-1",
        "0.5",
        "1.0.0",
        "null",
        "true",
        "'q'",
        "\"d\"",
        "[a, b]",
        "{a: 1}",
        "[]",
        "{}",
        "a:b",
        "a: b",
        "~",
        "yes",
        "&a x",
        "*a",
        "|",
        ">",
        "'open",
        "[a,",
        "Bench::Handler",
        "http://x",
        "a #b",
        "a#b",
        "- x",
        "? x",
        "!t x",
    ]);
    let line = (
        prop::sample::select(vec![0_usize, 0, 1, 2, 2, 3, 4, 4, 6, 8]),
        prop::bool::weighted(0.3),
        prop::option::weighted(
            0.7,
            prop::sample::select(vec!["a", "b", "c", "name", "'q'", "1"]),
        ),
        value,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(indent, item, key, value, comment)| {
            let mut line = " ".repeat(indent);
            if item {
                line.push_str("- ");
            }
            if let Some(key) = key {
                line.push_str(key);
                line.push(':');
                if !value.is_empty() {
                    line.push(' ');
                }
            }
            line.push_str(value);
            if comment {
                line.push_str(" # c");
            }
            line
        });
    prop::collection::vec(line, 1..12).prop_map(|lines| lines.join("\n") + "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Documents made only of the subset's constructs take the fast path, with serde_yaml_ng's
    /// value.
    #[test]
    fn subset_documents_are_accepted_with_serde_yaml_values(
        node in tree(safe_scalar(), safe_key(), true),
        layout in layout(),
    ) {
        let text = render_document(&root(node), &layout);
        prop_assert_eq!(agrees(&text), Ok(true), "{}", text);
    }

    /// Documents at the subset's edges: declined, or read exactly as serde_yaml_ng reads them.
    #[test]
    fn edge_documents_agree_with_serde_yaml_ng(
        node in tree(edge_scalar(), edge_key(), false),
        layout in layout(),
    ) {
        let text = render_document(&root(node), &layout);
        if let Err(message) = agrees(&text) {
            prop_assert!(false, "{}", message);
        }
    }

    /// Token soup: never a panic, and never a value serde_yaml_ng disagrees with.
    #[test]
    fn token_soup_agrees_with_serde_yaml_ng(text in token_soup()) {
        if let Err(message) = agrees(&text) {
            prop_assert!(false, "{}", message);
        }
    }

    /// Template-like lines at random indentation: never a value serde_yaml_ng disagrees with.
    #[test]
    fn line_soup_agrees_with_serde_yaml_ng(text in line_soup()) {
        if let Err(message) = agrees(&text) {
            prop_assert!(false, "{}", message);
        }
    }

    /// Arbitrary text: never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
        let _ = agrees(&text);
    }
}
