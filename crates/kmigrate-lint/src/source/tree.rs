//! A spanned YAML tree built from tree-sitter-yaml's concrete syntax tree
//! (the grammar yamlpath is built on).
//!
//! Every node keeps the byte span it was written at, its anchor and tag, and
//! scalars keep their decoded text with a map back to the source. Aliases are
//! kept as aliases: expanding them is the caller's choice, so a "billion
//! laughs" document costs nothing here.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use super::scalar::{self, Chomp, Decoded, ScalarStyle};

/// A byte range in the source text.
pub type Span = Range<usize>;

/// Nesting deeper than this is refused instead of risking the stack.
pub const MAX_DEPTH: usize = 256;

/// All documents of one YAML stream, and every comment in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub documents: Vec<Node>,
    pub comments: Vec<Span>,
    anchors: AnchorIndex,
}

/// Where each `&anchor` is, built on the first alias lookup: without it
/// every alias would walk the whole tree, quadratic in a file of many
/// aliases. A cache of the tree it is in, so it takes no part in equality.
#[derive(Clone, Default)]
struct AnchorIndex(OnceLock<HashMap<String, Vec<AnchorAt>>>);

/// One anchored node: where it starts, and the way down to it.
#[derive(Clone)]
struct AnchorAt {
    start: usize,
    doc: usize,
    /// Child positions from the document root: a sequence item's index, or
    /// `2 * i` / `2 * i + 1` for the key / value of a mapping's entry `i`.
    path: Vec<u32>,
}

impl PartialEq for AnchorIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AnchorIndex {}

impl std::fmt::Debug for AnchorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnchorIndex")
    }
}

/// One YAML node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Where the node's content is written (without anchor and tag).
    pub span: Span,
    /// Where the node is written including its anchor and tag.
    pub full_span: Span,
    pub anchor: Option<String>,
    pub tag: Option<String>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An empty node (`key:` with nothing after it).
    Null,
    Scalar(Scalar),
    Seq(Seq),
    Map(Map),
    /// `*name`.
    Alias(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub style: ScalarStyle,
    /// Decoded-to-source offsets; `None` when the text is the source slice
    /// itself (a plain or quoted one-liner without escapes).
    offsets: Option<Vec<usize>>,
    /// Content indentation of a block scalar.
    pub block_indent: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq {
    pub flow: bool,
    pub items: Vec<Item>,
}

/// A sequence item; for block sequences `span` includes the `- `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub span: Span,
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub flow: bool,
    pub entries: Vec<Entry>,
}

/// A `key: value` pair; `span` covers both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub span: Span,
    pub key: Node,
    pub value: Node,
}

/// Why a text is not a YAML tree kmigrate can work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

impl Scalar {
    /// Bytes the scalar holds on the heap (its text and offset map): what a
    /// copy of it costs.
    pub fn heap_bytes(&self) -> usize {
        self.text.len()
            + self
                .offsets
                .as_ref()
                .map_or(0, |o| o.len() * size_of::<usize>())
    }

    /// Source range of the decoded byte range `r`. `content_start` is the
    /// node's span start (used when the text is the source slice itself).
    pub fn source_range(&self, node_span: &Span, r: Range<usize>) -> Span {
        match &self.offsets {
            None => {
                let base = node_span.start + self.quote_width();
                base + r.start..base + r.end
            }
            Some(offsets) => Decoded {
                text: self.text.clone(),
                offsets: offsets.clone(),
                block_indent: self.block_indent,
            }
            .source_range(r),
        }
    }

    fn quote_width(&self) -> usize {
        match self.style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => 1,
            _ => 0,
        }
    }

    /// YAML's null spellings in a plain scalar.
    pub fn is_null(&self) -> bool {
        self.style == ScalarStyle::Plain
            && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Seq> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The entry whose key is the plain string `key`, if this is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?
            .entries
            .iter()
            .find(|e| e.key.as_str() == Some(key))
    }

    /// The value under `key`, if this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// True for an empty node or a null scalar.
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Scalar(s) => s.is_null(),
            _ => false,
        }
    }

    /// A short name of the node's kind for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
            Value::Alias(_) => "alias",
        }
    }
}

impl Tree {
    pub fn new(documents: Vec<Node>, comments: Vec<Span>) -> Self {
        Tree {
            documents,
            comments,
            anchors: AnchorIndex::default(),
        }
    }

    /// Finds the node carrying `&name` that an alias at `before` refers to:
    /// the latest definition written before it, as YAML specifies.
    pub fn anchored(&self, name: &str, before: usize) -> Option<&Node> {
        let index = self
            .anchors
            .0
            .get_or_init(|| index_anchors(&self.documents));
        let list = index.get(name)?;
        let at = &list[list.partition_point(|a| a.start < before).checked_sub(1)?];
        let mut node = &self.documents[at.doc];
        for &step in &at.path {
            node = match &node.value {
                Value::Seq(s) => &s.items[step as usize].node,
                Value::Map(m) => {
                    let e = &m.entries[step as usize / 2];
                    if step % 2 == 0 { &e.key } else { &e.value }
                }
                _ => unreachable!("an anchor path leads through collections"),
            };
        }
        Some(node)
    }
}

/// Every anchored node by name, in source order; of several starting at
/// the same offset, the first in document order.
fn index_anchors(documents: &[Node]) -> HashMap<String, Vec<AnchorAt>> {
    fn walk(n: &Node, doc: usize, path: &mut Vec<u32>, out: &mut HashMap<String, Vec<AnchorAt>>) {
        if let Some(name) = &n.anchor {
            out.entry(name.clone()).or_default().push(AnchorAt {
                start: n.full_span.start,
                doc,
                path: path.clone(),
            });
        }
        let mut child = |i: usize, c: &Node, path: &mut Vec<u32>| {
            path.push(i as u32);
            walk(c, doc, path, out);
            path.pop();
        };
        match &n.value {
            Value::Seq(s) => s
                .items
                .iter()
                .enumerate()
                .for_each(|(i, item)| child(i, &item.node, path)),
            Value::Map(m) => m.entries.iter().enumerate().for_each(|(i, e)| {
                child(2 * i, &e.key, path);
                child(2 * i + 1, &e.value, path);
            }),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    for (doc, n) in documents.iter().enumerate() {
        walk(n, doc, &mut Vec::new(), &mut out);
    }
    for list in out.values_mut() {
        list.sort_by_key(|a| a.start);
        list.dedup_by_key(|a| a.start);
    }
    out
}

/// Calls `f` on `node` and every node below it, in source order.
pub fn visit<'a>(node: &'a Node, f: &mut impl FnMut(&'a Node)) {
    f(node);
    match &node.value {
        Value::Seq(s) => s.items.iter().for_each(|i| visit(&i.node, f)),
        Value::Map(m) => m.entries.iter().for_each(|e| {
            visit(&e.key, f);
            visit(&e.value, f);
        }),
        _ => {}
    }
}

/// Parses `src` into a tree, or reports the first syntax error.
///
/// Text in the plain shape most CI files have is read by `fast`; anything
/// else (and every error) goes through tree-sitter-yaml. Both give the same
/// tree for every text `fast` accepts.
pub fn parse(src: &str) -> Result<Tree, ParseError> {
    check_block_indent(src)?;
    match super::fast::parse(src) {
        Some(tree) => Ok(tree),
        None => {
            tree_sitter_tree(src).or_else(|e| super::glued::reread(src, tree_sitter_tree).ok_or(e))
        }
    }
}

/// Parses `src` with tree-sitter-yaml only: the reference `fast` is tested
/// against (the differential tests and the `fast_tree` fuzz target).
pub fn parse_with_tree_sitter(src: &str) -> Result<Tree, ParseError> {
    check_block_indent(src)?;
    tree_sitter_tree(src)
}

/// tree-sitter's parse and the tree built from it, on text whose block
/// indentation is already checked.
fn tree_sitter_tree(src: &str) -> Result<Tree, ParseError> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_yaml::LANGUAGE.into())
        .map_err(|e| ParseError {
            offset: 0,
            message: format!("YAML grammar failed to load: {e}"),
        })?;
    let ts = parser.parse(src, None).ok_or(ParseError {
        offset: 0,
        message: "YAML parser gave up".into(),
    })?;
    let root = ts.root_node();
    if root.has_error() {
        return Err(first_error(root));
    }
    let builder = Builder { src };
    let mut documents = Vec::new();
    let mut comments = Vec::new();
    collect_comments(root, &mut comments)?;
    let mut cursor = root.walk();
    for doc in root
        .children(&mut cursor)
        .filter(|n| n.kind() == "document")
    {
        let mut c = doc.walk();
        let content = doc
            .children(&mut c)
            .find(|n| matches!(n.kind(), "block_node" | "flow_node"));
        documents.push(match content {
            Some(n) => builder.node(n, 0)?,
            None => empty_node(doc.end_byte()),
        });
    }
    Ok(Tree::new(documents, comments))
}

/// The widest block indentation (spaces and `-`/`?`/`:` indicators before a
/// line's content) the grammar is given. tree-sitter-yaml's scanner keeps one
/// indentation level per column and aborts the process (a C assertion, after
/// writing past its 1 KiB state buffer) beyond about 250 levels, so such
/// text is refused before it reaches the parser; `- - - … x` 100,000 deep
/// did abort (found by the bad-input suite).
pub const MAX_BLOCK_INDENT: usize = 240;

pub fn check_block_indent(src: &str) -> Result<(), ParseError> {
    let mut line_start = 0;
    for line in src.split_inclusive('\n') {
        let lead = line
            .bytes()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'-' | b'?' | b':'))
            .count();
        if lead > MAX_BLOCK_INDENT {
            return Err(ParseError {
                offset: line_start + MAX_BLOCK_INDENT,
                message: format!(
                    "nesting is deeper than {MAX_DEPTH} levels (block indentation past column {MAX_BLOCK_INDENT})"
                ),
            });
        }
        line_start += line.len();
    }
    Ok(())
}

fn collect_comments(root: tree_sitter::Node, out: &mut Vec<Span>) -> Result<(), ParseError> {
    // Iterative walk: a deeply nested document must not exhaust the stack.
    let mut cursor = root.walk();
    let mut depth = 0usize;
    loop {
        let n = cursor.node();
        if n.kind() == "comment" {
            out.push(n.start_byte()..n.end_byte());
        }
        if cursor.goto_first_child() {
            depth += 1;
            if depth > MAX_DEPTH * 4 {
                return Err(ParseError {
                    offset: n.start_byte(),
                    message: format!("nesting is deeper than {MAX_DEPTH} levels"),
                });
            }
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return Ok(());
            }
            depth -= 1;
        }
    }
}

fn first_error(root: tree_sitter::Node) -> ParseError {
    let mut cursor = root.walk();
    loop {
        let n = cursor.node();
        if n.is_error() || n.is_missing() {
            let message = if n.is_missing() {
                format!("expected `{}` here", n.kind())
            } else {
                "this is not valid YAML".to_string()
            };
            return ParseError {
                offset: n.start_byte(),
                message,
            };
        }
        // Descend into the first child that contains an error.
        let mut found = false;
        if cursor.goto_first_child() {
            loop {
                let c = cursor.node();
                if c.has_error() || c.is_error() || c.is_missing() {
                    found = true;
                    break;
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        if !found {
            return ParseError {
                offset: n.start_byte(),
                message: "this is not valid YAML".to_string(),
            };
        }
    }
}

pub(super) fn empty_node(at: usize) -> Node {
    Node {
        span: at..at,
        full_span: at..at,
        anchor: None,
        tag: None,
        value: Value::Null,
    }
}

/// Part of the message refusing an anchor name libyaml would split.
pub const ANCHOR_NAME_SPLIT: &str = "where GitLab's and Cloud Build's YAML readers end the name";

/// Refuses an anchor or alias name holding a character where libyaml (and
/// Go's yaml, a port of it) ends the name: YAML 1.2 and tree-sitter-yaml
/// read `&a:b 5` as anchor `a:b` on `5`, the platforms as anchor `a` on
/// `:b 5`. Reading either way silently would change values, so the text is
/// refused with a way out.
fn check_anchor_name(name: &str, offset: usize) -> Result<(), ParseError> {
    match name
        .chars()
        .find(|c| matches!(c, '?' | ':' | '%' | '@' | '`'))
    {
        Some(c) => Err(ParseError {
            offset,
            message: format!(
                "the anchor or alias name `{name}` holds `{c}`, {ANCHOR_NAME_SPLIT}; use only letters, digits, `-` and `_` in it"
            ),
        }),
        None => Ok(()),
    }
}

struct Builder<'s> {
    src: &'s str,
}

impl<'s> Builder<'s> {
    fn text(&self, n: tree_sitter::Node) -> &'s str {
        &self.src[self.span(n)]
    }

    /// The node's span without the trailing line breaks and blanks that
    /// tree-sitter attaches to block constructs.
    fn span(&self, n: tree_sitter::Node) -> Span {
        let start = n.start_byte();
        let trimmed = self.src[start..n.end_byte()].trim_end_matches([' ', '\t', '\r', '\n']);
        start..start + trimmed.len()
    }

    /// Builds a `block_node`/`flow_node` (or a bare content node).
    fn node(&self, n: tree_sitter::Node, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError {
                offset: n.start_byte(),
                message: format!("nesting is deeper than {MAX_DEPTH} levels"),
            });
        }
        let mut anchor = None;
        let mut tag = None;
        let mut content = None;
        if matches!(n.kind(), "block_node" | "flow_node") {
            let mut c = n.walk();
            for child in n.named_children(&mut c) {
                match child.kind() {
                    "anchor" => {
                        let name = self.text(child).trim_start_matches('&');
                        check_anchor_name(name, child.start_byte())?;
                        anchor = Some(name.to_string());
                    }
                    "tag" => tag = Some(self.text(child).to_string()),
                    "comment" => {}
                    _ => content = Some(child),
                }
            }
        } else {
            content = Some(n);
        }
        let full_span = self.span(n);
        let Some(content) = content else {
            let mut node = empty_node(n.end_byte());
            node.full_span = full_span;
            node.anchor = anchor;
            node.tag = tag;
            return Ok(node);
        };
        let value = self.value(content, depth)?;
        Ok(Node {
            span: self.span(content),
            full_span,
            anchor,
            tag,
            value,
        })
    }

    fn value(&self, n: tree_sitter::Node, depth: usize) -> Result<Value, ParseError> {
        let span = self.span(n);
        Ok(match n.kind() {
            "plain_scalar" => self.scalar(span, ScalarStyle::Plain),
            "single_quote_scalar" => self.scalar(span, ScalarStyle::SingleQuoted),
            "double_quote_scalar" => self.scalar(span, ScalarStyle::DoubleQuoted),
            "block_scalar" => {
                let header = self.text(n);
                let chomp = match header.get(1..2) {
                    _ if header.lines().next().unwrap_or("").contains('-') => Chomp::Strip,
                    _ if header.lines().next().unwrap_or("").contains('+') => Chomp::Keep,
                    _ => Chomp::Clip,
                };
                let style = if header.starts_with('>') {
                    ScalarStyle::Folded(chomp)
                } else {
                    ScalarStyle::Literal(chomp)
                };
                self.scalar(span, style)
            }
            "alias" => {
                let name = self.text(n).trim_start_matches('*');
                check_anchor_name(name, n.start_byte())?;
                Value::Alias(name.to_string())
            }
            "block_sequence" | "flow_sequence" => {
                let flow = n.kind() == "flow_sequence";
                let mut items = Vec::new();
                let mut c = n.walk();
                for child in n.named_children(&mut c) {
                    match child.kind() {
                        "comment" => {}
                        "block_sequence_item" => {
                            let mut cc = child.walk();
                            let inner = child
                                .named_children(&mut cc)
                                .find(|x| matches!(x.kind(), "block_node" | "flow_node"));
                            let node = match inner {
                                Some(x) => self.node(x, depth + 1)?,
                                None => empty_node(child.end_byte()),
                            };
                            items.push(Item {
                                span: self.span(child),
                                node,
                            });
                        }
                        "flow_pair" => {
                            let entry = self.pair(child, depth + 1)?;
                            let span = entry.span.clone();
                            items.push(Item {
                                span: span.clone(),
                                node: Node {
                                    span: span.clone(),
                                    full_span: span,
                                    anchor: None,
                                    tag: None,
                                    value: Value::Map(Map {
                                        flow: true,
                                        entries: vec![entry],
                                    }),
                                },
                            });
                        }
                        _ => {
                            let node = self.node(child, depth + 1)?;
                            items.push(Item {
                                span: node.full_span.clone(),
                                node,
                            });
                        }
                    }
                }
                Value::Seq(Seq { flow, items })
            }
            "block_mapping" | "flow_mapping" => {
                let flow = n.kind() == "flow_mapping";
                let mut entries = Vec::new();
                let mut c = n.walk();
                for child in n.named_children(&mut c) {
                    match child.kind() {
                        "block_mapping_pair" | "flow_pair" => {
                            entries.push(self.pair(child, depth + 1)?)
                        }
                        // `{a, b}`: keys with null values.
                        "flow_node" => {
                            let key = self.node(child, depth + 1)?;
                            entries.push(Entry {
                                span: key.full_span.clone(),
                                value: empty_node(key.full_span.end),
                                key,
                            });
                        }
                        _ => {}
                    }
                }
                Value::Map(Map { flow, entries })
            }
            other => {
                return Err(ParseError {
                    offset: n.start_byte(),
                    message: format!("unsupported YAML construct `{other}`"),
                });
            }
        })
    }

    fn pair(&self, n: tree_sitter::Node, depth: usize) -> Result<Entry, ParseError> {
        let key = match n.child_by_field_name("key") {
            Some(k) => self.node(k, depth)?,
            None => empty_node(n.start_byte()),
        };
        let value = match n.child_by_field_name("value") {
            Some(v) => self.node(v, depth)?,
            None => empty_node(n.end_byte()),
        };
        Ok(Entry {
            span: self.span(n),
            key,
            value,
        })
    }

    fn scalar(&self, span: Span, style: ScalarStyle) -> Value {
        scalar_value(self.src, span, style)
    }
}

/// The value of the scalar written at `span` in `style`: the source slice
/// itself when nothing needs decoding, else the decoded text and its map.
pub(super) fn scalar_value(src: &str, span: Span, style: ScalarStyle) -> Value {
    let raw = &src[span.clone()];
    let simple = match style {
        ScalarStyle::Plain => !raw.contains('\n'),
        ScalarStyle::SingleQuoted => {
            !raw.contains('\n') && !raw[1..raw.len().saturating_sub(1)].contains('\'')
        }
        ScalarStyle::DoubleQuoted => !raw.contains('\n') && !raw.contains('\\'),
        _ => false,
    };
    if simple {
        let text = match style {
            ScalarStyle::Plain => raw.to_string(),
            _ => raw[1..raw.len().saturating_sub(1).max(1)].to_string(),
        };
        return Value::Scalar(Scalar {
            text,
            style,
            offsets: None,
            block_indent: 0,
        });
    }
    let parent_indent = line_indent(src, span.start);
    let d = scalar::decode(src, span.start, span.end, style, parent_indent);
    Value::Scalar(Scalar {
        text: d.text,
        style,
        offsets: Some(d.offsets),
        block_indent: d.block_indent,
    })
}

/// Indentation (spaces) of the line containing `offset`.
pub fn line_indent(src: &str, offset: usize) -> usize {
    let line_start = src[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    src[line_start..].bytes().take_while(|b| *b == b' ').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_spans_for_keys_items_and_scalars() {
        let src = "steps:\n- name: 'a'\n  args: [x, \"y,z\"]\n";
        let t = parse(src).unwrap();
        let root = &t.documents[0];
        let steps = root.get("steps").unwrap().as_seq().unwrap();
        assert!(!steps.flow);
        assert_eq!(
            &src[steps.items[0].span.clone()],
            "- name: 'a'\n  args: [x, \"y,z\"]"
        );
        let step = &steps.items[0].node;
        assert_eq!(step.get("name").unwrap().as_str(), Some("a"));
        let args = step.get("args").unwrap().as_seq().unwrap();
        assert!(args.flow);
        assert_eq!(args.items[1].node.as_str(), Some("y,z"));
        assert_eq!(&src[args.items[1].node.span.clone()], "\"y,z\"");
    }

    #[test]
    fn keeps_anchors_aliases_tags_and_comments() {
        let src =
            "# top\n.t: &tpl\n  image: x\njob:\n  <<: *tpl\n  script: !reference [.t, script]\n";
        let t = parse(src).unwrap();
        assert_eq!(t.comments.len(), 1);
        let root = &t.documents[0];
        assert_eq!(root.get(".t").unwrap().anchor.as_deref(), Some("tpl"));
        let job = root.get("job").unwrap();
        assert!(matches!(job.get("<<").unwrap().value, Value::Alias(ref a) if a == "tpl"));
        assert_eq!(
            job.get("script").unwrap().tag.as_deref(),
            Some("!reference")
        );
        let target = t.anchored("tpl", src.find("*tpl").unwrap()).unwrap();
        assert_eq!(target.get("image").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn empty_values_and_multiple_documents() {
        let t = parse("spec:\n  inputs:\n---\na: 1\n").unwrap();
        assert_eq!(t.documents.len(), 2);
        assert!(
            t.documents[0]
                .get("spec")
                .unwrap()
                .get("inputs")
                .unwrap()
                .is_null()
        );
    }

    #[test]
    fn syntax_errors_have_an_offset() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.offset > 0, "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let src = "[".repeat(5000) + &"]".repeat(5000);
        assert!(parse(&src).is_err());
    }
}

/// yamlpath (zizmor's route crate, on the same grammar) is the reference for
/// where a route's value lives; kmigrate's own tree must agree with it.
#[cfg(test)]
mod yamlpath_oracle {
    use super::*;
    use yamlpath::{Component, Document, Route};

    fn walk<'a>(
        node: &'a Node,
        route: &mut Vec<Component<'a>>,
        out: &mut Vec<(Vec<Component<'a>>, Span)>,
    ) {
        match &node.value {
            Value::Scalar(s) if !s.style.is_block() => out.push((route.clone(), node.span.clone())),
            Value::Map(m) => {
                for e in &m.entries {
                    if let Some(k) = e.key.as_str() {
                        route.push(Component::Key(k.into()));
                        walk(&e.value, route, out);
                        route.pop();
                    }
                }
            }
            Value::Seq(s) => {
                for (i, item) in s.items.iter().enumerate() {
                    route.push(Component::Index(i));
                    walk(&item.node, route, out);
                    route.pop();
                }
            }
            _ => {}
        }
    }

    #[test]
    fn scalar_spans_match_yamlpath() {
        let docs = [
            "steps:\n  - name: 'gcr.io/kaniko-project/executor:latest'\n    args: [\"--a=1\", b, 'c,d']\n    waitFor: ['-']\n",
            "# c\nbuild:\n    image:\n        name: gcr.io/kaniko-project/executor:debug\n        entrypoint: [\"\"]\n    script:\n        - /kaniko/executor\n          --context .\n        - echo \"x: y\"\n",
            "{\"steps\": [{\"name\": \"a\", \"args\": [\"x\", \"y\"]}], \"timeout\": \"60s\"}\n",
            "a:\r\n  - b\r\n  - c: d\r\n",
        ];
        for src in docs {
            let tree = parse(src).unwrap();
            let doc = Document::new(src).unwrap();
            let mut found = Vec::new();
            walk(&tree.documents[0], &mut Vec::new(), &mut found);
            assert!(!found.is_empty());
            for (route, span) in found {
                let r = Route::from(route.clone());
                let feature = doc
                    .query_exact(&r)
                    .unwrap_or_else(|e| panic!("{route:?}: {e:?}"))
                    .unwrap_or_else(|| panic!("{route:?} not found by yamlpath"));
                let (start, end) = feature.location.byte_span;
                assert_eq!(start..end, span, "{route:?} in {src:?}");
            }
        }
    }
}
