//! The migrated argv of a call whose flags partly come from substitutions:
//! the buildx flags that a flag-holding substitution's default becomes
//! (its new default), and the references kept in the step.
//!
//! The translation of a default is read off two conversions of the call,
//! with and without the default's words: the buildx flags only the first
//! has are the default's. When they cannot be told apart, or do not fit
//! where the reference stands, the step stays on Kaniko.

use super::Build;
use super::kaniko_steps::{Invocation, KanikoCall};
use super::substitutions::{self, Handling, Substituted};
use crate::buildx::from_kaniko::{Conversion, Note, NoteKind};
use crate::kaniko::call::parse;
use crate::kaniko::passthrough;
use crate::source::Node;

/// What the rewrite of one call writes.
#[derive(Debug, Default)]
pub struct Layout {
    /// `buildx build …` words; those at `raw` are substitution references
    /// written as the file wrote them.
    pub argv: Vec<String>,
    pub raw: Vec<usize>,
    /// New defaults: the `substitutions:` value node and its text.
    pub defaults: Vec<(Node, String)>,
    pub notes: Vec<Note>,
    /// Why the call cannot be migrated, when it cannot.
    pub blocked: Option<String>,
}

/// The call without the words of its flag-holding substitutions (all, or
/// only those of substitution `only`).
pub fn without_flags(call: &KanikoCall, only: Option<usize>) -> Option<crate::kaniko::Call> {
    let mut drop = vec![false; call.call.args.len()];
    let mut any = false;
    for (i, s) in call.substituted.iter().enumerate() {
        if let Handling::Flags { args, .. } = &s.handling
            && only.is_none_or(|o| o == i)
        {
            drop[args.clone()].iter_mut().for_each(|d| *d = true);
            any = true;
        }
    }
    any.then(|| {
        parse(
            call.call
                .args
                .iter()
                .zip(drop)
                .filter(|(_, d)| !d)
                .map(|(a, _)| a.clone())
                .collect(),
        )
    })
}

/// The layout of `call`: `with` is its conversion, `bare` the conversion
/// without every flag-holding substitution, `each[i]` without substitution
/// `i` only (for the `Flags` ones).
pub fn layout(
    build: &Build,
    call: &KanikoCall,
    argv_of: impl Fn(&Conversion) -> Vec<String>,
    with: &Conversion,
    bare: Option<&Conversion>,
    each: &[Option<Conversion>],
) -> Layout {
    let mut out = Layout {
        argv: argv_of(bare.unwrap_or(with)),
        ..Layout::default()
    };
    let shell = matches!(call.invocation, Invocation::Script { .. });
    let mut refs = Vec::new();
    let with_units = units(&argv_of(with));
    for (i, s) in call.substituted.iter().enumerate() {
        match &s.handling {
            Handling::Passthrough { .. } => refs.push(s.written.clone()),
            Handling::Flags { args, default } => {
                let Some(without) = each.get(i).and_then(Option::as_ref) else {
                    continue;
                };
                let translated = extra(&with_units, &units(&argv_of(without)))
                    .ok_or_else(|| {
                        format!(
                            "kmigrate cannot tell which buildx flags come from `{}`",
                            s.written
                        )
                    })
                    .and_then(|u| fit(build, s, default, &u, shell));
                match translated {
                    Ok(value) => {
                        out.notes
                            .push(translated_note(s, args.clone(), default, &value));
                        if value != *default {
                            match substitutions::default_node(build, &s.name) {
                                Some(node) => out.defaults.push((node.clone(), value)),
                                None => {
                                    out.notes.push(Note {
                                        kind: NoteKind::Manual,
                                        args: args.clone(),
                                        message: format!("`{}` takes its default from `:-` in the step, which kmigrate does not rewrite", s.written),
                                        help: Some("move the default to `substitutions:`, or migrate the step by hand".into()),
                                    });
                                    out.blocked = Some("a flag cannot be translated exactly (see the KM012 findings); the step is left unchanged".into());
                                }
                            }
                        }
                        refs.push(s.written.clone());
                    }
                    Err(why) => {
                        out.notes.push(Note {
                            kind: NoteKind::Manual,
                            args: args.clone(),
                            message: why.clone(),
                            help: Some(format!("write the buildx flags in the step, or migrate the step by hand; `{}` holds `{default}`", s.written)),
                        });
                        out.blocked = Some("a flag cannot be translated exactly (see the KM012 findings); the step is left unchanged".into());
                    }
                }
            }
            Handling::Bool { .. } | Handling::Blocked { .. } => {}
        }
    }
    // The references go just before the context, the last word.
    let at = out.argv.len().saturating_sub(1);
    for (k, r) in refs.into_iter().enumerate() {
        out.argv.insert(at + k, r);
        out.raw.push(at + k);
    }
    out
}

/// The KM011 for a flag-holding substitution kept in the step.
fn translated_note(
    s: &Substituted,
    args: std::ops::Range<usize>,
    default: &str,
    value: &str,
) -> Note {
    let message = if value == default {
        format!(
            "`{}` holds flags buildx spells as Kaniko does (default `{default}`): the step keeps it",
            s.written
        )
    } else {
        format!(
            "`{}` holds Kaniko flags: its default in `substitutions:` becomes `{value}` (was `{default}`) and the step keeps `{}`",
            s.written, s.written
        )
    };
    Note {
        kind: NoteKind::Changed,
        args,
        message,
        help: Some(format!(
            "a trigger that sets `{}` must now give buildx flags. {}",
            s.name,
            passthrough::help(&s.written)
        )),
    }
}

/// Words grouped as flags: `--flag value`, `--flag=value`, `--flag`; the
/// context (the last word) on its own.
fn units(argv: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let Some((context, flags)) = argv.split_last() else {
        return out;
    };
    let mut i = 0;
    while i < flags.len() {
        let w = &flags[i];
        match flags.get(i + 1) {
            Some(v) if !w.contains('=') && !v.starts_with("--") => {
                out.push(vec![w.clone(), v.clone()]);
                i += 2;
            }
            _ => {
                out.push(vec![w.clone()]);
                i += 1;
            }
        }
    }
    out.push(vec![context.clone()]);
    out
}

/// The units of `with` that are not in `without`, when `without` is the
/// rest of `with` in order.
fn extra(with: &[Vec<String>], without: &[Vec<String>]) -> Option<Vec<Vec<String>>> {
    let mut rest = without.iter().peekable();
    let mut out = Vec::new();
    for u in with {
        if rest.peek() == Some(&u) {
            rest.next();
        } else {
            out.push(u.clone());
        }
    }
    rest.next().is_none().then_some(out)
}

/// The text the substitution's new default holds: one word for an `args`
/// item (Cloud Build does not split it), words a shell splits otherwise.
fn fit(
    build: &Build,
    s: &Substituted,
    default: &str,
    units: &[Vec<String>],
    shell: bool,
) -> Result<String, String> {
    let words: Vec<String> = if shell {
        units.iter().flatten().cloned().collect()
    } else {
        match units {
            [] => {
                return Err(format!(
                    "`{}` holds flags that buildx does without, and an empty `args` item would be read as a second build context",
                    s.written
                ));
            }
            [one] => vec![one.join("=")],
            _ => {
                return Err(format!(
                    "`{}` becomes several buildx flags, which one `args` item cannot hold (Cloud Build does not split it)",
                    s.written
                ));
            }
        }
    };
    // A default whose flags buildx reads as they are (`--target=prod`)
    // stays as written.
    if same_flags(default, &words, shell) {
        return Ok(default.to_string());
    }
    let value = words.join(" ");
    // A default Cloud Build reads as it is keeps reading the same.
    if value == default {
        return Ok(value);
    }
    for w in &words {
        if w.contains('$') && !substitutions::dynamic(build) {
            return Err(format!(
                "the buildx flags for `{}` refer to `$` substitutions, which Cloud Build expands in a default only with `options: dynamicSubstitutions: true`",
                s.written
            ));
        }
        if shell
            && w.chars()
                .any(|c| c.is_whitespace() || "'\"\\`*?[]{}|&;<>()#~".contains(c))
        {
            return Err(format!(
                "the buildx flag `{w}` for `{}` would not survive the shell's word splitting",
                s.written
            ));
        }
    }
    Ok(value)
}

/// Whether `default` holds the flags `translated` holds, only spelled
/// `--flag=value` where the translation writes `--flag value`, or in
/// another order.
fn same_flags(default: &str, translated: &[String], shell: bool) -> bool {
    let words: Vec<&str> = if shell {
        default.split_whitespace().collect()
    } else {
        vec![default]
    };
    let mut written: Vec<Vec<String>> = words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => vec![f.to_string(), v.to_string()],
            _ => vec![w.to_string()],
        })
        .collect();
    let mut ours = units(
        &translated
            .iter()
            .cloned()
            .chain(std::iter::once(".".to_string()))
            .collect::<Vec<_>>(),
    );
    ours.pop();
    written.sort();
    ours.sort();
    written == ours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_extra_flags_are_the_defaults_translation() {
        let with = units(&words(
            "--tag t --build-arg A=1 --cache-from c --push --provenance=false .",
        ));
        let without = units(&words("--tag t --push --provenance=false ."));
        assert_eq!(
            extra(&with, &without).unwrap(),
            [words("--build-arg A=1"), words("--cache-from c")]
        );
        let other = units(&words("--tag u ."));
        assert!(extra(&with, &other).is_none());
    }

    #[test]
    fn a_default_in_buildx_spelling_is_the_same_flags() {
        let t = words("--build-arg X=1 --label team=core");
        assert!(same_flags("--label=team=core --build-arg=X=1", &t, true));
        assert!(!same_flags("--label=team=core", &t, true));
        assert!(same_flags("--target=prod", &words("--target prod"), false));
        assert!(!same_flags(
            "--custom-platform=linux/arm64",
            &words("--platform linux/arm64"),
            false
        ));
    }
}
