//! The safety net on GitLab jobs: the accepted plans are applied together,
//! the pipeline is read back, and every build they change is compared
//! with the original build (see [`crate::readback::equivalence`]). A job
//! whose rewrite does not reproduce its builds is refused: it stays on
//! Kaniko, with a KM012 finding.

use std::collections::{BTreeMap, HashSet};

use super::Pipeline;
use super::analyze::KanikoJob;
use super::job::Job;
use super::plan::{JobPlan, footprint, touches};
use super::target::Options;
use crate::buildx::equivalence::Explained;
use crate::readback::equivalence::{self, Mismatch};
use crate::source::patch::{Edit, apply};

/// Starts the refusal of a job whose rewrite was withheld, so its finding
/// can say so under KM012.
pub const WITHHELD: &str = "the translation did not reproduce the build: ";

/// What a job runs, as far as a rewrite can change it: its image, script
/// lines and variables.
#[derive(PartialEq, Eq)]
struct Runs<'a> {
    image: Option<&'a str>,
    lines: Vec<&'a str>,
    variables: Vec<(&'a str, Option<&'a str>)>,
}

fn runs(job: &Job) -> Runs<'_> {
    Runs {
        image: job.image.as_ref().map(|i| i.name.value.as_str()),
        lines: job.lines().map(|l| l.text.as_str()).collect(),
        variables: job
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_ref().map(|x| x.value.as_str())))
            .collect(),
    }
}

/// Refuses (as `Err` starting with [`WITHHELD`]) every accepted plan whose
/// rewrite changes a build in a way its notes do not explain. Returns
/// whether it refused any.
pub fn withhold_unfaithful(
    p: &Pipeline,
    kjobs: &[KanikoJob],
    opts: &Options,
    plans: &mut [Option<Result<JobPlan, String>>],
) -> bool {
    let mut by_file: BTreeMap<usize, Vec<Edit>> = BTreeMap::new();
    for plan in plans.iter().flatten().flatten() {
        for (f, e) in &plan.edits {
            by_file.entry(*f).or_default().push(e.clone());
        }
    }
    if by_file.is_empty() {
        return false;
    }
    let mut texts = Vec::new();
    for (f, edits) in by_file {
        // Accepted plans render together (see `findings::plans`).
        let Ok(text) = apply(&p.files[f].text, &edits) else {
            return false;
        };
        texts.push((f, text));
    }
    let mismatches = match p.with_texts(&texts) {
        Ok(after) => compare(p, &after, kjobs, opts, plans),
        Err(e) => vec![Mismatch {
            unit: format!("(the rewritten pipeline does not load: {})", e.message),
            original: false,
            fields: vec![crate::buildx::equivalence::Field::Build],
        }],
    };
    let mut refused = false;
    for m in &mismatches {
        let job = m.original.then(|| p.job(&m.unit)).flatten();
        let owns_plan = |j: &Job| {
            kjobs
                .iter()
                .zip(plans.iter())
                .any(|(o, plan)| std::ptr::eq(o.job, j) && matches!(plan, Some(Ok(_))))
        };
        let responsible: Vec<usize> = (0..kjobs.len())
            .filter(|&i| {
                let Some(Ok(plan)) = &plans[i] else {
                    return false;
                };
                match job {
                    Some(j) if owns_plan(j) => std::ptr::eq(j, kjobs[i].job),
                    // A build that changed through a value its job shares
                    // with a migrating job: every plan that edits its values.
                    Some(j) => {
                        let spans = footprint(p, j);
                        plan.edits
                            .iter()
                            .any(|(f, e)| spans.iter().any(|(sf, s)| touches(*f, e, *sf, s)))
                    }
                    None => true,
                }
            })
            .collect();
        // A difference no single plan explains withholds them all: an
        // unexplained change is never written.
        let responsible = if responsible.is_empty() {
            (0..kjobs.len())
                .filter(|&i| matches!(plans[i], Some(Ok(_))))
                .collect()
        } else {
            responsible
        };
        for i in responsible {
            let what = format!("job `{}`", kjobs[i].job.name);
            plans[i] = Some(Err(format!("{WITHHELD}{}", m.message(&what))));
            refused = true;
        }
    }
    refused
}

/// The mismatches between `before` and `after` in the jobs a plan may have
/// changed: the Kaniko jobs with a plan, and every job of `after` that is
/// new or runs something else than before.
fn compare(
    before: &Pipeline,
    after: &Pipeline,
    kjobs: &[KanikoJob],
    opts: &Options,
    plans: &[Option<Result<JobPlan, String>>],
) -> Vec<Mismatch> {
    let changed: HashSet<&str> = after
        .jobs
        .iter()
        .filter(|j| before.job(&j.name).is_none_or(|b| runs(b) != runs(j)))
        .map(|j| j.name.as_str())
        .collect();
    let planned: HashSet<&str> = kjobs
        .iter()
        .zip(plans)
        .filter(|(_, p)| matches!(p, Some(Ok(_))))
        .map(|(k, _)| k.job.name.as_str())
        .collect();
    let before_jobs =
        |j: &Job| planned.contains(j.name.as_str()) || changed.contains(j.name.as_str());
    let after_jobs =
        |j: &Job| changed.contains(j.name.as_str()) || planned.contains(j.name.as_str());
    let explained = |unit: &str| {
        let notes = kjobs
            .iter()
            .filter(|k| k.job.name == unit)
            .flat_map(|k| &k.calls)
            .flat_map(|c| &c.conversion.notes);
        Explained {
            // Buildah names its cache by repository (its KM011 note says so).
            cache_repository: opts.target == super::target::Target::Buildah,
            ..Explained::from_notes(notes.map(|n| n.message.as_str()), &opts.cache_tag)
        }
    };
    equivalence::gitlab(before, after, &before_jobs, &after_jobs, &explained)
}
