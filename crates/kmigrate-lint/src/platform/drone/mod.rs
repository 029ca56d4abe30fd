//! Drone and Woodpecker CI (`.drone.yml`, `.woodpecker.yml`,
//! `.woodpecker/*.yml`): steps whose `image:` is a Kaniko plugin
//! (`rules/plugins.yaml`) or that call the executor in `commands:`.
//! Plugin steps are rewritten to the maintained buildx plugin (see
//! [`rewrite`]); executor calls in `commands:` are a manual task.

pub mod buildx_plugin;
pub mod plugins;
pub mod rewrite;
pub mod settings;

use std::ops::Range;
use std::path::Path;

use crate::buildx::from_kaniko::{self, ConvertOptions};
use crate::kaniko::call::{self, Arg, Call};
use crate::kaniko::{ImageKind, match_image};
use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs, Kind};
use crate::rules::{Finding, Rule};
use crate::shell;
use crate::source::{Node, SourceError, SourceFile, Value};

/// One step of a pipeline (any document of the file).
pub struct Step<'a> {
    pub name: String,
    /// The whole step as written (its list item or map entry).
    pub span: Range<usize>,
    /// The step's mapping.
    pub node: &'a Node,
    pub image: Option<&'a Node>,
    pub commands: Option<&'a Node>,
}

/// Every step of every pipeline in the file: `steps:` as a list (Drone,
/// Woodpecker) or a map (Woodpecker), and Woodpecker's older `pipeline:`.
pub fn steps(source: &SourceFile) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for doc in &source.tree.documents {
        for key in ["steps", "pipeline"] {
            let Some(node) = doc.get(key) else { continue };
            match &node.value {
                Value::Seq(seq) => {
                    for (i, item) in seq.items.iter().enumerate() {
                        let name = item
                            .node
                            .get("name")
                            .and_then(|n| n.as_str())
                            .map_or_else(|| format!("{}", i + 1), String::from);
                        out.push(step(name, item.span.clone(), &item.node));
                    }
                }
                Value::Map(map) => {
                    for e in &map.entries {
                        let name = e.key.as_str().unwrap_or("").to_string();
                        out.push(step(name, e.span.clone(), &e.value));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn step(name: String, span: Range<usize>, node: &Node) -> Step<'_> {
    Step {
        name,
        span,
        node,
        image: node.get("image"),
        commands: node.get("commands"),
    }
}

/// An executor call in a step's `commands:`.
pub struct CommandCall {
    pub call: Call,
    pub span: Range<usize>,
}

/// The executor calls in `step`'s commands (`/kaniko/executor`, or bare
/// `executor` under a Kaniko image). Comments and `echo` never count.
pub fn command_calls(step: &Step) -> Vec<CommandCall> {
    let in_kaniko = step
        .image
        .and_then(|i| i.as_str())
        .and_then(match_image)
        .is_some_and(|m| m.kind == ImageKind::Executor);
    let Some(Value::Seq(seq)) = step.commands.map(|c| &c.value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &seq.items {
        let Value::Scalar(scalar) = &item.node.value else {
            continue;
        };
        let to_file = |r: Range<usize>| scalar.source_range(&item.node.span, r);
        for cmd in shell::parse(&scalar.text).commands {
            let Some((at, program)) = cmd.program() else {
                continue;
            };
            let program = program.literal().unwrap_or_default();
            if !(program == "/kaniko/executor" || (in_kaniko && program == "executor")) {
                continue;
            }
            let args = cmd.words[at + 1..]
                .iter()
                .map(|w| Arg::from_word(w, to_file(w.span.clone())))
                .collect();
            out.push(CommandCall {
                call: call::parse(args),
                span: to_file(cmd.span.clone()),
            });
        }
    }
    out
}

/// How a Kaniko call in a step sees paths: the step runs in the workspace.
fn convert_options(opts: &Options) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: "/workspace",
        default_context: "/workspace",
        local_workdir: None,
    }
}

/// What to do with an executor call in `commands:`.
const COMMANDS_TODO: &str = "run the build with `docker buildx build` in a step that has Docker (a docker:dind service, or the buildx plugin), with `--cache-from`/`--cache-to type=registry,ref=…,mode=max` for the cache";

/// Every Drone / Woodpecker finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in steps(source) {
        let label = format!("step `{}`", step.name);
        let image = step.image.and_then(|i| i.as_str().map(|s| (i, s)));
        if let Some((_, reference)) = image
            && let Some(plugin) = plugins::match_plugin(reference)
        {
            out.extend(rewrite::plugin_findings(source, &step, plugin, opts));
            continue;
        }
        let calls = command_calls(&step);
        for c in &calls {
            out.push(
                Finding::new(
                    Rule::Km001,
                    c.span.clone(),
                    format!("{label} {}", crate::kaniko::RUNS_EXECUTOR),
                )
                .with_help(format!("not rewritten automatically: {COMMANDS_TODO}")),
            );
            let conversion = from_kaniko::convert(&c.call, &convert_options(opts));
            out.extend(crate::buildx::notes::note_findings(
                &c.call.args,
                &conversion,
                &c.span,
                None,
            ));
        }
        // A Kaniko image whose commands kmigrate did not see call it.
        if calls.is_empty()
            && let Some((node, reference)) = image
            && let Some(m) = match_image(reference).filter(|m| m.kind == ImageKind::Executor)
        {
            out.push(
                Finding::new(
                    Rule::Km001,
                    node.span.clone(),
                    format!("{label} {}", crate::kaniko::runs_image(reference, m.name)),
                )
                .with_help(format!("not rewritten automatically: {COMMANDS_TODO}")),
            );
        }
    }
    out
}

/// Drone and Woodpecker CI behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "drone"
    }

    fn display_name(&self) -> &'static str {
        "Drone / Woodpecker CI"
    }

    fn unit(&self) -> &'static str {
        "step"
    }

    /// `.drone.yml`, `.woodpecker.yml` (or `.yaml`), `.woodpecker/NAME.yml`.
    fn matches_path(&self, path: &Path) -> bool {
        let name = crate::platform::lowercase_file_name(path);
        let yaml = name.ends_with(".yml") || name.ends_with(".yaml");
        let in_woodpecker_dir = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d == ".woodpecker");
        matches!(
            name.as_str(),
            ".drone.yml" | ".drone.yaml" | ".woodpecker.yml" | ".woodpecker.yaml"
        ) || (yaml && in_woodpecker_dir)
    }

    /// `kind: pipeline` (Drone), or steps with `image:` and `commands:` or
    /// `settings:` (which Cloud Build steps never have).
    fn matches_content(&self, root: &Node) -> bool {
        if root.get("kind").and_then(|k| k.as_str()) == Some("pipeline") {
            return true;
        }
        let looks_like_step = |n: &Node| {
            n.get("image").is_some() && (n.get("commands").is_some() || n.get("settings").is_some())
        };
        match root.get("steps").map(|s| &s.value) {
            Some(Value::Seq(seq)) => seq.items.iter().any(|i| looks_like_step(&i.node)),
            Some(Value::Map(map)) => map.entries.iter().any(|e| looks_like_step(&e.value)),
            _ => false,
        }
    }

    /// A pipeline file holds its whole analysis.
    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        step_spans(source)
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        flag_uses(source)
    }

    /// Kaniko plugin steps (read as the call they make), buildx plugin
    /// steps and the executor calls in `commands:`.
    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        let opts = Options::default();
        let mut out = Vec::new();
        let absolute = |plan: &mut crate::buildx::BuildPlan| {
            if !plan.context.contains("://") {
                plan.context = inputs.context_dir.join(&plan.context).display().to_string();
            }
            if let Some(f) = &plan.dockerfile {
                plan.dockerfile = Some(inputs.context_dir.join(f).display().to_string());
            }
        };
        for step in steps(&source) {
            let (line, _) = source.position(step.span.start);
            let location = format!("{}:{line}", source.path.display());
            let reference = step.image.and_then(|i| i.as_str()).unwrap_or("");
            let plugin_plan = if let Some(plugin) = plugins::match_plugin(reference) {
                let build = rewrite::plugin_build(&source, &step, plugin, &opts);
                let why: Vec<String> = build
                    .translation
                    .manual
                    .into_iter()
                    .map(|(_, w)| w)
                    .collect();
                Some(match build.conversion {
                    Some(c) if why.is_empty() => (
                        Kind::Kaniko,
                        Some(c.plan),
                        None,
                        c.notes.into_iter().map(|n| n.message).collect(),
                    ),
                    _ => (Kind::Kaniko, None, Some(why.join("; ")), Vec::new()),
                })
            } else if buildx_plugin::is_buildx_plugin(reference) {
                Some((
                    Kind::Buildx,
                    Some(buildx_plugin::read_plan(
                        &source.tree,
                        step.node.get("settings"),
                        rewrite::System::of_file(&source) == rewrite::System::Woodpecker,
                    )),
                    None,
                    Vec::new(),
                ))
            } else {
                None
            };
            if let Some((kind, plan, error, notes)) = plugin_plan {
                out.push(Extracted::read(
                    format!("step `{}`", step.name),
                    location,
                    kind,
                    plan.map(|mut p| {
                        absolute(&mut p);
                        p
                    }),
                    error,
                    notes,
                ));
                continue;
            }
            for c in command_calls(&step) {
                let mut conv = from_kaniko::convert(&c.call, &convert_options(&opts));
                if !conv.plan.context.contains("://") {
                    conv.plan.context = inputs
                        .context_dir
                        .join(&conv.plan.context)
                        .display()
                        .to_string();
                }
                let (line, _) = source.position(c.span.start);
                out.push(Extracted::read(
                    format!("step `{}`", step.name),
                    format!("{}:{line}", source.path.display()),
                    Kind::Kaniko,
                    Some(conv.plan),
                    None,
                    conv.notes.into_iter().map(|n| n.message).collect(),
                ));
            }
        }
        Ok(out)
    }
}

/// The step spans (the units `report` counts).
pub fn step_spans(source: &SourceFile) -> Vec<Range<usize>> {
    steps(source).into_iter().map(|s| s.span).collect()
}

/// The flags of every executor call written in `commands:`, and of the
/// calls plugin steps make (the settings written, not the plugin's
/// defaults).
pub fn flag_uses(source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
    let opts = Options::default();
    let mut out = Vec::new();
    for step in steps(source) {
        let reference = step.image.and_then(|i| i.as_str()).unwrap_or("");
        if let Some(plugin) = plugins::match_plugin(reference) {
            let build = rewrite::plugin_build(source, &step, plugin, &opts);
            if build.conversion.is_some() {
                let c = call::parse(build.translation.args);
                out.extend(
                    c.uses
                        .iter()
                        .filter(|u| c.args[u.args.start].span.as_ref() != Some(&step.span))
                        .map(|u| u.spec),
                );
            }
            continue;
        }
        out.extend(
            command_calls(&step)
                .into_iter()
                .flat_map(|c| c.call.uses.into_iter().map(|u| u.spec)),
        );
    }
    out
}
