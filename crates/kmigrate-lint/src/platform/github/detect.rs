//! Which steps run Kaniko: a step that `uses:` a Kaniko action (the table
//! in `rules/actions.yaml`), or a `run:` script that calls the executor:
//! `/kaniko/executor …` (bare `executor` in a job whose `container:` is a
//! Kaniko image) or `docker run … <Kaniko image> …`. Scripts are read by the
//! shell reader, so comments and `echo` lines never count.

use std::ops::Range;

use super::actions::{KanikoAction, match_action};
use super::workflow::{Job, Step};
use crate::kaniko::call::{self, Arg, Call};
use crate::kaniko::{ImageKind, ImageMatch, match_image};
use crate::shell;
use crate::source::Value;

/// How a `run:` call reaches the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `/kaniko/executor` in the job's container.
    Container,
    /// `docker run … <Kaniko image> …` on the runner.
    DockerRun,
}

/// One executor call in a `run:` script.
#[derive(Debug, Clone)]
pub struct RunCall {
    pub via: Via,
    /// The call's arguments, spans in the file.
    pub call: Call,
    /// Where the whole command is written in the file.
    pub span: Range<usize>,
    /// The command sits in a loop or conditional, or is part of a list.
    pub nested: bool,
    /// The command is the whole script of its step.
    pub alone: bool,
    /// The `docker run` options before the image, as written (`DockerRun`).
    pub docker_options: Vec<String>,
}

/// A step that runs Kaniko.
#[derive(Debug)]
pub enum KanikoStep {
    Action(&'static KanikoAction),
    Run(Vec<RunCall>),
    /// `uses: docker://<Kaniko image>`: the executor as the step's
    /// container, its `with.args` the executor's arguments.
    Image(ImageMatch),
}

/// The Kaniko image a job's `container:` names, if any.
pub fn container_image(job: &Job) -> Option<ImageMatch> {
    job.container
        .and_then(|c| c.as_str())
        .and_then(match_image)
        .filter(|m| m.kind == ImageKind::Executor)
}

/// What `step` of `job` runs, if it is Kaniko.
pub fn kaniko_step(job: &Job, step: &Step) -> Option<KanikoStep> {
    if let Some(uses) = step.uses_value() {
        if let Some(image) = uses.trim().strip_prefix("docker://") {
            return match_image(image)
                .filter(|m| m.kind == ImageKind::Executor)
                .map(KanikoStep::Image);
        }
        if let Some(action) = match_action(uses) {
            return Some(KanikoStep::Action(action));
        }
    }
    let calls = run_calls(job, step);
    (!calls.is_empty()).then_some(KanikoStep::Run(calls))
}

/// Every executor call in the step's `run:` script.
pub fn run_calls(job: &Job, step: &Step) -> Vec<RunCall> {
    let Some(run) = step.run else {
        return Vec::new();
    };
    let Value::Scalar(scalar) = &run.value.value else {
        return Vec::new();
    };
    let in_kaniko_container = container_image(job).is_some();
    let script = shell::parse(&scalar.text);
    let to_file = |r: Range<usize>| scalar.source_range(&run.value.span, r);
    let mut out = Vec::new();
    for cmd in &script.commands {
        let Some((at, program)) = cmd.program() else {
            continue;
        };
        let program = program.literal().unwrap_or_default();
        let mut docker_options = Vec::new();
        let (via, first_arg) =
            if program == "/kaniko/executor" || (in_kaniko_container && program == "executor") {
                (Via::Container, at + 1)
            } else if program == "docker" || program.ends_with("/docker") {
                match docker_run_image(&cmd.words[at + 1..]) {
                    Some((start, i)) => {
                        docker_options = cmd.words[at + 1 + start..at + 1 + i]
                            .iter()
                            .map(|w| w.literal().unwrap_or_else(|| w.dq.clone()))
                            .collect();
                        (Via::DockerRun, at + 1 + i + 1)
                    }
                    None => continue,
                }
            } else {
                continue;
            };
        let args = cmd.words[first_arg..]
            .iter()
            .map(|w| Arg::from_word(w, to_file(w.span.clone())))
            .collect();
        out.push(RunCall {
            via,
            call: call::parse(args),
            span: to_file(cmd.span.clone()),
            nested: cmd.nesting != shell::Nesting::TopLevel || cmd.in_list,
            alone: script.commands.len() == 1
                && script.assignments.is_empty()
                && script.problems.is_empty(),
            docker_options,
        });
    }
    out
}

/// Where the `docker run` options start and the index of the Kaniko
/// executor image among `docker` arguments (`run …` or `container run …`),
/// if they run one.
fn docker_run_image(words: &[shell::Word]) -> Option<(usize, usize)> {
    let lit: Vec<Option<String>> = words.iter().map(|w| w.literal()).collect();
    let start = match (
        lit.first()?.as_deref(),
        lit.get(1).and_then(|l| l.as_deref()),
    ) {
        (Some("run"), _) => 1,
        (Some("container"), Some("run")) => 2,
        _ => return None,
    };
    // The image is the first word that is neither an option nor an
    // option's value (every `docker run` option takes one but these).
    const BOOLEAN: &[&str] = &[
        "--rm",
        "-i",
        "-t",
        "-it",
        "-ti",
        "-d",
        "--init",
        "--privileged",
        "--read-only",
        "-P",
        "--interactive",
        "--tty",
        "--detach",
        "--publish-all",
        "--no-healthcheck",
        "--oom-kill-disable",
        "--sig-proxy",
        "-q",
        "--quiet",
    ];
    let mut i = start;
    while i < words.len() {
        let text = lit[i].clone().unwrap_or_else(|| words[i].dq.clone());
        if text == "--" {
            i += 1;
            break;
        }
        if !text.starts_with('-') {
            break;
        }
        let takes_value = !(BOOLEAN.contains(&text.as_str()) || text.contains('='));
        i += if takes_value { 2 } else { 1 };
    }
    let image = lit.get(i)?.clone()?;
    match_image(&image)
        .is_some_and(|m| m.kind == ImageKind::Executor)
        .then_some((start, i))
}

/// The executor call of a `uses: docker://<Kaniko image>` step: its
/// `with.args`, split into words as the runner does (spans in the file).
pub fn image_call(step: &Step) -> Call {
    let args = step
        .with
        .and_then(|w| w.value.get("args"))
        .and_then(|a| match &a.value {
            Value::Scalar(s) => Some((a, s)),
            _ => None,
        });
    let Some((node, scalar)) = args else {
        return call::parse(Vec::new());
    };
    let script = shell::parse(&scalar.text);
    let words = script
        .commands
        .iter()
        .flat_map(|c| &c.words)
        .map(|w| Arg::from_word(w, scalar.source_range(&node.span, w.span.clone())))
        .collect();
    call::parse(words)
}
