//! The notes of a Kaniko conversion as findings, each pointing at the
//! arguments it is about: one conversion of notes to findings for every
//! platform that reads a Kaniko call (GitHub Actions, Tekton, Kubernetes,
//! Jenkins, Drone / Woodpecker, Skaffold).

use std::ops::Range;

use super::from_kaniko::{self, Conversion, NoteKind};
use crate::rules::{Finding, Fix};

/// The notes of `conversion` as findings: each at the spans of its args
/// (else at `fallback`), with `fix` where applying the rewrite is what
/// resolves it.
pub fn note_findings(
    args: &[crate::kaniko::Arg],
    conversion: &Conversion,
    fallback: &Range<usize>,
    fix: Option<&Fix>,
) -> Vec<Finding> {
    conversion
        .notes
        .iter()
        .map(|note| {
            let spans: Vec<Range<usize>> = args
                [note.args.start.min(args.len())..note.args.end.min(args.len())]
                .iter()
                .filter_map(|a| a.span.clone())
                .collect();
            let span = match (
                spans.iter().map(|s| s.start).min(),
                spans.iter().map(|s| s.end).max(),
            ) {
                (Some(a), Some(b)) => a..b,
                _ => fallback.clone(),
            };
            let mut f = Finding::new(note.kind.rule(), span, note.message.clone());
            if let Some(h) = &note.help {
                f = f.with_help(from_kaniko::with_placeholders(h));
            }
            if let Some(fix) = fix
                && matches!(
                    note.kind,
                    NoteKind::Dropped | NoteKind::Changed | NoteKind::Malformed
                )
            {
                f = f.with_fix(fix.clone());
            }
            f
        })
        .collect()
}
