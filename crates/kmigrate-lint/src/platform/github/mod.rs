//! GitHub Actions (`.github/workflows/*.yml|yaml`): steps that use a Kaniko
//! action or call the executor in `run:`, rewritten to
//! `docker/setup-buildx-action` + `docker/build-push-action`.

pub mod actions;
pub mod build_push;
pub mod detect;
pub mod docker_run;
pub mod findings;
pub mod translate;
pub mod workflow;

use std::ops::Range;
use std::path::Path;

use crate::buildx::BuildPlan;
use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs, Kind};
use crate::rules::Finding;
use crate::source::{Node, SourceError, SourceFile};

/// GitHub Actions behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "github"
    }

    fn display_name(&self) -> &'static str {
        "GitHub Actions"
    }

    fn unit(&self) -> &'static str {
        "step"
    }

    /// `.github/workflows/NAME.yml` or `.yaml`.
    fn matches_path(&self, path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let lower = name.to_ascii_lowercase();
        let dir = path.parent();
        let is = |p: Option<&Path>, n: &str| p.and_then(|p| p.file_name()).is_some_and(|f| f == n);
        (lower.ends_with(".yml") || lower.ends_with(".yaml"))
            && is(dir, "workflows")
            && is(dir.and_then(Path::parent), ".github")
    }

    fn matches_content(&self, root: &Node) -> bool {
        workflow::looks_like_workflow(root)
    }

    /// A workflow holds its whole analysis.
    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings::findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        step_spans(source)
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        flag_uses(source)
    }

    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        Ok(builds(&source, inputs))
    }
}

/// The step spans of every job (the units `report` counts).
pub fn step_spans(source: &SourceFile) -> Vec<Range<usize>> {
    workflow::jobs(source)
        .iter()
        .flat_map(|j| j.steps.iter().map(|s| s.item.span.clone()))
        .collect()
}

/// The flags of every Kaniko call written in the file.
pub fn flag_uses(source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
    let opts = Options::default();
    let mut out = Vec::new();
    for job in workflow::jobs(source) {
        for step in &job.steps {
            match detect::kaniko_step(&job, step) {
                Some(detect::KanikoStep::Action(a)) => {
                    let b = findings::action_build(step, a, &opts);
                    if b.conversion.is_some() {
                        let call = crate::kaniko::call::parse(b.translation.args);
                        out.extend(call.uses.iter().map(|u| u.spec));
                    }
                }
                Some(detect::KanikoStep::Run(calls)) => {
                    for c in calls {
                        out.extend(c.call.uses.iter().map(|u| u.spec));
                    }
                }
                Some(detect::KanikoStep::Image(_)) => {
                    out.extend(detect::image_call(step).uses.iter().map(|u| u.spec));
                }
                None => {}
            }
        }
    }
    out
}

/// Every build of the workflow, in order: Kaniko steps (read through the
/// flag table) and build-push-action steps, paths under `context_dir`.
pub fn builds(source: &SourceFile, inputs: &Inputs) -> Vec<Extracted> {
    let opts = Options::default();
    let mut out = Vec::new();
    let absolute = |plan: &mut BuildPlan| {
        if !plan.context.contains("://") && !plan.context.starts_with('{') {
            plan.context = inputs.context_dir.join(&plan.context).display().to_string();
        }
        if let Some(f) = &plan.dockerfile
            && !f.contains("://")
        {
            plan.dockerfile = Some(inputs.context_dir.join(f).display().to_string());
        }
    };
    for job in workflow::jobs(source) {
        for step in &job.steps {
            let unit = step.label(&job);
            let (line, _) = source.position(step.item.span.start);
            let location = format!("{}:{line}", source.path.display());
            let mut push =
                |kind: Kind, plan: Option<BuildPlan>, error: Option<String>, notes: Vec<String>| {
                    let plan = plan.map(|mut p| {
                        absolute(&mut p);
                        p
                    });
                    out.push(Extracted::read(
                        unit.clone(),
                        location.clone(),
                        kind,
                        plan,
                        error,
                        notes,
                    ));
                };
            if step.uses_value().is_some_and(build_push::is_build_push) {
                push(
                    Kind::Buildx,
                    Some(build_push::read_plan(step.with.map(|w| &w.value))),
                    None,
                    Vec::new(),
                );
                continue;
            }
            match detect::kaniko_step(&job, step) {
                Some(detect::KanikoStep::Action(a)) => {
                    let b = findings::action_build(step, a, &opts);
                    match b.conversion {
                        Some(c) if b.translation.manual.is_empty() => push(
                            Kind::Kaniko,
                            Some(c.plan),
                            None,
                            c.notes.into_iter().map(|n| n.message).collect(),
                        ),
                        _ => push(
                            Kind::Kaniko,
                            None,
                            Some(
                                b.translation
                                    .manual
                                    .into_iter()
                                    .map(|(_, w)| w)
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            ),
                            Vec::new(),
                        ),
                    }
                }
                Some(detect::KanikoStep::Image(_)) => {
                    let call = detect::image_call(step);
                    let conv = crate::buildx::from_kaniko::convert(
                        &call,
                        &findings::convert_options(&opts),
                    );
                    push(
                        Kind::Kaniko,
                        Some(conv.plan),
                        None,
                        conv.notes.into_iter().map(|n| n.message).collect(),
                    );
                }
                Some(detect::KanikoStep::Run(calls)) => {
                    for c in calls {
                        let conv = findings::run_conversion(&c, &opts);
                        push(
                            Kind::Kaniko,
                            Some(conv.plan),
                            None,
                            conv.notes.into_iter().map(|n| n.message).collect(),
                        );
                    }
                }
                None => {}
            }
        }
    }
    out
}
