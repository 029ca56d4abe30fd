//! Templates kmigrate did not read: an `extends` or `!reference` target
//! that is not defined in the files of the pipeline (a fragment included
//! by another pipeline, a template from a project/remote include). The job
//! is judged from what its own file says; these findings name what may
//! come from the unknown template.

use std::collections::HashSet;

use super::Pipeline;
use super::job::{Job, Located};
use crate::rules::{Finding, Rule, Severity};
use crate::source::Span;

/// The job keys a build depends on, in the order findings list them.
const BUILD_KEYS: [&str; 6] = [
    "image",
    "services",
    "variables",
    "before_script",
    "script",
    "after_script",
];

/// The keys of `job` an unknown template may still set: those the job
/// does not set itself, and `variables` always (GitLab merges mappings).
pub fn may_come_from(job: &Job) -> Vec<&'static str> {
    BUILD_KEYS
        .into_iter()
        .filter(|k| *k == "variables" || job.config.get(k).is_none())
        .collect()
}

/// `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The template a `[.template, key]` reference names.
fn referenced(r: &Located) -> &str {
    let inner = r.value.trim_start_matches('[');
    inner
        .split(',')
        .next()
        .unwrap_or(inner)
        .trim_end_matches(']')
}

/// One finding per unknown `extends` name and `!reference`, where it is
/// written (a template several jobs extend is named once). In a pipeline
/// read whole, GitLab rejects it: an error; otherwise info.
pub fn unknown_template_findings(p: &Pipeline) -> Vec<(usize, Finding)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let severity = if p.complete {
        Severity::Error
    } else {
        Severity::Info
    };
    let where_ = if p.complete {
        "which is not defined in this pipeline (GitLab rejects it)"
    } else {
        "which is defined in a file kmigrate did not read"
    };
    let help = if p.complete {
        "define it, fix the name, or include the file that defines it; the jobs were checked from what they say themselves"
    } else {
        "run `kmigrate check` on the whole pipeline (its `.gitlab-ci.yml`) or where the template lives; the jobs were checked from what they say themselves"
    };
    let mut add = |at: &Located, message: String| {
        if seen.insert((at.origin.file, at.origin.span.start)) {
            let mut f = Finding::new(Rule::Km014, at.origin.span.clone(), message).with_help(help);
            f.severity = severity;
            out.push((at.origin.file, f));
        }
    };
    // Jobs first where they write the name themselves, so a chain names
    // the missing level in the template that extends it.
    let own = |job: &Job, at: &Located| at.origin.owner.as_deref() == Some(job.name.as_str());
    for pass_own in [true, false] {
        for job in &p.jobs {
            let parts: Vec<String> = may_come_from(job).iter().map(|s| s.to_string()).collect();
            for e in job
                .unresolved_extends
                .iter()
                .filter(|e| own(job, e) == pass_own)
            {
                add(
                    e,
                    format!(
                        "job `{}` extends `{}`, {where_}; its {} may come from `{}`",
                        job.name,
                        e.value,
                        listed(&parts),
                        e.value
                    ),
                );
            }
            for r in job
                .unresolved_references
                .iter()
                .filter(|r| own(job, r) == pass_own)
            {
                add(
                    r,
                    format!(
                        "job `{}`: `!reference {}` points into `{}`, {where_}; its value is unknown and stays as written",
                        job.name,
                        r.value,
                        referenced(r)
                    ),
                );
            }
        }
    }
    for r in &p.global_references {
        add(
            r,
            format!(
                "`!reference {}` points into `{}`, {where_}; its value is unknown and stays as written",
                r.value,
                referenced(r)
            ),
        );
    }
    out
}

/// What the migration of `job` replaces of its unknown templates: the
/// keys the job does not set itself that `edits` (its fix) adds.
pub fn replaced_keys<'a>(job: &Job, texts: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    if job.unresolved_extends.is_empty() {
        return Vec::new();
    }
    [
        "image",
        "services",
        "before_script",
        "script",
        "after_script",
    ]
    .into_iter()
    .filter(|k| job.config.get(k).is_none())
    .filter(|k| {
        texts.clone().any(|t| {
            t.lines().any(|l| {
                l.trim_start()
                    .strip_prefix(k)
                    .is_some_and(|r| r.starts_with(':'))
            })
        })
    })
    .map(|k| format!("`{k}`"))
    .collect()
}

/// What the KM001 help of a migrated job adds about its unknown
/// templates: the keys its rewrite replaces, and the unknown script lines
/// that now run in another image.
pub fn replaced_note(job: &Job, keys: &[String]) -> Option<String> {
    let mut note = String::new();
    if !keys.is_empty() {
        let names: Vec<String> = job
            .unresolved_extends
            .iter()
            .map(|e| format!("`{}`", e.value))
            .collect();
        note.push_str(&format!(
            "; the rewrite sets the job's own {}, which replace those of {} (not read): check that nothing the job needs is lost",
            listed(keys),
            listed(&names)
        ));
    }
    let refs: Vec<String> = job
        .unresolved_references
        .iter()
        .map(|r| format!("`!reference {}`", r.value))
        .collect();
    if !refs.is_empty() {
        note.push_str(&format!(
            "; the lines of {} (not read) now run in the new image: check them",
            listed(&refs)
        ));
    }
    (!note.is_empty()).then_some(note)
}

/// A job kmigrate cannot see run Kaniko, although it probably does: its
/// image comes from an unknown template and it sets Kaniko's variables or
/// runs a bare `executor`. Nothing to rewrite; the job is named (an
/// error, like any Kaniko job) with what it shows.
pub fn probable_kaniko(job: &Job) -> Option<(usize, Span, String)> {
    if job.unresolved_extends.is_empty() || job.image.is_some() {
        return None;
    }
    let vars: Vec<String> = job
        .variables
        .iter()
        .filter(|v| !v.global && v.name.starts_with("KANIKO_"))
        .map(|v| v.name.clone())
        .collect();
    let runs_executor = job.lines().any(|l| {
        let mut words = l.text.split_whitespace();
        let first = match words.next() {
            Some("exec") => words.next(),
            w => w,
        };
        first.is_some_and(|w| w == "executor" || w.ends_with("/executor"))
    });
    if vars.is_empty() && !runs_executor {
        return None;
    }
    let names: Vec<String> = job
        .unresolved_extends
        .iter()
        .map(|e| format!("`{}`", e.value))
        .collect();
    let evidence = if runs_executor {
        "its script runs `executor`".to_string()
    } else {
        format!("it sets {}", listed(&vars))
    };
    Some((
        job.file,
        job.key_span.clone(),
        format!(
            "job `{}` probably runs Kaniko: {evidence}, and its image comes from {} (not read)",
            job.name,
            listed(&names)
        ),
    ))
}
