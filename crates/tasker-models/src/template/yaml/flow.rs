//! Flow collections of the fast YAML subset: `[a, b]` and `{a: 1, b: [x]}`, nested, opened
//! and closed on one line. Trailing commas, empty entries, `key : value` spacing, single-pair
//! mappings inside sequences and comments inside the brackets decline.

use super::super::value::{Mapping, Value};

use super::MAX_DEPTH;
use super::scalar::{double_quoted, resolve_plain, single_quoted};

/// A cursor over one line of the document.
pub(super) struct Flow<'t> {
    text: &'t str,
    bytes: &'t [u8],
    /// The current position.
    pub(super) at: usize,
    /// The end of the line.
    end: usize,
}

impl<'t> Flow<'t> {
    pub(super) fn new(text: &'t str, at: usize, end: usize) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            at,
            end,
        }
    }

    fn peek(&self) -> Option<u8> {
        (self.at < self.end).then(|| self.bytes[self.at])
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// A flow collection starting at the cursor (`[` or `{`), at nesting `depth`.
    pub(super) fn collection(&mut self, depth: usize) -> Option<Value<'t>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'[' => self.sequence(depth + 1),
            b'{' => self.mapping(depth + 1),
            _ => None,
        }
    }

    fn sequence(&mut self, depth: usize) -> Option<Value<'t>> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::Sequence(items));
        }
        loop {
            items.push(self.node(depth)?);
            self.skip_spaces();
            match self.peek()? {
                b']' => {
                    self.at += 1;
                    return Some(Value::Sequence(items));
                }
                b',' => {
                    self.at += 1;
                    self.skip_spaces();
                    if matches!(self.peek()?, b']' | b',') {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    fn mapping(&mut self, depth: usize) -> Option<Value<'t>> {
        self.at += 1;
        let mut entries = Vec::new();
        self.skip_spaces();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Mapping(Mapping::default()));
        }
        loop {
            let key = self.key()?;
            // `key: value`: the colon right after the key, then a space.
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            if self.peek()? != b' ' {
                return None;
            }
            self.skip_spaces();
            if matches!(self.peek()?, b',' | b'}') {
                return None;
            }
            entries.push((key, self.node(depth)?));
            self.skip_spaces();
            match self.peek()? {
                b'}' => {
                    self.at += 1;
                    // Duplicate keys are serde_yaml_ng's to report.
                    return Mapping::from_unique_entries(entries).map(Value::Mapping);
                }
                b',' => {
                    self.at += 1;
                    self.skip_spaces();
                    if matches!(self.peek()?, b'}' | b',') {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// A mapping key: a quoted scalar, or a plain scalar ending right before `:`.
    fn key(&mut self) -> Option<Value<'t>> {
        let key = match self.peek()? {
            b'"' | b'\'' => {
                let start = self.at;
                let key = self.quoted()?;
                if self.at - start > super::MAX_KEY_LEN {
                    return None;
                }
                key
            }
            _ => {
                let (text, stop) = self.plain()?;
                if stop != Some(b':')
                    || text.as_bytes().contains(&b':')
                    || text.len() > super::MAX_KEY_LEN
                {
                    return None;
                }
                resolve_plain(text)?
            }
        };
        (!super::is_merge_key(&key)).then_some(key)
    }

    /// A value inside a flow collection.
    fn node(&mut self, depth: usize) -> Option<Value<'t>> {
        match self.peek()? {
            b'[' | b'{' => self.collection(depth),
            b'"' | b'\'' => self.quoted(),
            _ => {
                let (text, stop) = self.plain()?;
                if !matches!(stop, Some(b',' | b']' | b'}')) {
                    return None;
                }
                resolve_plain(text)
            }
        }
    }

    fn quoted(&mut self) -> Option<Value<'t>> {
        let (text, after) = if self.peek()? == b'"' {
            double_quoted(self.text, self.at, self.end)?
        } else {
            single_quoted(self.text, self.at, self.end)?
        };
        self.at = after;
        Some(Value::String(text))
    }

    /// A plain scalar in flow context, as libyaml scans it: up to a flow indicator (`,[]{}`)
    /// or a `:` followed by a space; a `:` followed by anything else is part of the scalar
    /// (`Bench::Handler`). Returns the text without trailing spaces and the byte it stopped
    /// at. Declines scalars that stop at an opening bracket, meet a comment or the line end,
    /// hold `:` before a flow indicator (a libyaml error) or are empty, and keys followed by
    /// spaces (`{a : 1}` is valid YAML, but not worth the doubt).
    fn plain(&mut self) -> Option<(&'t str, Option<u8>)> {
        let start = self.at;
        let line = &self.bytes[..self.end];
        loop {
            // Skip the bytes that cannot end a plain scalar in flow context.
            self.at += line[self.at..]
                .iter()
                .position(|&byte| matches!(byte, b',' | b'[' | b']' | b'{' | b'}' | b':' | b'#'))
                .unwrap_or(line.len() - self.at);
            match line.get(self.at) {
                Some(b':') => match line.get(self.at + 1) {
                    None | Some(b' ') => break,
                    Some(b',' | b'?' | b'[' | b']' | b'{' | b'}') => return None,
                    Some(_) => self.at += 1,
                },
                // A comment (libyaml also reads `#` at the start of a token as one).
                Some(b'#') if self.at == start || line[self.at - 1] == b' ' => return None,
                Some(b'#') => self.at += 1,
                _ => break,
            }
        }
        let stop = self.peek();
        if matches!(stop, None | Some(b'[' | b'{')) {
            return None;
        }
        let text = &self.text[start..self.at];
        let trimmed = super::trim_spaces(text);
        if trimmed.is_empty() || (stop == Some(b':') && trimmed.len() != text.len()) {
            return None;
        }
        Some((trimmed, stop))
    }
}
