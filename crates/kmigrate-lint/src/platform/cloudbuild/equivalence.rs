//! The safety net on Cloud Build steps: each migrated step's rewrite is
//! read back and compared with the original build before any fix is
//! offered (see [`crate::readback::equivalence`]). A step whose rewrite does
//! not reproduce its build is left as it was, with a KM012 note.

use super::Build;
use super::migrate::StepMigration;
use crate::buildx::equivalence::Explained;
use crate::buildx::from_kaniko::{Note, NoteKind};
use crate::options::Options;
use crate::readback::equivalence::{self, Mismatch, REPORT_HELP};
use crate::source::patch;

/// The unit `verify`'s extractor names a step by.
fn unit(s: &StepMigration) -> String {
    s.kaniko.step.unit()
}

/// Withholds the edits of every step whose rewrite builds something else
/// than the original step. The steps' own edits are applied together
/// (without the shared setup step, so steps keep their numbers) and read
/// back once.
pub fn withhold_unfaithful(build: &Build, steps: &mut [StepMigration], opts: &Options) {
    let edits: Vec<patch::Edit> = steps
        .iter()
        .filter_map(|s| s.edits.as_ref())
        .flatten()
        .cloned()
        .collect();
    if edits.is_empty() {
        return;
    }
    let source = build.source;
    let mismatches = match patch::apply(&source.text, &edits) {
        Ok(after) => {
            let explained = |u: &str| {
                let notes = steps
                    .iter()
                    .filter(|s| unit(s) == u)
                    .flat_map(|s| s.conversions.iter().flat_map(|c| &c.notes).chain(&s.notes));
                Explained::from_notes(notes.map(|n| n.message.as_str()), &opts.cache_tag)
            };
            equivalence::cloudbuild(&source.path, &source.text, &after, &explained)
        }
        // Steps never edit the same text; if they did, `rewrite` refuses
        // the file as a whole.
        Err(_) => return,
    };
    for m in mismatches {
        // A build only the rewritten text runs, or one no migrated step
        // names, cannot be traced to one step: every rewrite is withheld
        // (an unexplained change is never written).
        let traced = m.original && steps.iter().any(|s| s.edits.is_some() && unit(s) == m.unit);
        for s in steps.iter_mut().filter(|s| s.edits.is_some()) {
            if traced && unit(s) != m.unit {
                continue;
            }
            withhold(s, &m);
        }
    }
}

fn withhold(s: &mut StepMigration, m: &Mismatch) {
    let step = s.kaniko.step;
    let label = step.label();
    s.edits = None;
    s.blocked = Some(
        "the rewrite did not reproduce the build (see the KM012 finding); the step is left unchanged"
            .into(),
    );
    s.notes.push(Note {
        kind: NoteKind::Manual,
        args: 0..0,
        message: m.message(&label),
        help: Some(REPORT_HELP.into()),
    });
}
