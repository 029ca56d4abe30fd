//! Which Cloud Build steps run Kaniko, and the executor calls in them.

use std::ops::Range;

use super::substitutions::{self, Handling, Substituted};
use super::{Build, Step};
use crate::kaniko::call::{Arg, Call, parse, parse_go_bool};
use crate::kaniko::{ImageKind, ImageMatch, match_image};
use crate::shell::{self, Nesting};
use crate::source::{Node, Value};

/// How the executor is invoked in a step.
#[derive(Debug)]
pub enum Invocation<'a> {
    /// The step's image is the executor and `args` are its flags.
    Args,
    /// A shell script calls the executor; `node` is the script scalar and
    /// `command` the call's range in the decoded script.
    Script {
        node: &'a Node,
        command: Range<usize>,
        nesting: Nesting,
        /// The call is part of a pipeline or an `&&`/`||` list.
        in_list: bool,
        /// Words of the whole call (program included) as shell text.
        program_words: usize,
    },
}

/// One executor call.
#[derive(Debug)]
pub struct KanikoCall<'a> {
    pub call: Call,
    pub invocation: Invocation<'a>,
    /// The user substitutions in the call's flags and what kmigrate does
    /// with each.
    pub substituted: Vec<Substituted>,
}

/// A step that uses Kaniko.
#[derive(Debug)]
pub struct KanikoStep<'a> {
    pub step: &'a Step<'a>,
    /// The image as matched (after substitutions), when the name is Kaniko.
    pub image: Option<ImageMatch>,
    pub calls: Vec<KanikoCall<'a>>,
    /// Why the step cannot be read exactly, if it cannot.
    pub unreadable: Option<String>,
}

impl KanikoStep<'_> {
    /// The step already runs a maintained fork, not the archived image:
    /// nothing to report or migrate.
    pub fn on_fork(&self) -> bool {
        self.image.as_ref().is_some_and(|m| !m.archived)
    }

    pub fn is_warmer(&self) -> bool {
        self.image
            .as_ref()
            .is_some_and(|m| m.kind == ImageKind::Warmer)
    }
}

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "ash",
    "/bin/sh",
    "/bin/bash",
    "/busybox/sh",
    "/bin/ash",
    "/usr/bin/env",
];

fn is_shell(entrypoint: &str) -> bool {
    SHELLS.contains(&entrypoint) || entrypoint.ends_with("/sh") || entrypoint.ends_with("/bash")
}

/// A Cloud Build arg that is one substitution (`${_EXTRA_ARGS}`): its value
/// could be any flag.
fn is_whole_substitution(text: &str) -> bool {
    let inner = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .or_else(|| text.strip_prefix('$'));
    inner.is_some_and(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The most flag-holding substitutions with a default one call may use.
const MAX_FLAG_SUBSTITUTIONS: usize = 32;

/// One word of a call before substitutions are resolved.
struct Word {
    /// Its value with quoting removed.
    text: String,
    /// As the file (or the decoded script) writes it.
    written: String,
    span: Option<Range<usize>>,
    /// A whole-word expansion that may stand for several flags.
    dynamic: bool,
}

/// The call's args with the user substitutions kmigrate can resolve
/// resolved: a boolean flag's value and a flag-holding substitution by their
/// visible default (its words when a shell splits them), one set outside the
/// file left out of the call to be passed to buildx as written.
fn resolve(build: &Build, words: Vec<Word>, shell: bool) -> (Vec<Arg>, Vec<Substituted>) {
    let mut args = Vec::new();
    let mut substituted = Vec::new();
    let mut flag_substitutions = 0;
    for w in words {
        let mut record = |name: &str, handling: Handling| {
            substituted.push(Substituted {
                name: name.to_string(),
                written: w.written.clone(),
                span: w.span.clone(),
                handling,
            })
        };
        let arg = |text: String| Arg {
            text,
            span: w.span.clone(),
            dynamic: w.dynamic,
        };
        if let Some((flag, r)) = substitutions::bool_reference(&w.text) {
            let at = args.len();
            match substitutions::visible_value(build, &r) {
                Some(v) if parse_go_bool(&v).is_some() => {
                    args.push(arg(format!("{flag}={v}")));
                    record(r.name, Handling::Bool { arg: at, value: v });
                }
                value => {
                    let (message, help) = unreadable_bool(&w.text, flag, r.name, value);
                    args.push(arg(w.text.clone()));
                    record(
                        r.name,
                        Handling::Blocked {
                            arg: at,
                            message,
                            help,
                        },
                    );
                }
            }
            continue;
        }
        let Some(r) = w
            .dynamic
            .then(|| substitutions::reference(&w.text))
            .flatten()
        else {
            args.push(arg(w.text.clone()));
            continue;
        };
        let value = substitutions::visible_value(build, &r);
        match value {
            // Set by the trigger, or also a value elsewhere in the file:
            // its text is the interface, so it is handed on as it is.
            // A default in Kaniko's own spelling cannot stay as it is:
            // buildx would stop with `unknown flag` (the safety net sees it).
            Some(v) if build.uses(r.name) > 1 && !buildx_reads_as_is(&v, shell) => {
                let at = args.len();
                args.push(arg(w.text.clone()));
                record(
                    r.name,
                    Handling::Blocked {
                        arg: at,
                        message: format!(
                            "`{}` holds Kaniko flags (`{v}`) and is also used elsewhere in the file, so kmigrate cannot rewrite its default, and buildx does not read it as it is",
                            w.written
                        ),
                        help: format!(
                            "give the build its own substitution (e.g. `{}_BUILD`) holding only its flags, and run `kmigrate rewrite` again",
                            r.name
                        ),
                    },
                );
            }
            _ if build.uses(r.name) > 1 => record(r.name, Handling::Passthrough { shared: true }),
            None => record(r.name, Handling::Passthrough { shared: false }),
            Some(v) if !shell && v.is_empty() => {
                let at = args.len();
                args.push(arg(w.text.clone()));
                record(
                    r.name,
                    Handling::Blocked {
                        arg: at,
                        message: format!(
                            "`{}` defaults to the empty string: Cloud Build passes it as one empty argument, which Kaniko rejects (`unknown command \"\"`) and buildx would read as a second build context",
                            w.written
                        ),
                        help: format!(
                            "give `{}` a default of one flag (a trigger that sets it to nothing breaks the build either way), or run the build in a shell step (`entrypoint: bash`, `args: [-c, …]`) where an empty `{}` expands to no word",
                            r.name, w.written
                        ),
                    },
                );
            }
            // Each one costs a conversion of the call (see `separate`).
            Some(_) if flag_substitutions >= MAX_FLAG_SUBSTITUTIONS => {
                let at = args.len();
                args.push(arg(w.text.clone()));
                record(
                    r.name,
                    Handling::Blocked {
                        arg: at,
                        message: format!(
                            "`{}`: the call takes flags from more than {MAX_FLAG_SUBSTITUTIONS} substitutions, more than kmigrate translates",
                            w.written
                        ),
                        help: "migrate the step by hand".into(),
                    },
                );
            }
            Some(v) => {
                flag_substitutions += 1;
                let start = args.len();
                let parts: Vec<String> = if shell {
                    v.split_whitespace().map(String::from).collect()
                } else {
                    vec![v.clone()]
                };
                for part in parts {
                    args.push(Arg {
                        text: part,
                        span: w.span.clone(),
                        dynamic: false,
                    });
                }
                record(
                    r.name,
                    Handling::Flags {
                        args: start..args.len(),
                        default: v,
                    },
                );
            }
        }
    }
    (args, substituted)
}

/// The KM012 text for `--flag=<substitution>` without a boolean default.
fn unreadable_bool(word: &str, flag: &str, name: &str, value: Option<String>) -> (String, String) {
    match value {
        None => (
            format!(
                "`{word}`: `{name}` has no default in `substitutions:`, so kmigrate cannot tell whether `{flag}` is on"
            ),
            format!(
                "add a default (`{name}: 'true'` or `'false'`) to `substitutions:` and kmigrate migrates the step at that value, or migrate the step by hand"
            ),
        ),
        Some(v) => (
            format!("`{word}`: `{name}` defaults to `{v}`, which is not a boolean"),
            format!("Kaniko reads true/false (or 1/0, t/f); fix the default of `{name}`"),
        ),
    }
}

/// Finds every Kaniko step of the build.
pub fn find<'a>(build: &'a Build<'a>) -> Vec<KanikoStep<'a>> {
    build
        .steps
        .iter()
        .filter_map(|s| inspect(build, s))
        .collect()
}

fn inspect<'a>(build: &'a Build<'a>, step: &'a Step<'a>) -> Option<KanikoStep<'a>> {
    let name = step
        .name
        .and_then(|e| e.value.as_str())
        .map(|n| build.substitute(n));
    let image = name.as_deref().and_then(match_image);
    let entrypoint = step.entrypoint.and_then(|e| e.value.as_str());
    let mut found = KanikoStep {
        step,
        image: image.clone(),
        calls: Vec::new(),
        unreadable: None,
    };
    if found.is_warmer() {
        return Some(found);
    }
    let runs_executor_directly = match entrypoint {
        None => image.is_some(),
        Some(e) => e.ends_with("/kaniko/executor") || (image.is_some() && e == "executor"),
    };
    if runs_executor_directly {
        match step.arg_nodes(build.source) {
            Some(items) => {
                let mut words = Vec::new();
                for item in items {
                    match &item.node.value {
                        Value::Scalar(s) => words.push(Word {
                            text: s.text.clone(),
                            written: s.text.clone(),
                            span: Some(item.node.span.clone()),
                            dynamic: is_whole_substitution(&s.text),
                        }),
                        _ => {
                            found.unreadable = Some(format!(
                                "an `args` item is a {}, not a string",
                                item.node.kind_name()
                            ));
                        }
                    }
                }
                let (args, substituted) = resolve(build, words, false);
                found.calls.push(KanikoCall {
                    call: parse(args),
                    invocation: Invocation::Args,
                    substituted,
                });
            }
            None if step.args.is_some() => {
                found.unreadable = Some("`args` is not a list".into());
            }
            None => found.calls.push(KanikoCall {
                call: parse(Vec::new()),
                invocation: Invocation::Args,
                substituted: Vec::new(),
            }),
        }
        return Some(found);
    }
    // A script: `entrypoint: sh` with `args: [-c, SCRIPT]`, or `script:`.
    let script_node = if let Some(script) = step.script {
        Some(&script.value)
    } else if entrypoint.is_some_and(is_shell) {
        step.arg_nodes(build.source).and_then(|items| {
            let c = items.iter().position(|i| i.node.as_str() == Some("-c"))?;
            items.get(c + 1).map(|i| &i.node)
        })
    } else {
        None
    };
    if let Some(node) = script_node
        && let Value::Scalar(s) = &node.value
    {
        let script = shell::parse(&s.text);
        for cmd in &script.commands {
            let Some((p, program)) = cmd.program() else {
                continue;
            };
            let is_executor = match program.literal().as_deref() {
                Some("/kaniko/executor") => true,
                Some("executor") => image.is_some(),
                _ => false,
            };
            if !is_executor {
                continue;
            }
            let words = cmd.words[p + 1..]
                .iter()
                .map(|w| Word {
                    text: w.dq.clone(),
                    written: s.text[w.span.clone()].to_string(),
                    span: Some(s.source_range(&node.span, w.span.clone())),
                    dynamic: w.is_bare_expansion() || w.is_bare_escaped_expansion(),
                })
                .collect();
            let (args, substituted) = resolve(build, words, true);
            found.calls.push(KanikoCall {
                call: parse(args),
                substituted,
                invocation: Invocation::Script {
                    node,
                    command: cmd.span.clone(),
                    nesting: cmd.nesting,
                    in_list: cmd.in_list,
                    program_words: p + 1,
                },
            });
        }
        if let Some((at, why)) = script.problems.first()
            && !found.calls.is_empty()
        {
            found.unreadable = Some(format!("the script cannot be read past offset {at}: {why}"));
        }
    }
    if found.calls.is_empty() && image.is_none() {
        return None;
    }
    Some(found)
}

/// Whether buildx reads `value` (a substitution's default) as Kaniko meant
/// it: only flags both spell the same (`--build-arg`, `--target`, …).
fn buildx_reads_as_is(value: &str, shell: bool) -> bool {
    let words: Vec<Arg> = if shell {
        value.split_whitespace().map(Arg::new).collect()
    } else {
        vec![Arg::new(value)]
    };
    let call = crate::kaniko::call::parse(words);
    call.problems.is_empty() && call.uses.iter().all(|u| u.spec.buildx_spells_it_the_same())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use std::path::Path;

    fn steps(text: &str) -> Vec<(bool, usize, Vec<String>)> {
        let s = SourceFile::from_text(Path::new("cloudbuild.yaml"), text.into()).unwrap();
        let b = Build::parse(&s).unwrap();
        find(&b)
            .iter()
            .map(|k| {
                (
                    k.is_warmer(),
                    k.calls.len(),
                    k.calls
                        .iter()
                        .flat_map(|c| c.call.args.iter().map(|a| a.text.clone()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn finds_direct_substituted_and_scripted_calls() {
        let found = steps(concat!(
            "steps:\n",
            "- name: gcr.io/cloud-builders/docker\n  args: [build, .]\n",
            "- name: gcr.io/kaniko-project/executor:latest\n  args: ['--destination=x', --cache]\n",
            "- name: ${_K}\n  args: [-d, y]\n",
            "- name: gcr.io/kaniko-project/executor:debug\n  entrypoint: /busybox/sh\n  args:\n  - -c\n  - |\n    echo start\n    /kaniko/executor --context . \\\n      --destination \"$$IMAGE\"\n",
            "- name: gcr.io/kaniko-project/warmer\n  args: [--image=x]\n",
            "# - name: gcr.io/kaniko-project/executor\n",
            "substitutions:\n  _K: gcr.io/kaniko-project/executor:v1.23.2\n",
        ));
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(
            found[0],
            (false, 1, vec!["--destination=x".into(), "--cache".into()])
        );
        assert_eq!(found[1].2, ["-d", "y"]);
        assert_eq!(found[2].2, ["--context", ".", "--destination", "$$IMAGE"]);
        assert!(found[3].0, "warmer");
    }

    #[test]
    fn whole_substitution_args_are_dynamic() {
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            "steps:\n- name: gcr.io/kaniko-project/executor\n  args: ['${_EXTRA_ARGS}', '--destination=${_IMAGE}']\n".into(),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        let k = find(&b);
        // A user substitution without a default is the trigger's: it is
        // left out of the call and passed to buildx as written (KM015).
        let call = &k[0].calls[0];
        assert_eq!(call.call.args.len(), 1);
        assert!(!call.call.args[0].dynamic);
        assert!(!call.call.is_unknowable());
        assert!(matches!(
            call.substituted[0].handling,
            Handling::Passthrough { shared: false }
        ));
        assert_eq!(call.substituted[0].written, "${_EXTRA_ARGS}");

        // A built-in one as a whole item stays a word kmigrate cannot see.
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            "steps:\n- name: gcr.io/kaniko-project/executor\n  args: ['${PROJECT_ID}', '--destination=x']\n".into(),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        let k = find(&b);
        assert!(k[0].calls[0].call.args[0].dynamic);
        assert!(k[0].calls[0].call.is_unknowable());
    }

    #[test]
    fn flag_substitutions_per_call_are_bounded() {
        let n = MAX_FLAG_SUBSTITUTIONS + 3;
        let words: String = (0..n).map(|i| format!(" $_F{i}")).collect();
        let defaults: String = (0..n)
            .map(|i| format!("  _F{i}: --label=n={i}\n"))
            .collect();
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            format!("steps:\n- name: gcr.io/kaniko-project/executor:debug\n  entrypoint: sh\n  args: [-c, '/kaniko/executor -d x{words}']\nsubstitutions:\n{defaults}"),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        let k = find(&b);
        let handled = &k[0].calls[0].substituted;
        assert_eq!(handled.len(), n);
        let blocked = handled
            .iter()
            .filter(|s| matches!(s.handling, Handling::Blocked { .. }))
            .count();
        assert_eq!(blocked, 3);
        assert!(k[0].calls[0].call.is_unknowable());
    }

    #[test]
    fn escaped_dollar_variables_in_scripts_are_dynamic() {
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            "steps:\n- name: gcr.io/kaniko-project/executor:debug\n  entrypoint: sh\n  args: [-c, '/kaniko/executor $$A $${B} \"$$C\" x$$D $$$$']\n".into(),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        let k = find(&b);
        let dynamic: Vec<bool> = k[0].calls[0].call.args.iter().map(|a| a.dynamic).collect();
        assert_eq!(dynamic, [true, true, false, false, false]);
    }
}
