//! GitLab findings and their fixes: KM001 (Kaniko job), KM002 (several
//! builds in one job), KM004 (runner privileges), KM014 (includes and
//! templates not read) and the per-flag notes of each call.

use std::collections::BTreeMap;

use super::analyze::{CallInfo, KanikoJob, kaniko_jobs};
use super::detect::expand_variables;
use super::job::Job;
use super::plan::{Accepted, JobPlan, Split, footprint, plan_job, plan_job_as, touches};
use super::registry::{Registry, registry_of};
use super::rewrite::FileEdit;
use super::rewrite::Sharing;
use super::target::{Options, Target};
use super::{ImageMatcher, Pipeline};
use crate::buildx::from_kaniko::NoteKind;
use crate::rules::{Applicability, Finding, Fix, Rule, Severity};
use crate::source::Span;
use crate::source::patch::{Conflict, Edit, apply};

/// Findings of one file of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct FileFindings {
    /// Index into [`Pipeline::files`].
    pub file: usize,
    pub findings: Vec<Finding>,
}

/// Ends the message of a finding that carries the part of a job's fix
/// written in another file than the job's own finding.
const PART: &str = " (the part written in this file)";

/// Whether `f` is such a part: the job is named and counted where its own
/// finding is.
pub fn is_part(f: &Finding) -> bool {
    f.message.ends_with(PART)
}

#[derive(Default)]
struct Collector {
    by_file: BTreeMap<usize, Vec<Finding>>,
}

impl Collector {
    /// Adds `f` to `file`; a finding with the same rule, span and message
    /// merges into the existing one (findings about different jobs never
    /// merge: each job that runs is named and counted).
    fn add(&mut self, file: usize, f: Finding) {
        let list = self.by_file.entry(file).or_default();
        if let Some(existing) = list
            .iter_mut()
            .find(|x| x.rule == f.rule && x.span == f.span && x.message == f.message)
        {
            if let Some(fix) = f.fix {
                match &mut existing.fix {
                    Some(e) => {
                        // One job's fix that changes behaviour makes the
                        // merged fix change behaviour.
                        e.applicability = e.applicability.max(fix.applicability);
                        for edit in fix.edits {
                            if !e.edits.contains(&edit) {
                                e.edits.push(edit);
                            }
                        }
                    }
                    None => existing.fix = Some(fix),
                }
            }
            return;
        }
        list.push(f);
    }

    /// Adds every finding of `other`, at info severity.
    fn add_as_info(&mut self, other: Collector) {
        for (file, findings) in other.by_file {
            for mut f in findings {
                f.severity = Severity::Info;
                self.add(file, f);
            }
        }
    }

    /// Adds `f` in `file` with the edits of that file, and a companion
    /// finding in every other file the edits touch.
    fn add_with_edits(
        &mut self,
        file: usize,
        f: Finding,
        description: &str,
        applicability: Applicability,
        edits: Vec<FileEdit>,
    ) {
        let mut by_file: BTreeMap<usize, Vec<Edit>> = BTreeMap::new();
        for (i, e) in edits {
            let list = by_file.entry(i).or_default();
            if !list.contains(&e) {
                list.push(e);
            }
        }
        let own = by_file.remove(&file).unwrap_or_default();
        for (other, edits) in by_file {
            let at = edits.iter().map(|e| e.range.start).min().unwrap_or(0);
            let companion = Finding::new(f.rule, at..at, format!("{}{PART}", f.message))
                .with_fix(Fix::new(description, edits).with_applicability(applicability));
            self.add(other, companion);
        }
        let f = if own.is_empty() {
            f
        } else {
            f.with_fix(Fix::new(description, own).with_applicability(applicability))
        };
        self.add(file, f);
    }
}

/// Checks the pipeline: every finding, with fixes for `opts.target`.
pub fn check(p: &Pipeline, opts: &Options) -> Vec<FileFindings> {
    let mut c = Collector::default();
    for inc in p.unfollowed_includes() {
        let why = inc.not_followed.clone().unwrap_or_default();
        if inc.unreadable {
            // GitLab rejects the pipeline; kmigrate checks the rest of it.
            let mut f = Finding::new(Rule::Km014, inc.span.clone(), why).with_help(
                "name a GitLab CI file inside the repository (paths are relative to its root); the rest of the pipeline was checked without it",
            );
            f.severity = Severity::Error;
            c.add(inc.in_file, f);
            continue;
        }
        c.add(
            inc.in_file,
            Finding::new(
                Rule::Km014,
                inc.span.clone(),
                format!(
                    "`include: {}` `{}` is not read ({why}); a Kaniko job may be defined there",
                    inc.kind.keyword(),
                    inc.location
                ),
            )
            .with_help("run `kmigrate check` where that file lives"),
        );
    }
    for (file, f) in super::fragment::unknown_template_findings(p) {
        c.add(file, f);
    }

    let kjobs = kaniko_jobs(p, ImageMatcher::builtin(), &opts.cache_tag);
    let plans = plans(p, &kjobs, opts);
    let unused_is_info = runs_jobs(p);
    for (k, plan) in kjobs.iter().zip(plans) {
        let Some(plan) = plan else { continue };
        let mut own = Collector::default();
        let to = if k.job.hidden && unused_is_info {
            &mut own
        } else {
            &mut c
        };
        // The per-flag notes say what the move to buildx/BuildKit changes:
        // a job that stays on Kaniko's executor (a fork) has its own.
        if opts.target == Target::Fork || k.on_fork() {
            if plan.as_ref().is_ok_and(|p| p.migrates) {
                for call in &k.calls {
                    fork_note_findings(to, call);
                }
            }
        } else {
            for call in &k.calls {
                note_findings(to, k.job, call, opts.target);
            }
        }
        job_findings(to, k, opts, plan);
        c.add_as_info(own);
    }
    // Jobs whose Kaniko image and call may be in a template not read.
    for job in &p.jobs {
        if kjobs.iter().any(|k| std::ptr::eq(k.job, job)) {
            continue;
        }
        if let Some((file, span, message)) = super::fragment::probable_kaniko(job) {
            let mut f = Finding::new(Rule::Km001, span, message).with_help(
                "kmigrate cannot migrate it without the template: run `kmigrate check` on the whole pipeline, or where the template lives",
            );
            if job.hidden {
                f.severity = Severity::Info;
            }
            c.add(file, f);
        }
    }
    for job in &p.jobs {
        // Templates are judged through the jobs that use them.
        if job.hidden
            && p.jobs
                .iter()
                .any(|j| !j.hidden && j.ancestors.contains(&job.name))
        {
            continue;
        }
        for d in super::docker_cache::problems(p, job, &opts.builder) {
            let mut f = Finding::new(
                Rule::Km003,
                d.span.clone(),
                format!(
                    "job `{}` exports build cache with the default docker driver, which fails with \"Cache export is not supported for the docker driver\"",
                    job.name
                ),
            )
            .with_help("create a docker-container builder before the build: `docker buildx create --use --driver docker-container`");
            if let Some((file, edit)) = d.fix
                && file == d.file
            {
                f = f.with_fix(Fix::new(
                    "create a docker-container builder before the build",
                    vec![edit],
                ));
            }
            if job.hidden && unused_is_info {
                f.severity = Severity::Info;
            }
            c.add(d.file, f);
        }
    }
    c.by_file
        .into_iter()
        .map(|(file, mut findings)| {
            findings.sort_by_key(|f| (f.span.start, f.rule));
            FileFindings { file, findings }
        })
        .collect()
}

/// Whether the pipeline runs jobs of its own. Where it does, a template
/// none of them uses never runs: its findings are info (its fix still
/// migrates it for the pipelines that include it). Where it runs none, the
/// file is a template library or a fragment whose users live elsewhere:
/// its templates are what it ships, and they are reported as jobs are, so
/// a CI gate on the library fails while it still uses Kaniko.
fn runs_jobs(p: &Pipeline) -> bool {
    p.jobs.iter().any(|j| !j.hidden)
}

/// KM010 for each flag the move to the fork removes (the fork made it a
/// no-op).
fn fork_note_findings(c: &mut Collector, call: &CallInfo) {
    for change in crate::kaniko::fork::flag_changes(&call.call) {
        if let crate::kaniko::fork::FlagChange::Drop { args, flag, reason } = change {
            c.add(
                call.file,
                Finding::new(
                    Rule::Km010,
                    call.args_span(&args),
                    format!("`{flag}` is removed: {reason}"),
                ),
            );
        }
    }
}

fn note_findings(c: &mut Collector, job: &Job, call: &CallInfo, target: Target) {
    for n in &call.var_notes {
        let mut f = Finding::new(n.rule, n.span.clone(), n.message.clone());
        if let Some(h) = &n.help {
            f = f.with_help(h.clone());
        }
        c.add(n.file, f);
    }
    for n in &call.conversion.notes {
        let message = match target {
            Target::Buildah => buildah_message(call, n),
            _ => n.message.clone(),
        };
        let mut f = Finding::new(n.kind.rule(), call.args_span(&n.args), message);
        if let Some(h) = &n.help {
            // The cleanup policy is pasted as is: fill in the job's
            // visible variables, mark what only the user knows.
            f = f.with_help(match n.kind {
                NoteKind::CacheTtl => {
                    crate::buildx::from_kaniko::with_placeholders(&expand_variables(job, h))
                }
                _ => h.clone(),
            });
        }
        c.add(call.file, f);
    }
}

/// A flag note's message as the Buildah target says it: the table's
/// `buildah-reason` in place of its buildx `reason`.
fn buildah_message(call: &CallInfo, n: &crate::buildx::from_kaniko::Note) -> String {
    let spec = call
        .call
        .uses
        .iter()
        .find(|u| u.args == n.args)
        .map(|u| u.spec);
    match spec.and_then(|s| Some((s.reason.as_deref()?, s.buildah_reason.as_deref()?))) {
        Some((reason, buildah)) if n.message.contains(reason) => n.message.replace(reason, buildah),
        _ => n.message.clone(),
    }
}

/// Whether a Kaniko job is judged (and counted as a build) on its own: a
/// template is judged through the jobs that use it (through `extends`, or
/// an anchor or `!reference` to a value written in it). `check`, `rewrite`
/// and `report` count builds by this one rule.
pub fn judged(k: &KanikoJob, all: &[KanikoJob]) -> bool {
    let name = k.job.name.as_str();
    let uses = |o: &KanikoJob| {
        o.job.ancestors.iter().any(|a| a == name)
            || o.job
                .image
                .iter()
                .any(|i| i.origin.owner.as_deref() == Some(name))
            || o.job
                .lines()
                .any(|l| l.origin.owner.as_deref() == Some(name))
    };
    !(k.job.hidden && all.iter().any(|o| !o.job.hidden && uses(o)))
}

/// Each judged job's plan (`None` for templates judged through their
/// jobs): one plan per job, and the plans of different jobs accepted in
/// job order only where they do not edit the same text differently.
fn plans(
    p: &Pipeline,
    kjobs: &[KanikoJob],
    opts: &Options,
) -> Vec<Option<Result<JobPlan, String>>> {
    let mut plans: Vec<Option<Result<JobPlan, String>>> = kjobs
        .iter()
        .map(|k| judged(k, kjobs).then(|| plan_job(p, k, opts)))
        .collect();
    // A job refused in one round stays on Kaniko, which may keep another
    // job's edit off a value they share: repeat until no plan is refused
    // (each round refuses one more job, or ends).
    let refused = |plans: &[Option<Result<JobPlan, String>>]| {
        plans.iter().filter(|x| matches!(x, Some(Err(_)))).count()
    };
    for _ in 0..=kjobs.len() {
        let before = refused(&plans);
        if opts.target != Target::Split {
            keep_shared_values(p, kjobs, opts, &mut plans);
        }
        accept_together(p, kjobs, opts, &mut plans);
        // Nothing is offered that does not build what the job built.
        super::equivalence::withhold_unfaithful(p, kjobs, opts, &mut plans);
        if refused(&plans) == before {
            break;
        }
    }
    plans
}

/// Accepts the plans in job order where they render together with the
/// ones before; a plan that edits a shared value differently from an
/// earlier one is made again with the job's own copies, or refused.
fn accept_together(
    p: &Pipeline,
    kjobs: &[KanikoJob],
    opts: &Options,
    plans: &mut [Option<Result<JobPlan, String>>],
) {
    let mut accepted = Accepted::default();
    for i in 0..plans.len() {
        let Some(Ok(plan)) = &plans[i] else { continue };
        if let Err(other) = accepted.add(i, &plan.edits) {
            // Migrated differently from a job it shares a value with: it
            // gets its own copy, if that renders alongside.
            let private = plan_job_as(p, &kjobs[i], opts, Sharing::Private);
            plans[i] = Some(match private {
                Ok(plan) if accepted.add(i, &plan.edits).is_ok() => Ok(plan),
                _ => Err(format!(
                    "its fix and job `{}`'s edit the same text differently",
                    kjobs[other].job.name
                )),
            });
        }
    }
}

/// A shared value (anchor, `extends` template, `!reference` target,
/// `default:`) is edited only when every job using it migrates: a plan
/// that edits what a job staying as it is (not Kaniko, or Kaniko left for
/// a human) runs with is made again with the job's own copies, and
/// refused when even that reaches the other job.
fn keep_shared_values(
    p: &Pipeline,
    kjobs: &[KanikoJob],
    opts: &Options,
    plans: &mut [Option<Result<JobPlan, String>>],
) {
    let migrating = |job: &super::Job| {
        kjobs
            .iter()
            .zip(plans.iter())
            .any(|(k, plan)| std::ptr::eq(k.job, job) && matches!(plan, Some(Ok(_))))
    };
    let staying: Vec<(&super::Job, Vec<(usize, Span)>)> = p
        .jobs
        .iter()
        .filter(|j| !j.hidden && !migrating(j))
        .map(|j| (j, footprint(p, j)))
        .collect();
    if staying.is_empty() {
        return;
    }
    let reaches = |plan: &JobPlan| -> Option<&str> {
        staying.iter().find_map(|(job, spans)| {
            plan.edits
                .iter()
                .any(|(f, e)| spans.iter().any(|(sf, s)| touches(*f, e, *sf, s)))
                .then_some(job.name.as_str())
        })
    };
    for (k, plan) in kjobs.iter().zip(plans.iter_mut()) {
        let Some(Ok(shared)) = plan else { continue };
        let Some(other) = reaches(shared) else {
            continue;
        };
        let why = |other: &str| {
            format!(
                "it shares a value with job `{other}`, which stays as it is, and kmigrate cannot give the job its own copy"
            )
        };
        *plan = Some(match plan_job_as(p, k, opts, Sharing::Private) {
            Ok(own) => match reaches(&own) {
                None => Ok(own),
                Some(other) => Err(why(other)),
            },
            Err(e) => Err(format!("{} ({e})", why(other))),
        });
    }
}

/// Where a job's KM001 points: its Kaniko image, else its first call, when
/// written in the job itself; else the job's name. Each job that runs has
/// its own KM001 (a template shared by several jobs is named once per job,
/// not merged into one finding naming one of them).
fn primary(k: &KanikoJob) -> (usize, Span) {
    let job = k.job;
    let own =
        |file: usize, owner: Option<&str>| file == job.file && owner == Some(job.name.as_str());
    let image = k
        .job
        .image
        .as_ref()
        .filter(|img| own(img.name.origin.file, img.name.origin.owner.as_deref()));
    let call = k.calls.first().filter(|c| {
        let line = c.exec.script_line(job);
        own(line.origin.file, line.origin.owner.as_deref())
    });
    match (&k.image, image, call) {
        (Some(_), Some(img), _) => (img.name.origin.file, img.name.origin.span.clone()),
        (_, _, Some(call)) => (call.file, call.span.clone()),
        (_, Some(img), None) => (img.name.origin.file, img.name.origin.span.clone()),
        (_, None, None) => (job.file, job.key_span.clone()),
    }
}

fn job_findings(c: &mut Collector, k: &KanikoJob, opts: &Options, plan: Result<JobPlan, String>) {
    let job = k.job;
    let (file, span) = primary(k);
    let km002 = km002_multi_build(k, file, &span);
    let km001 = km001_archived_image(k, span.clone());
    let plan = match plan {
        Ok(plan) => plan,
        Err(why) => {
            if let Some(what) = why.strip_prefix(super::equivalence::WITHHELD) {
                c.add(
                    file,
                    Finding::new(Rule::Km012, span.clone(), what)
                        .with_help(crate::readback::equivalence::REPORT_HELP),
                );
            }
            if k.archived() {
                c.add(file, km001.with_help(format!("left unchanged: {why}")));
            }
            if let Some((f2, finding)) = km002 {
                c.add(
                    f2,
                    finding.with_help("split the job by hand, one job per image"),
                );
            }
            return;
        }
    };
    let fork_image;
    let target = match opts.target {
        Target::Buildkit => "rootless BuildKit (buildctl-daemonless.sh)",
        Target::Fork => {
            fork_image = format!(
                "the maintained Kaniko fork `{}` (same executor call, no runner change)",
                opts.fork_job_image(
                    &job.image
                        .as_ref()
                        .map(|i| i.name.value.clone())
                        .unwrap_or_default()
                )
            );
            fork_image.as_str()
        }
        Target::Buildah => "Buildah (vfs storage, chroot isolation)",
        _ => "docker buildx with a docker-container builder",
    };
    // A job whose fix is written elsewhere only (its template in another
    // file) is named where the fix is.
    let (file, km001) = match plan
        .edits
        .iter()
        .filter(|(f, _)| *f != file)
        .min_by_key(|(f, e)| (*f, e.range.start))
    {
        Some((f, e)) if !plan.edits.iter().any(|(x, _)| *x == file) => {
            let at = e.range.start;
            (
                *f,
                Finding {
                    span: at..at,
                    ..km001
                },
            )
        }
        _ => (file, km001),
    };
    // The job's rewrite changes behaviour where a flag's translation does,
    // or where it pushes with credentials only Kaniko's helpers found
    // (both reported as KM011).
    let credentials = if plan.migrates && opts.target != Target::Fork {
        credential_findings(k)
    } else {
        Vec::new()
    };
    let changed = k
        .calls
        .iter()
        .flat_map(|c| &c.conversion.notes)
        .any(|n| n.kind == NoteKind::Changed);
    let applicability = Applicability::changing_behaviour_if(changed || !credentials.is_empty());
    if !k.archived() {
        // A maintained fork is not a finding of its own (KM002 may be).
    } else if plan.migrates {
        let replaced =
            super::fragment::replaced_keys(job, plan.edits.iter().map(|(_, e)| e.text.as_str()));
        let note = super::fragment::replaced_note(job, &replaced).unwrap_or_default();
        // Runners that cannot give the new builder what it needs keep
        // Kaniko's model on a maintained fork.
        let runner = match opts.target {
            Target::Buildx => FORK_FOR_UNPRIVILEGED_RUNNERS,
            Target::Buildkit => FORK_FOR_CONFINED_RUNNERS,
            _ => "",
        };
        c.add_with_edits(
            file,
            km001.with_help(format!("rewrite it to {target}{note}{runner}")),
            &format!("migrate job `{}` to {target}", job.name),
            applicability,
            plan.edits.clone(),
        );
    } else {
        c.add(
            file,
            km001.with_help("`--gitlab-target split` keeps Kaniko; use `--gitlab-target buildx` or `buildkit` to migrate"),
        );
    }
    if let Some((f2, finding)) = km002 {
        // BuildKit or Buildah isolates the builds of a job left unsplit;
        // the fork, like Kaniko, does not.
        let isolated_by =
            (plan.migrates && opts.target != Target::Fork).then_some(match opts.target {
                Target::Buildah => "Buildah",
                _ => "BuildKit",
            });
        add_km002(c, k, f2, finding, &plan, applicability, isolated_by);
    }
    if !plan.migrates {
        return;
    }
    for (file, f) in credentials {
        c.add(file, f);
    }
    if opts.target == Target::Buildah {
        for call in &k.calls {
            if let Some(note) = super::buildah::cache_note(&call.conversion) {
                let span = call
                    .call
                    .all("cache")
                    .last()
                    .map(|u| call.args_span(&u.args))
                    .unwrap_or_else(|| call.span.clone());
                c.add(call.file, Finding::new(Rule::Km011, span, note));
            }
        }
    }
    if opts.target == Target::Buildx && !k.on_fork() {
        c.add(job.file, km004_privileged_runner(k, opts));
    }
}

/// The end of KM001's help with the buildx target: the fork is the way for
/// runners that cannot run privileged containers (docker-in-docker).
const FORK_FOR_UNPRIVILEGED_RUNNERS: &str = "; if your runner cannot run privileged containers, `--gitlab-target fork` keeps the Kaniko call on a pinned, maintained fork instead (no runner change)";

/// The same with the rootless BuildKit target, which needs seccomp and
/// AppArmor relaxed.
const FORK_FOR_CONFINED_RUNNERS: &str = "; if your runner cannot run containers with seccomp and AppArmor unconfined, `--gitlab-target fork` keeps the Kaniko call on a pinned, maintained fork instead (no runner change)";

/// KM001: the job runs Kaniko, at `span`.
fn km001_archived_image(k: &KanikoJob, span: Span) -> Finding {
    let job = k.job;
    let what = match (&k.image, &job.image) {
        (Some(m), Some(image)) => {
            crate::kaniko::runs_image(&expand_variables(job, &image.name.value), m.name)
        }
        _ => crate::kaniko::RUNS_EXECUTOR.to_string(),
    };
    Finding::new(Rule::Km001, span, format!("job `{}` {what}", job.name))
}

/// KM002: the job runs the executor more than once; at its second call,
/// else where its KM001 is (`file`, `span`).
fn km002_multi_build(k: &KanikoJob, file: usize, span: &Span) -> Option<(usize, Finding)> {
    let job = k.job;
    k.is_multi_build().then(|| {
        let (f2, s2) = k
            .calls
            .get(1)
            .map(|c| (c.file, c.span.clone()))
            .unwrap_or((file, span.clone()));
        (
            f2,
            Finding::new(
                Rule::Km002,
                s2,
                format!(
                    "job `{}` runs the executor {} times in one container with the cache on: cache and files leak between the builds",
                    job.name,
                    k.calls.len()
                ),
            ),
        )
    })
}

/// Adds a job's KM002 in `file`: the split is part of the job's one plan,
/// so its fix is the plan.
fn add_km002(
    c: &mut Collector,
    k: &KanikoJob,
    file: usize,
    finding: Finding,
    plan: &JobPlan,
    applicability: Applicability,
    // What keeps the builds of one job apart once they are not split
    // (none: the job stays on a Kaniko executor).
    isolated_by: Option<&str>,
) {
    let isolates = isolated_by.is_some();
    let isolated_by = isolated_by.unwrap_or_default();
    let job = k.job;
    let with = if plan.migrates {
        " (with the KM001 fix)"
    } else {
        ""
    };
    match &plan.split {
        Split::Done => c.add_with_edits(
            file,
            finding.with_help(format!("split into one job per image{with}")),
            &format!("split job `{}` into one job per image{with}", job.name),
            applicability,
            plan.edits.clone(),
        ),
        Split::Kept(why) if isolates => c.add(
            file,
            finding.with_help(format!(
                "not split automatically ({why}); the rewrite still isolates each build in {isolated_by}"
            )),
        ),
        Split::Kept(why) => c.add(
            file,
            finding.with_help(format!(
                "not split automatically: {why}; split it by hand, one job per image"
            )),
        ),
        Split::Off | Split::NotNeeded if isolates => c.add(
            file,
            finding.with_help(format!(
                "`--no-split`: the calls are rewritten in place; {isolated_by} isolates each build"
            )),
        ),
        Split::Off | Split::NotNeeded => c.add(
            file,
            finding.with_help(
                "`--no-split`: the calls still share one Kaniko executor container, which leaks cache and files between them (kaniko#1829, in the forks too); split the job (drop `--no-split`) or split it by hand",
            ),
        ),
    }
}

/// KM004: a job migrated to docker-in-docker needs a privileged runner.
fn km004_privileged_runner(k: &KanikoJob, opts: &Options) -> Finding {
    let job = k.job;
    Finding::new(
        Rule::Km004,
        job.key_span.clone(),
        format!("job `{}` will need a privileged runner: docker-in-docker (`{}`) runs privileged, Kaniko did not", job.name, opts.dind_image()),
    )
    .with_help("tag the job for a privileged runner (Kubernetes executor: also set `DOCKER_HOST: tcp://localhost:2376`, `DOCKER_TLS_VERIFY: 1`, `DOCKER_CERT_PATH: /certs/client`), or use `--gitlab-target buildkit` (rootless)")
}

/// Registries a migrated job pushes to (or reads cache from) with no
/// credentials the new builder can see: Kaniko found them through its
/// built-in helpers (GitLab, GCR, ECR, ACR); docker and buildctl read only
/// the Docker config. Each with the file it belongs in.
fn credential_findings(k: &KanikoJob) -> Vec<(usize, Finding)> {
    let mut out = Vec::new();
    let job = k.job;
    let configured = job.lines().any(|l| {
        l.text.contains(".docker/config.json")
            || l.text.contains("docker login")
            || l.text.contains("DOCKER_AUTH_CONFIG")
    }) || job.variable("DOCKER_AUTH_CONFIG").is_some();
    if configured {
        return out;
    }
    let mut seen: Vec<String> = Vec::new();
    for call in &k.calls {
        let refs = call
            .conversion
            .plan
            .tags
            .iter()
            .chain(call.conversion.cache_ref.iter());
        for r in refs {
            let host = match registry_of(job, r) {
                // The rewrite logs in to GitLab's registry.
                Registry::Gitlab => continue,
                Registry::Host(host) => host,
                Registry::Unknown(var) => var,
            };
            if seen.contains(&host) {
                continue;
            }
            seen.push(host.clone());
            let span = call
                .call
                .all("destination")
                .next()
                .map(|u| call.args_span(&u.args))
                .unwrap_or_else(|| call.span.clone());
            let finding = if host.contains('$') {
                Finding::new(
                    Rule::Km011,
                    span,
                    format!(
                        "job `{}` pushes to a registry kmigrate cannot tell before the job runs (it depends on `{host}`, set outside this pipeline's files), without writing Docker credentials: Kaniko may have found them through its built-in helpers (GitLab, GCR, ECR, ACR), the new builder reads only the Docker config",
                        job.name
                    ),
                )
                .with_help(format!(
                    "add a login for the registry `{host}` names before the build, e.g. `echo \"$REGISTRY_PASSWORD\" | docker login <registry> -u \"$REGISTRY_USER\" --password-stdin` (`\"$CI_REGISTRY\"` with `$CI_REGISTRY_USER`/`$CI_REGISTRY_PASSWORD` for GitLab's), or a credential helper"
                ))
            } else {
                Finding::new(
                    Rule::Km011,
                    span,
                    format!(
                        "job `{}` pushes to `{host}` without writing Docker credentials: Kaniko may have found them through its built-in helpers (GCR, ECR, ACR), the new builder reads only the Docker config",
                        job.name
                    ),
                )
                .with_help(format!(
                    "add a login before the build, e.g. `echo \"$REGISTRY_PASSWORD\" | docker login {host} -u \"$REGISTRY_USER\" --password-stdin`, or a credential helper"
                ))
            };
            out.push((call.file, finding));
        }
    }
    out
}

/// The text of every file after applying every fix; unchanged files are
/// left out.
pub fn fixed_texts(
    p: &Pipeline,
    findings: &[FileFindings],
) -> Result<Vec<(usize, String)>, (usize, Conflict)> {
    let mut out = Vec::new();
    for ff in findings {
        let edits: Vec<Edit> = ff
            .findings
            .iter()
            .filter_map(|f| f.fix.as_ref())
            .flat_map(|f| f.edits.iter().cloned())
            .collect();
        if edits.is_empty() {
            continue;
        }
        let text = &p.files[ff.file].text;
        let new = apply(text, &edits).map_err(|e| (ff.file, e))?;
        if new != *text {
            out.push((ff.file, new));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run(src: &str, target: Target) -> (Vec<(String, String)>, Option<String>) {
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            src.into(),
        )
        .unwrap();
        let opts = Options {
            target,
            ..Options::default()
        };
        let ff = check(&p, &opts);
        let rules = ff
            .iter()
            .flat_map(|f| {
                f.findings
                    .iter()
                    .map(|x| (x.rule.to_string(), x.message.clone()))
            })
            .collect();
        let text = fixed_texts(&p, &ff)
            .unwrap()
            .into_iter()
            .next()
            .map(|(_, t)| t);
        (rules, text)
    }

    fn ids(r: &[(String, String)]) -> Vec<&str> {
        r.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn km001_recommends_the_fork_for_runners_the_target_does_not_fit() {
        let src = "build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination r.example/a:1\n";
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            src.into(),
        )
        .unwrap();
        let help = |target| {
            let ff = check(
                &p,
                &Options {
                    target,
                    ..Options::default()
                },
            );
            ff.iter()
                .flat_map(|f| &f.findings)
                .find(|f| f.rule == Rule::Km001)
                .and_then(|f| f.help.clone())
                .unwrap()
        };
        assert!(
            help(Target::Buildx)
                .contains("cannot run privileged containers, `--gitlab-target fork`")
        );
        assert!(
            help(Target::Buildkit)
                .contains("seccomp and AppArmor unconfined, `--gitlab-target fork`")
        );
        let fork = help(Target::Fork);
        assert!(
            fork.contains(
                "maintained Kaniko fork `ghcr.io/osscontainertools/kaniko:v1.28.3-debug`"
            ),
            "{fork}"
        );
    }

    #[test]
    fn a_shared_template_is_rewritten_once() {
        let src = ".kaniko:\n  image:\n    name: gcr.io/kaniko-project/executor:v1.23.2-debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination $CI_REGISTRY_IMAGE/$APP:$CI_COMMIT_SHA\napi:\n  extends: .kaniko\n  variables: {APP: api}\nweb:\n  extends: .kaniko\n  variables: {APP: web}\n";
        let (rules, text) = run(src, Target::Buildx);
        // One finding per job that runs, each naming its job (issue 14.5).
        let km001: Vec<&str> = rules
            .iter()
            .filter(|(r, _)| r == "KM001")
            .map(|(_, m)| m.as_str())
            .collect();
        assert_eq!(km001.len(), 2, "{rules:?}");
        assert!(
            km001[0].contains("`api`") && km001[1].contains("`web`"),
            "{rules:?}"
        );
        let text = text.unwrap();
        assert_eq!(text.matches("docker buildx build").count(), 1, "{text}");
        assert_eq!(text.matches("docker:28.5-dind").count(), 1, "{text}");
        // The jobs are untouched: they still extend the template.
        assert!(
            text.contains("api:\n  extends: .kaniko\n  variables: {APP: api}\n"),
            "{text}"
        );
        let (again, fixed) = run(&text, Target::Buildx);
        assert!(fixed.is_none(), "not idempotent");
        assert!(!ids(&again).contains(&"KM001"), "{again:?}");
    }

    #[test]
    fn flags_from_variables_leave_the_job_unchanged_with_reasons() {
        // A variable set outside the file is passed through (KM015); one
        // whose definition has no buildx spelling keeps the job on Kaniko.
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - KANIKO_ARGS=--tar-path=/out.tar\n    - /kaniko/executor --context . $KANIKO_ARGS\n";
        let (rules, text) = run(src, Target::Buildx);
        assert!(text.is_none());
        assert_eq!(ids(&rules), ["KM001", "KM012"]);
        assert!(rules[1].1.contains("$KANIKO_ARGS"), "{rules:?}");
        assert!(rules[1].1.contains("line 4"), "{rules:?}");
    }

    #[test]
    fn flag_variables_translate_every_spelling_in_place() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - A='-dr.example.com/a:1 --context=dir://sub --custom-platform=linux/arm64'\n    - /kaniko/executor $A\n";
        let (rules, text) = run(src, Target::Buildx);
        assert!(!ids(&rules).contains(&"KM012"), "{rules:?}");
        let text = text.unwrap();
        assert!(
            text.contains("- A='--tag=r.example.com/a:1 sub --platform=linux/arm64'\n    - docker buildx build --push --provenance=false $A\n"),
            "{text}"
        );
    }

    #[test]
    fn a_predefined_variable_in_a_flag_place_is_not_taken_for_flags() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination r.example.com/a $CI_PROJECT_DIR\n";
        let (rules, text) = run(src, Target::Buildx);
        assert!(text.is_none(), "{text:?}");
        assert!(
            rules.iter().any(|(r, m)| r == "KM012"
                && m.contains("`$CI_PROJECT_DIR` is a GitLab predefined variable")),
            "{rules:?}"
        );
    }

    #[test]
    fn a_quoted_variable_is_one_flag() {
        let one = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - D=--destination=r.example.com/a:1\n    - /kaniko/executor --context . \"$D\" \"$OUTSIDE\"\n";
        let (rules, text) = run(one, Target::Buildx);
        assert!(!ids(&rules).contains(&"KM012"), "{rules:?}");
        let text = text.unwrap();
        assert!(
            text.contains("- D=--tag=r.example.com/a:1\n    - docker buildx build --push --provenance=false \"$D\" \"$OUTSIDE\" .\n"),
            "{text}"
        );
        let two = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - D=\"--destination r.example.com/a:1\"\n    - /kaniko/executor --context . \"$D\"\n";
        let (rules, text) = run(two, Target::Buildx);
        assert!(text.is_none(), "{text:?}");
        assert!(
            rules
                .iter()
                .any(|(r, m)| r == "KM012" && m.contains("is one argument")),
            "{rules:?}"
        );
    }

    #[test]
    fn a_definition_after_the_call_in_a_loop_counts() {
        // The second round of the loop builds with the value set after the
        // call: that definition must be translated too (here it cannot be).
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - X=\"--destination r.example.com/a\"\n    - |\n      for i in 1 2; do\n        /kaniko/executor --context . $X\n        X=\"--tar-path=/o.tar\"\n      done\n";
        let (rules, text) = run(src, Target::Buildx);
        assert!(text.is_none(), "{text:?}");
        let km012 = rules.iter().find(|(r, _)| r == "KM012").unwrap();
        assert!(km012.1.contains("line 8"), "{rules:?}");
    }

    #[test]
    fn calls_in_loops_are_rewritten_in_place_but_not_split() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - |\n      for app in api web; do\n        /kaniko/executor --cache=true --context $app --destination $CI_REGISTRY_IMAGE/$app\n      done\n    - /kaniko/executor --cache=true --context . --destination $CI_REGISTRY_IMAGE/all\n";
        let (rules, text) = run(src, Target::Buildx);
        let km002 = rules.iter().find(|(r, _)| r == "KM002").unwrap();
        assert!(km002.1.contains("2 times"));
        let text = text.unwrap();
        assert!(
            text.contains("for app in api web; do\n        docker buildx build"),
            "{text}"
        );
        assert!(!text.contains("extends:"), "{text}");
        let (_, split) = run(src, Target::Split);
        assert!(split.is_none());
    }

    #[test]
    fn relying_on_the_gitlab_helper_adds_a_login() {
        let src = "build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  before_script:\n    - echo start\n  script:\n    - /kaniko/executor --context . --destination $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(
            text.contains("  before_script:\n    - echo start\n    - echo \"$CI_REGISTRY_PASSWORD\" | docker login \"$CI_REGISTRY\" -u \"$CI_REGISTRY_USER\" --password-stdin\n    - docker buildx create --use --driver docker-container --name kmigrate\n"),
            "{text}"
        );
        let text = run(src, Target::Buildkit).1.unwrap();
        assert!(
            text.contains(&format!(
                "name: {}",
                crate::platform::container::BUILDKIT_ROOTLESS
            )),
            "{text}"
        );
        assert!(
            text.contains("BUILDKITD_FLAGS: --oci-worker-no-process-sandbox"),
            "{text}"
        );
        assert!(text.contains("> /home/user/.docker/config.json"), "{text}");
        assert!(
            text.contains("buildctl-daemonless.sh build --frontend dockerfile.v0"),
            "{text}"
        );
    }

    #[test]
    fn the_buildah_target_logs_in_and_says_its_own_reasons() {
        let src = "build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --cleanup --destination $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA\n";
        let (rules, text) = run(src, Target::Buildah);
        let text = text.unwrap();
        assert!(
            text.starts_with("build:\n  image: quay.io/buildah/stable:v"),
            "{text}"
        );
        assert!(
            text.contains("  before_script:\n    - echo \"$CI_REGISTRY_PASSWORD\" | buildah login -u \"$CI_REGISTRY_USER\" --password-stdin \"$CI_REGISTRY\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    - buildah build --layers --tag \"$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA\" . && buildah push \"$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA\"\n"),
            "{text}"
        );
        let km010 = rules.iter().find(|(r, _)| r == "KM010").unwrap();
        assert!(
            km010.1.contains("Buildah builds in its own storage"),
            "{rules:?}"
        );
        assert!(
            !ids(&rules).contains(&"KM004"),
            "no privileged runner: {rules:?}"
        );
        // Buildah builds and pushes in two commands: a call inside an
        // `&&` list would change meaning, so the job is left with why.
        let listed = src.replace("$CI_COMMIT_SHA\n", "$CI_COMMIT_SHA || exit 1\n");
        let (_, text) = run(&listed, Target::Buildah);
        assert!(text.is_none(), "{text:?}");
    }

    #[test]
    fn a_template_shared_with_a_manual_job_is_left_alone() {
        let src = ".k:\n  image: gcr.io/kaniko-project/executor:debug\na:\n  extends: .k\n  script: [/kaniko/executor --context . --destination r.example.com/a]\nb:\n  extends: .k\n  script: [ARGS=--tar-path=/o.tar, /kaniko/executor --context . $ARGS]\n";
        let (rules, text) = run(src, Target::Buildx);
        // The template and the manual job stay; `a` gets its own image
        // (issue 14.2: a shared value changes only when all its users do),
        // after its leading `extends:` (issue 14.14).
        let text = text.unwrap();
        assert!(
            text.starts_with(
                ".k:\n  image: gcr.io/kaniko-project/executor:debug\na:\n  extends: .k\n  image: docker:28.5-cli\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("b:\n  extends: .k\n  script: [ARGS=--tar-path=/o.tar, /kaniko/executor --context . $ARGS]\n"),
            "{text}"
        );
        assert!(
            rules.iter().any(|(r, m)| r == "KM001" && m.contains("`b`")),
            "{rules:?}"
        );
    }

    #[test]
    fn a_split_carries_every_fix_of_the_script_lines() {
        // A workaround line deleted, a config path moved and two calls
        // rewritten: all inside the script the split moves (issue 14.1).
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - export container=docker\n    - echo '{}' > /kaniko/.docker/config.json\n    - /kaniko/executor --cache=true --context a --destination r.example.com/a\n    - /kaniko/executor --cache=true --context b --destination r.example.com/b\n";
        let text = run(src, Target::Buildx).1.unwrap();
        for image in ["a", "b"] {
            assert!(
                text.contains(&format!("build-{image}:\n  extends: .build\n  script:\n    - echo '{{}}' > $HOME/.docker/config.json\n    - docker buildx build --tag r.example.com/{image} ")),
                "{text}"
            );
        }
        assert!(
            !text.contains("container=docker") && !text.contains("/kaniko/"),
            "{text}"
        );
    }

    #[test]
    fn jobs_migrated_differently_do_not_share_an_edited_anchor() {
        // `ci` needs a login to $CI_REGISTRY, `other` does not: the anchor
        // gets `ci`'s setup and `other` its own copy, not both setups.
        let src = ".auth: &auth\n  - echo start\nci:\n  image: gcr.io/kaniko-project/executor:debug\n  before_script: *auth\n  script:\n    - /kaniko/executor --context . --destination \"$CI_REGISTRY_IMAGE:1\"\nother:\n  image: gcr.io/kaniko-project/executor:debug\n  before_script: *auth\n  script:\n    - /kaniko/executor --context . --destination registry.example.com/app:1\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(
            text.starts_with(
                ".auth: &auth\n  - echo start\n  - echo \"$CI_REGISTRY_PASSWORD\" | docker login"
            ),
            "{text}"
        );
        assert!(
            text.contains("  before_script:\n    - echo start\n    - docker buildx create --use --driver docker-container --name kmigrate\n  script:\n    - docker buildx build --tag registry.example.com/app:1"),
            "{text}"
        );
        assert_eq!(text.matches("docker buildx create").count(), 2, "{text}");
    }

    #[test]
    fn other_registries_without_docker_credentials_are_reported() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --context . --destination europe-docker.pkg.dev/p/r/app:1 --destination $CI_REGISTRY_IMAGE:1\n";
        let (rules, _) = run(src, Target::Buildx);
        let km011: Vec<_> = rules.iter().filter(|(r, _)| r == "KM011").collect();
        assert_eq!(km011.len(), 1, "{rules:?}");
        assert!(km011[0].1.contains("`europe-docker.pkg.dev`"), "{rules:?}");
        let with_login = src.replace("  script:", "  before_script:\n    - echo \"$K\" | docker login europe-docker.pkg.dev -u _json_key --password-stdin\n  script:");
        let (rules, _) = run(&with_login, Target::Buildx);
        assert!(!rules.iter().any(|(r, _)| r == "KM011"), "{rules:?}");
    }

    #[test]
    fn files_without_kaniko_have_no_findings() {
        let src =
            "build:\n  image: docker:27-cli\n  script:\n    - echo \"/kaniko/executor is gone\"\n";
        let (rules, text) = run(src, Target::Buildx);
        assert!(rules.is_empty() && text.is_none(), "{rules:?}");
    }

    #[test]
    fn inherited_before_script_gets_setup_in_the_script() {
        let src = "default:\n  before_script: [echo shared]\nbuild:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --context . --destination registry.example.com/app\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(text.contains("  before_script: [echo shared]\n"), "{text}");
        assert!(text.contains("  script:\n    - docker buildx create --use --driver docker-container --name kmigrate\n    - docker buildx build"), "{text}");
        assert!(!text.contains("docker login"), "{text}");
    }

    #[test]
    fn kaniko_only_workarounds_are_removed() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - export container=docker\n    - /kaniko/executor --context . --destination r.example.com/a\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(!text.contains("container=docker"), "{text}");
        assert!(
            text.contains("  script:\n    - docker buildx build"),
            "{text}"
        );
    }

    #[test]
    fn a_default_kaniko_image_is_overridden_in_the_job_not_edited() {
        let src = "default:\n  image: gcr.io/kaniko-project/executor:debug\nbuild:\n  script:\n    - /kaniko/executor --context . --destination r.example.com/a\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(
            text.starts_with("default:\n  image: gcr.io/kaniko-project/executor:debug\nbuild:\n  image: docker:28.5-cli\n  services:\n    - docker:28.5-dind\n  variables:\n    DOCKER_TLS_CERTDIR: \"/certs\"\n  before_script:\n"),
            "{text}"
        );
    }

    #[test]
    fn existing_dind_service_and_tls_choice_are_kept() {
        let src = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  services:\n    - name: docker:24-dind\n      alias: docker\n    - postgres:16\n  variables:\n    DOCKER_TLS_CERTDIR: \"\"\n  script:\n    - /kaniko/executor --context . --destination $CI_REGISTRY_IMAGE\n";
        let text = run(src, Target::Buildx).1.unwrap();
        assert!(!text.contains("docker:28.5-dind"), "{text}");
        assert!(
            text.contains("    DOCKER_TLS_CERTDIR: \"\"\n  before_script:"),
            "{text}"
        );
        assert_eq!(text.matches("DOCKER_TLS_CERTDIR").count(), 1, "{text}");
    }
}
