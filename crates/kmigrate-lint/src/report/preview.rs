//! A fix's preview: the unified diff of the file with that fix alone
//! applied, as `similar` writes it over the whole file, but computed over
//! the lines around the fix's edits only.
//!
//! Every finding of a JSON or SARIF report carries its preview; diffing
//! the whole file for each made a report quadratic in the file's size (a
//! 1000-step Cloud Build file spent 40% of `check` tokenising lines).

use std::ops::Range;

use crate::source::SourceFile;
use crate::source::patch::{self, Edit};

/// Lines of context around each change, as in `git diff`'s default of 3
/// less one: what the previews have always shown.
const RADIUS: usize = 2;

/// Lines of the original kept around a group of edits beyond the context
/// a hunk shows, so the diff aligns inside the window as it would over the
/// whole file.
const MARGIN: usize = 8;

/// The unified diff (`---`/`+++` headers `old`, `new`) of `source` with
/// `edits` applied, or `None` when they conflict.
pub fn unified(source: &SourceFile, edits: &[Edit], old: &str, new: &str) -> Option<String> {
    let text = source.text.as_str();
    if edits
        .iter()
        .any(|e| e.range.start > e.range.end || e.range.end > text.len())
    {
        return None;
    }
    let mut out = String::new();
    // Lines the new text has gained so far, for the `+` side's numbers.
    let mut shift: isize = 0;
    for group in groups(source, edits) {
        let window = source.line_start(group.start + 1)..source.line_start(group.end + 1);
        let old_text = &text[window.clone()];
        let local: Vec<Edit> = edits
            .iter()
            .filter(|e| e.range.start >= window.start && e.range.end <= window.end)
            .map(|e| Edit {
                range: e.range.start - window.start..e.range.end - window.start,
                text: e.text.clone(),
            })
            .collect();
        // Overlapping edits share a group, so a conflict shows here: no
        // preview at all.
        let new_text = patch::apply(old_text, &local).ok()?;
        let diff = similar::TextDiff::from_lines(old_text, new_text.as_str());
        let hunks = diff.unified_diff().context_radius(RADIUS).to_string();
        for line in hunks.split_inclusive('\n') {
            match renumber(line, group.start, shift) {
                Some(header) => out.push_str(&header),
                None => out.push_str(line),
            }
        }
        shift += lines(&new_text) as isize - lines(old_text) as isize;
    }
    if out.is_empty() {
        return Some(String::new());
    }
    Some(format!("--- {old}\n+++ {new}\n{out}"))
}

/// 0-based line ranges (end exclusive) of the original, each holding a
/// group of edits close enough to share a hunk, with a margin around.
fn groups(source: &SourceFile, edits: &[Edit]) -> Vec<Range<usize>> {
    let last = source.line_count();
    let mut spans: Vec<Range<usize>> = edits
        .iter()
        .map(|e| {
            let first = source.line_index(e.range.start);
            // An edit ending at a line start touches the line before only.
            let end = e.range.end.max(e.range.start);
            let last_line =
                if end > e.range.start && source.line_start(source.line_index(end) + 1) == end {
                    source.line_index(end).saturating_sub(1).max(first)
                } else {
                    source.line_index(end)
                };
            first.saturating_sub(RADIUS + MARGIN)..(last_line + 1 + RADIUS + MARGIN).min(last)
        })
        .collect();
    spans.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(prev) if s.start <= prev.end => prev.end = prev.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// Lines of `text` as the diff counts them (a last line without `\n`
/// counts).
fn lines(text: &str) -> usize {
    text.split_inclusive('\n').count()
}

/// A `@@ -a,b +c,d @@` header of a window's diff moved to where the
/// window starts in the file (`first` lines before it, `shift` lines gained
/// by earlier windows on the `+` side); `None` for other lines.
fn renumber(line: &str, first: usize, shift: isize) -> Option<String> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, tail) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let moved = |range: &str, by: isize| -> Option<String> {
        let (start, len) = match range.split_once(',') {
            Some((s, l)) => (s.parse::<isize>().ok()?, Some(l)),
            None => (range.parse::<isize>().ok()?, None),
        };
        // An empty range names the line before it; at the top that is 0.
        let start = if start == 0 && len == Some("0") && first == 0 {
            0
        } else {
            start + by
        };
        Some(match len {
            Some(l) => format!("{start},{l}"),
            None => start.to_string(),
        })
    };
    let first = first as isize;
    Some(format!(
        "@@ -{} +{} @@{tail}",
        moved(old, first)?,
        moved(new, first + shift)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The preview as it was made before: the whole file diffed.
    fn whole(text: &str, edits: &[Edit]) -> String {
        let fixed = patch::apply(text, edits).unwrap();
        similar::TextDiff::from_lines(text, fixed.as_str())
            .unified_diff()
            .context_radius(RADIUS)
            .header("a/f", "b/f")
            .to_string()
    }

    /// Applies a unified diff to `text`, checking every context and removed
    /// line against the line the hunk header says it is: a preview that
    /// applies is a correct one, whichever equal-cost alignment it chose.
    fn apply_diff(text: &str, diff: &str) -> String {
        let old: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut next = 0; // 0-based line of `old` not yet copied
        let mut last_tag = " ";
        let mut lines = diff.split_inclusive('\n').skip(2).peekable();
        while let Some(header) = lines.next() {
            let ranges = header
                .strip_prefix("@@ -")
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let start: usize = ranges.split(',').next().unwrap().parse().unwrap();
            let len: usize = ranges.split(',').nth(1).map_or(1, |l| l.parse().unwrap());
            let at = if len == 0 { start } else { start - 1 };
            assert!(at >= next, "hunks out of order: {diff}");
            out.extend(old[next..at].iter().copied());
            next = at;
            while let Some(l) = lines.peek() {
                if l.starts_with("@@") {
                    break;
                }
                let l = lines.next().unwrap();
                if l.starts_with('\\') {
                    // "\ No newline at end of file": the line before (if
                    // kept or added) ends without one.
                    if last_tag == "+" && out.ends_with('\n') {
                        out.pop();
                    }
                    continue;
                }
                let (tag, body) = l.split_at(1);
                last_tag = tag;
                match tag {
                    " " | "-" => {
                        assert_eq!(
                            old[next].trim_end_matches('\n'),
                            body.trim_end_matches('\n'),
                            "{diff}"
                        );
                        if tag == " " {
                            out.push_str(old[next]);
                        }
                        next += 1;
                    }
                    "+" => out.push_str(body),
                    _ => panic!("{l:?} in {diff}"),
                }
            }
        }
        out.extend(old[next..].iter().copied());
        out
    }

    fn windowed(text: &str, edits: &[Edit]) -> String {
        let source = SourceFile::from_text(Path::new("f.yaml"), text.to_string()).unwrap();
        unified(&source, edits, "a/f", "b/f").unwrap()
    }

    #[test]
    fn the_windowed_preview_applies_to_the_file_and_gives_the_fixed_text() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for _ in 0..600 {
            let n = 1 + rng.below(80);
            let mut text = String::new();
            for i in 0..n {
                // Repeated lines make the alignment choices a window could
                // get wrong.
                match rng.below(4) {
                    0 => text.push_str("# x\n"),
                    1 => text.push('\n'),
                    _ => text.push_str(&format!("key{i}: v{}\n", rng.below(5))),
                }
            }
            if rng.below(5) == 0 {
                text.pop();
            }
            let mut edits = Vec::new();
            let mut at = 0;
            for _ in 0..1 + rng.below(4) {
                if at >= text.len() {
                    break;
                }
                let start = at + rng.below((text.len() - at).min(200));
                let end = (start + rng.below(30)).min(text.len());
                if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    break;
                }
                let new = match rng.below(3) {
                    0 => String::new(),
                    1 => "# y\n".to_string(),
                    _ => format!("added{}: 1\n# x\n", rng.below(9)),
                };
                edits.push(Edit::replace(start..end, new));
                at = end + 1;
            }
            if edits.is_empty() {
                continue;
            }
            let preview = windowed(&text, &edits);
            let fixed = patch::apply(&text, &edits).unwrap();
            assert_eq!(
                apply_diff(&text, &preview),
                fixed,
                "{text:?} {edits:?}\n{preview}"
            );
            // As many lines changed as the whole-file diff shows (equal
            // lines may be aligned differently; the changes may not).
            let changed = |d: &str| d.lines().filter(|l| l.starts_with(['+', '-'])).count();
            assert_eq!(
                changed(&preview),
                changed(&whole(&text, &edits)),
                "{preview}"
            );
            checked += 1;
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn conflicting_edits_have_no_preview() {
        let text = "a: 1\nb: 2\nc: 3\n";
        let source = SourceFile::from_text(Path::new("f.yaml"), text.to_string()).unwrap();
        let overlapping = [Edit::replace(0..6, "x"), Edit::replace(4..9, "y")];
        assert_eq!(unified(&source, &overlapping, "a/f", "b/f"), None);
        let outside = [Edit::replace(10..99, "z")];
        assert_eq!(unified(&source, &outside, "a/f", "b/f"), None);
    }

    #[test]
    fn edits_far_apart_give_separate_hunks_numbered_as_in_the_file() {
        let text: String = (1..=200).map(|i| format!("line{i}\n")).collect();
        let a = text.find("line3\n").unwrap();
        let b = text.find("line150\n").unwrap();
        let edits = [
            Edit::replace(a..a, "new-a\nnew-b\n"),
            Edit::replace(b..b + "line150\n".len(), "changed\n"),
        ];
        let got = windowed(&text, &edits);
        assert_eq!(got, whole(&text, &edits));
        assert!(got.contains("@@ -148,5 +150,5 @@"), "{got}");
    }
}
