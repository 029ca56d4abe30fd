//! A Kubernetes container spec (`image`, `command`, `args`, `env`,
//! `securityContext`), which is also what a Tekton step is: how Kaniko runs
//! in one, and the rootless BuildKit container it becomes. Shared by the
//! Tekton and Kubernetes platforms.

pub mod findings;
pub mod rewrite;

use std::ops::Range;

use crate::kaniko::call::{self, Arg, Call};
use crate::kaniko::{ImageKind, ImageMatch, match_image};
use crate::shell;
use crate::source::{Entry, Item, Map, Node, Value};

/// The rootless BuildKit image a migrated container runs (pinned: a
/// cluster pulls it by this tag on every run).
pub const BUILDKIT_ROOTLESS: &str = "moby/buildkit:v0.23.2-rootless";

/// One container (or Tekton step) as written.
pub struct Container<'a> {
    /// `step `build`` / `container `kaniko``: how findings name it.
    pub label: String,
    pub item: &'a Item,
    pub map: &'a Map,
    pub image: Option<&'a Entry>,
    /// The image as it runs: a Tekton `$(params.X)` reads as the param's
    /// default.
    pub image_ref: Option<String>,
    pub command: Option<&'a Entry>,
    pub args: Option<&'a Entry>,
    pub script: Option<&'a Entry>,
    pub env: Option<&'a Entry>,
    pub security: Option<&'a Entry>,
    pub working_dir: Option<String>,
    /// A volume is mounted at Kaniko's credentials directory.
    pub mounts_kaniko_docker: bool,
}

fn entry<'a>(map: &'a Map, key: &str) -> Option<&'a Entry> {
    map.entries.iter().find(|e| e.key.as_str() == Some(key))
}

/// The containers of a `containers:`-like list; `kind` names them in
/// messages (`step`, `container`), `param` resolves a Tekton
/// `$(params.NAME)` to its default.
pub fn read_list<'a>(
    list: &'a Node,
    kind: &str,
    param: &dyn Fn(&str) -> Option<String>,
) -> Vec<Container<'a>> {
    let Value::Seq(seq) = &list.value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in seq.items.iter().enumerate() {
        let Value::Map(map) = &item.node.value else {
            continue;
        };
        let name = entry(map, "name")
            .and_then(|e| e.value.as_str())
            .map_or_else(|| format!("{}", i + 1), String::from);
        let image = entry(map, "image");
        let image_ref = image.and_then(|e| e.value.as_str()).map(|s| {
            let t = s.trim();
            t.strip_prefix("$(params.")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(param)
                .unwrap_or_else(|| t.to_string())
        });
        let mounts_kaniko_docker = entry(map, "volumeMounts")
            .and_then(|e| e.value.as_seq())
            .is_some_and(|s| {
                s.items.iter().any(|m| {
                    m.node
                        .get("mountPath")
                        .and_then(|p| p.as_str())
                        .is_some_and(|p| p.trim_end_matches('/') == "/kaniko/.docker")
                })
            });
        out.push(Container {
            label: format!("{kind} `{name}`"),
            item,
            map,
            image,
            image_ref,
            command: entry(map, "command"),
            args: entry(map, "args"),
            script: entry(map, "script"),
            env: entry(map, "env"),
            security: entry(map, "securityContext"),
            working_dir: entry(map, "workingDir")
                .and_then(|e| e.value.as_str())
                .map(String::from),
            mounts_kaniko_docker,
        });
    }
    out
}

/// How a container runs Kaniko.
pub enum Run {
    /// The executor is the entrypoint (or `command: [/kaniko/executor]`):
    /// its flags are the list items, which a rewrite can translate.
    Args(Call),
    /// The executor is called in a shell script (`script:`, or `sh -c`).
    Script(Vec<ScriptCall>),
    /// A Kaniko image with no call written in the container (a Jenkins
    /// agent container kept alive with `sleep`/`cat`, run from elsewhere).
    Idle(ImageMatch),
}

/// An executor call in a container's shell script.
pub struct ScriptCall {
    pub call: Call,
    pub span: Range<usize>,
}

/// The strings of a block or flow list, with their spans.
fn strings(node: &Node) -> Option<Vec<(String, Range<usize>)>> {
    let Value::Seq(seq) = &node.value else {
        return None;
    };
    seq.items
        .iter()
        .map(|i| {
            i.node
                .as_str()
                .map(|s| (s.to_string(), i.node.span.clone()))
        })
        .collect()
}

/// A whole word that is one substitution (`$(params.EXTRA_ARGS[*])`, a
/// Kubernetes `$(VAR)`): it may stand for any number of flags.
fn is_substitution(word: &str) -> bool {
    word.starts_with("$(") && word.ends_with(')') && !word[2..].contains("$(")
}

fn arg(text: String, span: Range<usize>) -> Arg {
    Arg {
        dynamic: is_substitution(&text),
        text,
        span: Some(span),
    }
}

/// Whether `program` is the executor (`/kaniko/executor`, or `executor`
/// inside a Kaniko image).
fn is_executor(program: &str, in_kaniko: bool) -> bool {
    program == "/kaniko/executor" || (in_kaniko && program == "executor")
}

/// The executor calls in shell text held by `node` (a block scalar).
/// Comments and `echo` never count: only commands whose program is the
/// executor do.
pub fn script_calls(node: &Node, in_kaniko: bool) -> Vec<ScriptCall> {
    let Value::Scalar(scalar) = &node.value else {
        return Vec::new();
    };
    let to_file = |r: Range<usize>| scalar.source_range(&node.span, r);
    let mut out = Vec::new();
    for cmd in shell::parse(&scalar.text).commands {
        let Some((at, program)) = cmd.program() else {
            continue;
        };
        if !is_executor(&program.literal().unwrap_or_default(), in_kaniko) {
            continue;
        }
        let args = cmd.words[at + 1..]
            .iter()
            .map(|w| Arg::from_word(w, to_file(w.span.clone())))
            .collect();
        out.push(ScriptCall {
            call: call::parse(args),
            span: to_file(cmd.span.clone()),
        });
    }
    out
}

impl Container<'_> {
    /// The Kaniko image the container runs, if the table knows it.
    pub fn kaniko_image(&self) -> Option<ImageMatch> {
        self.image_ref
            .as_deref()
            .and_then(match_image)
            .filter(|m| m.kind == ImageKind::Executor)
    }

    /// How the container runs Kaniko, if it does.
    pub fn run(&self) -> Option<Run> {
        let kaniko = self.kaniko_image();
        if let Some(script) = self.script {
            let calls = script_calls(&script.value, kaniko.is_some());
            if !calls.is_empty() {
                return Some(Run::Script(calls));
            }
            return kaniko.map(Run::Idle);
        }
        let command = self.command.and_then(|c| strings(&c.value));
        let args = self.args.and_then(|a| strings(&a.value));
        // `sh -c SCRIPT` (in command or args): the script is the last word.
        let words: Vec<&(String, Range<usize>)> = command
            .iter()
            .flatten()
            .chain(args.iter().flatten())
            .collect();
        let shell_at = words.iter().position(|(w, _)| {
            let base = w.rsplit('/').next().unwrap_or(w);
            matches!(base, "sh" | "bash" | "ash")
        });
        if shell_at.is_some() {
            let calls: Vec<ScriptCall> = [self.command, self.args]
                .into_iter()
                .flatten()
                .filter_map(|e| e.value.as_seq())
                .flat_map(|s| s.items.iter())
                .flat_map(|i| script_calls(&i.node, kaniko.is_some()))
                .collect();
            if !calls.is_empty() {
                return Some(Run::Script(calls));
            }
            return kaniko.map(Run::Idle);
        }
        let kaniko = kaniko?;
        match &command {
            // The entrypoint runs the flags in `args`.
            None => match args {
                Some(args) => Some(Run::Args(call::parse(
                    args.into_iter().map(|(t, s)| arg(t, s)).collect(),
                ))),
                None => Some(Run::Idle(kaniko)),
            },
            Some(cmd) if cmd.first().is_some_and(|(p, _)| is_executor(p, true)) => {
                let words = cmd[1..]
                    .iter()
                    .cloned()
                    .chain(args.into_iter().flatten())
                    .map(|(t, s)| arg(t, s))
                    .collect();
                Some(Run::Args(call::parse(words)))
            }
            Some(_) => Some(Run::Idle(kaniko)),
        }
    }
}

/// The flags of every Kaniko call written in `containers`.
pub fn flag_uses(containers: &[Container]) -> Vec<&'static crate::kaniko::FlagSpec> {
    let mut out = Vec::new();
    for c in containers {
        match c.run() {
            Some(Run::Args(call)) => out.extend(call.uses.iter().map(|u| u.spec)),
            Some(Run::Script(calls)) => {
                for s in calls {
                    out.extend(s.call.uses.iter().map(|u| u.spec));
                }
            }
            _ => {}
        }
    }
    out
}

/// Every build of `containers` (Kaniko calls read through the flag table,
/// rootless BuildKit containers read back), paths under `/workspace` taken
/// as under `inputs.context_dir`.
pub fn builds(
    source: &crate::source::SourceFile,
    containers: &[Container],
    inputs: &crate::readback::extract::Inputs,
) -> Vec<crate::readback::extract::Extracted> {
    use crate::readback::extract::{Extracted, Kind};
    let opts = crate::options::Options::default();
    let mut out = Vec::new();
    for c in containers {
        // A relative path is the container's working directory's (Kaniko's
        // image and a Tekton step work in /workspace); /workspace is the
        // checkout.
        let workdir = c
            .working_dir
            .as_deref()
            .filter(|d| d.starts_with('/'))
            .unwrap_or("/workspace");
        let local = |p: &str| {
            // A substitution (`$(workspaces.source.path)/…`) is opaque.
            if p.contains("://") || p.starts_with("$(") {
                return p.to_string();
            }
            let joined = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("{workdir}/{p}")
            };
            // `.` segments and doubled slashes name the same directory.
            let absolute = format!(
                "/{}",
                joined
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .collect::<Vec<_>>()
                    .join("/")
            );
            match absolute.strip_prefix("/workspace") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => inputs
                    .context_dir
                    .join(rest.trim_start_matches('/'))
                    .display()
                    .to_string(),
                _ => absolute,
            }
        };
        let (line, _) = source.position(c.item.span.start);
        let mut push =
            |kind: Kind, plan: Result<crate::buildx::BuildPlan, String>, notes: Vec<String>| {
                let (plan, error) = match plan {
                    Ok(mut p) => {
                        p.context = local(&p.context);
                        p.dockerfile = p.dockerfile.as_deref().map(local);
                        (Some(p), None)
                    }
                    Err(e) => (None, Some(e)),
                };
                out.push(Extracted::read(
                    c.label.clone(),
                    format!("{}:{line}", source.path.display()),
                    kind,
                    plan,
                    error,
                    notes,
                ));
            };
        if let Some(plan) = rewrite::buildctl_plan(c) {
            push(Kind::Buildctl, plan, Vec::new());
            continue;
        }
        let calls: Vec<Call> = match c.run() {
            Some(Run::Args(call)) => vec![call],
            Some(Run::Script(calls)) => calls.into_iter().map(|s| s.call).collect(),
            _ => Vec::new(),
        };
        for call in calls {
            let conv = findings::convert(&call, &opts, c);
            let notes = conv.notes.iter().map(|n| n.message.clone()).collect();
            push(Kind::Kaniko, Ok(conv.plan), notes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The pages that name the image the BuildKit targets write must name
    /// the one pinned here.
    #[test]
    fn the_docs_name_the_pinned_buildkit_image() {
        for page in ["README.md", "rules/targets/buildkit.md"] {
            let path = format!("{}/../../{page}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(super::BUILDKIT_ROOTLESS), "{page}");
            assert!(!text.contains("moby/buildkit:rootless"), "{page}");
        }
    }
}
