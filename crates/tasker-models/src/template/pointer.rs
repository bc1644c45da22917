//! Turning a JSON pointer inside an embedded JSON document into YAML path segments, so a
//! problem inside `input_schema` is reported as `input_schema.properties.amount.type`.

use super::reader::push_key;

/// Appends the segments of `pointer` (RFC 6901) to the rendered YAML path `base`, using
/// `document` to tell array indices from object keys.
pub(crate) fn append_pointer(base: &str, document: &serde_json::Value, pointer: &str) -> String {
    let mut out = base.to_owned();
    if pointer.is_empty() {
        return out;
    }
    let mut current = Some(document);
    for raw in pointer.trim_start_matches('/').split('/') {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match current {
            Some(serde_json::Value::Array(items)) => {
                if let Ok(index) = segment.parse::<usize>() {
                    out.push_str(&format!("[{index}]"));
                    current = items.get(index);
                    continue;
                }
                push_key(&mut out, &segment);
                current = None;
            }
            Some(serde_json::Value::Object(map)) => {
                push_key(&mut out, &segment);
                current = map.get(&segment);
            }
            _ => {
                push_key(&mut out, &segment);
                current = None;
            }
        }
    }
    out
}
