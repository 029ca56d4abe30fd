//! One plan per Kaniko job: every edit the job's fixes make (the move to
//! the target builder, the split into one job per image), composed before
//! anything is rendered, and checked to render.
//!
//! `check` reports a job as fixable exactly when its plan renders, and
//! `rewrite` writes exactly the plans `check` reported: both read the
//! findings [`super::findings::check`] builds from these plans, so they
//! cannot disagree.

use std::collections::BTreeMap;

use super::Pipeline;
use super::analyze::KanikoJob;
use super::job::Job;
use super::rewrite::{FileEdit, Sharing, rewrite_job_as};
use super::split::split_job;
use super::target::{Options, Target};
use crate::source::Span;
use crate::source::patch::{Edit, apply};

/// What the plan does with a job that runs several cached builds (KM002).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// One build, or builds without a cache: nothing to split.
    NotNeeded,
    /// Split into a template and one job per image.
    Done,
    /// `--no-split`: the calls are migrated in place.
    Off,
    /// Not split, and why (the calls are still migrated in place).
    Kept(String),
}

/// Every edit of one job's fixes.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Edits in every file of the pipeline; together they render.
    pub edits: Vec<FileEdit>,
    /// The job moves to another builder or image (false with
    /// `--gitlab-target split`, and for a job already on a fork).
    pub migrates: bool,
    pub split: Split,
}

impl JobPlan {
    /// Whether the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

/// The plan for `k`, or why the job must be migrated by hand.
pub fn plan_job(p: &Pipeline, k: &KanikoJob, opts: &Options) -> Result<JobPlan, String> {
    plan_job_as(p, k, opts, Sharing::InPlace)
}

/// [`plan_job`] with a choice of where shared values are edited.
pub fn plan_job_as(
    p: &Pipeline,
    k: &KanikoJob,
    opts: &Options,
    sharing: Sharing,
) -> Result<JobPlan, String> {
    let multi = k.is_multi_build();
    // A job already on a maintained fork stays on it, whatever the target:
    // only its split is planned.
    let plan = if opts.target == Target::Split || k.on_fork() {
        let (edits, split) = if multi {
            match split_job(p, k, Vec::new(), &[], &[]) {
                Ok(edits) => (edits, Split::Done),
                Err(why) => (Vec::new(), Split::Kept(why)),
            }
        } else {
            (Vec::new(), Split::NotNeeded)
        };
        JobPlan {
            edits,
            migrates: false,
            split,
        }
    } else {
        let r = rewrite_job_as(p, k, opts, sharing)?;
        let split = match (multi, opts.split) {
            (false, _) => Err(Split::NotNeeded),
            (true, false) => Err(Split::Off),
            (true, true) => {
                split_job(p, k, r.edits.clone(), &r.calls, &r.script_prefix).map_err(Split::Kept)
            }
        };
        match split {
            Ok(edits) => JobPlan {
                edits,
                migrates: true,
                split: Split::Done,
            },
            Err(split) => {
                let mut edits = r.edits;
                edits.extend(r.calls);
                edits.extend(r.prefix_edit);
                JobPlan {
                    edits,
                    migrates: true,
                    split,
                }
            }
        }
    };
    renders(p, &plan.edits)?;
    Ok(plan)
}

/// Where the values a job runs with are written: the templates it extends,
/// and every image, service, variable and script line it resolves (from
/// anchors, `!reference` and `default:` too). An edit there changes the
/// job.
pub fn footprint(p: &Pipeline, job: &Job) -> Vec<(usize, Span)> {
    let mut out: Vec<(usize, Span)> = Vec::new();
    for a in &job.ancestors {
        if let Some(t) = p.job(a) {
            out.push((t.file, t.entry_span.clone()));
        }
    }
    for img in job.image.iter().chain(&job.services) {
        out.push((img.origin.file, img.origin.full_span.clone()));
    }
    for v in &job.variables {
        out.push((v.file, v.entry_span.clone()));
    }
    for l in job.lines() {
        out.push((l.origin.file, l.origin.full_span.clone()));
    }
    for key in ["before_script", "script", "after_script"] {
        if let Some(n) = job.config.get(key) {
            out.push((n.origin.file, n.origin.full_span.clone()));
        }
    }
    out
}

/// Whether edit `e` (in file `f`) changes text within `span` of file
/// `sf`: an insertion at either end of it counts (it extends the value).
pub fn touches(f: usize, e: &Edit, sf: usize, span: &Span) -> bool {
    f == sf
        && if e.range.is_empty() {
            span.start <= e.range.start && e.range.start <= span.end
        } else {
            overlaps(&e.range, span)
        }
}

/// Checks that `edits` apply together and every edited file still parses.
fn renders(p: &Pipeline, edits: &[FileEdit]) -> Result<(), String> {
    let mut by_file: BTreeMap<usize, Vec<Edit>> = BTreeMap::new();
    for (f, e) in edits {
        by_file.entry(*f).or_default().push(e.clone());
    }
    for (f, edits) in by_file {
        let file = &p.files[f];
        let text = apply(&file.text, &edits).map_err(|c| {
            format!(
                "kmigrate could not combine the job's fixes (two edit line {}); please report this with the file",
                file.position(c.second.start).0
            )
        })?;
        if let Err(e) = crate::source::SourceFile::from_text(&file.path, text) {
            return Err(format!(
                "the rewritten job would not parse ({}); please report this with the file",
                e.message
            ));
        }
    }
    Ok(())
}

/// The edits of the plans accepted so far, per file, to keep plans of
/// different jobs from editing the same text differently.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Per file: edits by start offset, with the index of the job that made
    /// them.
    files: BTreeMap<usize, BTreeMap<usize, Vec<(Edit, usize)>>>,
}

impl Accepted {
    /// Adds the edits of job `owner`'s plan, or returns the job whose
    /// accepted edits they clash with (then nothing is added).
    pub fn add(&mut self, owner: usize, edits: &[FileEdit]) -> Result<(), usize> {
        for (f, e) in edits {
            if let Some(other) = self.clash(*f, e, owner) {
                return Err(other);
            }
        }
        for (f, e) in edits {
            let at = self
                .files
                .entry(*f)
                .or_default()
                .entry(e.range.start)
                .or_default();
            if !at.iter().any(|(x, _)| x == e) {
                at.push((e.clone(), owner));
            }
        }
        Ok(())
    }

    /// The job whose accepted edit in file `f` overlaps `e` (identical
    /// edits are shared, not a clash); two jobs inserting different text at
    /// one place clash too (the result would depend on their order).
    fn clash(&self, f: usize, e: &Edit, owner: usize) -> Option<usize> {
        let map = self.files.get(&f)?;
        // Accepted non-empty edits do not overlap, so scanning back from
        // the last start at or before `e`'s end, the first non-empty edit
        // that ends at or before `e` starts ends the search.
        for (_, list) in map.range(..=e.range.end).rev() {
            let mut before = false;
            for (x, who) in list {
                if x == e {
                    continue;
                }
                if overlaps(&x.range, &e.range)
                    || (x.range.is_empty()
                        && e.range.is_empty()
                        && x.range.start == e.range.start
                        && *who != owner)
                {
                    return Some(*who);
                }
                before |= !x.range.is_empty() && x.range.end <= e.range.start;
            }
            if before {
                break;
            }
        }
        None
    }
}

/// Whether two edit ranges touch the same bytes (as `patch::apply` sees it:
/// an insertion conflicts only strictly inside a replaced range).
fn overlaps(a: &std::ops::Range<usize>, b: &std::ops::Range<usize>) -> bool {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => false,
        (true, false) => b.start < a.start && a.start < b.end,
        (false, true) => a.start < b.start && b.start < a.end,
        (false, false) => a.start < b.end && b.start < a.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_of_different_jobs_clash_only_on_different_text() {
        let mut a = Accepted::default();
        let x = Edit::replace(10..20, "x");
        a.add(0, &[(0, x.clone()), (0, Edit::insert(5, "i"))])
            .unwrap();
        // The same edit from another job (a shared template) is shared.
        a.add(1, &[(0, x.clone())]).unwrap();
        // Overlapping, different: a clash with job 0.
        assert_eq!(a.add(2, &[(0, Edit::replace(15..25, "y"))]), Err(0));
        // An insertion inside the replaced range clashes, at its ends not.
        assert_eq!(a.add(2, &[(0, Edit::insert(12, "z"))]), Err(0));
        a.add(2, &[(0, Edit::insert(20, "z")), (1, Edit::insert(5, "q"))])
            .unwrap();
        // Another job's different insertion at one place clashes.
        assert_eq!(a.add(3, &[(0, Edit::insert(5, "j"))]), Err(0));
        // A long edit over several accepted ones: found.
        assert!(a.add(3, &[(0, Edit::replace(0..30, ""))]).is_err());
        assert!(a.add(3, &[(0, Edit::replace(11..12, ""))]).is_err());
    }
}
