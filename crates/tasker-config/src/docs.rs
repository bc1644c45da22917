//! Documentation generated from the schema: `docs/configuration.md` and the commented
//! `config/tasker/base/*.toml` files. Both are rendered from the section definitions (doc
//! comments, types, rules and compiled defaults), so they cannot drift from the code.

use crate::{
    schema::{FieldKind, FieldMeta, SectionMeta},
    tasker::{RawTaskerConfig, TaskerConfig},
};

/// The compiled defaults as a TOML table.
pub(crate) fn default_tree() -> toml::Table {
    match toml::Value::try_from(RawTaskerConfig::default()) {
        Ok(toml::Value::Table(table)) => table,
        _ => unreachable!("raw defaults serialize to a table"),
    }
}

/// The section names of the complete configuration: `common`, `orchestration`, `worker`.
pub fn sections() -> Vec<&'static str> {
    TaskerConfig::meta().fields.iter().map(|f| f.key).collect()
}

/// `docs/configuration.md`: every key with its type, default, allowed values and description.
pub fn configuration_markdown() -> String {
    let defaults = default_tree();
    let mut out = String::from(HEADER);
    for field in TaskerConfig::meta().fields {
        let FieldKind::Section(meta) = (field.kind)() else {
            continue;
        };
        let value = defaults.get(field.key).and_then(toml::Value::as_table);
        markdown_section(&mut out, field.key, field.doc, meta, value, 2);
    }
    out
}

const HEADER: &str = "# Configuration reference

Generated from the schema in `crates/tasker-config` (doc comments, types, rules and defaults of
the section definitions). Tasker reads its configuration in layers, each overriding the one before:

1. the defaults compiled into `tasker-config` (listed below);
2. `config/tasker/base/<section>.toml`, then `config/tasker/environments/$TASKER_ENV/<section>.toml`
   (`TASKER_ENV` defaults to `development`), or the single pre-merged file named by
   `TASKER_CONFIG_PATH`;
3. environment variables `TASKER__<SECTION>__<KEY>...`: the dotted key in upper case with `__`
   between parts, e.g. `TASKER__COMMON__DATABASE__POOL__MAX_CONNECTIONS=40`. Values are parsed as
   the key's type; lists are written `[1, 2, 4]` or `1,2,4`.

The config root is `TASKER_CONFIG_ROOT`, else the nearest `config/tasker` above the working
directory, else none (compiled defaults only). Tables merge key by key; arrays and scalars are
replaced whole. String values may contain `${VAR}` or `${VAR:-default}` (the default applies when
`VAR` is unset or empty); `$${` is a literal `${`. Tables named `_docs` are ignored. Unknown keys
are errors (warnings in lenient mode). Secrets (URL passwords, tokens, keys) are redacted
wherever the configuration is displayed.

Check a configuration with `cargo xtask config check [--env E] [--root DIR] [--lenient]`; print
the merged result and where each value came from with `cargo xtask config show`.
";

fn markdown_section(
    out: &mut String,
    path: &str,
    doc: &[&str],
    meta: &'static SectionMeta,
    defaults: Option<&toml::Table>,
    depth: usize,
) {
    let hashes = "#".repeat(depth.min(6));
    out.push_str(&format!(
        "\n{hashes} `{path}`\n\n{} Type `{}`: {}\n",
        paragraph(doc),
        meta.name,
        paragraph(meta.doc)
    ));
    let leaves: Vec<&FieldMeta> = meta.fields.iter().filter(|f| !is_section(f)).collect();
    if !leaves.is_empty() {
        out.push_str("\n| Key | Type | Default | Allowed | Description |\n|---|---|---|---|---|\n");
        for field in leaves {
            let default = defaults
                .and_then(|d| d.get(field.key))
                .map_or_else(String::new, |v| format!("`{}`", inline(v)));
            let mut allowed: Vec<String> = field.rules.iter().map(|r| r.describe()).collect();
            allowed.extend((field.constraint)());
            let row = [
                format!("`{}`", field.key),
                (field.type_name)(),
                default,
                allowed.join("; "),
                field.description(),
            ];
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }
    for field in meta.fields.iter().filter(|f| is_section(f)) {
        let FieldKind::Section(sub) = (field.kind)() else {
            continue;
        };
        let sub_defaults = defaults
            .and_then(|d| d.get(field.key))
            .and_then(toml::Value::as_table);
        markdown_section(
            out,
            &format!("{path}.{}", field.key),
            field.doc,
            sub,
            sub_defaults,
            depth + 1,
        );
    }
}

/// The commented base file of `section` (`common`, `orchestration` or `worker`): every key
/// with its default and documentation, in schema order.
pub fn base_file(section: &str) -> Option<String> {
    let field = TaskerConfig::meta().field(section)?;
    let FieldKind::Section(meta) = (field.kind)() else {
        return None;
    };
    let defaults = default_tree();
    let values = defaults.get(section).and_then(toml::Value::as_table)?;
    let mut out = format!(
        "# Base configuration of `[{section}]`: the defaults of every environment.\n\
         #\n\
         # Generated from the schema in crates/tasker-config by `cargo xtask codegen`; edit the\n\
         # doc comments and defaults there, not here. Environment overrides belong in\n\
         # `environments/<env>/{section}.toml`. Reference: docs/configuration.md.\n"
    );
    toml_section(&mut out, section, meta.doc, meta, values);
    Some(out)
}

fn toml_section(
    out: &mut String,
    path: &str,
    doc: &[&str],
    meta: &'static SectionMeta,
    values: &toml::Table,
) {
    out.push('\n');
    for line in doc {
        out.push_str(&format!("#{line}\n"));
    }
    out.push_str(&format!("[{path}]\n"));
    for field in meta.fields.iter().filter(|f| !is_section(f)) {
        let Some(value) = values.get(field.key) else {
            continue;
        };
        for line in field.doc {
            out.push_str(&format!("#{line}\n"));
        }
        let mut allowed: Vec<String> = field.rules.iter().map(|r| r.describe()).collect();
        allowed.extend((field.constraint)());
        if !allowed.is_empty() {
            out.push_str(&format!("# Allowed: {}.\n", allowed.join("; ")));
        }
        out.push_str(&format!("{} = {}\n", field.key, inline(value)));
    }
    for field in meta.fields.iter().filter(|f| is_section(f)) {
        let FieldKind::Section(sub) = (field.kind)() else {
            continue;
        };
        let Some(sub_values) = values.get(field.key).and_then(toml::Value::as_table) else {
            continue;
        };
        toml_section(
            out,
            &format!("{path}.{}", field.key),
            field.doc,
            sub,
            sub_values,
        );
    }
}

fn is_section(field: &FieldMeta) -> bool {
    matches!((field.kind)(), FieldKind::Section(_))
}

fn paragraph(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// A TOML value on one line.
fn inline(value: &toml::Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests;
