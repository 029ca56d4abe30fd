//! Cloud Build findings, one detector per rule, all reading one shared
//! migration plan.

use std::ops::Range;

use crate::buildx::from_kaniko::{Note, NoteKind, with_placeholders};
use crate::kaniko::passthrough;
use crate::options::CloudbuildTarget;
use crate::platform::cloudbuild::Build;
use crate::platform::cloudbuild::kaniko_steps::{Invocation, KanikoCall};
use crate::platform::cloudbuild::migrate::{Migration, StepMigration};
use crate::platform::cloudbuild::substitutions::Handling;
use crate::rules::{Applicability, Edit, Finding, Fix, Rule};

/// Every Cloud Build finding.
pub fn findings(build: &Build, migration: &Migration) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &migration.steps {
        out.push(km001_archived_image(build, migration, s));
        out.extend(flag_notes(build, migration, s));
        out.extend(km015_passthrough(migration, s));
    }
    out.extend(km003_docker_driver_cache(build, migration));
    out.extend(km003_script_cache_exports(build, migration));
    out
}

/// KM003 inside shell scripts: reported, not fixed (the script's own flow
/// decides where a builder belongs).
fn km003_script_cache_exports(build: &Build, migration: &Migration) -> Vec<Finding> {
    crate::platform::cloudbuild::docker_steps::script_cache_exports(build)
        .into_iter()
        .map(|e| {
            Finding::new(
                Rule::Km003,
                e.span,
                format!(
                    "{} exports cache (`--cache-to {}`) in its script but no docker-container builder is created before it: the docker driver fails with \"Cache export is not supported for the docker driver\"",
                    build.steps[e.step].label(),
                    e.cache_export
                ),
            )
            .with_help(format!(
                "add `docker buildx create --name {b} --driver docker-container --use` to the script before the build (or a setup step before this one)",
                b = migration.builder
            ))
        })
        .collect()
}

fn fix_for(migration: &Migration, edits: &[Edit], description: String) -> Fix {
    let mut all = edits.to_vec();
    all.extend(migration.shared.iter().cloned());
    Fix::new(description, all)
}

/// How faithful a step's rewrite is: it changes behaviour where a flag is
/// translated or removed with a change (a KM011 note).
fn step_applicability(s: &StepMigration) -> Applicability {
    let changed = s
        .conversions
        .iter()
        .flat_map(|c| &c.notes)
        .chain(&s.notes)
        .any(|n| n.kind == NoteKind::Changed);
    Applicability::changing_behaviour_if(changed)
}

/// Where a step's finding points: its image name, else its first call.
fn step_span(s: &StepMigration) -> Range<usize> {
    let step = s.kaniko.step;
    if s.kaniko.image.is_some()
        && let Some(name) = step.name
    {
        return name.value.span.clone();
    }
    s.kaniko
        .calls
        .iter()
        .find_map(|c| match &c.invocation {
            Invocation::Script { node, .. } => Some(node.span.clone()),
            Invocation::Args => None,
        })
        .or_else(|| step.name.map(|n| n.value.span.clone()))
        .unwrap_or_else(|| step.item.span.clone())
}

/// KM001: the step runs Kaniko.
fn km001_archived_image(build: &Build, migration: &Migration, s: &StepMigration) -> Finding {
    let step = s.kaniko.step;
    let what = match (&s.kaniko.image, step.name.and_then(|n| n.value.as_str())) {
        (Some(m), Some(name)) => crate::kaniko::runs_image(&build.substitute(name), m.name),
        _ => crate::kaniko::RUNS_EXECUTOR.to_string(),
    };
    let mut f = Finding::new(
        Rule::Km001,
        step_span(s),
        format!("{} {what}", step.label()),
    );
    match (&s.edits, &s.blocked) {
        (Some(edits), _) => {
            let help = match migration.target {
                CloudbuildTarget::Buildx => format!(
                    "`kmigrate rewrite` turns it into `docker buildx build` on the `{}` docker-container builder with a registry cache",
                    migration.builder
                ),
                CloudbuildTarget::Fork => "`kmigrate rewrite` runs the same executor call on a pinned, maintained Kaniko fork (`--cloudbuild-target fork`)".to_string(),
            };
            f = f.with_help(help).with_fix(
                fix_for(migration, edits, migration.fix_description(&step.label()))
                    .with_applicability(step_applicability(s)),
            );
        }
        (None, Some(why)) => f = f.with_help(format!("not rewritten automatically: {why}")),
        (None, None) => {}
    }
    f
}

/// The span a note covers: its args, else the step.
fn note_span(s: &StepMigration, call: Option<&KanikoCall>, note: &Note) -> Range<usize> {
    let spans: Vec<Range<usize>> = call
        .map(|c| {
            c.call.args
                [note.args.start.min(c.call.args.len())..note.args.end.min(c.call.args.len())]
                .iter()
                .filter_map(|a| a.span.clone())
                .collect()
        })
        .unwrap_or_default();
    match (spans.first(), spans.last()) {
        (Some(a), Some(b)) => a.start..b.end,
        _ => step_span(s),
    }
}

/// KM005, KM010–KM013: what happened to each flag.
fn flag_notes(build: &Build, migration: &Migration, s: &StepMigration) -> Vec<Finding> {
    let mut out = Vec::new();
    let notes = s
        .conversions
        .iter()
        .zip(s.kaniko.calls.iter().map(Some))
        .flat_map(|(c, call)| c.notes.iter().map(move |n| (call, n)))
        .chain(s.notes.iter().map(|n| (None, n)));
    for (call, note) in notes {
        let mut f = Finding::new(
            note.kind.rule(),
            note_span(s, call, note),
            note.message.clone(),
        );
        if let Some(h) = &note.help {
            // The cleanup policy is pasted as is: fill in the visible
            // substitution defaults, mark what is left.
            f = f.with_help(match note.kind {
                NoteKind::CacheTtl => with_placeholders(&build.substitute(h)),
                _ => h.clone(),
            });
        }
        // Applying the step's rewrite is what resolves a dropped or changed flag.
        if let Some(edits) = &s.edits
            && matches!(
                note.kind,
                NoteKind::Dropped | NoteKind::Changed | NoteKind::Malformed
            )
        {
            f = f.with_fix(
                fix_for(
                    migration,
                    edits,
                    migration.fix_description(&s.kaniko.step.label()),
                )
                .with_applicability(step_applicability(s)),
            );
        }
        out.push(f);
    }
    out
}

/// KM015: a substitution set by the trigger, handed to buildx as written.
fn km015_passthrough(migration: &Migration, s: &StepMigration) -> Vec<Finding> {
    let Some(edits) = &s.edits else {
        return Vec::new();
    };
    s.passthrough
        .iter()
        .map(|p| {
            Finding::new(
                Rule::Km015,
                p.span.clone().unwrap_or_else(|| step_span(s)),
                match p.handling {
                    Handling::Passthrough { shared: true } => format!(
                        "`{}` is also used elsewhere in this file, so kmigrate leaves its default as it is: the migrated build passes it to `docker buildx build` unchanged",
                        p.written
                    ),
                    _ => passthrough::message(&p.written, "by the build trigger"),
                },
            )
            .with_help(passthrough::help(&p.written))
            .with_fix(fix_for(
                migration,
                edits,
                format!(
                    "rewrite {} to docker buildx build",
                    s.kaniko.step.label()
                ),
            ))
        })
        .collect()
}

/// KM003: a cache export on the default docker driver.
fn km003_docker_driver_cache(build: &Build, migration: &Migration) -> Vec<Finding> {
    migration
        .driver_fixes
        .iter()
        .map(|d| {
            let step = &build.steps[d.step];
            let span = step.args.map(|a| a.value.span.clone()).unwrap_or_else(|| step.item.span.clone());
            Finding::new(
                Rule::Km003,
                span,
                format!(
                    "{} exports cache (`--cache-to {}`) but no docker-container builder is created before it: the docker driver fails with \"Cache export is not supported for the docker driver\"",
                    step.label(),
                    d.cache_exports[0]
                ),
            )
            .with_help(format!(
                "create a builder first (`docker buildx create --name {b} --driver docker-container --use`) and pass `--builder {b}`; `kmigrate rewrite` does both",
                b = migration.builder
            ))
            .with_fix(fix_for(migration, &d.edits, format!("run {} on the `{}` docker-container builder", step.label(), migration.builder)))
        })
        .collect()
}
