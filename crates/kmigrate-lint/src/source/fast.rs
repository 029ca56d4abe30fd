//! A fast reader for the plain shape most CI files have: block mappings and
//! sequences, one-line flow collections, quoted and plain scalars (plain ones
//! may continue over lines), `|`/`>` block scalars, anchors, tags, aliases and
//! comments, in LF text without tabs. Flow collections may continue over
//! lines at any indentation, as libyaml reads them (tree-sitter-yaml refuses
//! continuation lines indented no deeper than their key).
//!
//! Building tree-sitter-yaml's concrete tree, then kmigrate's from it, was a
//! third of a `check` run; this reader builds kmigrate's [`Tree`] directly,
//! over fifteen times faster (`cargo bench --bench parse`). It gives up
//! (`None`) on the first thing outside that shape, including every syntax
//! error; the caller then parses with tree-sitter, the reference. For every
//! text this reader accepts, the tree is the one tree-sitter's builder makes:
//! `tests` compares the two on generated documents and on every fixture, and
//! the `fast_tree` fuzz target does so on mutated ones.

use super::scalar::{Chomp, ScalarStyle};
use super::tree::{Entry, Item, Map, Node, Seq, Span, Tree, Value, empty_node, scalar_value};

/// Deeper nesting is left to tree-sitter's path, which refuses past
/// `tree::MAX_DEPTH`; CI files come nowhere near it.
const MAX_NESTING: usize = 64;

/// YAML's limit on the length of an implicit key.
const MAX_KEY_LEN: usize = 1024;

/// The text uses something this reader leaves to tree-sitter.
struct GiveUp;

type Read<T> = Result<T, GiveUp>;

/// The tree of `src`, or `None` when `src` is outside the shape read here.
pub fn parse(src: &str) -> Option<Tree> {
    if !plain_characters(src.as_bytes()) {
        return None;
    }
    let mut reader = Reader {
        src,
        b: src.as_bytes(),
        pos: 0,
        comments: Vec::new(),
    };
    let documents = reader.stream().ok()?;
    Some(Tree::new(documents, reader.comments))
}

/// False when the text holds a character whose treatment differs between
/// YAML readers or needs care: tabs, carriage returns and other controls, a
/// byte order mark, Unicode line separators, non-characters.
fn plain_characters(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {}
            0..0x20 | 0x7f => return false,
            // C1 controls, NEL among them.
            0xc2 if matches!(b.get(i + 1), Some(0x80..=0x9f)) => return false,
            // U+2028 and U+2029.
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => {
                return false;
            }
            // U+FEFF (byte order mark), U+FFFE and U+FFFF.
            0xef if matches!(
                (b.get(i + 1), b.get(i + 2)),
                (Some(0xbb), Some(0xbf)) | (Some(0xbf), Some(0xbe | 0xbf))
            ) =>
            {
                return false;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// Characters that cannot start a plain scalar here (some of them can in
/// YAML, in ways this reader does not follow).
fn starts_other_than_plain(c: u8, next: u8) -> bool {
    match c {
        b'-' | b'?' | b':' => {
            matches!(next, b' ' | b'\n' | 0) || is_flow_indicator(next) || c != b'-'
        }
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' | b' ' | b'\n' | 0 => true,
        _ => false,
    }
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// Characters allowed in anchor and alias names and in tags here.
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/')
}

/// What a node is given on the line it starts: `&anchor` and `!tag`.
#[derive(Default)]
struct Properties {
    start: Option<usize>,
    anchor: Option<String>,
    tag: Option<String>,
}

struct Reader<'s> {
    src: &'s str,
    b: &'s [u8],
    /// Between nodes: the start of the next line with content, or the end.
    pos: usize,
    comments: Vec<Span>,
}

impl Reader<'_> {
    /// The byte at `i`, or 0 past the end (a 0 byte is refused up front).
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn is_eol(&self, i: usize) -> bool {
        matches!(self.at(i), b'\n' | 0)
    }

    /// A blank, a line break or the end: what must follow `-`, `:`, `---`
    /// and properties for them to be indicators.
    fn blank_or_eol(&self, i: usize) -> bool {
        matches!(self.at(i), b' ' | b'\n' | 0)
    }

    /// A block sequence entry's `-` at `i`.
    fn is_entry_dash(&self, i: usize) -> bool {
        self.at(i) == b'-' && self.blank_or_eol(i + 1)
    }

    fn skip_spaces(&self, mut i: usize) -> usize {
        while self.at(i) == b' ' {
            i += 1;
        }
        i
    }

    fn line_end(&self, i: usize) -> usize {
        self.b[i.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |n| i + n)
    }

    fn line_start(&self, i: usize) -> usize {
        self.b[..i]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |n| n + 1)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Indentation of the line at `pos`.
    fn indent(&self) -> usize {
        self.skip_spaces(self.pos) - self.pos
    }

    /// `---` or `...` at the start of the line at `pos`.
    fn at_document_marker(&self) -> bool {
        let b = &self.b[self.pos..];
        (b.starts_with(b"---") || b.starts_with(b"...")) && self.blank_or_eol(self.pos + 3)
    }

    /// Where a block collection that ends at `pos` ends: tree-sitter closes it
    /// only at the next content line, so the comment lines before that
    /// belong to it (its span ends at the last of them).
    fn collection_end(&self) -> usize {
        self.src[..self.pos].trim_end_matches([' ', '\n']).len()
    }

    /// Moves `pos` past blank and comment-only lines, keeping the comments.
    fn skip_blank_lines(&mut self) {
        while !self.at_end() {
            let i = self.skip_spaces(self.pos);
            match self.at(i) {
                b'\n' => self.pos = i + 1,
                0 => self.pos = i,
                b'#' => {
                    let end = self.line_end(i);
                    self.comments.push(i..end);
                    self.pos = (end + 1).min(self.b.len());
                }
                _ => return,
            }
        }
    }

    /// Ends the line after a node's content at `i`: blanks, an optional
    /// comment (after a blank), the line break; then the blank lines after.
    fn finish_line(&mut self, i: usize) -> Read<()> {
        self.finish_line_at(i, false)
    }

    /// [`Self::finish_line`] after a closing quote or bracket,
    /// where libyaml (and Go's yaml, PyYAML) read a `#` right after the
    /// token as a comment (`'a'# note`); tree-sitter-yaml refuses that.
    fn finish_line_after_token(&mut self, i: usize) -> Read<()> {
        self.finish_line_at(i, true)
    }

    fn finish_line_at(&mut self, i: usize, glued_comment: bool) -> Read<()> {
        let j = self.skip_spaces(i);
        let mut end = j;
        if self.at(j) == b'#' {
            if j == i && !glued_comment {
                return Err(GiveUp);
            }
            end = self.line_end(j);
            self.comments.push(j..end);
        }
        if !self.is_eol(end) {
            return Err(GiveUp);
        }
        self.pos = (end + 1).min(self.b.len());
        self.skip_blank_lines();
        Ok(())
    }

    fn stream(&mut self) -> Read<Vec<Node>> {
        let mut documents = Vec::new();
        self.skip_blank_lines();
        while !self.at_end() {
            if self.at_document_marker() {
                if self.at(self.pos) == b'.' {
                    return Err(GiveUp);
                }
                let after = self.pos + 3;
                self.finish_line(after)?;
                if self.at_end() || self.at_document_marker() {
                    // An empty document.
                    return Err(GiveUp);
                }
            } else if !documents.is_empty() {
                return Err(GiveUp);
            }
            let col = self.indent();
            let start = self.pos + col;
            let node = match self.at(start) {
                _ if self.is_entry_dash(start) => self.block_seq(col, start, 0)?,
                _ => match self.key(start) {
                    Some(key) => self.block_map(col, key, 0)?,
                    // A scalar or flow document: rare in CI files.
                    None => return Err(GiveUp),
                },
            };
            documents.push(node);
        }
        if documents.is_empty() {
            return Err(GiveUp);
        }
        Ok(documents)
    }

    /// A node that starts on its own line, more indented than `parent`.
    fn block_node(&mut self, parent: usize, depth: usize) -> Read<Node> {
        let col = self.indent();
        let start = self.pos + col;
        if col <= parent {
            return Err(GiveUp);
        }
        match self.at(start) {
            _ if self.is_entry_dash(start) => self.block_seq(col, start, depth),
            _ => match self.key(start) {
                Some(key) => self.block_map(col, key, depth),
                None => self.inline_node(start, parent, depth, false),
            },
        }
    }

    /// The implicit key starting at `i`: its node and the offset of its `:`.
    fn key(&self, i: usize) -> Option<(Node, usize)> {
        let (span, style) = match self.at(i) {
            b'"' => (
                i..self.quoted_end(i, false).ok()?,
                ScalarStyle::DoubleQuoted,
            ),
            b'\'' => (
                i..self.quoted_end(i, false).ok()?,
                ScalarStyle::SingleQuoted,
            ),
            // tree-sitter-yaml refuses some keys starting with `-`.
            b'-' => return None,
            c if starts_other_than_plain(c, self.at(i + 1)) => return None,
            _ => {
                let mut j = i;
                loop {
                    match self.at(j) {
                        b':' if self.blank_or_eol(j + 1) => break,
                        b'\n' | 0 => return None,
                        b'#' if self.at(j - 1) == b' ' => return None,
                        b'[' | b']' | b'{' | b'}' | b',' | b'"' | b'\'' => return None,
                        _ => j += 1,
                    }
                    if j - i > MAX_KEY_LEN {
                        return None;
                    }
                }
                if self.at(j - 1) == b' ' {
                    return None;
                }
                (i..j, ScalarStyle::Plain)
            }
        };
        let colon = span.end;
        if self.at(colon) != b':' || !self.blank_or_eol(colon + 1) {
            return None;
        }
        Some((self.scalar_node(span, style), colon))
    }

    fn scalar_node(&self, span: Span, style: ScalarStyle) -> Node {
        Node {
            full_span: span.clone(),
            value: scalar_value(self.src, span.clone(), style),
            span,
            anchor: None,
            tag: None,
        }
    }

    /// A block mapping whose entries start at column `col`; `first` is its
    /// first key (already read) and the offset of that key's `:`.
    fn block_map(&mut self, col: usize, first: (Node, usize), depth: usize) -> Read<Node> {
        if depth > MAX_NESTING {
            return Err(GiveUp);
        }
        let start = first.0.full_span.start;
        let mut entries: Vec<Entry> = Vec::new();
        let mut next_key = Some(first);
        loop {
            let (key, colon) = next_key.take().ok_or(GiveUp)?;
            let value = self.map_value(col, colon, depth + 1)?;
            let end = if matches!(value.value, Value::Null) {
                colon + 1
            } else {
                value.full_span.end
            };
            entries.push(Entry {
                span: key.full_span.start..end,
                key,
                value,
            });
            if self.at_end() || self.at_document_marker() {
                break;
            }
            let indent = self.indent();
            if indent < col {
                break;
            }
            if indent > col {
                return Err(GiveUp);
            }
            next_key = self.key(self.pos + indent);
        }
        let span = start..self.collection_end();
        Ok(Node {
            full_span: span.clone(),
            span,
            anchor: None,
            tag: None,
            value: Value::Map(Map {
                flow: false,
                entries,
            }),
        })
    }

    /// The value after the `:` at `colon` of an entry at column `col`.
    fn map_value(&mut self, col: usize, colon: usize, depth: usize) -> Read<Node> {
        let start = self.skip_spaces(colon + 1);
        if !self.is_eol(start) && self.at(start) != b'#' {
            return self.inline_node(start, col, depth, true);
        }
        self.finish_line(colon + 1)?;
        if self.at_end() || self.at_document_marker() {
            return Ok(empty_node(colon + 1));
        }
        let indent = self.indent();
        let first = self.pos + indent;
        if indent > col {
            self.block_node(col, depth)
        } else if indent == col && self.is_entry_dash(first) {
            // A sequence written at its key's column.
            self.block_seq(col, first, depth)
        } else if indent == col && matches!(self.at(first), b'|' | b'>') {
            // A block scalar header at its key's column: libyaml reads it
            // as the value (its lines must still be indented deeper);
            // tree-sitter-yaml refuses it.
            self.block_scalar(first, col)
        } else {
            Ok(empty_node(colon + 1))
        }
    }

    /// A block sequence whose `-` are at column `col`, the first at `first`.
    fn block_seq(&mut self, col: usize, first: usize, depth: usize) -> Read<Node> {
        if depth > MAX_NESTING {
            return Err(GiveUp);
        }
        let mut items = Vec::new();
        let mut dash = first;
        loop {
            let start = self.skip_spaces(dash + 1);
            let node = if self.is_eol(start) || self.at(start) == b'#' {
                self.finish_line(dash + 1)?;
                if !self.at_end() && !self.at_document_marker() && self.indent() > col {
                    Some(self.block_node(col, depth + 1)?)
                } else {
                    None
                }
            } else {
                let item_col = start - self.line_start(start);
                Some(match self.at(start) {
                    _ if self.is_entry_dash(start) => self.block_seq(item_col, start, depth + 1)?,
                    _ => match self.key(start) {
                        Some(key) => self.block_map(item_col, key, depth + 1)?,
                        None => self.inline_node(start, col, depth + 1, false)?,
                    },
                })
            };
            items.push(match node {
                Some(node) => Item {
                    span: dash..node.full_span.end,
                    node,
                },
                None => Item {
                    span: dash..dash + 1,
                    node: empty_node(dash + 1),
                },
            });
            if self.at_end() || self.at_document_marker() {
                break;
            }
            let indent = self.indent();
            if indent != col {
                break;
            }
            dash = self.pos + indent;
            if !self.is_entry_dash(dash) {
                break;
            }
        }
        let span = first..self.collection_end();
        Ok(Node {
            full_span: span.clone(),
            span,
            anchor: None,
            tag: None,
            value: Value::Seq(Seq { flow: false, items }),
        })
    }

    /// `&anchor` and `!tag` (either order, at most one each) at `i`; returns
    /// them and where the content starts.
    fn properties(&self, mut i: usize) -> Read<(Properties, usize)> {
        let mut props = Properties::default();
        loop {
            let c = self.at(i);
            if c != b'&' && c != b'!' {
                return Ok((props, i));
            }
            let name_start = if c == b'!' && self.at(i + 1) == b'!' {
                i + 2
            } else {
                i + 1
            };
            let mut end = name_start;
            while is_name_char(self.at(end)) {
                end += 1;
            }
            if end == name_start || !self.blank_or_eol(end) {
                return Err(GiveUp);
            }
            if c == b'&' {
                if props.anchor.is_some() {
                    return Err(GiveUp);
                }
                props.anchor = Some(self.src[name_start..end].to_string());
            } else {
                if props.tag.is_some() {
                    return Err(GiveUp);
                }
                props.tag = Some(self.src[i..end].to_string());
            }
            props.start.get_or_insert(i);
            i = self.skip_spaces(end);
        }
    }

    /// A node starting mid-line at `i` (after `key: ` or `- `), inside a
    /// collection at column `parent`. Leaves `pos` at the next content line.
    /// `map_value`: it is a mapping's value, whose block sequence may be
    /// written at the key's column (`a: &x\n- b`).
    fn inline_node(
        &mut self,
        i: usize,
        parent: usize,
        depth: usize,
        map_value: bool,
    ) -> Read<Node> {
        let (props, start) = self.properties(i)?;
        let Some(props_start) = props.start else {
            return self.content(start, parent, depth);
        };
        let mut node = if self.is_eol(start) || self.at(start) == b'#' {
            // The content is on the next lines.
            self.finish_line(start)?;
            if self.at_end() || self.at_document_marker() {
                return Err(GiveUp);
            }
            let indent = self.indent();
            let first = self.pos + indent;
            let node = if map_value && indent == parent && self.is_entry_dash(first) {
                self.block_seq(parent, first, depth)?
            } else if indent <= parent {
                return Err(GiveUp);
            } else {
                self.block_node(parent, depth)?
            };
            if !matches!(node.value, Value::Map(_) | Value::Seq(_)) {
                return Err(GiveUp);
            }
            node
        } else {
            match self.at(start) {
                b'[' | b'{' | b'"' | b'\'' => self.content(start, parent, depth)?,
                c if !starts_other_than_plain(c, self.at(start + 1)) => {
                    self.content(start, parent, depth)?
                }
                _ => return Err(GiveUp),
            }
        };
        if node.anchor.is_some() || node.tag.is_some() {
            return Err(GiveUp);
        }
        node.full_span.start = props_start;
        node.anchor = props.anchor;
        node.tag = props.tag;
        Ok(node)
    }

    /// Content without properties starting mid-line at `i`.
    fn content(&mut self, i: usize, parent: usize, depth: usize) -> Read<Node> {
        let node = match self.at(i) {
            b'[' | b'{' => {
                let node = self.flow(i, depth)?;
                self.finish_line_after_token(node.span.end)?;
                node
            }
            b'"' | b'\'' => {
                let node = self.quoted(i)?;
                self.finish_line_after_token(node.span.end)?;
                node
            }
            b'*' => {
                let mut end = i + 1;
                while is_name_char(self.at(end)) {
                    end += 1;
                }
                if end == i + 1 {
                    return Err(GiveUp);
                }
                self.finish_line(end)?;
                let span = i..end;
                Node {
                    full_span: span.clone(),
                    span,
                    anchor: None,
                    tag: None,
                    value: Value::Alias(self.src[i + 1..end].to_string()),
                }
            }
            b'|' | b'>' => self.block_scalar(i, parent)?,
            c if starts_other_than_plain(c, self.at(i + 1)) => return Err(GiveUp),
            _ => self.plain(i, parent)?,
        };
        Ok(node)
    }

    /// The quoted scalar at `i`, over one line or several.
    fn quoted(&self, i: usize) -> Read<Node> {
        let style = if self.at(i) == b'"' {
            ScalarStyle::DoubleQuoted
        } else {
            ScalarStyle::SingleQuoted
        };
        Ok(self.scalar_node(i..self.quoted_end(i, true)?, style))
    }

    /// End (past the closing quote) of the quoted scalar at `i`; with
    /// `multi_line`, it may continue over lines at any indentation, as
    /// libyaml reads it (an implicit key may not), a `\` before a line
    /// break escaping it. A document marker there is left to tree-sitter
    /// (libyaml refuses it).
    fn quoted_end(&self, i: usize, multi_line: bool) -> Read<usize> {
        let quote = self.at(i);
        let mut j = i + 1;
        loop {
            match self.at(j) {
                b'\n' if multi_line => {
                    j += 1;
                    let rest = &self.b[j.min(self.b.len())..];
                    if (rest.starts_with(b"---") || rest.starts_with(b"..."))
                        && self.blank_or_eol(j + 3)
                    {
                        return Err(GiveUp);
                    }
                }
                b'\n' | 0 => return Err(GiveUp),
                b'\'' if quote == b'\'' => {
                    if self.at(j + 1) == b'\'' {
                        j += 2;
                    } else {
                        return Ok(j + 1);
                    }
                }
                b'"' if quote == b'"' => return Ok(j + 1),
                // An escaped line break: the `\n` is handled above.
                b'\\' if quote == b'"' && multi_line && self.at(j + 1) == b'\n' => j += 1,
                b'\\' if quote == b'"' => j += 1 + self.escape_len(j + 1)?,
                _ => j += 1,
            }
        }
    }

    /// Length of the escape after a `\` at `i - 1` in a double-quoted scalar.
    fn escape_len(&self, i: usize) -> Read<usize> {
        let hex = |n: usize| {
            (1..=n)
                .all(|k| self.at(i + k).is_ascii_hexdigit())
                .then_some(n + 1)
                .ok_or(GiveUp)
        };
        match self.at(i) {
            b'0' | b'a' | b'b' | b't' | b'n' | b'v' | b'f' | b'r' | b'e' | b' ' | b'"' | b'/'
            | b'\\' | b'N' | b'_' | b'L' | b'P' => Ok(1),
            b'x' => hex(2),
            b'u' => hex(4),
            b'U' => hex(8),
            _ => Err(GiveUp),
        }
    }

    /// A plain scalar at `i`, continued on following lines indented more
    /// than `parent`.
    fn plain(&mut self, i: usize, parent: usize) -> Read<Node> {
        let (mut end, comment) = self.plain_line(i)?;
        let mut next = self.line_end(end);
        if !comment {
            // Continuation lines: more indented, not blank, not a comment.
            loop {
                let mut line = next + 1;
                if next >= self.b.len() {
                    break;
                }
                // Blank lines in between fold into line breaks.
                while line < self.b.len() {
                    let k = self.skip_spaces(line);
                    if self.at(k) == b'\n' {
                        line = k + 1;
                    } else {
                        break;
                    }
                }
                let k = self.skip_spaces(line);
                if k - line <= parent || self.is_eol(k) || self.at(k) == b'#' {
                    break;
                }
                if starts_other_than_plain(self.at(k), self.at(k + 1)) {
                    return Err(GiveUp);
                }
                let (line_content_end, comment) = self.plain_line(k)?;
                end = line_content_end;
                if comment {
                    // A comment ends the scalar; `finish_line` keeps it.
                    break;
                }
                next = self.line_end(end);
            }
        }
        self.finish_line(end)?;
        Ok(self.scalar_node(i..end, ScalarStyle::Plain))
    }

    /// The end of one line of a plain scalar starting at `i` (trailing
    /// blanks excluded), and whether a comment follows it.
    fn plain_line(&self, i: usize) -> Read<(usize, bool)> {
        let mut j = i;
        let mut end = i;
        loop {
            match self.at(j) {
                b'\n' | 0 => return Ok((end, false)),
                b':' if self.blank_or_eol(j + 1) => return Err(GiveUp),
                b'#' if self.at(j - 1) == b' ' => return Ok((end, true)),
                b' ' => j += 1,
                _ => {
                    j += 1;
                    end = j;
                }
            }
        }
    }

    /// A `|` or `>` block scalar whose header is at `i`, inside a collection
    /// at column `parent`.
    fn block_scalar(&mut self, i: usize, parent: usize) -> Read<Node> {
        let folded = self.at(i) == b'>';
        let mut h = i + 1;
        let chomp = match self.at(h) {
            b'-' => Chomp::Strip,
            b'+' => Chomp::Keep,
            _ => Chomp::Clip,
        };
        if chomp != Chomp::Clip {
            h += 1;
        }
        let mut header_end = self.skip_spaces(h);
        if self.at(header_end) == b'#' {
            // A comment, with or without a blank before it (`|# note`, as
            // libyaml reads it; tree-sitter-yaml refuses that one).
            let comment_end = self.line_end(header_end);
            self.comments.push(header_end..comment_end);
            header_end = comment_end;
        }
        if !self.is_eol(header_end) {
            // An indentation indicator.
            return Err(GiveUp);
        }
        let mut line = header_end + 1;
        let mut indent: Option<usize> = None;
        let mut leading_blank = 0;
        let mut end = None;
        while line < self.b.len() {
            let k = self.skip_spaces(line);
            let spaces = k - line;
            let line_end = self.line_end(k);
            if k == line_end {
                if indent.is_none() {
                    leading_blank = leading_blank.max(spaces);
                }
                line = line_end + 1;
                continue;
            }
            match indent {
                None if spaces <= parent || leading_blank > spaces => break,
                None => indent = Some(spaces),
                Some(m) if spaces < m => {
                    if spaces > parent {
                        return Err(GiveUp);
                    }
                    break;
                }
                Some(_) => {}
            }
            end = Some(self.src[..line_end].trim_end_matches(' ').len());
            line = line_end + 1;
        }
        // Without content lines, the scalar is its header line, comment
        // included, as tree-sitter spans it (libyaml reads "").
        let end = end.unwrap_or_else(|| self.src[..header_end].trim_end_matches(' ').len());
        // The next content line starts after the scalar's last line; blank
        // lines after it hold no comments.
        self.pos = (self.line_end(end) + 1).min(self.b.len());
        self.skip_blank_lines();
        let style = if folded {
            ScalarStyle::Folded(chomp)
        } else {
            ScalarStyle::Literal(chomp)
        };
        Ok(self.scalar_node(i..end, style))
    }

    /// Inside a flow collection, spaces and line breaks between tokens: a
    /// flow collection may continue over lines at any indentation (libyaml,
    /// Go's yaml and PyYAML all read `args: ['a',\n'b']` with `'b'` at the
    /// key's column). A comment or a document marker there is left to
    /// tree-sitter.
    fn skip_flow_space(&self, mut i: usize) -> Read<usize> {
        loop {
            match self.at(i) {
                b' ' => i += 1,
                b'\n' => {
                    i += 1;
                    let rest = &self.b[i.min(self.b.len())..];
                    if (rest.starts_with(b"---") || rest.starts_with(b"..."))
                        && self.blank_or_eol(i + 3)
                    {
                        return Err(GiveUp);
                    }
                }
                b'#' => return Err(GiveUp),
                _ => return Ok(i),
            }
        }
    }

    /// A flow collection at `i` (over one line or several); returns it with
    /// the offset past its closing bracket.
    fn flow(&self, i: usize, depth: usize) -> Read<Node> {
        if depth > MAX_NESTING {
            return Err(GiveUp);
        }
        let close = if self.at(i) == b'[' { b']' } else { b'}' };
        let mut j = self.skip_flow_space(i + 1)?;
        let mut items = Vec::new();
        let mut entries = Vec::new();
        if self.at(j) != close {
            loop {
                if close == b']' {
                    let node = self.flow_item(j, depth + 1)?;
                    j = self.skip_flow_space(node.full_span.end)?;
                    items.push(Item {
                        span: node.full_span.clone(),
                        node,
                    });
                } else {
                    let key = self.flow_item(j, depth + 1)?;
                    if !matches!(key.value, Value::Scalar(_)) {
                        return Err(GiveUp);
                    }
                    let colon = key.span.end;
                    if self.at(colon) == b':' && self.at(colon + 1) == b' ' {
                        let value = self.flow_item(self.skip_flow_space(colon + 1)?, depth + 1)?;
                        j = self.skip_flow_space(value.full_span.end)?;
                        entries.push(Entry {
                            span: key.span.start..value.full_span.end,
                            key,
                            value,
                        });
                    } else {
                        // `{a, b: c}`: a key without a value (tree-sitter's
                        // entry spans just the key).
                        j = self.skip_flow_space(key.full_span.end)?;
                        if self.at(j) != b',' && self.at(j) != close {
                            return Err(GiveUp);
                        }
                        entries.push(Entry {
                            span: key.full_span.clone(),
                            value: empty_node(key.full_span.end),
                            key,
                        });
                    }
                }
                match self.at(j) {
                    b',' => {
                        j = self.skip_flow_space(j + 1)?;
                        if self.at(j) == close {
                            // A trailing comma: `[a, ]`.
                            break;
                        }
                    }
                    c if c == close => break,
                    _ => return Err(GiveUp),
                }
            }
        }
        let span = i..j + 1;
        let value = if close == b']' {
            Value::Seq(Seq { flow: true, items })
        } else {
            Value::Map(Map {
                flow: true,
                entries,
            })
        };
        Ok(Node {
            full_span: span.clone(),
            span,
            anchor: None,
            tag: None,
            value,
        })
    }

    /// One node inside a flow collection, at `i`.
    fn flow_item(&self, i: usize, depth: usize) -> Read<Node> {
        let node = match self.at(i) {
            b'[' | b'{' => self.flow(i, depth)?,
            b'"' | b'\'' => self.quoted(i)?,
            c if starts_other_than_plain(c, self.at(i + 1)) => return Err(GiveUp),
            _ => {
                let mut j = i;
                let mut end = i;
                loop {
                    match self.at(j) {
                        // The line ends the scalar when the next token is
                        // a `,`, a bracket or a `:` (`[a\n, b]`); else the
                        // scalar continues on the next line, at any
                        // indentation, as libyaml reads it (`[a\nb]` is
                        // `["a b"]`).
                        b'\n' => {
                            let k = self.skip_flow_space(j)?;
                            let (c, next) = (self.at(k), self.at(k + 1));
                            if is_flow_indicator(c)
                                || (c == b':'
                                    && (self.blank_or_eol(k + 1) || is_flow_indicator(next)))
                            {
                                break;
                            }
                            if starts_other_than_plain(c, next) {
                                return Err(GiveUp);
                            }
                            j = k;
                        }
                        0 => return Err(GiveUp),
                        c if is_flow_indicator(c) => break,
                        b':' if self.blank_or_eol(j + 1) || is_flow_indicator(self.at(j + 1)) => {
                            break;
                        }
                        b'#' if self.at(j - 1) == b' ' => return Err(GiveUp),
                        b' ' => j += 1,
                        _ => {
                            j += 1;
                            end = j;
                        }
                    }
                }
                self.scalar_node(i..end, ScalarStyle::Plain)
            }
        };
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::libyaml::{
        documents as libyaml_documents, holds_same_values as libyaml_agrees,
        refused_on_purpose as libyaml_refused_on_purpose,
        refuses_what_kmigrate_checks_later as libyaml_refuses_what_kmigrate_checks_later,
        same_value,
    };
    use crate::source::tree::parse_with_tree_sitter;
    use crate::test_rng::Rng;

    /// `fast` either gives up on `src` or gives tree-sitter's tree; returns
    /// whether it read it.
    fn agrees(src: &str) -> bool {
        // `tree::parse` refuses deeper indentation before either reader.
        if crate::source::tree::check_block_indent(src).is_err() {
            return false;
        }
        let Some(fast) = parse(src) else {
            return false;
        };
        match parse_with_tree_sitter(src) {
            Ok(reference) => assert_eq!(fast, reference, "different trees for {src:?}"),
            // tree-sitter-yaml refuses some layouts libyaml reads (a flow
            // list continued at its key's column): there `fast` must read
            // what libyaml reads.
            Err(e) => assert!(
                libyaml_agrees(src, &fast) || libyaml_refuses_what_kmigrate_checks_later(src),
                "fast read text tree-sitter refuses ({e:?}) and libyaml reads otherwise: {src:?}"
            ),
        }
        true
    }

    /// The differential test against libyaml: every text libyaml reads,
    /// kmigrate's reader (`tree::parse`: `fast`, else tree-sitter) reads
    /// with the same values. Returns the texts it does not.
    fn libyaml_disagreements<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out = Vec::new();
        for src in texts {
            if crate::source::tree::check_block_indent(src).is_err() {
                continue;
            }
            let Some(docs) = libyaml_documents(src) else {
                continue;
            };
            match crate::source::tree::parse(src) {
                Ok(tree)
                    if docs.len() == tree.documents.len()
                        && docs
                            .iter()
                            .zip(&tree.documents)
                            .all(|(v, n)| same_value(n, v)) => {}
                Ok(_) => out.push(format!("different values: {src:?}")),
                Err(e) if libyaml_refused_on_purpose(&e) => {}
                Err(e) => out.push(format!("refused ({}): {src:?}", e.message)),
            }
        }
        out
    }

    #[test]
    fn reads_layouts_tree_sitter_refuses_as_libyaml_does() {
        let docs = [
            // The shape of a real Cloud Build file: continuation lines at
            // the key's column.
            "steps:\n- name: 'gcr.io/kaniko-project/executor:latest'\n  args: ['--destination', 'gcr.io/p/app',\n  '--cache=true',\n  '.']\n- name: x\n",
            "a: [b,\nc]\n",
            "a: {b: 1,\nc: [d,\n   e]}\nf: 2\n",
            "- [a,\n  b]\n- c\n",
            "a:\n  - [x,\n  y]\n",
            // A comment right after a closing quote or bracket.
            "a: 'x'# c\nb: [y]# d\n",
        ];
        for src in docs {
            let tree = parse(src).unwrap_or_else(|| panic!("fast gave up on {src:?}"));
            assert!(libyaml_agrees(src, &tree), "{src:?}");
            assert!(agrees(src), "{src:?}");
        }
        // `+` keeps the empty lines after a block scalar, as libyaml does.
        let src = "a: |+\n  x\n\n\nb: 1\n";
        let tree = parse(src).unwrap();
        assert!(libyaml_agrees(src, &tree), "{tree:?}");
        // A comment or a document marker inside a flow collection is left
        // to tree-sitter.
        assert!(parse("a: [b, # c\n  d]\n").is_none());
        assert!(parse("a: [b,\n---\n]\n").is_none());
    }

    /// Each text is read (by `tree::parse`) with libyaml's values.
    fn assert_reads_as_libyaml(texts: &[&str]) {
        for src in texts {
            assert!(libyaml_documents(src).is_some(), "libyaml refuses {src:?}");
        }
        let found = libyaml_disagreements(texts.iter().copied());
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn reads_comments_glued_to_a_trailing_comma_list_or_a_valueless_key() {
        assert_reads_as_libyaml(&[
            "- [a, ]# glued\n- x\n",
            "- {a}# glued\n",
            "a: {b, c: d, }# glued\n",
            "- \"x\"# glued\n- [a, ]\n",
        ]);
        // `fast` reads them, and as tree-sitter does without the comment.
        for src in [
            "a: [b, ]\n",
            "a: {b}\n",
            "a: {b, c: d, }\n",
            "a: [[b, ], {c, }]\n",
        ] {
            assert!(agrees(src), "fast gave up on {src:?}");
        }
    }

    #[test]
    fn reads_a_block_scalar_header_on_the_line_after_its_key() {
        assert_reads_as_libyaml(&[
            ".t: \n>+\n  /kaniko/executor\n  --context .\n\n  --cache=true\n",
            "a:\n|\n x\nb: 1\n",
            "- a:\n  |-\n   x\n- b\n",
        ]);
    }

    #[test]
    fn reads_quoted_scalars_continued_on_less_indented_lines() {
        assert_reads_as_libyaml(&[
            "  .t: 'it''\ns'\n",
            "a:\n  b: \"x\ny\"\n  c: 1\n",
            "- 'one\n\n two'\n- x\n",
        ]);
        // More indented, tree-sitter reads them too: the same tree.
        assert!(agrees("a: 'x\n  y'\nb: \"p\n\n  q\"\n"));
        assert_reads_as_libyaml(&["args: &tpl\n- \"*\\n\\\nt\" #\n", "a: \"x\\\n  y\"\n"]);
        assert!(agrees("a: &x\n- b\nc: !t\n- d\n"));
        assert!(agrees("a: \"x\\\n  y \\\n  z\"\n"));
        // A document marker cannot be inside a quoted scalar.
        assert!(parse("a: 'x\n---\n'\n").is_none());
    }

    #[test]
    fn reads_flow_lists_continued_on_a_line_that_starts_with_a_comma() {
        assert_reads_as_libyaml(&["x:y: [a\n, ]\n", "a: [b c\n , d]\nz: 1\n", "a: {b: c\n}\n"]);
    }

    #[test]
    fn reads_plain_scalars_continued_over_lines_in_a_flow_collection() {
        assert_reads_as_libyaml(&[
            "- !reference [.t, s\ncript]\n",
            "a: [b \nc, d]\n",
            "a: {b: c\nd, e: f\n  g}\nh: 1\n",
        ]);
        // More indented, tree-sitter reads them too: the same tree.
        assert!(agrees("a: [b\n  c, d\n\n   e]\n"));
    }

    #[test]
    fn reads_a_plain_scalar_whose_last_line_has_a_comment() {
        assert_reads_as_libyaml(&[
            "- - /kaniko/executor\n    --dockerfile x # note\n- [a]# glued\n",
        ]);
        assert!(agrees("a: b\n  c # note\nd: 1\n"));
    }

    #[test]
    fn reads_no_document_from_a_file_of_comments_only() {
        // libyaml reads no document there (yaml_serde reports one null
        // document, which `libyaml::documents` takes back), nor does kmigrate.
        assert_eq!(libyaml_documents("# c\n\n"), Some(Vec::new()));
        assert_eq!(libyaml_documents("\u{feff}# c"), Some(Vec::new()));
        assert!(
            crate::source::tree::parse("# c\n\n")
                .unwrap()
                .documents
                .is_empty()
        );
        assert_eq!(libyaml_documents("---\n# c\n").map(|d| d.len()), Some(1));
        assert_reads_as_libyaml(&[
            "# head\n #name: - x\n",
            "\n\n",
            "#- k k: '[a]'\n",
            "",
            "---\n",
            "a: 1\n---\n# c\n",
            "a: 1\n...\n# c\n",
        ]);
    }

    #[test]
    fn refuses_an_anchor_name_libyaml_would_split() {
        for src in ["&name:!!str 5\n", "a: &x?y 1\n", "a: [*b:c]\n"] {
            let e = crate::source::tree::parse(src).unwrap_err();
            assert!(libyaml_refused_on_purpose(&e), "{src:?}: {e:?}");
        }
        assert!(crate::source::tree::parse("a: &x-y_1 1\nb: *x-y_1\n").is_ok());
    }

    #[test]
    fn keeps_the_blanks_that_end_a_block_scalar() {
        assert_reads_as_libyaml(&[
            "a: |\n  x  \nb: 1\n",
            "- >+\n  x\n\n  y \n- z\n",
            "a: |-\n  x\n  y  ",
        ]);
    }

    #[test]
    fn reads_a_comment_glued_to_a_block_scalar_header() {
        assert_reads_as_libyaml(&["a: |#c\n  x\n", "- >-# c\n  x\n  y\n- z\n", "a:\n|+#\n x\n"]);
        // With a blank, tree-sitter reads it too: the same tree.
        assert!(agrees("a: | # c\n  x\nb: >- # d\n  y\n"));
    }

    #[test]
    fn reads_block_scalars_without_content() {
        assert_reads_as_libyaml(&[".t:\n|", "image: >#c\n  ", "<<:\n|\n", "a:\n|  # c\nb: 1\n"]);
        for src in [
            "a: |\nb: 1\n",
            "a: >-  \n\nb: 1\n",
            "- |+\n- x\n",
            "a: | # c\n",
        ] {
            assert!(agrees(src), "fast gave up on {src:?}");
        }
    }

    #[test]
    fn reads_an_empty_string_tagged_str_as_libyaml_does() {
        assert_reads_as_libyaml(&["steps: !!str\n# between\n"]);
    }

    #[test]
    fn reads_what_libyaml_reads_on_every_fixture_and_the_corpus() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("tests/fixtures");
        let mut texts = Vec::new();
        // The corpus of real CI files, when given (`KMIGRATE_CORPUS=DIR`).
        let corpus = std::env::var_os("KMIGRATE_CORPUS").map(std::path::PathBuf::from);
        for dir in std::iter::once(root).chain(corpus) {
            for entry in walkdir::WalkDir::new(dir) {
                if let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) {
                    texts.push(text);
                }
            }
        }
        let fixtures = libyaml_disagreements(texts.iter().map(String::as_str));
        assert!(fixtures.is_empty(), "{fixtures:#?}");
    }

    /// The same on generated documents and their damaged copies (3000 of
    /// each, about a second; more with `KMIGRATE_FAST_CASES=N`). The one
    /// text kmigrate refuses where libyaml reads it is an anchor name libyaml
    /// splits (`libyaml::refused_on_purpose`).
    #[test]
    fn reads_what_libyaml_reads_on_generated_documents() {
        let cases: usize = std::env::var("KMIGRATE_FAST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        let mut g = Gen(Rng(0x2545_f491_4f6c_dd1d));
        let generated: Vec<String> = (0..cases)
            .flat_map(|_| {
                let doc = g.document();
                let damaged = g.mutate(&doc);
                [doc, damaged]
            })
            .collect();
        let found = libyaml_disagreements(generated.iter().map(String::as_str));
        assert!(
            found.is_empty(),
            "{} of {}: {:#?}",
            found.len(),
            generated.len(),
            &found[..found.len().min(200)]
        );
    }

    #[test]
    fn reads_the_common_shapes_as_tree_sitter_does() {
        let docs = [
            "a: 1\n",
            "a: 1\nb: two words\n",
            "# head\na: 1 # tail\n\n# between\nb:\n  c: d\n",
            "steps:\n- name: 'a'\n  args: [x, \"y,z\"]\n",
            "steps:\n  - name: gcr.io/kaniko-project/executor:latest\n    args:\n      - --context=.\n      - --destination=x:1\n",
            "a:\n  - b\n  -\n  - c: d\n    e: f\n",
            "a: []\nb: {}\nc: [\"\"]\nd: {x: 1, 'y': \"z\"}\ne: [[a, b], {c: d}]\n",
            ".t: &tpl\n  image: x\njob:\n  <<: *tpl\n  script: !reference [.t, script]\n",
            "job:\n  script:\n    - /kaniko/executor\n      --context .\n      --dockerfile x\n    - echo done\n",
            "job:\n  script:\n    - >\n      /kaniko/executor\n      --context \"$X\"\n\n      --cache=true\n    - |\n      a\n        b\n      c\nnext: 1\n",
            "a: |-\n  x\nb: >+\n  y\n\nc: 1\n",
            "a: \"esc \\\" \\\\ \\n \\x41 \\u00e9\"\nb: 'it''s'\n",
            "a:\n  b:\n    c:\n",
            "a: 1\n---\nb: 2\n",
            "---\na: 1\n",
            "--- # doc\na: 1\n...\n",
            "- a\n- - b\n  - c\n- d: e\n",
            "a: x:y\nb: http://h:80/p#frag\nc: a#b\n",
            "a: &x !!str 1\nb: !t &y [1]\nc: *x\n",
            "\"quoted key\": 1\n'single': 2\n",
            "a:\n- b\n- c\nd: e\n",
            "a: plain\n  continued\n\n  after blank\nb: 2\n",
            "k: é ü ∑ 🚀\n",
            "a: 'x' # c\nb: [a, b] # c\nc: *x # c\n",
            "a:   \n  b: 1\n",
            "a: # c\n  b: 1\n",
            "  a: 1\n  b: 2\n",
        ];
        let mut read = 0;
        for src in docs {
            if agrees(src) {
                read += 1;
            } else {
                eprintln!("gave up on {src:?}");
            }
        }
        assert!(read >= docs.len() - 2, "read only {read} of {}", docs.len());
    }

    #[test]
    fn agrees_with_tree_sitter_on_every_fixture() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("tests/fixtures");
        let (mut files, mut read) = (0, 0);
        for entry in walkdir::WalkDir::new(root) {
            let entry = entry.unwrap();
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            files += 1;
            if agrees(&text) {
                read += 1;
            }
        }
        // Most fixtures are CI files in the shape `fast` reads.
        assert!(read * 2 > files, "fast read {read} of {files} fixtures");
    }

    /// A small deterministic generator of CI-shaped YAML with the constructs
    /// `fast` reads and the near misses it must leave to tree-sitter.
    struct Gen(Rng);

    impl std::ops::Deref for Gen {
        type Target = Rng;
        fn deref(&self) -> &Rng {
            &self.0
        }
    }

    impl std::ops::DerefMut for Gen {
        fn deref_mut(&mut self) -> &mut Rng {
            &mut self.0
        }
    }

    impl Gen {
        fn scalar(&mut self, indent: usize) -> String {
            let pad = " ".repeat(indent + 2);
            match self.below(12) {
                0 => format!(
                    "'{}'",
                    self.pick(&["a", "it''s", "x: y", "", "# no", "[a]"])
                ),
                1 => format!(
                    "\"{}\"",
                    self.pick(&[
                        "a",
                        "\\\"q\\\"",
                        "\\n\\t",
                        "x: y #z",
                        "",
                        "\\u00e9\\x41",
                        "\\$bad"
                    ])
                ),
                2 => format!(
                    "|{}\n{pad}line one\n{pad}  deeper\n\n{pad}last",
                    self.pick(&["", "-", "+"])
                ),
                3 => format!(
                    ">{}\n{pad}/kaniko/executor\n{pad}--context .\n\n{pad}--cache=true",
                    self.pick(&["", "-", "+"])
                ),
                4 => format!("/kaniko/executor\n{pad}--context .\n{pad}--dockerfile x"),
                5 => format!(
                    "[{}]",
                    self.pick(&[
                        "",
                        "a, b",
                        "\"x\", 'y'",
                        "a, [b, c]",
                        "{k: v}",
                        "a:b, c",
                        "a, ",
                        "a b, c"
                    ])
                ),
                6 => format!("{{{}}}", self.pick(&["", "a: 1", "a: 1, 'b': [2]", "a"])),
                7 => self
                    .pick(&["*tpl", "*x", "&a 1", "!reference [.t, script]", "!!str 5"])
                    .to_string(),
                _ => self
                    .pick(&[
                        "gcr.io/kaniko-project/executor:latest",
                        "value",
                        "two words",
                        "a#b",
                        "x:y",
                        "http://h:80/p",
                        "--context=.",
                        "-c",
                        "é ü 🚀",
                        "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA",
                        "~",
                        "1200s",
                        "a: b",
                        "- x",
                        "#c",
                        "-",
                        "? q",
                        "echo \"a: b\"",
                    ])
                    .to_string(),
            }
        }

        fn comment(&mut self) -> &'static str {
            if self.chance(20) {
                self.pick(&[" # note", " #", "# glued", "  # two"])
            } else {
                ""
            }
        }

        fn key(&mut self) -> String {
            self.pick(&[
                "a",
                "steps",
                "name",
                "args",
                ".t",
                "<<",
                "\"q k\"",
                "'s'",
                "build-app",
                "k k",
                "x:y",
                "image",
            ])
            .to_string()
        }

        /// A block node at `indent`, written after `key:` (`inline` false:
        /// on its own lines) or after `- `.
        fn block(&mut self, out: &mut String, indent: usize, depth: usize) {
            let pad = " ".repeat(indent);
            let kind = if depth > 3 { 2 } else { self.below(3) };
            match kind {
                0 => {
                    for _ in 0..1 + self.below(3) {
                        out.push_str(&pad);
                        out.push_str(&self.key());
                        out.push(':');
                        self.value(out, indent, depth);
                    }
                }
                1 => {
                    for _ in 0..1 + self.below(3) {
                        out.push_str(&pad);
                        out.push('-');
                        if self.chance(30) {
                            // A mapping or sequence in the item.
                            let inner = indent + 2;
                            let mut nested = String::new();
                            self.block(&mut nested, inner, depth + 1);
                            out.push(' ');
                            out.push_str(&nested[inner..]);
                        } else {
                            out.push(' ');
                            let s = self.scalar(indent);
                            out.push_str(&s);
                            out.push_str(self.comment());
                            out.push('\n');
                        }
                    }
                }
                _ => {
                    out.push_str(&pad);
                    out.push_str(&self.key());
                    out.push_str(": ");
                    let s = self.scalar(indent);
                    out.push_str(&s);
                    out.push('\n');
                }
            }
            if self.chance(15) {
                out.push_str(&" ".repeat(self.below(indent + 3)));
                out.push_str("# between\n");
            }
            if self.chance(10) {
                out.push('\n');
            }
        }

        fn value(&mut self, out: &mut String, indent: usize, depth: usize) {
            match self.below(5) {
                0 if depth < 4 => {
                    out.push_str(self.pick(&["", " &tpl", " !t", " # c"]));
                    out.push('\n');
                    let step = self.pick(&["2", "4", "1", "0"]).parse::<usize>().unwrap();
                    self.block(out, indent + step, depth + 1);
                }
                1 => out.push('\n'),
                _ => {
                    out.push(' ');
                    let s = self.scalar(indent);
                    out.push_str(&s);
                    out.push_str(self.comment());
                    out.push('\n');
                }
            }
        }

        fn document(&mut self) -> String {
            let mut out = String::new();
            if self.chance(20) {
                out.push_str("# head\n");
            }
            if self.chance(10) {
                out.push_str("---\n");
            }
            self.block(&mut out, 0, 0);
            if self.chance(10) {
                out.push_str(self.pick(&["---\nz: 1\n", "...\n", "---\n", "# tail\n"]));
            }
            out
        }

        /// Small damage: a character inserted, removed, or a line re-indented.
        fn mutate(&mut self, doc: &str) -> String {
            let mut s = doc.to_string();
            for _ in 0..1 + self.below(2) {
                let mut at = self.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                match self.below(3) {
                    0 => {
                        let c = self.pick(&[
                            " ", ":", "-", "#", "\n", "'", "\"", "[", "]", "{", "}", ",", "&", "*",
                            "!", "|", ">", "x", "  ", "\\",
                        ]);
                        s.insert_str(at, c);
                    }
                    1 if at < s.len() => {
                        s.remove(at);
                    }
                    _ => {
                        let line = s[..at].rfind('\n').map_or(0, |i| i + 1);
                        s.insert_str(line, self.pick(&[" ", "  ", "- "]));
                    }
                }
            }
            s
        }
    }

    #[test]
    fn agrees_with_tree_sitter_on_generated_documents() {
        let cases: usize = std::env::var("KMIGRATE_FAST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6000);
        let mut g = Gen(Rng(0x9e37_79b9_7f4a_7c15));
        let (mut read, mut read_mutated) = (0, 0);
        for _ in 0..cases {
            let doc = g.document();
            if agrees(&doc) {
                read += 1;
            }
            let damaged = g.mutate(&doc);
            if agrees(&damaged) {
                read_mutated += 1;
            }
        }
        eprintln!("fast read {read} of {cases} documents, {read_mutated} damaged");
        // The generator aims at the shape `fast` reads: most documents must
        // be read by it, or this test checks little.
        assert!(read * 2 > cases, "fast read {read} of {cases} documents");
        assert!(
            read_mutated * 10 > cases,
            "fast read {read_mutated} of {cases} damaged documents"
        );
    }
}
