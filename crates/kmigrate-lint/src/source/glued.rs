//! Comments glued to a closing quote or bracket (`'a'# note`, `[a]# note`):
//! libyaml, and with it the platforms' readers, reads the `#` there as a
//! comment; tree-sitter-yaml refuses it. `fast` reads most such text; for
//! the rest, tree-sitter reads a copy with a blank before each such `#`, and
//! the tree's spans are mapped back to the original text.

use super::scalar::ScalarStyle;
use super::tree::{Node, ParseError, Span, Tree, Value, scalar_value};

/// The tree of `src` read through a copy with a blank before every `#`
/// glued to a closing quote or bracket, with spans into `src`; `None` when
/// there is no such `#` or the copy does not read either. A blank that does
/// not stand between a quoted scalar or flow collection and a comment in the
/// copy's tree (a `#` inside a block or plain scalar) would change a value:
/// the copy is made again without it, once.
pub(super) fn reread(src: &str, read: impl Fn(&str) -> Result<Tree, ParseError>) -> Option<Tree> {
    let mut glued = glued_hashes(src);
    for _ in 0..2 {
        if glued.is_empty() {
            return None;
        }
        let (copy, blanks) = with_blanks_before(src, &glued);
        let tree = read(&copy).ok()?;
        let ends = token_ends(&tree);
        // The blank must sit between a closing quote or bracket and a
        // comment: then the `#` is a comment in `src` too, for libyaml.
        let between = |b: &usize| {
            ends.binary_search(b).is_ok()
                && tree
                    .comments
                    .binary_search_by_key(&(b + 1), |c| c.start)
                    .is_ok()
        };
        if !blanks.iter().all(between) {
            glued = glued
                .iter()
                .zip(&blanks)
                .filter(|&(_, b)| between(b))
                .map(|(&g, _)| g)
                .collect();
            continue;
        }
        let back = |o: usize| o - blanks.partition_point(|&b| b < o);
        let span_back = |s: &Span| back(s.start)..back(s.end);
        let mut documents = tree.documents;
        for doc in &mut documents {
            map_back(doc, src, &span_back);
        }
        let comments = tree.comments.iter().map(span_back).collect();
        return Some(Tree::new(documents, comments));
    }
    None
}

/// Where each quoted scalar and flow collection of `tree` ends (past its
/// closing quote or bracket), sorted.
fn token_ends(tree: &Tree) -> Vec<usize> {
    let mut ends = Vec::new();
    for doc in &tree.documents {
        super::tree::visit(doc, &mut |n| {
            let closed = match &n.value {
                Value::Scalar(s) => matches!(
                    s.style,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                ),
                Value::Seq(seq) => seq.flow,
                Value::Map(map) => map.flow,
                Value::Null | Value::Alias(_) => false,
            };
            if closed {
                ends.push(n.span.end);
            }
        });
    }
    ends.sort_unstable();
    ends
}

/// Offsets of the `#` right after `'`, `"`, `]` or `}` in `src`.
fn glued_hashes(src: &str) -> Vec<usize> {
    let b = src.as_bytes();
    (1..b.len())
        .filter(|&i| b[i] == b'#' && matches!(b[i - 1], b'\'' | b'"' | b']' | b'}'))
        .collect()
}

/// `src` with a blank before each offset of `at` (ascending), and the
/// offsets of those blanks in the copy.
fn with_blanks_before(src: &str, at: &[usize]) -> (String, Vec<usize>) {
    let mut copy = String::with_capacity(src.len() + at.len());
    let mut blanks = Vec::with_capacity(at.len());
    let mut from = 0;
    for &i in at {
        copy.push_str(&src[from..i]);
        blanks.push(copy.len());
        copy.push(' ');
        from = i;
    }
    copy.push_str(&src[from..]);
    (copy, blanks)
}

/// Maps `node`'s spans back into `src` and decodes its scalars from there
/// (a block scalar's offsets point into the text it was decoded from).
fn map_back(node: &mut Node, src: &str, back: &impl Fn(&Span) -> Span) {
    node.span = back(&node.span);
    node.full_span = back(&node.full_span);
    match &mut node.value {
        Value::Scalar(s) => {
            let style = s.style;
            node.value = scalar_value(src, node.span.clone(), style);
        }
        Value::Seq(seq) => {
            for item in &mut seq.items {
                item.span = back(&item.span);
                map_back(&mut item.node, src, back);
            }
        }
        Value::Map(map) => {
            for e in &mut map.entries {
                e.span = back(&e.span);
                map_back(&mut e.key, src, back);
                map_back(&mut e.value, src, back);
            }
        }
        Value::Null | Value::Alias(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree;

    #[test]
    fn reads_comments_glued_where_fast_gives_up_with_spans_into_the_text() {
        // `fast` gives up on `? q` and on a key holding a quote.
        for src in [
            "- '[a]'# glued\n- ? q\n",
            "- echo \"a: b\"\n- ['x']# glued\n",
            "- ? q\n- {c: 'd'}# e\n",
        ] {
            assert!(super::super::fast::parse(src).is_none(), "{src:?}");
            let t = tree::parse(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
            assert!(
                super::super::libyaml::holds_same_values(src, &t),
                "{src:?}: {t:?}"
            );
            for c in &t.comments {
                assert!(src[c.clone()].starts_with("# "), "{src:?}: {c:?}");
            }
            tree::visit(&t.documents[0], &mut |n| {
                if let tree::Value::Scalar(s) = &n.value
                    && !s.style.is_block()
                {
                    assert!(src[n.span.clone()].contains(s.text.trim()), "{n:?}");
                }
            });
        }
    }

    #[test]
    fn leaves_a_hash_inside_a_block_scalar_alone() {
        // The `#` after the quote in the block scalar is content: no blank
        // goes there, only before the comment.
        let src = "a: |\n  echo 'x'#y\nb: ['c']# d\n";
        let t = tree::parse(src).unwrap();
        assert!(super::super::libyaml::holds_same_values(src, &t), "{t:?}");
        assert_eq!(t.comments, vec![src.len() - 4..src.len() - 1]);
    }

    #[test]
    fn leaves_a_hash_after_a_bracket_inside_a_plain_scalar_alone() {
        // `1}# glued` is a plain scalar: a blank would make a comment of
        // its end.
        for src in ["- ? q\n- -* {a: 1}# glued\n", "- ? q\n- x {a}# glued\n"] {
            if let Ok(t) = tree::parse(src) {
                assert!(super::super::libyaml::holds_same_values(src, &t), "{t:?}");
            }
        }
    }
}
