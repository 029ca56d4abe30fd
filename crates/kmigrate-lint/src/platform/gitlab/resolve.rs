//! From loaded files to one resolved configuration: included files merged
//! into the including one, `extends` applied with GitLab's deep merge, then
//! `!reference` tags replaced (GitLab resolves them after `extends`).

use std::cell::Cell;
use std::collections::HashMap;

use super::include::Loaded;
use super::value::{Origin, REntry, RNode, RValue};
use crate::source::{SourceError, SourceFile};

/// GitLab allows 11 levels of `extends`.
pub const MAX_EXTENDS_DEPTH: usize = 11;
/// GitLab allows 10 levels of nested `!reference`.
pub const MAX_REFERENCE_DEPTH: usize = 10;

/// Top-level keywords that are not jobs.
pub const RESERVED: &[&str] = &[
    "image",
    "services",
    "stages",
    "types",
    "before_script",
    "after_script",
    "variables",
    "cache",
    "include",
    "default",
    "workflow",
    "spec",
];

/// GitLab's deep merge of `over` into `base`: mappings merge key by key
/// (recursively), anything else is replaced by `over`. In place, so a
/// merge copies only what `over` brings.
pub fn deep_merge(base: &mut RNode, over: &RNode) {
    match (&mut base.value, &over.value) {
        (RValue::Map(entries), RValue::Map(o)) => {
            merge_entries(entries, o);
            base.origin = over.origin.clone();
        }
        _ => *base = over.clone(),
    }
}

/// Merges `over` into `entries` in place (deep merge per key; keys new to
/// `entries` are appended).
pub fn merge_entries<'a>(entries: &mut Vec<REntry>, over: impl IntoIterator<Item = &'a REntry>) {
    merge_indexed(entries, &mut KeyIndex::default(), over);
}

/// [`merge_entries`] with the key index of `entries` kept by the caller
/// across calls (the top level merges one file after another into it).
fn merge_indexed<'a>(
    entries: &mut Vec<REntry>,
    index: &mut KeyIndex,
    over: impl IntoIterator<Item = &'a REntry>,
) {
    for o in over {
        match index.find(entries, &o.key).map(|i| &mut entries[i]) {
            Some(e) => {
                deep_merge(&mut e.value, &o.value);
                e.key_origin = o.key_origin.clone();
                e.entry_span = o.entry_span.clone();
            }
            None => {
                index.pushed(&o.key, entries.len());
                entries.push(o.clone());
            }
        }
    }
}

/// The keys of a mapping by position, built once the mapping is too large
/// to search key by key (the top level of a pipeline may hold many
/// thousands of jobs). It follows the mapping only through
/// [`merge_indexed`].
#[derive(Default)]
struct KeyIndex(Option<HashMap<String, usize>>);

impl KeyIndex {
    /// Mappings with this many entries are searched through the index.
    const FROM: usize = 32;

    fn find(&mut self, entries: &[REntry], key: &str) -> Option<usize> {
        if self.0.is_none() && entries.len() < Self::FROM {
            return entries.iter().position(|e| e.key == key);
        }
        let index = self.0.get_or_insert_with(|| {
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.clone(), i))
                .collect()
        });
        index.get(key).copied()
    }

    fn pushed(&mut self, key: &str, at: usize) {
        if let Some(index) = &mut self.0 {
            index.insert(key.to_string(), at);
        }
    }
}

fn error(files: &[SourceFile], o: &Origin, msg: String, help: &str) -> SourceError {
    files[o.file].error_at(o.span.start, msg).with_help(help)
}

/// The merged top-level entries of the whole pipeline: each included file
/// (in include order, each once) under the file that includes it, which
/// wins on conflicts.
pub fn assemble(loaded: &Loaded) -> Vec<REntry> {
    let mut includes_of = vec![Vec::new(); loaded.files.len()];
    for (i, inc) in loaded.includes.iter().enumerate() {
        includes_of[inc.in_file].push(i);
    }
    let mut a = Assembly {
        loaded,
        includes_of,
        seen: vec![false; loaded.files.len()],
        out: Vec::new(),
        index: KeyIndex::default(),
    };
    a.seen[0] = true;
    a.file(0);
    a.out
}

struct Assembly<'a> {
    loaded: &'a Loaded,
    /// Each file's include items, found once rather than by a scan of
    /// every item per file.
    includes_of: Vec<Vec<usize>>,
    seen: Vec<bool>,
    out: Vec<REntry>,
    index: KeyIndex,
}

impl Assembly<'_> {
    fn file(&mut self, file: usize) {
        let loaded = self.loaded;
        for i in 0..self.includes_of[file].len() {
            let inc = self.includes_of[file][i];
            for &f in &loaded.includes[inc].files {
                if !self.seen[f] {
                    self.seen[f] = true;
                    self.file(f);
                }
            }
        }
        if let Some(entries) = loaded.configs[file].as_map() {
            let over = entries.iter().filter(|e| e.key != "include");
            merge_indexed(&mut self.out, &mut self.index, over);
        }
    }
}

/// The result of resolving `extends` for one top-level entry.
#[derive(Debug, Clone)]
pub struct Extended {
    pub value: RNode,
    /// Every template merged in, nearest first.
    pub ancestors: Vec<String>,
    /// `extends` names not defined in the files read (lenient mode only).
    pub missing: Vec<(String, Origin)>,
    /// The longest chain of `extends` below this entry (0: it extends
    /// nothing), so a chain is measured whole even when part of it was
    /// resolved before.
    pub depth: usize,
}

/// How many bytes the templates `extends` copies into jobs may hold in one
/// pipeline: a large template extended by many jobs is few lines of YAML.
pub const MAX_EXTENDED_BYTES: usize = 64 << 20;

/// [`MAX_EXTENDED_BYTES`] in words, for messages.
pub const MAX_EXTENDED_BYTES_SHOWN: &str = "64 MiB";

/// Applies `extends` to every top-level mapping that is not a reserved
/// keyword. Errors: cycle, too deep, wrong type, and an unknown target
/// unless `lenient` (the pipeline is partial: includes that were not read,
/// or a fragment file given on its own), where it is recorded instead.
pub fn apply_extends(
    files: &[SourceFile],
    top: &[REntry],
    lenient: bool,
) -> Result<HashMap<String, Extended>, SourceError> {
    let cx = ExtendCx {
        files,
        top: top.iter().map(|e| (e.key.as_str(), e)).collect(),
        lenient,
        budget: Cell::new(MAX_EXTENDED_BYTES),
    };
    let mut done: HashMap<String, Extended> = HashMap::new();
    for e in top {
        if RESERVED.contains(&e.key.as_str()) {
            continue;
        }
        let mut stack = Vec::new();
        extend(&cx, &e.key, &mut stack, &mut done)?;
    }
    Ok(done)
}

fn extends_names(files: &[SourceFile], node: &RNode) -> Result<Vec<(String, Origin)>, SourceError> {
    let Some(ext) = node.get("extends") else {
        return Ok(Vec::new());
    };
    let bad = |o: &Origin| {
        error(
            files,
            o,
            "`extends` must name a job or template, or list several".into(),
            "write `extends: .template` or `extends: [.a, .b]`",
        )
    };
    match &ext.value {
        RValue::Scalar(s) if !s.is_null() => Ok(vec![(s.text.clone(), ext.origin.clone())]),
        RValue::Seq(items) => items
            .iter()
            .map(|i| match i.as_str() {
                Some(s) => Ok((s.to_string(), i.origin.clone())),
                None => Err(bad(&i.origin)),
            })
            .collect(),
        _ => Err(bad(&ext.origin)),
    }
}

struct ExtendCx<'a> {
    files: &'a [SourceFile],
    /// The top-level entries by key.
    top: HashMap<&'a str, &'a REntry>,
    lenient: bool,
    /// What the copies `extends` makes may still hold.
    budget: Cell<usize>,
}

/// Resolves `extends` for the top-level entry `key` into `done` (once:
/// later calls find it there).
fn extend(
    cx: &ExtendCx<'_>,
    key: &str,
    stack: &mut Vec<String>,
    done: &mut HashMap<String, Extended>,
) -> Result<(), SourceError> {
    let (files, top) = (cx.files, &cx.top);
    if done.contains_key(key) {
        return Ok(());
    }
    let entry = top[key];
    let names = extends_names(files, &entry.value)?;
    if names.is_empty() {
        let r = Extended {
            value: entry.value.clone(),
            ancestors: Vec::new(),
            missing: Vec::new(),
            depth: 0,
        };
        done.insert(key.to_string(), r);
        return Ok(());
    }
    stack.push(key.to_string());
    let mut base: Option<RNode> = None;
    let mut ancestors = Vec::new();
    let mut missing = Vec::new();
    let mut depth = 0;
    for (name, origin) in names {
        if stack.contains(&name) {
            let mut chain = stack.clone();
            chain.push(name.clone());
            return Err(error(
                files,
                &origin,
                format!("`extends` cycle: {}", chain.join(" → ")),
                "break the cycle: a template cannot extend a job that extends it",
            ));
        }
        let too_deep = || {
            error(
                files,
                &origin,
                format!("`extends` nests deeper than {MAX_EXTENDS_DEPTH} levels (GitLab's limit)"),
                "flatten the template chain",
            )
        };
        if stack.len() >= MAX_EXTENDS_DEPTH {
            return Err(too_deep());
        }
        let Some(&target) = top.get(name.as_str()) else {
            if cx.lenient {
                missing.push((name, origin));
                continue;
            }
            return Err(error(
                files,
                &origin,
                format!("`extends` names `{name}`, which is not defined in this pipeline"),
                "define it, fix the name, or check that the file defining it is included (templates from project/remote includes are not read)",
            ));
        };
        if target.value.as_map().is_none() {
            return Err(error(
                files,
                &origin,
                format!(
                    "`extends` names `{name}`, which is a {}, not a job or template",
                    target.value.kind_name()
                ),
                "extend a mapping (a job or a hidden `.template`)",
            ));
        }
        extend(cx, &name, stack, done)?;
        let parent = &done[&name];
        // The chain below `name` may have been resolved earlier, from a
        // shallower start: its depth counts here all the same.
        if stack.len() + parent.depth >= MAX_EXTENDS_DEPTH {
            return Err(too_deep());
        }
        depth = depth.max(parent.depth + 1);
        cx.charge(&parent.value, &origin)?;
        ancestors.push(name.clone());
        ancestors.extend(parent.ancestors.iter().cloned());
        missing.extend(parent.missing.iter().cloned());
        match &mut base {
            None => base = Some(parent.value.clone()),
            Some(b) => deep_merge(b, &parent.value),
        }
    }
    stack.pop();
    let mut value = match base {
        Some(mut b) => {
            deep_merge(&mut b, &entry.value);
            b
        }
        None => entry.value.clone(),
    };
    // The job's own `extends` is kept (it is what the user wrote).
    if let (RValue::Map(m), Some(own)) = (&mut value.value, entry.value.entry("extends"))
        && let Some(e) = m.iter_mut().find(|e| e.key == "extends")
    {
        *e = own.clone();
    }
    let r = Extended {
        value,
        ancestors,
        missing,
        depth,
    };
    done.insert(key.to_string(), r);
    Ok(())
}

impl ExtendCx<'_> {
    /// Takes the weight of a copy of `template` from the budget, or refuses
    /// at the `extends` that asks for it.
    fn charge(&self, template: &RNode, at: &Origin) -> Result<(), SourceError> {
        match self.budget.get().checked_sub(template.weight()) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(error(
                self.files,
                at,
                format!(
                    "`extends` copies more than {MAX_EXTENDED_BYTES_SHOWN} of templates into jobs"
                ),
                "kmigrate stops there; this looks like an `extends` bomb (a large template extended by very many jobs)",
            )),
        }
    }
}

/// Replaces every `!reference` in `node` with the value it names in the
/// extended configuration.
/// A reference whose target is not defined in the files read is left in
/// place (its value is unknown) and added to `missing`.
pub fn resolve_references(
    files: &[SourceFile],
    top: &[REntry],
    extended: &HashMap<String, Extended>,
    node: &RNode,
    missing: &mut Vec<(Vec<String>, Origin)>,
) -> Result<RNode, SourceError> {
    let mut cx = RefCx {
        files,
        top,
        extended,
        stack: Vec::new(),
        missing,
    };
    cx.resolve_in(node)
}

struct RefCx<'a, 'm> {
    files: &'a [SourceFile],
    top: &'a [REntry],
    extended: &'a HashMap<String, Extended>,
    /// The references being followed, outermost first.
    stack: Vec<Vec<String>>,
    missing: &'m mut Vec<(Vec<String>, Origin)>,
}

impl RefCx<'_, '_> {
    fn resolve_in(&mut self, node: &RNode) -> Result<RNode, SourceError> {
        let (files, top, extended) = (self.files, self.top, self.extended);
        match &node.value {
            RValue::Reference(path) => {
                let shown = format!("!reference [{}]", path.join(", "));
                if self.stack.contains(path) {
                    return Err(error(
                        files,
                        &node.origin,
                        format!("{shown} refers back to itself"),
                        "a referenced value cannot contain a reference to itself",
                    ));
                }
                if self.stack.len() >= MAX_REFERENCE_DEPTH {
                    return Err(error(
                        files,
                        &node.origin,
                        format!(
                            "{shown}: references nest deeper than {MAX_REFERENCE_DEPTH} levels (GitLab's limit)"
                        ),
                        "reference the value directly",
                    ));
                }
                let start = extended
                    .get(&path[0])
                    .map(|e| &e.value)
                    .or_else(|| top.iter().find(|e| e.key == path[0]).map(|e| &e.value));
                let mut cur = start;
                for k in &path[1..] {
                    cur = cur.and_then(|c| c.get(k));
                }
                let Some(target) = cur else {
                    // Defined in a file kmigrate did not read (or misspelt):
                    // a finding says so; the reference stays as written.
                    if !self.missing.iter().any(|(_, o)| o == &node.origin) {
                        self.missing.push((path.clone(), node.origin.clone()));
                    }
                    return Ok(node.clone());
                };
                self.stack.push(path.clone());
                let r = self.resolve_in(target);
                self.stack.pop();
                r
            }
            RValue::Seq(items) => Ok(RNode {
                origin: node.origin.clone(),
                value: RValue::Seq(
                    items
                        .iter()
                        .map(|i| self.resolve_in(i))
                        .collect::<Result<_, _>>()?,
                ),
            }),
            RValue::Map(entries) => Ok(RNode {
                origin: node.origin.clone(),
                value: RValue::Map(
                    entries
                        .iter()
                        .map(|e| {
                            Ok(REntry {
                                value: self.resolve_in(&e.value)?,
                                ..e.clone()
                            })
                        })
                        .collect::<Result<_, SourceError>>()?,
                ),
            }),
            _ => Ok(node.clone()),
        }
    }
}
