//! Problems found while loading a template: what, where (a YAML path), the offending value,
//! and a hint. Loading collects every problem instead of stopping at the first.

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Accepted, but probably not what the author meant.
    Warning,
    /// The template is rejected.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule a problem breaks. The kebab-case code ([`Rule::code`]) is stable, so tools can
/// match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The document is not a single YAML mapping (empty, several documents, a scalar...).
    Document,
    /// A value has the wrong type.
    Type,
    /// A required field is missing or null.
    Required,
    /// A key the format does not know (an error in strict mode, a warning in lenient mode).
    UnknownKey,
    /// A key spelled the predecessor's way (`retry.limit`, `depends_on`, `step_type`).
    Alias,
    /// A key given both under its alias and its canonical name.
    AliasConflict,
    /// A value outside a fixed set of choices.
    Choice,
    /// A number outside its allowed range.
    Range,
    /// A string that is empty or too long.
    Length,
    /// A name that breaks the identifier rule.
    Identifier,
    /// A version that is not a semantic version.
    Version,
    /// A value that must be a URL or a timestamp and is not.
    Format,
    /// Two steps with the same name.
    DuplicateStep,
    /// A dependency on a step that does not exist.
    UnknownDependency,
    /// A step that depends on itself.
    SelfDependency,
    /// The same dependency listed twice.
    DuplicateDependency,
    /// Steps that depend on each other in a circle.
    Cycle,
    /// A decision step without dependencies, or one nothing depends on.
    Decision,
    /// A deferred convergence step without declared parents.
    DeferredConvergence,
    /// Batch configuration that points at a missing or wrong-typed worker template, or batch
    /// steps that are not wired batchable → batch_worker.
    Batch,
    /// Retry settings that contradict each other or are out of bounds.
    Retry,
    /// An invalid JSON Schema.
    JsonSchema,
    /// An event name not in `namespace.action` form.
    EventName,
    /// An invalid event publisher name.
    Publisher,
    /// Two events with the same name where names must be unique.
    DuplicateEvent,
    /// An environment override that targets no step, or targets one twice.
    Override,
    /// A template without steps.
    NoSteps,
}

impl Rule {
    /// The stable kebab-case code, for example `unknown-dependency`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::Type => "type",
            Self::Required => "required",
            Self::UnknownKey => "unknown-key",
            Self::Alias => "alias",
            Self::AliasConflict => "alias-conflict",
            Self::Choice => "choice",
            Self::Range => "range",
            Self::Length => "length",
            Self::Identifier => "identifier",
            Self::Version => "version",
            Self::Format => "format",
            Self::DuplicateStep => "duplicate-step",
            Self::UnknownDependency => "unknown-dependency",
            Self::SelfDependency => "self-dependency",
            Self::DuplicateDependency => "duplicate-dependency",
            Self::Cycle => "cycle",
            Self::Decision => "decision",
            Self::DeferredConvergence => "deferred-convergence",
            Self::Batch => "batch",
            Self::Retry => "retry",
            Self::JsonSchema => "json-schema",
            Self::EventName => "event-name",
            Self::Publisher => "publisher",
            Self::DuplicateEvent => "duplicate-event",
            Self::Override => "override",
            Self::NoSteps => "no-steps",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem in a template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The rule broken.
    pub rule: Rule,
    /// Where: a YAML path such as `steps[3].dependencies[1]`; empty for the whole document.
    pub path: String,
    /// The offending value, rendered compactly (JSON-like, truncated), if there is one.
    pub value: Option<String>,
    /// What is wrong, as a lowercase sentence fragment without a trailing full stop.
    pub message: String,
    /// How to fix it, if there is something useful to say.
    pub hint: Option<String>,
}

impl Problem {
    /// Whether this problem rejects the template.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `error[unknown-dependency] steps[3].dependencies[1] = "vaildate": message` followed by
    /// an indented `hint:` line when there is a hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] ", self.severity, self.rule)?;
        if self.path.is_empty() {
            f.write_str("(document)")?;
        } else {
            f.write_str(&self.path)?;
        }
        if let Some(value) = &self.value {
            write!(f, " = {value}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one template, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Self(problems)
    }

    /// All problems.
    #[must_use]
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }

    /// The problems that reject the template.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|problem| problem.is_error())
    }

    /// The problems that do not.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|problem| !problem.is_error())
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// Number of warnings.
    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.warnings().count()
    }

    /// Whether any problem is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Problem::is_error)
    }

    /// Whether there are no problems at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over all problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Consumes the collection.
    #[must_use]
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Problems {
    /// One problem per line (hints indented below), then no summary: callers add their own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
