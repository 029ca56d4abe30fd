//! Text edits on a source: each replaces one byte range of the original
//! text, so every byte outside the edited ranges stays as it was.
//!
//! Edits are computed against the original text and applied in one pass.
//! (yamlpatch re-parses after every operation, emits flow style for new
//! lists and cannot insert into a sequence or edit JSON; splicing on spans
//! from the spanned tree covers all of those with one mechanism.)

use std::ops::Range;

/// Replace `range` of the original text with `text` (an insertion when the
/// range is empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

impl Edit {
    pub fn replace(range: Range<usize>, text: impl Into<String>) -> Self {
        Self {
            range,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        Self {
            range: at..at,
            text: text.into(),
        }
    }
}

/// Two edits that touch the same bytes differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub first: Range<usize>,
    pub second: Range<usize>,
}

/// Applies `edits` to `original`. Identical edits count once; overlapping
/// different edits are a conflict and nothing is applied. Insertions at the
/// same offset are applied in the order given.
pub fn apply(original: &str, edits: &[Edit]) -> Result<String, Conflict> {
    let mut unique: Vec<(usize, &Edit)> = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        if !unique.iter().any(|(_, u)| *u == e) {
            unique.push((i, e));
        }
    }
    // Stable by start, keeping the given order for same-offset insertions.
    unique.sort_by_key(|(i, e)| (e.range.start, e.range.end, *i));
    for pair in unique.windows(2) {
        let (a, b) = (pair[0].1, pair[1].1);
        let overlaps = b.range.start < a.range.end || (a.range == b.range && !a.range.is_empty());
        if overlaps {
            return Err(Conflict {
                first: a.range.clone(),
                second: b.range.clone(),
            });
        }
    }
    let mut out =
        String::with_capacity(original.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut pos = 0;
    for (_, e) in unique {
        out.push_str(&original[pos..e.range.start]);
        out.push_str(&e.text);
        pos = e.range.end;
    }
    out.push_str(&original[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_in_offset_order_and_keeps_other_bytes() {
        let s = "a: 1 # c\nb: 2\n";
        let out = apply(s, &[Edit::replace(12..13, "3"), Edit::replace(3..4, "9")]).unwrap();
        assert_eq!(out, "a: 9 # c\nb: 3\n");
    }

    #[test]
    fn identical_edits_apply_once_and_overlaps_conflict() {
        let s = "abcdef";
        let e = Edit::insert(2, "X");
        assert_eq!(apply(s, &[e.clone(), e]).unwrap(), "abXcdef");
        assert!(apply(s, &[Edit::replace(1..4, "x"), Edit::replace(3..5, "y")]).is_err());
        assert!(apply(s, &[Edit::replace(1..2, "x"), Edit::replace(1..2, "y")]).is_err());
    }

    #[test]
    fn insertions_at_one_offset_keep_their_order() {
        assert_eq!(
            apply("ab", &[Edit::insert(1, "1"), Edit::insert(1, "2")]).unwrap(),
            "a12b"
        );
    }
}
