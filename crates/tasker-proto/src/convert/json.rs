//! JSON values, exact: 64-bit integers stay integers.

use serde_json::{Map, Number, Value};

use super::{ConvertError, Problem};
use crate::v1::{self, json::Kind};

/// The protobuf form of a JSON value.
pub fn json_to_proto(value: &Value) -> v1::Json {
    let kind = match value {
        Value::Null => Kind::Null(prost_types::NullValue::NullValue.into()),
        Value::Bool(b) => Kind::Boolean(*b),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Kind::Integer(integer)
            } else if let Some(unsigned) = number.as_u64() {
                Kind::Unsigned(unsigned)
            } else {
                // serde_json numbers without a 64-bit integer form are finite floats.
                Kind::Number(number.as_f64().unwrap_or_default())
            }
        }
        Value::String(text) => Kind::Text(text.clone()),
        Value::Array(items) => Kind::Array(v1::JsonArray {
            items: items.iter().map(json_to_proto).collect(),
        }),
        Value::Object(fields) => Kind::Object(object_to_proto(fields)),
    };
    v1::Json { kind: Some(kind) }
}

/// The protobuf form of a JSON object.
pub fn object_to_proto(fields: &Map<String, Value>) -> v1::JsonObject {
    v1::JsonObject {
        fields: fields
            .iter()
            .map(|(key, value)| (key.clone(), json_to_proto(value)))
            .collect(),
    }
}

/// The JSON value of its protobuf form. `field` names it in errors.
pub fn json_from_proto(json: &v1::Json, field: &str) -> Result<Value, ConvertError> {
    let Some(kind) = &json.kind else {
        return Err(ConvertError::new(field, Problem::Missing));
    };
    Ok(match kind {
        Kind::Null(_) => Value::Null,
        Kind::Boolean(b) => Value::Bool(*b),
        Kind::Integer(integer) => Value::from(*integer),
        Kind::Unsigned(unsigned) => Value::from(*unsigned),
        Kind::Number(number) => Value::Number(
            Number::from_f64(*number)
                .ok_or_else(|| ConvertError::new(field, Problem::NonFinite(*number)))?,
        ),
        Kind::Text(text) => Value::String(text.clone()),
        Kind::Array(array) => Value::Array(
            array
                .items
                .iter()
                .enumerate()
                .map(|(index, item)| json_from_proto(item, &format!("{field}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Object(object) => Value::Object(object_from_proto(object, field)?),
    })
}

/// The JSON object of its protobuf form.
pub fn object_from_proto(
    object: &v1::JsonObject,
    field: &str,
) -> Result<Map<String, Value>, ConvertError> {
    let mut fields = Map::new();
    // Sorted, so the first error reported does not depend on the map's hash order.
    let mut keys: Vec<&String> = object.fields.keys().collect();
    keys.sort();
    for key in keys {
        let value = &object.fields[key];
        fields.insert(
            key.clone(),
            json_from_proto(value, &format!("{field}.{key}"))?,
        );
    }
    Ok(fields)
}
