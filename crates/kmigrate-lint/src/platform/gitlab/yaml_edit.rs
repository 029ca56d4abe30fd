//! Format-preserving edits on a GitLab file: find the source node a
//! resolved value was read from, and insert, replace or delete whole
//! entries and items in the file's own indentation and line endings.

use crate::source::patch::Edit;
use crate::source::tree::{Entry, Node, Value, visit};
use crate::source::{SourceFile, Span};

/// The node whose content span is `span`.
pub fn node_at<'a>(file: &'a SourceFile, span: &Span) -> Option<&'a Node> {
    let mut found = None;
    for doc in &file.tree.documents {
        visit(doc, &mut |n| {
            if found.is_none() && n.span == *span && !matches!(n.value, Value::Alias(_)) {
                found = Some(n);
            }
        });
    }
    found
}

/// The mapping node and entry whose value node is at `value_span`.
pub fn entry_of<'a>(file: &'a SourceFile, value_span: &Span) -> Option<(&'a Node, &'a Entry)> {
    let mut found = None;
    for doc in &file.tree.documents {
        visit(doc, &mut |n| {
            if found.is_some() {
                return;
            }
            if let Value::Map(m) = &n.value
                && let Some(e) = m.entries.iter().find(|e| e.value.span == *value_span)
            {
                found = Some((n, e));
            }
        });
    }
    found
}

/// The mapping node whose span is `span`.
pub fn map_at<'a>(file: &'a SourceFile, span: &Span) -> Option<&'a Node> {
    node_at(file, span).filter(|n| matches!(n.value, Value::Map(_)))
}

/// The sequence holding the item whose node is at `item_span`, and the
/// item's index.
pub fn seq_of<'a>(file: &'a SourceFile, item_span: &Span) -> Option<(&'a Node, usize)> {
    let mut found = None;
    for doc in &file.tree.documents {
        visit(doc, &mut |n| {
            if found.is_some() {
                return;
            }
            if let Value::Seq(s) = &n.value
                && let Some(i) = s.items.iter().position(|i| i.node.span == *item_span)
            {
                found = Some((n, i));
            }
        });
    }
    found
}

/// Byte offset of the start of the line holding `offset`.
pub fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// Byte offset of the end of the line holding `offset` (before `\r\n`).
pub fn line_end(text: &str, offset: usize) -> usize {
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    if end > 0 && text.as_bytes().get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    }
}

/// Column (bytes from the line start) of `offset`.
pub fn column(text: &str, offset: usize) -> usize {
    offset - line_start(text, offset)
}

/// How a file indents: the step between a key and its children, and
/// where block sequence dashes sit relative to their key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indent {
    pub step: usize,
    /// Columns from a key to the `-` of its block sequence items (0 for
    /// `key:\n- item`).
    pub seq: usize,
}

impl Indent {
    /// Learns the style from the file's first nested mapping and block
    /// sequence; two spaces (dashes indented) when the file shows none.
    pub fn of(file: &SourceFile) -> Indent {
        let mut step = None;
        let mut seq = None;
        let text = &file.text;
        for doc in &file.tree.documents {
            visit(doc, &mut |n| {
                let Value::Map(m) = &n.value else { return };
                if m.flow {
                    return;
                }
                for e in &m.entries {
                    let key_col = column(text, e.key.span.start);
                    match &e.value.value {
                        Value::Map(c) if !c.flow && step.is_none() => {
                            if let Some(first) = c.entries.first() {
                                let d = column(text, first.key.span.start);
                                if d > key_col {
                                    step = Some(d - key_col);
                                }
                            }
                        }
                        Value::Seq(s) if !s.flow && seq.is_none() => {
                            if let Some(first) = s.items.first() {
                                let d = column(text, first.span.start);
                                if d >= key_col {
                                    seq = Some(d - key_col);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            });
        }
        let step = step.unwrap_or(2);
        Indent {
            step,
            seq: seq.unwrap_or(step),
        }
    }
}

/// Prefixes every line of `block` but the first with `pad`, joining with `nl`.
fn indent_lines(block: &str, pad: &str, nl: &str) -> String {
    block
        .split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join(nl)
}

/// Inserts `text` (one or more lines written at column 0, `\n`-separated)
/// as new entries of the block or flow mapping `map`, after entry `after`
/// (or after the last entry).
pub fn insert_entries(
    file: &SourceFile,
    map: &Node,
    after: Option<&Entry>,
    text: &str,
) -> Option<Edit> {
    let Value::Map(m) = &map.value else {
        return None;
    };
    let nl = file.line_ending.as_str();
    let src = &file.text;
    if m.flow {
        // `{a: 1}` → `{a: 1, key: value}`: flow entries must be one line each.
        let close = map.span.end.checked_sub(1)?;
        let sep = if m.entries.is_empty() { "" } else { ", " };
        let one_line = text.replace('\n', " ");
        return Some(Edit::insert(close, format!("{sep}{one_line}")));
    }
    let anchor = after.or(m.entries.last())?;
    let col = column(src, m.entries.first()?.key.span.start);
    let pad = " ".repeat(col);
    let at = line_end(src, anchor.span.end);
    Some(Edit::insert(
        at,
        format!("{nl}{pad}{}", indent_lines(text, &pad, nl)),
    ))
}

/// Replaces block mapping entry `e` (key and value, to the end of its
/// last line) with `text` (lines written at column 0, `\n`-separated).
pub fn replace_entry(file: &SourceFile, e: &Entry, text: &str) -> Edit {
    let src = &file.text;
    let pad = " ".repeat(column(src, e.key.span.start));
    let end = line_end(src, e.span.end.max(e.value.full_span.end));
    Edit::replace(
        e.key.span.start..end,
        indent_lines(text, &pad, file.line_ending.as_str()),
    )
}

/// Inserts `text` as entries before entry `before` of a block mapping.
pub fn insert_entries_before(file: &SourceFile, before: &Entry, text: &str) -> Edit {
    let nl = file.line_ending.as_str();
    let src = &file.text;
    let col = column(src, before.key.span.start);
    let pad = " ".repeat(col);
    let at = line_start(src, before.key.span.start);
    Edit::insert(at, format!("{pad}{}{nl}", indent_lines(text, &pad, nl)))
}

/// Adds `items` (each already rendered as YAML scalar text) to the end or
/// the start of sequence `seq`.
pub fn add_items(file: &SourceFile, seq: &Node, items: &[String], at_start: bool) -> Option<Edit> {
    let Value::Seq(s) = &seq.value else {
        return None;
    };
    let nl = file.line_ending.as_str();
    let src = &file.text;
    if s.flow || s.items.is_empty() {
        let joined = items.join(", ");
        if s.items.is_empty() {
            let open = seq.span.start + 1;
            return Some(Edit::insert(open, joined));
        }
        return Some(if at_start {
            Edit::insert(s.items[0].span.start, format!("{joined}, "))
        } else {
            Edit::insert(s.items.last()?.span.end, format!(", {joined}"))
        });
    }
    let first = &s.items[0];
    let pad = " ".repeat(column(src, first.span.start));
    if at_start {
        let at = line_start(src, first.span.start);
        let text: String = items.iter().map(|i| format!("{pad}- {i}{nl}")).collect();
        Some(Edit::insert(at, text))
    } else {
        let at = line_end(src, s.items.last()?.span.end);
        let text: String = items.iter().map(|i| format!("{nl}{pad}- {i}")).collect();
        Some(Edit::insert(at, text))
    }
}

/// Deletes a block mapping entry or block sequence item written on whole
/// lines (`span` from its key or dash to its end), with its line break.
pub fn delete_lines(file: &SourceFile, span: &Span) -> Edit {
    let src = &file.text;
    let start = line_start(src, span.start);
    let end = line_end(src, span.end);
    let end = if src[end..].starts_with("\r\n") {
        end + 2
    } else if src[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Edit::replace(start..end, "")
}

/// The source text of whole lines covering `span` (from the start of its
/// first line to the end of its last), without the final line break.
pub fn whole_lines<'a>(file: &'a SourceFile, span: &Span) -> &'a str {
    let src = &file.text;
    &src[line_start(src, span.start)..line_end(src, span.end)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::patch::apply;
    use std::path::Path;

    fn file(s: &str) -> SourceFile {
        SourceFile::from_text(Path::new("t.yml"), s.to_string()).unwrap()
    }

    #[test]
    fn learns_indentation() {
        assert_eq!(
            Indent::of(&file("a:\n    b: 1\n    c:\n    - x\n")),
            Indent { step: 4, seq: 0 }
        );
        assert_eq!(
            Indent::of(&file("a:\n  s:\n    - x\n")),
            Indent { step: 2, seq: 2 }
        );
    }

    #[test]
    fn inserts_entries_after_the_line_and_keeps_comments() {
        let f = file("job:\n  image: x # the image\n  script: [a]\n");
        let job = f.root().unwrap().get("job").unwrap();
        let after = job.entry("image").unwrap();
        let e = insert_entries(&f, job, Some(after), "services:\n  - docker:dind").unwrap();
        assert_eq!(
            apply(&f.text, &[e]).unwrap(),
            "job:\n  image: x # the image\n  services:\n    - docker:dind\n  script: [a]\n"
        );
        let flow = file("job: {image: x}\n");
        let m = flow.root().unwrap().get("job").unwrap();
        let e = insert_entries(&flow, m, None, "stage: build").unwrap();
        assert_eq!(
            apply(&flow.text, &[e]).unwrap(),
            "job: {image: x, stage: build}\n"
        );
    }

    #[test]
    fn adds_items_in_block_and_flow_sequences_with_crlf() {
        let f = file("s:\r\n  - a\r\n  - b\r\n");
        let s = f.root().unwrap().get("s").unwrap();
        let end = add_items(&f, s, &["c".into()], false).unwrap();
        let start = add_items(&f, s, &["z".into()], true).unwrap();
        assert_eq!(
            apply(&f.text, &[end, start]).unwrap(),
            "s:\r\n  - z\r\n  - a\r\n  - b\r\n  - c\r\n"
        );
        let f = file("s: [a]\n");
        let s = f.root().unwrap().get("s").unwrap();
        let e = add_items(&f, s, &["b".into()], false).unwrap();
        assert_eq!(apply(&f.text, &[e]).unwrap(), "s: [a, b]\n");
    }

    #[test]
    fn deletes_whole_lines_and_finds_nodes() {
        let f = file("a:\n  - x\n  - y\nb: 1\n");
        let seq = f.root().unwrap().get("a").unwrap();
        let Value::Seq(s) = &seq.value else { panic!() };
        let e = delete_lines(&f, &s.items[0].span);
        assert_eq!(apply(&f.text, &[e]).unwrap(), "a:\n  - y\nb: 1\n");
        let (m, entry) = entry_of(&f, &f.root().unwrap().get("b").unwrap().span).unwrap();
        assert_eq!(entry.key.as_str(), Some("b"));
        assert!(m.get("a").is_some());
        let (_, i) = seq_of(&f, &s.items[1].node.span).unwrap();
        assert_eq!(i, 1);
    }
}
