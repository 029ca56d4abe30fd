//! Decoding YAML scalars from their source text, keeping for every decoded
//! byte the source offset it came from.
//!
//! The map is what lets a flag found inside a folded `>-` script, or a word of
//! a double-quoted `sh -c` argument, be pointed at (and patched) in the file.

/// How a scalar is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `|` with its chomping indicator.
    Literal(Chomp),
    /// `>` with its chomping indicator.
    Folded(Chomp),
}

impl ScalarStyle {
    /// True for `|` and `>` scalars.
    pub fn is_block(self) -> bool {
        matches!(self, ScalarStyle::Literal(_) | ScalarStyle::Folded(_))
    }
}

/// Block scalar chomping: `-` strip, none clip, `+` keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chomp {
    Strip,
    Clip,
    Keep,
}

/// A decoded scalar and where each of its bytes was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// `offsets[i]` is the absolute source offset of decoded byte `i`; one
    /// extra entry at the end is the offset just past the scalar's content.
    /// Folded line breaks and joining spaces map to the break they replace.
    pub offsets: Vec<usize>,
    /// Indentation of the content lines of a block scalar (0 otherwise).
    pub block_indent: usize,
}

impl Decoded {
    /// Source range of decoded range `r` (end exclusive).
    pub fn source_range(&self, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let start = self.offsets[r.start];
        let end = if r.end == 0 {
            start
        } else {
            // Past the last decoded byte of the range, in source terms.
            let last = self.offsets[r.end - 1];
            let next = self.offsets[r.end];
            if next > last {
                next.min(last + utf8_len_at(r.end - 1, &self.text))
            } else {
                last + 1
            }
        };
        start..end.max(start)
    }
}

fn utf8_len_at(i: usize, text: &str) -> usize {
    text[i..].chars().next().map(char::len_utf8).unwrap_or(1)
}

/// Decodes the scalar written at `src[start..end]` in `style`.
///
/// `parent_indent` is the indentation of the line holding the block scalar's
/// key, used only with an explicit indentation indicator (`|2`).
pub fn decode(
    src: &str,
    start: usize,
    end: usize,
    style: ScalarStyle,
    parent_indent: usize,
) -> Decoded {
    match style {
        ScalarStyle::Plain => decode_flow(src, start, end, FlowKind::Plain),
        ScalarStyle::SingleQuoted => decode_flow(
            src,
            start + 1,
            end.saturating_sub(1).max(start + 1),
            FlowKind::Single,
        ),
        ScalarStyle::DoubleQuoted => decode_flow(
            src,
            start + 1,
            end.saturating_sub(1).max(start + 1),
            FlowKind::Double,
        ),
        ScalarStyle::Literal(_) | ScalarStyle::Folded(_) => {
            decode_block(src, start, end, parent_indent)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlowKind {
    Plain,
    Single,
    Double,
}

struct Out {
    text: String,
    offsets: Vec<usize>,
}

impl Out {
    fn push(&mut self, c: char, at: usize) {
        let before = self.text.len();
        self.text.push(c);
        for _ in before..self.text.len() {
            self.offsets.push(at);
        }
    }
    /// Pushes a character copied from `at`, mapping each of its bytes to the
    /// matching source byte.
    fn copy(&mut self, c: char, at: usize) {
        self.text.push(c);
        for k in 0..c.len_utf8() {
            self.offsets.push(at + k);
        }
    }
}

/// Plain, single- and double-quoted scalars share YAML's line folding: a
/// single line break becomes a space, `n` breaks become `n-1` newlines, and
/// whitespace around breaks is dropped.
fn decode_flow(src: &str, start: usize, end: usize, kind: FlowKind) -> Decoded {
    let body = &src[start..end];
    let mut out = Out {
        text: String::with_capacity(body.len()),
        offsets: Vec::with_capacity(body.len() + 1),
    };
    // Split into lines, keeping each line's absolute start.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut line_start = 0;
    for (i, b) in body.bytes().enumerate() {
        if b == b'\n' {
            let mut line = &body[line_start..i];
            if let Some(stripped) = line.strip_suffix('\r') {
                line = stripped;
            }
            lines.push((start + line_start, line));
            line_start = i + 1;
        }
    }
    lines.push((start + line_start, &body[line_start..]));

    let last = lines.len() - 1;
    let mut pending_breaks = 0usize;
    let mut break_at = start;
    let mut escaped_break = false;
    for (n, (abs, line)) in lines.iter().enumerate() {
        // Leading whitespace of continuation lines is not content.
        let (abs, line) = if n > 0 {
            let t = line.trim_start_matches([' ', '\t']);
            (abs + (line.len() - t.len()), t)
        } else {
            (*abs, *line)
        };
        // Trailing whitespace before a break is not content, except in the last line.
        let content = if n < last {
            line.trim_end_matches([' ', '\t'])
        } else {
            line
        };
        if n > 0 && content.is_empty() && n < last {
            pending_breaks += 1;
            continue;
        }
        if n > 0 {
            if escaped_break {
                escaped_break = false;
            } else if pending_breaks == 0 {
                out.push(' ', break_at);
            } else {
                for _ in 0..pending_breaks {
                    out.push('\n', break_at);
                }
            }
            pending_breaks = 0;
        }
        let mut chars = content.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let at = abs + i;
            match (kind, c) {
                (FlowKind::Single, '\'') => {
                    if matches!(chars.peek(), Some((_, '\''))) {
                        chars.next();
                    }
                    out.copy('\'', at);
                }
                (FlowKind::Double, '\\') => match chars.next() {
                    None => {
                        // `\` at end of line: the break is escaped away.
                        escaped_break = true;
                    }
                    Some((_, e)) => {
                        let decoded = match e {
                            '0' => Some('\0'),
                            'a' => Some('\x07'),
                            'b' => Some('\x08'),
                            't' | '\t' => Some('\t'),
                            'n' => Some('\n'),
                            'v' => Some('\x0b'),
                            'f' => Some('\x0c'),
                            'r' => Some('\r'),
                            'e' => Some('\x1b'),
                            ' ' => Some(' '),
                            '"' => Some('"'),
                            '/' => Some('/'),
                            '\\' => Some('\\'),
                            'N' => Some('\u{85}'),
                            '_' => Some('\u{a0}'),
                            'L' => Some('\u{2028}'),
                            'P' => Some('\u{2029}'),
                            'x' | 'u' | 'U' => {
                                let len = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String = (0..len)
                                    .filter_map(|_| chars.next().map(|(_, h)| h))
                                    .collect();
                                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                            }
                            other => Some(other),
                        };
                        if let Some(d) = decoded {
                            out.push(d, at);
                        }
                    }
                },
                _ => out.copy(c, at),
            }
        }
        break_at = abs + content.len();
    }
    out.offsets.push(end);
    Decoded {
        text: out.text,
        offsets: out.offsets,
        block_indent: 0,
    }
}

/// `|` and `>` scalars: header, then content lines at a common indentation.
/// How many lines of nothing but spaces follow the line that `end` is on,
/// before a line with content (or the end of the text).
fn empty_lines_after(src: &str, end: usize) -> usize {
    let Some(nl) = src[end..].find('\n') else {
        return 0;
    };
    let mut count = 0;
    let mut rest = &src[end + nl + 1..];
    while let Some(i) = rest.find('\n') {
        if !rest[..i].trim_end_matches('\r').bytes().all(|b| b == b' ') {
            break;
        }
        count += 1;
        rest = &rest[i + 1..];
    }
    count
}

fn decode_block(src: &str, start: usize, end: usize, parent_indent: usize) -> Decoded {
    // The node's span ends at its last non-blank character; blanks after
    // it on the last line are content (libyaml keeps them).
    let end = end
        + src[end..]
            .bytes()
            .take_while(|&b| b == b' ' || b == b'\t')
            .count();
    let node = &src[start..end];
    let header_end = node.find('\n').map(|i| i + 1).unwrap_or(node.len());
    let header = node[..header_end].trim_end();
    // A comment may follow the indicators with or without a blank
    // (`|# note`), as libyaml reads it.
    let header = header.split('#').next().unwrap_or(header).trim_end();
    let folded = header.starts_with('>');
    let mut chomp = Chomp::Clip;
    let mut explicit_indent = None;
    for c in header.chars().skip(1) {
        match c {
            '-' => chomp = Chomp::Strip,
            '+' => chomp = Chomp::Keep,
            d if d.is_ascii_digit() => explicit_indent = d.to_digit(10).map(|d| d as usize),
            _ => {}
        }
    }

    // Content lines: (absolute start of line, line text without CR/LF).
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let content = &node[header_end..];
    let mut pos = 0;
    while pos < content.len() {
        let nl = content[pos..].find('\n').map(|i| pos + i);
        let line_end = nl.unwrap_or(content.len());
        let mut line = &content[pos..line_end];
        if let Some(s) = line.strip_suffix('\r') {
            line = s;
        }
        lines.push((start + header_end + pos, line));
        pos = match nl {
            Some(i) => i + 1,
            None => content.len(),
        };
    }
    // tree-sitter ends the node at the last content character; the final
    // line break (if any) follows it in the source.
    let trailing_break = src[end..].starts_with('\n') || src[end..].starts_with("\r\n");

    let indent = match explicit_indent {
        Some(n) => parent_indent + n,
        None => lines
            .iter()
            .find(|(_, l)| !l.trim().is_empty())
            .map(|(_, l)| l.len() - l.trim_start_matches(' ').len())
            .unwrap_or(0),
    };

    let mut out = Out {
        text: String::new(),
        offsets: Vec::new(),
    };
    // Lines after the content (empty ones) only matter for `+` chomping.
    let mut prev_more_indented_or_empty = true;
    let mut first = true;
    let mut pending_empty: Vec<usize> = Vec::new();
    let mut prev_break_at = start + header_end;
    for (abs, line) in &lines {
        let is_empty = line.trim_matches(' ').is_empty() && line.len() <= indent;
        if is_empty {
            pending_empty.push(*abs);
            continue;
        }
        // A line indented less than the block (only in text the grammar
        // recovered from) loses just its spaces: slicing at `indent` could
        // cut into a multi-byte character (found by fuzzing).
        let text_start = indent.min(line.len() - line.trim_start_matches(' ').len());
        let text = &line[text_start..];
        let more_indented = text.starts_with(' ') || text.starts_with('\t');
        if !first {
            if folded && !more_indented && !prev_more_indented_or_empty && pending_empty.is_empty()
            {
                out.push(' ', prev_break_at);
            } else if folded && !more_indented && !prev_more_indented_or_empty {
                // A folded break followed by empty lines keeps only those lines.
                for e in &pending_empty {
                    out.push('\n', *e);
                }
            } else {
                out.push('\n', prev_break_at);
                for e in &pending_empty {
                    out.push('\n', *e);
                }
            }
        } else {
            for e in &pending_empty {
                out.push('\n', *e);
            }
        }
        pending_empty.clear();
        for (i, c) in text.char_indices() {
            out.copy(c, abs + text_start + i);
        }
        prev_break_at = abs + text_start + text.len();
        prev_more_indented_or_empty = more_indented;
        first = false;
    }
    let has_content = !first;
    match chomp {
        Chomp::Strip => {}
        Chomp::Clip => {
            if has_content && trailing_break {
                out.push('\n', prev_break_at);
            }
        }
        Chomp::Keep => {
            if has_content && trailing_break {
                out.push('\n', prev_break_at);
            }
            for e in &pending_empty {
                out.push('\n', *e);
            }
            // The node ends at its last character, so the empty lines after
            // it are outside; `+` keeps them, as libyaml does (each maps to
            // the node's end).
            if trailing_break {
                for _ in 0..empty_lines_after(src, end) {
                    out.push('\n', end);
                }
            }
        }
    }
    out.offsets.push(end);
    Decoded {
        text: out.text,
        offsets: out.offsets,
        block_indent: indent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(src: &str, style: ScalarStyle) -> String {
        decode(src, 0, src.len(), style, 0).text
    }

    #[test]
    fn plain_multi_line_folds_into_one_line() {
        assert_eq!(dec("a\n    b\n\n    c", ScalarStyle::Plain), "a b\nc");
    }

    #[test]
    fn quoted_escapes_and_folding() {
        assert_eq!(
            dec(r#""a\tb \"q\" \x41""#, ScalarStyle::DoubleQuoted),
            "a\tb \"q\" A"
        );
        assert_eq!(
            dec("'it''s\n  here'", ScalarStyle::SingleQuoted),
            "it's here"
        );
        assert_eq!(
            dec("\"one \\\n   two\"", ScalarStyle::DoubleQuoted),
            "one two"
        );
    }

    #[test]
    fn literal_and_folded_blocks() {
        let lit = "|\n  a\n    b\n  c\n";
        assert_eq!(
            decode(lit, 0, lit.len() - 1, ScalarStyle::Literal(Chomp::Clip), 0).text,
            "a\n  b\nc\n"
        );
        let fold = ">-\n  one\n  two\n\n  three\n";
        assert_eq!(
            decode(
                fold,
                0,
                fold.len() - 1,
                ScalarStyle::Folded(Chomp::Strip),
                0
            )
            .text,
            "one two\nthree"
        );
    }

    #[test]
    fn offsets_point_back_into_the_source() {
        let src = "k: >-\n  --a\n  --b\n";
        let start = 3;
        let end = src.len() - 1;
        let d = decode(src, start, end, ScalarStyle::Folded(Chomp::Strip), 0);
        assert_eq!(d.text, "--a --b");
        let b = d.text.find("--b").unwrap();
        let r = d.source_range(b..b + 3);
        assert_eq!(&src[r], "--b");
    }
}
