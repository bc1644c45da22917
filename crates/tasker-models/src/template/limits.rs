//! Limits checked on template text before any YAML parser sees it: size, nesting depth (flow
//! collections `[`/`{` outside quoted strings and comments, and block indentation) and an
//! upper bound of the step count.
//!
//! The YAML library's time grows quadratically with nesting depth (100,000 nested `[` took
//! about a minute), so a template that could reach it from an API must be refused by a scan
//! that is linear in the text and allocates nothing. The scan is conservative: it may
//! over-count (a `[` in a plain scalar counts), never under-count, and real templates are far
//! below every limit.

use std::fmt;

/// Limits on template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// Largest text, in bytes.
    pub max_bytes: usize,
    /// Deepest flow-collection nesting (`[[[` is 3).
    pub max_flow_depth: usize,
    /// Deepest block nesting, counted as indentation levels of at least one space.
    pub max_indent_depth: usize,
    /// Most steps (counted as list items named `name:` below the `steps:` key, or more).
    pub max_steps: usize,
}

impl TemplateLimits {
    /// The size of a template file ([`super::MAX_TEMPLATE_BYTES`], 16 MiB), flow depth 32,
    /// indentation depth 64, 10,000 steps.
    pub const DEFAULT: Self = Self {
        max_bytes: 16 * 1024 * 1024,
        max_flow_depth: 32,
        max_indent_depth: 64,
        max_steps: 10_000,
    };
}

impl Default for TemplateLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which limit a template text exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateLimit {
    /// [`TemplateLimits::max_bytes`].
    Bytes,
    /// [`TemplateLimits::max_flow_depth`].
    FlowDepth,
    /// [`TemplateLimits::max_indent_depth`].
    IndentDepth,
    /// [`TemplateLimits::max_steps`].
    Steps,
}

impl TemplateLimit {
    /// The limit's name, as the error says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bytes => "max_bytes",
            Self::FlowDepth => "max_flow_depth",
            Self::IndentDepth => "max_indent_depth",
            Self::Steps => "max_steps",
        }
    }
}

impl fmt::Display for TemplateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A breach: the limit, the value found (a lower bound once over the limit: the scan stops
/// there) and the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitBreach {
    /// The limit.
    pub limit: TemplateLimit,
    /// What the text reaches (at least).
    pub found: usize,
    /// The maximum allowed.
    pub max: usize,
}

/// Scans `text` against `limits`, in one pass without allocating.
///
/// # Errors
/// The first limit exceeded.
pub fn prescan(text: &str, limits: &TemplateLimits) -> Result<(), LimitBreach> {
    if text.len() > limits.max_bytes {
        return Err(LimitBreach {
            limit: TemplateLimit::Bytes,
            found: text.len(),
            max: limits.max_bytes,
        });
    }
    let mut flow_depth = 0usize;
    let mut steps = 0usize;
    // Indentation columns of the open block levels, as a small fixed stack of counts: only the
    // number of distinct increasing indents matters.
    let mut indents = 0usize;
    let mut last_indent = 0usize;
    for line in text.lines() {
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if flow_depth == 0 {
            // Outside flow collections, indentation is block structure.
            if indent > last_indent {
                indents += 1;
            } else if indent < last_indent {
                // Dedenting closes levels; without a stack the count is reset conservatively
                // to what the indentation could hold at one space per level.
                indents = indents.min(indent);
            }
            last_indent = indent;
            if indents > limits.max_indent_depth {
                return Err(LimitBreach {
                    limit: TemplateLimit::IndentDepth,
                    found: indents,
                    max: limits.max_indent_depth,
                });
            }
            let item = trimmed.strip_prefix("- ").map(str::trim_start);
            if item.is_some_and(|rest| rest.starts_with("name:")) {
                steps += 1;
                if steps > limits.max_steps {
                    return Err(LimitBreach {
                        limit: TemplateLimit::Steps,
                        found: steps,
                        max: limits.max_steps,
                    });
                }
            }
        }
        flow_depth = scan_flow(trimmed, flow_depth, limits)?;
    }
    Ok(())
}

/// Follows flow brackets through one line (outside quotes and comments), from `depth`.
fn scan_flow(line: &str, mut depth: usize, limits: &TemplateLimits) -> Result<usize, LimitBreach> {
    let bytes = line.as_bytes();
    let mut index = 0;
    let mut previous = b' ';
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'#' if previous == b' ' || previous == b'\t' => break,
            b'"' | b'\'' if matches!(previous, b' ' | b'\t' | b'[' | b'{' | b',' | b':') => {
                index = skip_quoted(bytes, index);
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.max_flow_depth {
                    return Err(LimitBreach {
                        limit: TemplateLimit::FlowDepth,
                        found: depth,
                        max: limits.max_flow_depth,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = bytes.get(index).copied().unwrap_or(b' ');
        index += 1;
    }
    Ok(depth)
}

/// The index of the closing quote of the quoted scalar opening at `start` (or the line's end:
/// a multi-line quoted scalar's continuation is scanned as text, which can only over-count).
fn skip_quoted(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut index = start + 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if quote == b'"' => index += 2,
            b'\'' if quote == b'\'' && bytes.get(index + 1) == Some(&b'\'') => index += 2,
            byte if byte == quote => return index,
            _ => index += 1,
        }
    }
    bytes.len().saturating_sub(1)
}

#[cfg(test)]
mod tests;
