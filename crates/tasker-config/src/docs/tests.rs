//! Tests of the generated documentation.

use super::{base_file, configuration_markdown, default_tree, sections};

fn leaves(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => leaves(&format!("{prefix}.{key}"), inner, out),
            _ => out.push((prefix.trim_start_matches('.').to_owned(), key.clone())),
        }
    }
}

/// Every key of the compiled defaults has a row in the reference, under its table's heading,
/// and the reference has no row for a key that does not exist.
#[test]
fn reference_lists_every_key_and_only_those() {
    let markdown = configuration_markdown();
    let mut expected = Vec::new();
    leaves("", &default_tree(), &mut expected);
    expected.sort();
    let mut documented = Vec::new();
    let mut heading = String::new();
    for line in markdown.lines() {
        if line.starts_with('#') && line.contains('`') {
            heading = line.split('`').nth(1).unwrap_or_default().to_owned();
        } else if let Some(row) = line.strip_prefix("| `") {
            let key = row.split('`').next().unwrap_or_default();
            documented.push((heading.clone(), key.to_owned()));
        }
    }
    documented.sort();
    assert_eq!(documented, expected);
}

/// The generated base files parse back to exactly the compiled defaults.
#[test]
fn base_files_round_trip_to_the_defaults() {
    let defaults = default_tree();
    for section in sections() {
        let text = base_file(section).expect("known section");
        let parsed: toml::Table = toml::from_str(&text).expect("base file is valid TOML");
        assert_eq!(parsed.get(section), defaults.get(section), "{section}");
        assert_eq!(parsed.len(), 1, "{section}.toml defines only [{section}]");
    }
    assert_eq!(base_file("nope"), None);
}
