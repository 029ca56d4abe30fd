//! `kmigrate report`: a migration audit in the manner of GitHub Actions
//! Importer's audit summary.
//!
//! A *build* is one place that needs migrating: a step or job running the
//! Kaniko image (KM001) or a buildx cache export on the docker driver
//! (KM003). Each is classified from the findings around it:
//!
//! - **automatic**: `kmigrate rewrite` fixes it and nothing needs review;
//! - **partial**: it is rewritten, but a warning (changed behaviour, cache
//!   TTL, privileged runner, malformed call) needs a human look;
//! - **manual**: no automatic fix, or a flag that cannot be translated
//!   (KM012) keeps the step as it is.
//!
//! "Around it" is the Cloud Build step that holds the finding; for other
//! platforms, everything from the build's finding to the next build's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use serde_json::{Value, json};

use super::display_path;
use crate::kaniko::flags::{Action, FlagSpec};
use crate::platform::Platform;
use crate::platform::gitlab;
use crate::rules::{Applicability, Finding, Rule, Severity};
use crate::source::{SourceError, SourceFile};

/// Rules whose finding marks a build to migrate. The other rules of kind
/// `build`, the multi-build split (KM002), are about a build as a whole:
/// resolved by the build's own fix, never a note to review.
const BUILD_RULES: &[Rule] = &[Rule::Km001, Rule::Km003];

/// How far a build migrates on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Automatic,
    Partial,
    Manual,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Automatic => "automatic",
            Outcome::Partial => "partial",
            Outcome::Manual => "manual",
        }
    }
}

/// One checked file, as the report needs it.
pub struct Input<'a> {
    pub path: &'a Path,
    pub source: &'a SourceFile,
    pub platform: Platform,
    pub findings: &'a [Finding],
}

/// One build and what happens to it.
#[derive(Debug, Clone)]
pub struct BuildRow {
    pub path: String,
    pub line: usize,
    pub rule: Rule,
    pub outcome: Outcome,
    /// How faithful its fix is; `None` without one.
    pub applicability: Option<Applicability>,
}

/// One file's line in the report.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub path: String,
    pub platform: Platform,
    /// Steps (Cloud Build) or jobs (GitLab) in the file.
    pub units: usize,
    pub builds: [usize; 3],
}

/// Something a human has to do or check.
#[derive(Debug, Clone)]
pub struct Task {
    pub path: String,
    pub line: usize,
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub todo: String,
}

/// A Kaniko flag seen in the inputs.
#[derive(Debug, Clone)]
pub struct FlagRow {
    pub uses: usize,
    pub outcome: String,
}

/// The target recommended for one GitLab job on the archived image.
#[derive(Debug, Clone)]
pub struct TargetRow {
    pub path: String,
    pub line: usize,
    pub job: String,
    pub target: &'static crate::targets::TargetPage,
    /// Why, from what the job's configuration shows.
    pub reason: String,
    /// The signal of `rules/targets/hints.yaml` that decided (`None`: the
    /// default).
    pub signal: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileRow>,
    pub builds: Vec<BuildRow>,
    pub tasks: Vec<Task>,
    pub flags: BTreeMap<String, FlagRow>,
    /// KM005 findings: path, line, what to set up instead of `--cache-ttl`.
    pub cache_ttl: Vec<(String, usize, String)>,
    /// One per GitLab job on the archived image (see [`crate::targets`]).
    pub targets: Vec<TargetRow>,
    pub errors: Vec<SourceError>,
}

/// What a `map` translation writes, by the table's `buildx` name.
fn translation(name: &str) -> Option<&'static str> {
    Some(match name {
        "annotation" => "`--annotation`",
        "build-arg" => "`--build-arg`",
        "cache" => "`--cache-from`/`--cache-to type=registry` (mode=max)",
        "cache-repo" => "the registry cache ref",
        "context" => "the build context (last argument)",
        "context-sub-path" => "a context sub-directory",
        "destination" => "`--tag` per destination, with `--push`",
        "dockerfile" => "`--file`",
        "git" => "a git context URL",
        "label" => "`--label`",
        "no-push" => "no `--push`",
        "no-push-cache" => "`--cache-from` only",
        "platform" => "`--platform`",
        "secret" => "`--secret`",
        "target" => "`--target`",
        "tar-path" | "oci-layout-path" => "an `--output` of type docker/oci",
        "digest-file" => "`--metadata-file`",
        "registry-map" | "registry-mirror" => "buildkitd registry mirrors",
        "insecure" | "skip-tls-verify" | "registry-insecure" | "registry-http" => {
            "registry.insecure / buildkitd http settings"
        }
        "registry-ca" | "registry-keypair" => "buildkitd registry TLS settings",
        "compression" | "compression-level" | "image-format" => "image output options",
        "reproducible" => "`SOURCE_DATE_EPOCH` / rewrite-timestamp",
        _ => return None,
    })
}

fn flag_outcome(action: Action, buildx: Option<&str>, reason: Option<&str>) -> String {
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    match action {
        Action::Map => match buildx.and_then(translation) {
            Some(t) => format!("translated to {t}"),
            None => "translated exactly".to_string(),
        },
        Action::MapWarn => format!("translated with a change in behaviour{why}"),
        Action::Drop => format!("dropped, no effect under buildx{why}"),
        Action::DropWarn => format!("dropped with a warning{why}"),
        Action::Manual => format!("left for a human (the step is not rewritten){why}"),
    }
}

/// Byte regions (one per build finding) whose findings belong to it.
fn regions(
    input: &Input<'_>,
    pipeline: Option<&gitlab::Pipeline>,
    builds: &[&Finding],
) -> Vec<Range<usize>> {
    // GitLab's units are its pipeline's jobs (a job's template may sit in
    // another file); every other platform names its own.
    let steps: Vec<Range<usize>> = match pipeline {
        Some(p) => p
            .jobs
            .iter()
            .filter(|j| j.file == 0)
            .map(|j| j.entry_span.clone())
            .collect(),
        None => input.platform.support().unit_spans(input.source),
    };
    let end = input.source.text.len();
    builds
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if let Some(step) = steps.iter().find(|s| s.contains(&f.span.start)) {
                return step.clone();
            }
            let next = builds.get(i + 1).map_or(end, |n| n.span.start);
            f.span.start..next.max(f.span.end)
        })
        .collect()
}

/// The GitLab pipeline `input` is the entry of (or, for an included file
/// checked on its own, the fragment it forms), resolved by the GitLab
/// platform; the file itself is `files[0]`.
fn gitlab_pipeline(input: &Input<'_>) -> Option<gitlab::Pipeline> {
    let root = gitlab::include::repo_root(input.path);
    gitlab::Pipeline::from_text(&root, input.path, input.source.text.clone()).ok()
}

/// Steps (Cloud Build) or jobs defined in this file (GitLab, templates
/// excluded).
fn count_units(input: &Input<'_>, pipeline: Option<&gitlab::Pipeline>) -> usize {
    match pipeline {
        Some(p) => p.jobs.iter().filter(|j| !j.hidden && j.file == 0).count(),
        None => input.platform.support().unit_spans(input.source).len(),
    }
}

/// Every flag use of every Kaniko call written in this file.
fn flag_uses(input: &Input<'_>, pipeline: Option<&gitlab::Pipeline>) -> Vec<&'static FlagSpec> {
    let mut out = Vec::new();
    match pipeline {
        None => out.extend(input.platform.support().kaniko_flags(input.source)),
        Some(p) => {
            // Counted per build, as the builds are: every job defined in
            // this file that runs, with the calls it runs (a template's
            // call once per job extending it).
            let jobs = gitlab::analyze::kaniko_jobs(
                p,
                gitlab::ImageMatcher::builtin(),
                crate::options::DEFAULT_CACHE_TAG,
            );
            for job in &jobs {
                if job.job.file != 0 || !gitlab::findings::judged(job, &jobs) {
                    continue;
                }
                for call in &job.calls {
                    out.extend(call.call.uses.iter().map(|u| u.spec));
                }
            }
        }
    }
    out
}

/// The target recommended for each job defined in this file that runs the
/// archived image, in job order.
fn target_rows(path: &str, input: &Input<'_>, pipeline: &gitlab::Pipeline) -> Vec<TargetRow> {
    let jobs = gitlab::analyze::kaniko_jobs(
        pipeline,
        gitlab::ImageMatcher::builtin(),
        crate::options::DEFAULT_CACHE_TAG,
    );
    jobs.iter()
        .filter(|k| k.job.file == 0 && k.archived() && gitlab::findings::judged(k, &jobs))
        .map(|k| {
            let r = crate::targets::recommend(k.job);
            TargetRow {
                path: path.to_string(),
                line: input.source.position(k.job.key_span.start).0,
                job: k.job.name.clone(),
                target: r.target,
                reason: r.reason,
                signal: r.signal,
            }
        })
        .collect()
}

fn todo_for(f: &Finding) -> String {
    match &f.help {
        Some(h) => h.clone(),
        None => match f.fix {
            Some(_) => "review the rewritten step".to_string(),
            None => format!("see {}", f.rule.meta().help_url()),
        },
    }
}

/// Builds the report from checked files and the files that failed.
pub fn build(inputs: &[Input<'_>], errors: Vec<SourceError>) -> Report {
    let mut report = Report {
        errors,
        ..Report::default()
    };
    for input in inputs {
        let path = display_path(input.path);
        let line = |f: &Finding| input.source.position(f.span.start).0;
        // One build per job that runs: the part of a job's fix written in
        // another file is not another build.
        let builds: Vec<&Finding> = input
            .findings
            .iter()
            .filter(|f| BUILD_RULES.contains(&f.rule) && !gitlab::findings::is_part(f))
            .collect();
        // Only GitLab is read as a whole pipeline.
        let pipeline = match input.platform {
            Platform::GitLab => gitlab_pipeline(input),
            _ => None,
        };
        let regions = regions(input, pipeline.as_ref(), &builds);
        let mut counts = [0; 3];
        // Regions of builds the rewrite handles: the build rules' findings
        // there (a KM002 split done by the KM001 fix) are no manual task.
        let mut handled: Vec<Range<usize>> = Vec::new();
        for (b, region) in builds.iter().zip(&regions) {
            let around: Vec<&Finding> = input
                .findings
                .iter()
                .filter(|f| !std::ptr::eq(*f, *b) && region.contains(&f.span.start))
                .collect();
            let manual = b.fix.is_none() || around.iter().any(|f| f.rule == Rule::Km012);
            let outcome = if manual {
                Outcome::Manual
            } else if around
                .iter()
                .any(|f| !f.rule.is_build() && f.severity >= Severity::Warning)
            {
                Outcome::Partial
            } else {
                Outcome::Automatic
            };
            if outcome != Outcome::Manual {
                handled.push(region.clone());
            }
            counts[outcome as usize] += 1;
            report.builds.push(BuildRow {
                path: path.clone(),
                line: line(b),
                rule: b.rule,
                outcome,
                applicability: b.fix.as_ref().map(|x| x.applicability),
            });
        }
        for f in input.findings {
            let fixed_build = f.rule.is_build()
                && (f.fix.is_some() || handled.iter().any(|r| r.contains(&f.span.start)));
            let fixed_note = f.fix.is_some() && f.severity == Severity::Info;
            if !fixed_build && !fixed_note {
                report.tasks.push(Task {
                    path: path.clone(),
                    line: line(f),
                    rule: f.rule,
                    severity: f.severity,
                    message: f.message.clone(),
                    todo: todo_for(f),
                });
            }
            if f.rule == Rule::Km005 {
                report.cache_ttl.push((path.clone(), line(f), todo_for(f)));
            }
        }
        for spec in flag_uses(input, pipeline.as_ref()) {
            let row = report
                .flags
                .entry(format!("--{}", spec.name))
                .or_insert_with(|| FlagRow {
                    uses: 0,
                    outcome: flag_outcome(
                        spec.action,
                        spec.buildx.as_deref(),
                        spec.reason.as_deref(),
                    ),
                });
            row.uses += 1;
        }
        if let Some(p) = &pipeline {
            report.targets.extend(target_rows(&path, input, p));
        }
        report.files.push(FileRow {
            path,
            platform: input.platform,
            units: count_units(input, pipeline.as_ref()),
            builds: counts,
        });
    }
    report
}

fn pct(n: usize, total: usize) -> String {
    if total == 0 {
        "-".to_string()
    } else {
        format!("{:.0}%", n as f64 * 100.0 / total as f64)
    }
}

fn platform_name(p: Platform) -> &'static str {
    p.support().display_name()
}

impl Report {
    /// Builds per outcome (automatic, partial, manual).
    pub fn totals(&self) -> [usize; 3] {
        let mut t = [0; 3];
        for b in &self.builds {
            t[b.outcome as usize] += 1;
        }
        t
    }

    /// Builds with a fix, by applicability: (exact, changes behaviour).
    pub fn fixes(&self) -> (usize, usize) {
        let count = |a| {
            self.builds
                .iter()
                .filter(|b| b.applicability == Some(a))
                .count()
        };
        (
            count(Applicability::Exact),
            count(Applicability::ChangesBehaviour),
        )
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# kmigrate migration report\n\n");
        let [auto, partial, manual] = self.totals();
        let total = auto + partial + manual;
        let units: usize = self.files.iter().map(|f| f.units).sum();
        let _ = writeln!(
            s,
            "{} file{} scanned ({} steps/jobs), {} not checked; {} Kaniko build{} to migrate.\n",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            units,
            self.errors.len(),
            total,
            if total == 1 { "" } else { "s" },
        );
        s.push_str("## Summary\n\n| Builds | Count | Share |\n|---|---:|---:|\n");
        for (label, n) in [
            ("Migrated automatically", auto),
            ("Partially (rewritten, review the warnings)", partial),
            ("Manual only", manual),
            ("Total", total),
        ] {
            let _ = writeln!(s, "| {label} | {n} | {} |", pct(n, total));
        }
        let (exact, changing) = self.fixes();
        if exact + changing > 0 {
            let _ = writeln!(
                s,
                "\nOf the {} build{} `kmigrate rewrite` fixes, {exact} translate{} exactly and {changing} change{} behaviour (`kmigrate rewrite --only-exact` leaves those as they are).",
                exact + changing,
                if exact + changing == 1 { "" } else { "s" },
                if exact == 1 { "s" } else { "" },
                if changing == 1 { "s" } else { "" },
            );
        }
        s.push_str("\n## Files\n\n| File | Platform | Steps/jobs | Automatic | Partial | Manual |\n|---|---|---:|---:|---:|---:|\n");
        for f in &self.files {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} | {} |",
                f.path,
                platform_name(f.platform),
                f.units,
                f.builds[0],
                f.builds[1],
                f.builds[2]
            );
        }
        if !self.builds.is_empty() {
            s.push_str("\n## Builds\n\n| Where | Rule | Outcome |\n|---|---|---|\n");
            for b in &self.builds {
                let _ = writeln!(
                    s,
                    "| `{}:{}` | {} | {} |",
                    b.path,
                    b.line,
                    b.rule,
                    b.outcome.as_str()
                );
            }
        }
        if !self.targets.is_empty() {
            s.push_str("\n## Targets\n\nThe target that fits each GitLab job's runner, from what its configuration shows (`kmigrate rewrite --gitlab-target NAME`; `kmigrate explain target:NAME` has each target's page).\n\n| Job | Target | Runner change | Why |\n|---|---|---|---|\n");
            for r in &self.targets {
                let _ = writeln!(
                    s,
                    "| `{}:{}` `{}` | {} | {} | {} |",
                    r.path,
                    r.line,
                    r.job.replace('`', "'"),
                    r.target.name,
                    r.target.runner_change.replace('|', "\\|"),
                    r.reason.replace('|', "\\|")
                );
            }
            s.push_str("\n| Target | Runner requirement | What it does |\n|---|---|---|\n");
            for p in crate::targets::all() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |",
                    p.name,
                    p.runner_change.replace('|', "\\|"),
                    p.summary.replace('|', "\\|")
                );
            }
        }
        s.push_str("\n## Manual tasks\n\n");
        if self.tasks.is_empty() {
            s.push_str("None: `kmigrate rewrite` does everything.\n");
        }
        for t in &self.tasks {
            let _ = writeln!(
                s,
                "- [ ] `{}:{}` **{}** ({}): {}\n  - {}",
                t.path,
                t.line,
                t.rule,
                t.severity,
                t.message,
                t.todo.replace('\n', "\n    ")
            );
        }
        s.push_str("\n## Kaniko flags\n\n");
        if self.flags.is_empty() {
            s.push_str("No Kaniko flags seen.\n");
        } else {
            s.push_str("| Flag | Uses | What happens |\n|---|---:|---|\n");
            for (name, row) in &self.flags {
                let _ = writeln!(
                    s,
                    "| `{name}` | {} | {} |",
                    row.uses,
                    row.outcome.replace('|', "\\|")
                );
            }
        }
        if !self.cache_ttl.is_empty() {
            s.push_str(
                "\n## Cache TTL → registry cleanup policies\n\nBuildKit's registry cache has no TTL; set a cleanup policy on each cache repository instead.\n\n",
            );
            for (path, line, todo) in &self.cache_ttl {
                let _ = writeln!(s, "- `{path}:{line}`: {}", todo.replace('\n', "\n  "));
            }
        }
        if !self.errors.is_empty() {
            s.push_str("\n## Not checked\n\n");
            for e in &self.errors {
                let _ = writeln!(s, "- {}", e.to_string().replace('\n', "\n  "));
            }
        }
        s
    }

    pub fn to_json(&self) -> Value {
        let [auto, partial, manual] = self.totals();
        let (exact, changing) = self.fixes();
        let mut v = json!({
            "version": 1,
            "summary": {
                "files": self.files.len(),
                "not_checked": self.errors.len(),
                "builds": auto + partial + manual,
                "automatic": auto,
                "partial": partial,
                "manual": manual,
                "fixes": {"exact": exact, "changes_behaviour": changing},
            },
            "files": self.files.iter().map(|f| json!({
                "path": f.path,
                "platform": platform_name(f.platform),
                "steps_or_jobs": f.units,
                "automatic": f.builds[0],
                "partial": f.builds[1],
                "manual": f.builds[2],
            })).collect::<Vec<_>>(),
            "builds": self.builds.iter().map(|b| json!({
                "path": b.path, "line": b.line, "rule": b.rule, "outcome": b.outcome.as_str(),
            })).collect::<Vec<_>>(),
            "manual_tasks": self.tasks.iter().map(|t| json!({
                "path": t.path, "line": t.line, "rule": t.rule, "severity": t.severity,
                "message": t.message, "todo": t.todo,
            })).collect::<Vec<_>>(),
            "flags": self.flags.iter().map(|(name, r)| json!({
                "flag": name, "uses": r.uses, "outcome": r.outcome,
            })).collect::<Vec<_>>(),
            "cache_ttl": self.cache_ttl.iter().map(|(p, l, t)| json!({
                "path": p, "line": l, "suggestion": t,
            })).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|e| json!({
                "path": display_path(&e.path), "message": e.message,
            })).collect::<Vec<_>>(),
        });
        // Only GitLab jobs get a recommendation: reports without any keep
        // their shape.
        if !self.targets.is_empty() {
            v["targets"] = self
                .targets
                .iter()
                .map(|r| {
                    json!({
                        "path": r.path, "line": r.line, "job": r.job,
                        "target": r.target.name, "runner": r.target.runner,
                        "runner_change": r.target.runner_change,
                        "reason": r.reason, "signal": r.signal,
                    })
                })
                .collect();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn report_for(text: &str) -> Report {
        let source = SourceFile::from_text(Path::new("cloudbuild.yaml"), text.to_string()).unwrap();
        let findings =
            crate::engine::analyze(&source, Platform::CloudBuild, &Options::default()).unwrap();
        build(
            &[Input {
                path: Path::new("cloudbuild.yaml"),
                source: &source,
                platform: Platform::CloudBuild,
                findings: &findings,
            }],
            Vec::new(),
        )
    }

    #[test]
    fn classifies_builds() {
        let r = report_for(
            "steps:
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/a']
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/b', '--cache=true', '--cache-ttl=6h']
  - name: ubuntu
    args: ['true']
",
        );
        let outcomes: Vec<_> = r.builds.iter().map(|b| (b.line, b.outcome)).collect();
        assert_eq!(
            outcomes,
            [(2, Outcome::Automatic), (4, Outcome::Partial)],
            "{r:#?}"
        );
        assert_eq!(r.files[0].units, 3);
        assert_eq!(r.files[0].builds, [1, 1, 0]);
        assert_eq!(r.flags["--destination"].uses, 2);
        assert_eq!(r.flags["--cache-ttl"].uses, 1);
        assert_eq!(r.cache_ttl.len(), 1);
        assert!(r.tasks.iter().any(|t| t.rule == Rule::Km005 && t.line == 5));
        assert!(!r.tasks.iter().any(|t| t.rule == Rule::Km001));
        let md = r.to_markdown();
        assert!(md.contains("| Migrated automatically | 1 | 50% |"), "{md}");
        assert!(md.contains("| Partially (rewritten, review the warnings) | 1 | 50% |"));
    }

    #[test]
    fn empty_report_has_no_division_by_zero() {
        let r = report_for("steps:\n  - name: ubuntu\n");
        assert_eq!(r.totals(), [0, 0, 0]);
        assert!(r.to_markdown().contains("| Total | 0 | - |"));
        assert_eq!(r.to_json()["summary"]["builds"], 0);
    }
}
