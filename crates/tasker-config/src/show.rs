//! `Loaded::show`: the merged configuration, redacted, with the layer of every key.

use std::path::Path;

use crate::{
    loader::{ConfigSource, Loaded},
    provenance::{Layer, Origin},
    schema::{FieldKind, SectionMeta},
    validate::redact,
};

/// Comments start at this column when the `key = value` part is shorter.
const COMMENT_COLUMN: usize = 48;

impl<C> Loaded<C> {
    /// The merged, validated configuration as TOML, secrets redacted, each key followed by
    /// a comment naming the layer that set it (and the placeholders it expanded).
    pub fn show(&self) -> String {
        let mut out = format!(
            "# source: {}\n# environment: {}\n",
            self.source, self.environment
        );
        let root = match &self.source {
            ConfigSource::Root(root) => Some(root.as_path()),
            ConfigSource::File(_) | ConfigSource::Compiled => None,
        };
        for field in self.meta.fields {
            let FieldKind::Section(meta) = (field.kind)() else {
                continue;
            };
            if let Some(values) = self.resolved.get(field.key).and_then(toml::Value::as_table) {
                self.section(&mut out, field.key, meta, values, root);
            }
        }
        out
    }

    fn section(
        &self,
        out: &mut String,
        path: &str,
        meta: &'static SectionMeta,
        values: &toml::Table,
        root: Option<&Path>,
    ) {
        out.push_str(&format!("\n[{path}]\n"));
        let mut sections = Vec::new();
        for field in meta.fields {
            let Some(value) = values.get(field.key) else {
                continue;
            };
            let kind = (field.kind)();
            if let (FieldKind::Section(sub), Some(table)) = (kind, value.as_table()) {
                sections.push((field.key, sub, table));
                continue;
            }
            let key = format!("{path}.{}", field.key);
            let line = format!("{} = {}", field.key, redact(value, kind, field.secrecy));
            let origin = self.provenance.origin(&key).map_or_else(
                || "compiled default".to_owned(),
                |origin| describe(origin, root),
            );
            let pad = COMMENT_COLUMN.saturating_sub(line.chars().count()).max(1);
            out.push_str(&format!("{line}{:pad$}# {origin}\n", ""));
        }
        for (key, sub, table) in sections {
            self.section(out, &format!("{path}.{key}"), sub, table, root);
        }
    }
}

fn describe(origin: &Origin, root: Option<&Path>) -> String {
    let mut text = match (&origin.layer, root) {
        (Layer::File(path), Some(root)) => match path.strip_prefix(root) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        },
        (layer, _) => layer.to_string(),
    };
    for used in &origin.placeholders {
        text.push_str(&format!("; {used}"));
    }
    text
}
