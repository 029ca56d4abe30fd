//! The resolved view of GitLab YAML: aliases expanded, `<<:` merge keys
//! applied, `!reference` tags kept as placeholders for a later pass.
//!
//! Every resolved node remembers where it is written ([`Origin`]): the file,
//! the node's span and the top-level key (job, template, `default`…) whose
//! body contains it. Resolution copies nodes around (an alias, a merge key,
//! `extends`), but the origin always names the definition, so a fix edits
//! the definition once instead of one copy per user.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::source::{Node, Scalar, SourceError, SourceFile, Span, Value};

/// How many resolved nodes one file may expand to through aliases before
/// resolution is refused (a "billion laughs" document).
pub const MAX_EXPANDED_NODES: usize = 500_000;

/// How many bytes the copies that aliases and merge keys make in one file
/// may hold (nodes, keys, scalar text): a few aliases of one large scalar
/// are few nodes but many bytes.
pub const MAX_EXPANDED_BYTES: usize = 64 << 20;

/// [`MAX_EXPANDED_BYTES`] in words, for messages.
pub const MAX_EXPANDED_BYTES_SHOWN: &str = "64 MiB";

/// Where a resolved node is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Index of the file in the pipeline's file list.
    pub file: usize,
    /// The node's content span (without anchor and tag).
    pub span: Span,
    /// The node's span including its anchor and tag.
    pub full_span: Span,
    /// The top-level key (job, hidden template, `default`, `variables`…)
    /// whose body contains the node, if any. Shared: resolution copies
    /// nodes many times.
    pub owner: Option<Arc<str>>,
}

/// A resolved YAML node.
#[derive(Debug, Clone)]
pub struct RNode {
    pub origin: Origin,
    pub value: RValue,
}

#[derive(Debug, Clone)]
pub enum RValue {
    Null,
    Scalar(Scalar),
    Seq(Vec<RNode>),
    Map(Vec<REntry>),
    /// An unresolved `!reference [job, key, …]`.
    Reference(Vec<String>),
}

/// One `key: value` pair of a resolved mapping.
#[derive(Debug, Clone)]
pub struct REntry {
    pub key: String,
    /// Where the key is written.
    pub key_origin: Origin,
    /// The whole `key: value` pair as written (in `key_origin.file`).
    pub entry_span: Span,
    pub value: RNode,
}

impl RNode {
    /// The memory this node and everything below it hold: what a copy of
    /// it costs.
    pub fn weight(&self) -> usize {
        size_of::<RNode>()
            + match &self.value {
                RValue::Null => 0,
                RValue::Scalar(s) => s.heap_bytes(),
                RValue::Seq(items) => items.iter().map(RNode::weight).sum(),
                RValue::Map(entries) => entries
                    .iter()
                    .map(|e| size_of::<REntry>() + e.key.len() + e.value.weight())
                    .sum(),
                RValue::Reference(path) => path.iter().map(|p| p.len()).sum(),
            }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            RValue::Scalar(s) if !s.is_null() => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            RValue::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[REntry]> {
        match &self.value {
            RValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[RNode]> {
        match &self.value {
            RValue::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn entry(&self, key: &str) -> Option<&REntry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&RNode> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn is_null(&self) -> bool {
        match &self.value {
            RValue::Null => true,
            RValue::Scalar(s) => s.is_null(),
            _ => false,
        }
    }

    /// A boolean scalar (`true`/`false` in YAML's spellings).
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_str()? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            RValue::Null => "null",
            RValue::Scalar(_) => "string",
            RValue::Seq(_) => "list",
            RValue::Map(_) => "mapping",
            RValue::Reference(_) => "!reference",
        }
    }
}

/// Converts the root document of `file` (index `index`) into a resolved
/// node. A component file's `spec:` header document is skipped.
pub fn convert_file(file: &SourceFile, index: usize) -> Result<RNode, SourceError> {
    let docs = &file.tree.documents;
    if docs.len() > 2 || (docs.len() == 2 && docs[0].get("spec").is_none()) {
        let at = docs.get(1).map(|d| d.full_span.start).unwrap_or(0);
        return Err(file
            .error_at(
                at,
                "has several YAML documents; GitLab reads one pipeline document",
            )
            .with_help(
                "only a component's `spec:` header may come before `---`; \
                 split the other documents into their own files",
            ));
    }
    let Some(root) = file.root() else {
        return Ok(empty(index, 0..0));
    };
    let top_level: Vec<(Span, Arc<str>)> = root
        .as_map()
        .map(|m| {
            m.entries
                .iter()
                .filter_map(|e| Some((e.span.clone(), Arc::from(e.key.as_str()?))))
                .collect()
        })
        .unwrap_or_default();
    let mut cx = Converter {
        file,
        index,
        top_level,
        active: Vec::new(),
        budget: MAX_EXPANDED_NODES,
        bytes: MAX_EXPANDED_BYTES,
    };
    cx.node(root, 0)
}

fn empty(file: usize, span: Span) -> RNode {
    RNode {
        origin: Origin {
            file,
            span: span.clone(),
            full_span: span,
            owner: None,
        },
        value: RValue::Null,
    }
}

struct Converter<'a> {
    file: &'a SourceFile,
    index: usize,
    top_level: Vec<(Span, Arc<str>)>,
    /// Anchors being expanded (an alias inside its own anchor is a loop).
    active: Vec<usize>,
    budget: usize,
    /// What the copies that alias expansion makes may still hold.
    bytes: usize,
}

impl Converter<'_> {
    fn origin(&self, n: &Node) -> Origin {
        // Top-level entries are written one after the other: the only one
        // that can hold the node is the last that starts at or before it.
        let candidate = self
            .top_level
            .partition_point(|(s, _)| s.start <= n.span.start)
            .checked_sub(1)
            .map(|i| &self.top_level[i]);
        let owner = candidate
            .filter(|(s, _)| n.span.end <= s.end && s != &n.span)
            .map(|(_, k)| k.clone());
        Origin {
            file: self.index,
            span: n.span.clone(),
            full_span: n.full_span.clone(),
            owner,
        }
    }

    fn node(&mut self, n: &Node, depth: usize) -> Result<RNode, SourceError> {
        if self.budget == 0 {
            return Err(self
                .file
                .error_at(n.span.start, "YAML aliases expand to too many nodes")
                .with_help(format!(
                    "kmigrate stops at {MAX_EXPANDED_NODES} nodes; this looks like an alias bomb"
                )));
        }
        self.budget -= 1;
        // A node read inside an alias is a copy: charge what it holds
        // before making it.
        if !self.active.is_empty() {
            let cost = size_of::<RNode>() + n.as_scalar().map_or(0, Scalar::heap_bytes);
            self.charge(n, cost)?;
        }
        if depth > crate::source::tree::MAX_DEPTH {
            return Err(self.file.error_at(n.span.start, "aliases nest too deeply"));
        }
        let origin = self.origin(n);
        if n.tag.as_deref() == Some("!reference") {
            return self.reference(n, origin);
        }
        let value = match &n.value {
            Value::Null => RValue::Null,
            Value::Scalar(s) => RValue::Scalar(s.clone()),
            Value::Alias(name) => return self.alias(n, name, depth),
            Value::Seq(s) => RValue::Seq(
                s.items
                    .iter()
                    .map(|i| self.node(&i.node, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(m) => {
                let mut entries: Vec<REntry> = Vec::new();
                // Keys by position in `entries`: a mapping may have many.
                let mut position: HashMap<String, usize> = HashMap::new();
                let explicit: HashSet<&str> = m
                    .entries
                    .iter()
                    .filter_map(|e| e.key.as_str())
                    .filter(|k| *k != "<<")
                    .collect();
                for e in &m.entries {
                    let key = match &e.key.value {
                        Value::Scalar(s) => s.text.clone(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(self
                                .file
                                .error_at(e.key.span.start, "mapping keys must be strings")
                                .with_help("GitLab keys are job names and keywords"));
                        }
                    };
                    if key == "<<"
                        && e.key
                            .as_scalar()
                            .is_some_and(|s| s.style == crate::source::scalar::ScalarStyle::Plain)
                    {
                        for merged in self.merge_sources(&e.value, depth)? {
                            let RValue::Map(src) = merged.value else {
                                unreachable!("merge_sources returns maps")
                            };
                            for me in src {
                                if !explicit.contains(me.key.as_str())
                                    && !position.contains_key(&me.key)
                                {
                                    position.insert(me.key.clone(), entries.len());
                                    entries.push(me);
                                }
                            }
                        }
                        continue;
                    }
                    if !self.active.is_empty() {
                        self.charge(&e.key, size_of::<REntry>() + key.len())?;
                    }
                    let value = self.node(&e.value, depth + 1)?;
                    let entry = REntry {
                        key_origin: self.origin(&e.key),
                        entry_span: e.span.clone(),
                        key,
                        value,
                    };
                    // A later duplicate key wins, as in GitLab's parser.
                    if let Some(&pos) = position.get(&entry.key) {
                        entries[pos] = entry;
                    } else {
                        position.insert(entry.key.clone(), entries.len());
                        entries.push(entry);
                    }
                }
                RValue::Map(entries)
            }
        };
        Ok(RNode { origin, value })
    }

    /// Takes `cost` bytes from the expansion budget, or refuses at `n`.
    fn charge(&mut self, n: &Node, cost: usize) -> Result<(), SourceError> {
        match self.bytes.checked_sub(cost) {
            Some(left) => {
                self.bytes = left;
                Ok(())
            }
            None => Err(self
                .file
                .error_at(
                    n.span.start,
                    format!("YAML aliases expand to more than {MAX_EXPANDED_BYTES_SHOWN}"),
                )
                .with_help(format!(
                    "kmigrate stops when the copies aliases make hold {MAX_EXPANDED_BYTES_SHOWN}; \
                     this looks like an alias bomb (aliases of a large value)"
                ))),
        }
    }

    fn alias(&mut self, n: &Node, name: &str, depth: usize) -> Result<RNode, SourceError> {
        let Some(target) = self.file.tree.anchored(name, n.span.start) else {
            return Err(self
                .file
                .error_at(n.span.start, format!("alias `*{name}` has no anchor `&{name}` before it"))
                .with_help("define the anchor earlier in the same file; anchors do not cross included files"));
        };
        let key = target.full_span.start;
        if self.active.contains(&key) {
            return Err(self.file.error_at(
                n.span.start,
                format!("alias `*{name}` refers to the node that contains it"),
            ));
        }
        self.active.push(key);
        let r = self.node(target, depth + 1);
        self.active.pop();
        r
    }

    /// The mappings a `<<:` value merges: one mapping, an alias to one, or a
    /// list of those (earlier ones win).
    fn merge_sources(&mut self, v: &Node, depth: usize) -> Result<Vec<RNode>, SourceError> {
        let items: Vec<&Node> = match &v.value {
            Value::Seq(s) => s.items.iter().map(|i| &i.node).collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let r = self.node(item, depth + 1)?;
            if !matches!(r.value, RValue::Map(_)) {
                return Err(self
                    .file
                    .error_at(item.span.start, format!("`<<:` merges mappings, this is a {}", r.kind_name()))
                    .with_help("use `<<: *anchor` where the anchor names a mapping; splice lists with `- *anchor` items instead"));
            }
            out.push(r);
        }
        Ok(out)
    }

    fn reference(&mut self, n: &Node, origin: Origin) -> Result<RNode, SourceError> {
        let path: Option<Vec<String>> = n.as_seq().and_then(|s| {
            s.items
                .iter()
                .map(|i| i.node.as_str().map(str::to_string))
                .collect()
        });
        match path {
            Some(p) if !p.is_empty() => Ok(RNode {
                origin,
                value: RValue::Reference(p),
            }),
            _ => Err(self
                .file
                .error_at(n.span.start, "`!reference` needs a list of names")
                .with_help(
                    "write it as `!reference [job, key]`, e.g. `!reference [.setup, script]`",
                )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conv(src: &str) -> Result<RNode, SourceError> {
        let f = SourceFile::from_text(Path::new("t.yml"), src.to_string()).unwrap();
        convert_file(&f, 0)
    }

    #[test]
    fn aliases_and_merge_keys_keep_the_definition_origin() {
        let src = ".tpl: &tpl\n  image: kaniko\n  stage: build\njob:\n  <<: *tpl\n  stage: test\n";
        let r = conv(src).unwrap();
        let job = r.get("job").unwrap();
        let image = job.get("image").unwrap();
        assert_eq!(image.as_str(), Some("kaniko"));
        assert_eq!(&src[image.origin.span.clone()], "kaniko");
        assert_eq!(image.origin.owner.as_deref(), Some(".tpl"));
        let stage = job.get("stage").unwrap();
        assert_eq!(stage.as_str(), Some("test"));
        assert_eq!(stage.origin.owner.as_deref(), Some("job"));
    }

    #[test]
    fn merge_lists_earlier_source_wins() {
        let src = "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n";
        let r = conv(src).unwrap();
        let c = r.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(c.get("z").unwrap().as_str(), Some("2"));
    }

    #[test]
    fn references_are_placeholders_and_bad_ones_are_errors() {
        let r = conv("j:\n  script: !reference [.s, script]\n").unwrap();
        let s = r.get("j").unwrap().get("script").unwrap();
        assert!(matches!(&s.value, RValue::Reference(p) if p == &[".s", "script"]));
        let e = conv("j:\n  script: !reference .s\n").unwrap_err();
        assert!(e.to_string().contains("t.yml:2:"), "{e}");
    }

    #[test]
    fn missing_anchor_self_reference_and_bad_merge_are_errors() {
        let e = conv("j:\n  <<: *nope\n").unwrap_err();
        assert!(e.message.contains("*nope"), "{e}");
        let e = conv("a: &a\n  b: *a\n").unwrap_err();
        assert!(e.message.contains("contains it"), "{e}");
        let e = conv("l: &l [1]\nj:\n  <<: *l\n").unwrap_err();
        assert!(e.message.contains("merges mappings"), "{e}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(conv(&src).unwrap_err().message.contains("too many"));
    }

    #[test]
    fn component_header_is_skipped_and_extra_documents_refused() {
        let r = conv("spec:\n  inputs:\n    stage:\n---\njob:\n  stage: $[[ inputs.stage ]]\n")
            .unwrap();
        assert_eq!(
            r.get("job").unwrap().get("stage").unwrap().as_str(),
            Some("$[[ inputs.stage ]]")
        );
        assert!(conv("a: 1\n---\nb: 2\n").is_err());
    }
}
