//! JSON Schemas embedded in templates (`input_schema`, `result_schema`, event schemas):
//! checked against their meta-schema and compiled once, without any network or file access.

use std::fmt;
use std::sync::Arc;

use jsonschema::{Draft, Validator};

/// A JSON Schema that has been checked to be valid (serialized as the schema itself).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct JsonSchema(serde_json::Value);

impl JsonSchema {
    /// A schema that accepts everything (`true`): the placeholder of a step event whose schema
    /// is resolved from the template's `domain_events`.
    pub(crate) fn accept_all() -> Self {
        Self(serde_json::Value::Bool(true))
    }

    /// The schema document.
    #[must_use]
    pub fn as_value(&self) -> &serde_json::Value {
        &self.0
    }
}

/// A schema compiled for validating instances; cheap to clone.
#[derive(Clone)]
pub struct CompiledSchema {
    schema: JsonSchema,
    validator: Arc<Validator>,
}

impl CompiledSchema {
    /// The schema document.
    #[must_use]
    pub fn schema(&self) -> &JsonSchema {
        &self.schema
    }

    /// Every violation of the schema by `instance`, each with the JSON pointer of the offending
    /// part of the instance (empty for the instance itself) and a message.
    #[must_use]
    pub fn violations(&self, instance: &serde_json::Value) -> Vec<SchemaViolation> {
        self.validator
            .iter_errors(instance)
            .map(|error| SchemaViolation {
                pointer: error.instance_path().as_str().to_owned(),
                schema_pointer: error.schema_path().as_str().to_owned(),
                message: error.to_string(),
            })
            .collect()
    }

    /// Checks `value` against its meta-schema (every issue at once) and compiles it, the way
    /// template schemas are: the draft from `$schema` (2020-12 without one), `format`
    /// asserted, external references refused.
    ///
    /// # Errors
    /// Every way `value` is not a valid JSON Schema, each with a JSON pointer into it.
    pub fn compile(value: &serde_json::Value) -> Result<Self, Vec<SchemaIssue>> {
        compile(value)
    }

    /// Whether `instance` satisfies the schema.
    #[must_use]
    pub fn is_valid(&self, instance: &serde_json::Value) -> bool {
        self.validator.is_valid(instance)
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PartialEq for CompiledSchema {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
    }
}

/// One way an instance breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchemaViolation {
    /// JSON pointer into the instance (`/customer/email`), empty for the whole instance.
    pub pointer: String,
    /// JSON pointer of the schema keyword that failed (`/properties/customer/required`).
    pub schema_pointer: String,
    /// What is wrong.
    pub message: String,
}

/// One reason a schema is not a valid JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    /// JSON pointer into the schema document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// Refuses every external reference: templates are checked offline and deterministically.
#[derive(Debug)]
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(
            format!("external schema {uri} is not fetched; inline it or use a local $defs entry")
                .into(),
        )
    }
}

/// Checks a schema against its meta-schema (reporting every violation) and compiles it.
///
/// The draft comes from `$schema`; without one, draft 2020-12 applies. `format` is asserted,
/// not just annotated, so `format: uuid` in an input schema really checks UUIDs.
pub(crate) fn compile(value: &serde_json::Value) -> Result<CompiledSchema, Vec<SchemaIssue>> {
    if !(value.is_object() || value.is_boolean()) {
        return Err(vec![SchemaIssue {
            pointer: String::new(),
            message: "a JSON Schema must be a mapping (or a boolean)".to_owned(),
        }]);
    }
    let draft = Draft::default().detect(value);
    if matches!(draft, Draft::Unknown) {
        let uri = value
            .get("$schema")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        return Err(vec![SchemaIssue {
            pointer: "/$schema".to_owned(),
            message: format!(
                "unknown specification {uri:?}: use the meta-schema URI of draft 4, 6, 7, 2019-09 or 2020-12"
            ),
        }]);
    }
    let meta = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validator(),
        Draft::Draft6 => jsonschema::draft6::meta::validator(),
        Draft::Draft7 => jsonschema::draft7::meta::validator(),
        Draft::Draft201909 => jsonschema::draft201909::meta::validator(),
        _ => jsonschema::draft202012::meta::validator(),
    };
    let issues: Vec<SchemaIssue> = meta
        .iter_errors(value)
        .map(|error| SchemaIssue {
            pointer: error.instance_path().as_str().to_owned(),
            message: error.to_string(),
        })
        .collect();
    if !issues.is_empty() {
        return Err(issues);
    }
    jsonschema::options()
        .with_draft(draft)
        .with_retriever(NoRetrieval)
        .should_validate_formats(true)
        .build(value)
        .map(|validator| CompiledSchema {
            schema: JsonSchema(value.clone()),
            validator: Arc::new(validator),
        })
        .map_err(|error| {
            vec![SchemaIssue {
                pointer: error.instance_path().as_str().to_owned(),
                message: error.to_string(),
            }]
        })
}
