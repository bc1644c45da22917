//! A fast reader for the block-style YAML subset templates are written in. For a document in
//! the subset it gives exactly the value `serde_yaml_ng` gives (as a borrowed [`Value`]);
//! otherwise it declines.
//!
//! `serde_yaml_ng` (libyaml underneath) took most of the template loading budget. Templates use
//! a small part of YAML: block mappings and sequences by indentation (including `- key: value`
//! items and sequences at their key's indentation), one-line flow collections, plain scalars
//! and one-line quoted scalars, comments and a leading `---`. This reader handles exactly that
//! and declines (`None`) on anything else and on anything whose meaning it is not certain
//! of: anchors, aliases, tags, block scalars, multi-line scalars, `?` keys, tabs, directives,
//! several documents, duplicate keys, merge keys, float keys, unusual plain scalars (`~`,
//! `yes`, `0x1f`, `1e3`, `007`, ...; see [`scalar::resolve_plain`]). Callers then use
//! `serde_yaml_ng`, so the values, errors and messages for such input are exactly what they
//! were. Differential tests (`tests.rs`) hold it to `serde_yaml_ng`;
//! docs/design/template-parsing.md has the reasoning.
//!
//! The reader works line by line on the bytes; strings borrow from the text unless they
//! hold escapes, so it allocates only the vectors of collections.

mod flow;
mod scalar;

use super::value::{Mapping, Value};

use self::flow::Flow;
use self::scalar::{double_quoted, resolve_plain, single_quoted};

/// Deepest nesting of collections the fast path handles (serde_yaml_ng's limit is 128).
const MAX_DEPTH: usize = 64;

/// Longest mapping key the fast path handles, plain or quoted (measured in source bytes);
/// libyaml refuses implicit keys longer than 1024 characters.
const MAX_KEY_LEN: usize = 512;

/// Parses `text` if it is in the fast subset; `None` means "use serde_yaml_ng", never "invalid".
pub(crate) fn parse(text: &str) -> Option<Value<'_>> {
    if !is_clean(text) {
        return None;
    }
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        next: 0,
        current: None,
        depth: 0,
    };
    reader.document()
}

/// Whether every character is one libyaml reads as printable, with `\n` as the only line
/// break and no tabs, carriage returns, byte order marks or Unicode line separators.
fn is_clean(text: &str) -> bool {
    // Branch-free over blocks, so that the compiler can vectorize the check.
    let mut controls = 0_u8;
    let mut non_ascii = 0_u8;
    for block in text.as_bytes().chunks(64) {
        for &byte in block {
            controls |= u8::from(byte < 0x20 && byte != b'\n') | u8::from(byte == 0x7F);
            non_ascii |= byte & 0x80;
        }
        if controls != 0 {
            return false;
        }
    }
    non_ascii == 0
        || text.chars().all(|c| match c {
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' => false,
            '\n' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => {
                true
            }
            _ => false,
        })
}

/// `text` without trailing spaces.
fn trim_spaces(text: &str) -> &str {
    let kept = text.len() - text.bytes().rev().take_while(|&byte| byte == b' ').count();
    &text[..kept]
}

/// Whether a key is `<<`, which `apply_merge` would act on.
fn is_merge_key(key: &Value<'_>) -> bool {
    matches!(key, Value::String(text) if text == "<<")
}

/// A line with content: `start` is its first non-space byte, `end` the position of its
/// line break (or the end of the text), `indent` the column of `start`. For the mapping that
/// starts on a sequence item's line (`- key: value`), `start` and `indent` point at the key.
#[derive(Debug, Clone, Copy)]
struct Line {
    indent: usize,
    start: usize,
    end: usize,
}

/// What the start of a line's content is, when read as a block mapping key.
enum KeyRead<'t> {
    /// A key, and the position right after its `:`.
    Found(Value<'t>, usize),
    /// Not a key (a scalar, a flow collection, ...).
    Absent,
    /// Something outside the subset.
    Decline,
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    /// The start of the next line not yet looked at.
    next: usize,
    /// The line looked at and not yet consumed.
    current: Option<Line>,
    /// Nesting of block collections.
    depth: usize,
}

impl<'t> Reader<'t> {
    fn document(&mut self) -> Option<Value<'t>> {
        let first = self.peek()?;
        if first.indent == 0 && self.bytes[first.start..first.end].starts_with(b"---") {
            let after = first.start + 3;
            if after < first.end && self.bytes[after] != b' ' {
                return None;
            }
            self.line_ends(after, first.end)?;
            self.consume();
        }
        let line = self.peek()?;
        let root = self.block_node(line)?;
        // Anything left (a less indented line, `---`, `...`) is not ours.
        self.peek().is_none().then_some(root)
    }

    /// The next line with content (blank and comment-only lines are skipped), not consumed.
    fn peek(&mut self) -> Option<Line> {
        if self.current.is_some() {
            return self.current;
        }
        let len = self.bytes.len();
        while self.next < len {
            let begin = self.next;
            // Lines are short: a plain loop beats `memchr`'s setup.
            let end = self.bytes[begin..]
                .iter()
                .position(|&byte| byte == b'\n')
                .map_or(len, |offset| begin + offset);
            self.next = (end + 1).min(len);
            let mut start = begin;
            while start < end && self.bytes[start] == b' ' {
                start += 1;
            }
            if start == end || self.bytes[start] == b'#' {
                continue;
            }
            self.current = Some(Line {
                indent: start - begin,
                start,
                end,
            });
            return self.current;
        }
        None
    }

    fn consume(&mut self) {
        self.current = None;
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < MAX_DEPTH).then_some(())
    }

    fn is_item(&self, line: Line) -> bool {
        self.is_item_at(line.start, line.end)
    }

    /// Whether a block sequence entry (`-` followed by a space or the line end) starts at `at`.
    fn is_item_at(&self, at: usize, end: usize) -> bool {
        self.bytes[at] == b'-' && (at + 1 == end || self.bytes[at + 1] == b' ')
    }

    /// A block collection starting at `line`.
    fn block_node(&mut self, line: Line) -> Option<Value<'t>> {
        if self.is_item(line) {
            self.block_sequence(line.indent)
        } else {
            self.block_mapping(line.indent)
        }
    }

    fn block_mapping(&mut self, indent: usize) -> Option<Value<'t>> {
        self.enter()?;
        let mut entries = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || self.is_item(line) {
                return None;
            }
            self.consume();
            let KeyRead::Found(key, after) = self.key(line.start, line.end) else {
                return None;
            };
            let start = self.skip_spaces(after, line.end);
            let value = if start == line.end || self.bytes[start] == b'#' {
                self.nested_value(indent, true)?
            } else {
                self.inline_value(start, line.end)?
            };
            entries.push((key, value));
        }
        self.depth -= 1;
        // Duplicate keys are serde_yaml_ng's to report.
        Mapping::from_unique_entries(entries).map(Value::Mapping)
    }

    fn block_sequence(&mut self, indent: usize) -> Option<Value<'t>> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            if !self.is_item(line) {
                // A key of the mapping this sequence is the value of; the caller decides.
                break;
            }
            self.consume();
            let start = self.skip_spaces(line.start + 1, line.end);
            let item = if start == line.end || self.bytes[start] == b'#' {
                self.nested_value(indent, false)?
            } else if self.is_item_at(start, line.end) {
                // `- - a`: valid YAML, but outside the subset.
                return None;
            } else {
                match self.key(start, line.end) {
                    KeyRead::Found(..) => {
                        // `- key: value`: a mapping whose keys sit at the column of `key`.
                        let column = line.indent + (start - line.start);
                        self.current = Some(Line {
                            indent: column,
                            start,
                            end: line.end,
                        });
                        self.block_mapping(column)?
                    }
                    KeyRead::Absent => self.inline_value(start, line.end)?,
                    KeyRead::Decline => return None,
                }
            };
            items.push(item);
        }
        self.depth -= 1;
        Some(Value::Sequence(items))
    }

    /// The value of a key (or of a `-`) with nothing after it on its line: a more indented
    /// block collection, a sequence at the key's own indentation (when `indentless`), or null.
    fn nested_value(&mut self, indent: usize, indentless: bool) -> Option<Value<'t>> {
        match self.peek() {
            Some(line) if line.indent > indent => self.block_node(line),
            Some(line) if indentless && line.indent == indent && self.is_item(line) => {
                self.block_sequence(indent)
            }
            _ => Some(Value::Null),
        }
    }

    /// A value on the rest of a line: a quoted scalar, a flow collection or a plain scalar,
    /// followed by nothing but a comment.
    fn inline_value(&mut self, start: usize, end: usize) -> Option<Value<'t>> {
        match self.bytes[start] {
            b'"' => {
                let (text, after) = double_quoted(self.text, start, end)?;
                self.line_ends(after, end)?;
                Some(Value::String(text))
            }
            b'\'' => {
                let (text, after) = single_quoted(self.text, start, end)?;
                self.line_ends(after, end)?;
                Some(Value::String(text))
            }
            b'[' | b'{' => {
                let mut flow = Flow::new(self.text, start, end);
                let value = flow.collection(self.depth)?;
                self.line_ends(flow.at, end)?;
                Some(value)
            }
            _ => {
                let text = self.plain(start, end)?;
                // `a: b:` is not ours to decide.
                if text.ends_with(':') {
                    return None;
                }
                resolve_plain(text)
            }
        }
    }

    /// A plain scalar in block context: up to a comment (` #`) or the line end, trimmed.
    /// Declines when it holds `: ` (`a: b: c` is an error).
    fn plain(&self, start: usize, end: usize) -> Option<&'t str> {
        let line = &self.bytes[..end];
        let mut stop = end;
        let mut at = start;
        while let Some(offset) = line[at..]
            .iter()
            .position(|&byte| byte == b'#' || byte == b':')
        {
            let found = at + offset;
            match line[found] {
                b'#' if found > start && line[found - 1] == b' ' => {
                    stop = found;
                    break;
                }
                b':' if line.get(found + 1) == Some(&b' ') => return None,
                _ => at = found + 1,
            }
        }
        Some(trim_spaces(&self.text[start..stop]))
    }

    /// Reads the content at `start` as a block mapping key (`key:` followed by a space or the
    /// line end).
    fn key(&self, start: usize, end: usize) -> KeyRead<'t> {
        let key = match self.bytes[start] {
            b'"' | b'\'' => {
                let quoted = if self.bytes[start] == b'"' {
                    double_quoted(self.text, start, end)
                } else {
                    single_quoted(self.text, start, end)
                };
                let Some((text, after)) = quoted else {
                    return KeyRead::Decline;
                };
                // The key limit counts the source text, quotes and escapes included.
                if after - start > MAX_KEY_LEN {
                    return KeyRead::Decline;
                }
                if after == end || self.bytes[after] != b':' {
                    return KeyRead::Absent;
                }
                if after + 1 < end && self.bytes[after + 1] != b' ' {
                    return KeyRead::Decline;
                }
                (Value::String(text), after + 1)
            }
            b'[' | b'{' => return KeyRead::Absent,
            _ => {
                let Some((colon, inner_colon)) = self.key_colon(start, end) else {
                    return KeyRead::Absent;
                };
                let text = &self.text[start..colon];
                // `a : b` is valid YAML, but not worth the doubt; nor are keys with colons.
                if inner_colon || text.ends_with(' ') || text.len() > MAX_KEY_LEN {
                    return KeyRead::Decline;
                }
                let Some(key) = resolve_plain(text) else {
                    return KeyRead::Decline;
                };
                (key, colon + 1)
            }
        };
        if is_merge_key(&key.0) {
            return KeyRead::Decline;
        }
        KeyRead::Found(key.0, key.1)
    }

    /// The first `:` followed by a space or the line end, unless a comment comes first, and
    /// whether another `:` came before it.
    fn key_colon(&self, start: usize, end: usize) -> Option<(usize, bool)> {
        let line = &self.bytes[..end];
        let mut inner_colon = false;
        let mut at = start;
        loop {
            at += line[at..]
                .iter()
                .position(|&byte| byte == b':' || byte == b'#')?;
            match line[at] {
                b':' if at + 1 == end || line[at + 1] == b' ' => return Some((at, inner_colon)),
                b'#' if at > start && line[at - 1] == b' ' => return None,
                byte => inner_colon |= byte == b':',
            }
            at += 1;
        }
    }

    fn skip_spaces(&self, mut at: usize, end: usize) -> usize {
        while at < end && self.bytes[at] == b' ' {
            at += 1;
        }
        at
    }

    /// Nothing but spaces and a comment may follow a value.
    fn line_ends(&self, after: usize, end: usize) -> Option<()> {
        let rest = self.skip_spaces(after, end);
        (rest == end || (rest > after && self.bytes[rest] == b'#')).then_some(())
    }
}

#[cfg(test)]
mod tests;
