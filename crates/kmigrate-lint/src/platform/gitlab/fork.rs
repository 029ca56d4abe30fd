//! The fork target on GitLab: the job keeps its executor calls and runs
//! them in the maintained fork's shell image; only the flag spellings the
//! fork changed are edited (see [`crate::kaniko::fork`]).

use std::ops::Range;

use super::analyze::{CallInfo, KanikoJob};
use super::job::ScriptLine;
use super::script_text::replace_text;
use crate::kaniko::fork::{FlagChange, flag_changes, spelling_range};
use crate::source::SourceFile;
use crate::source::patch::Edit;

/// Whether the job's executor comes from an image the rewrite can replace
/// (a Kaniko image of the table), or why not.
pub fn check_image(k: &KanikoJob) -> Result<(), String> {
    match (&k.image, &k.job.image) {
        (Some(_), Some(_)) => Ok(()),
        (None, Some(image)) => Err(format!(
            "the executor comes from the job's image `{}`, which is not a Kaniko image kmigrate knows; rebuild that image on the fork, or run the job in the fork's image",
            image.name.value
        )),
        _ => Err("the job names no image (the executor comes from the runner's default image); give it the fork's image by hand".into()),
    }
}

/// The edits of the text of `c`'s line, `line_text` (ranges of it, new
/// text), that move the call to the fork: old spellings renamed, no-op
/// flags removed with the space before them.
pub fn call_edits(c: &CallInfo, line_text: &str) -> Vec<(Range<usize>, String)> {
    let words = &c.exec.command.words;
    // Arg `i` is word `program + 1 + i`.
    let word = |i: usize| words.get(c.exec.program + 1 + i);
    let mut out = Vec::new();
    for change in flag_changes(&c.call) {
        match change {
            FlagChange::Rename { arg, from, to } => {
                let Some(w) = word(arg) else { continue };
                let Some(text) = line_text.get(w.span.clone()) else {
                    continue;
                };
                if let Some(r) = spelling_range(text, &from) {
                    out.push((w.span.start + r.start..w.span.start + r.end, to));
                }
            }
            FlagChange::Drop { args, flag, .. } => {
                let (Some(before), Some(first), Some(last)) = (
                    words.get(c.exec.program + args.start),
                    word(args.start),
                    args.end.checked_sub(1).and_then(word),
                ) else {
                    continue;
                };
                // Only a flag written in the line itself (not one a
                // variable brings).
                let written = line_text.get(first.span.clone()).unwrap_or_default();
                if spelling_range(written, &flag).is_none() {
                    continue;
                }
                out.push((before.span.end..last.span.end, String::new()));
            }
        }
    }
    out
}

/// The file edit for one of [`call_edits`]' edits of `line`. A removal
/// whose source text differs from the line's only in whitespace (a folded
/// or plain scalar written over several lines) removes the source text,
/// line break included, so the folded command stays one line. `None` when
/// the scalar's text cannot be edited in place (an escape in the range):
/// the fork still accepts the old spelling.
pub fn source_edit(
    file: &SourceFile,
    line: &ScriptLine,
    range: Range<usize>,
    text: &str,
) -> Option<Edit> {
    if let Some(e) = replace_text(file, line, range.clone(), text) {
        return Some(e);
    }
    if !text.is_empty() {
        return None;
    }
    let src = line.source_range(range.clone());
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    (words(file.text.get(src.clone())?) == words(line.text.get(range)?))
        .then(|| Edit::replace(src, ""))
}
