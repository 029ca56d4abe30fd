//! libyaml's reading of a text (through yaml_serde), the reference kmigrate's
//! spanned reader is compared with: every text libyaml reads, kmigrate must
//! read with the same values (the differential tests in `fast`, and the
//! `reader_vs_libyaml` fuzz body).

use super::scalar::ScalarStyle;
use super::{Node, Tree, Value};

/// Every document of `src` as libyaml (yaml_serde) reads it, or `None`
/// when it refuses the text.
pub fn documents(src: &str) -> Option<Vec<yaml_serde::Value>> {
    use serde::Deserialize as _;
    let docs = yaml_serde::Deserializer::from_str(src)
        .map(yaml_serde::Value::deserialize)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    // yaml_serde gives a stream without documents one null document (as
    // serde deserializes empty input); libyaml reads none there, and so
    // does kmigrate.
    if docs == [yaml_serde::Value::Null] && only_blanks_and_comments(src) {
        return Some(Vec::new());
    }
    Some(docs)
}

/// Every line of `src` is blank or a comment: a stream without documents.
fn only_blanks_and_comments(src: &str) -> bool {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    src.lines().all(|line| {
        let line = line.trim_start_matches([' ', '\t']);
        line.is_empty() || line.starts_with('#')
    })
}

/// yaml_serde refuses `src` for what kmigrate's reader leaves to the
/// layers above it: an alias whose anchor is missing (aliases are kept as
/// written) or a duplicate key (reported with both places).
pub fn refuses_what_kmigrate_checks_later(src: &str) -> bool {
    use serde::Deserialize as _;
    yaml_serde::Deserializer::from_str(src)
        .map(yaml_serde::Value::deserialize)
        .find_map(Result::err)
        .is_some_and(|e| {
            let e = e.to_string();
            e.contains("unknown anchor") || e.contains("duplicate")
        })
}

/// kmigrate refused the text on purpose where libyaml reads it: an anchor
/// or alias name holding a character where libyaml ends the name
/// (`&a:b 5`), which YAML 1.2 readers (tree-sitter-yaml) read otherwise; it
/// is refused rather than read with values the platform does not see.
pub fn refused_on_purpose(e: &super::tree::ParseError) -> bool {
    e.message.contains(super::tree::ANCHOR_NAME_SPLIT)
}

/// Whether kmigrate's `tree` holds the values libyaml reads from `src`.
pub fn holds_same_values(src: &str, tree: &Tree) -> bool {
    match documents(src) {
        Some(docs) => {
            docs.len() == tree.documents.len()
                && docs
                    .iter()
                    .zip(&tree.documents)
                    .all(|(v, n)| same_value(n, v))
        }
        None => false,
    }
}

/// `node` holds `value`: the same shape, and the same text for every
/// string. A plain scalar libyaml resolves to a number, bool or null is
/// text here (kmigrate reads it as written), and so is a tagged empty node
/// libyaml resolves to ""; aliases are kept here and expanded there, so
/// they are not compared.
pub fn same_value(node: &Node, value: &yaml_serde::Value) -> bool {
    use yaml_serde::Value as Y;
    match (&node.value, value) {
        (_, Y::Tagged(t)) => same_value(node, &t.value),
        (Value::Alias(_), _) => true,
        (Value::Null, Y::Null) => true,
        // An empty node tagged `!!str` (or another tag libyaml resolves to
        // a string): libyaml gives "", kmigrate keeps the empty node with
        // its tag as written, as it keeps plain scalars unresolved.
        (Value::Null, Y::String(v)) => v.is_empty() && node.tag.is_some(),
        (Value::Scalar(s), Y::String(v)) => s.text == *v,
        (Value::Scalar(s), Y::Null | Y::Bool(_) | Y::Number(_)) => s.style == ScalarStyle::Plain,
        (Value::Seq(seq), Y::Sequence(items)) => {
            seq.items.len() == items.len()
                && seq
                    .items
                    .iter()
                    .zip(items)
                    .all(|(i, v)| same_value(&i.node, v))
        }
        (Value::Map(map), Y::Mapping(m)) => {
            map.entries.len() == m.len()
                && map
                    .entries
                    .iter()
                    .zip(m.iter())
                    .all(|(e, (k, v))| same_value(&e.key, k) && same_value(&e.value, v))
        }
        _ => false,
    }
}
