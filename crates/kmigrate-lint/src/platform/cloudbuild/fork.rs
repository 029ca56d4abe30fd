//! The fork target on Cloud Build: a Kaniko step keeps its executor call
//! and runs the maintained fork's image instead of the archived one; only
//! the flag spellings the fork changed are edited in `args` (see
//! [`crate::kaniko::fork`]). No setup step, no runner change.

use super::kaniko_steps::{Invocation, KanikoStep};
use super::migrate::{StepMigration, replace_args, replace_scalar};
use crate::buildx::from_kaniko::{Conversion, Note, NoteKind};
use crate::kaniko::fork::{FlagChange, flag_changes, spelling_range};
use crate::options::Options;
use crate::source::patch::Edit;
use crate::source::{SourceFile, Value};

/// The fork image that replaces the step's image (`original` as written).
pub fn step_image(opts: &Options, original: &str, shell: bool) -> String {
    crate::kaniko::fork_target().reference(&opts.fork_image, &opts.fork_version, original, shell)
}

/// The step moved to the fork, or left as it is with the reason.
pub fn fork_step<'a>(
    build: &super::Build,
    kaniko: KanikoStep<'a>,
    conversions: Vec<Conversion>,
    opts: &Options,
) -> StepMigration<'a> {
    let source = build.source;
    let step = kaniko.step;
    // What the buildx translation would change does not apply: the call
    // stays Kaniko's.
    let mut conversions: Vec<Conversion> = conversions
        .into_iter()
        .map(|c| Conversion {
            notes: Vec::new(),
            ..c
        })
        .collect();
    let mut notes = Vec::new();
    let name = step.name.filter(|_| kaniko.image.is_some());
    let blocked = if kaniko.is_warmer() {
        Some(format!(
            "the step runs Kaniko's base-image warmer: point it at the fork's warmer (`{}:{}-warmer`) by hand",
            opts.fork_image, opts.fork_version
        ))
    } else if let Some(why) = &kaniko.unreadable {
        Some(format!("{why}; migrate the step by hand"))
    } else if name.is_none() {
        Some("the executor comes from an image kmigrate does not know as Kaniko; run the step in the fork's image by hand".into())
    } else {
        None
    };
    let mut edits = Vec::new();
    if blocked.is_none()
        && let Some(name) = name
        && let Some(original) = name.value.as_str()
    {
        let shell = kaniko
            .calls
            .iter()
            .any(|c| matches!(c.invocation, Invocation::Script { .. }));
        edits.push(replace_scalar(
            source,
            &name.value,
            &step_image(opts, &build.substitute(original), shell),
        ));
        if original.contains('$') {
            notes.push(Note {
                kind: NoteKind::Changed,
                args: 0..0,
                message: format!(
                    "the image substitution in `{original}` is no longer used by this step"
                ),
                help: Some("remove the substitution if nothing else uses it: Cloud Build rejects unused substitutions unless `options.substitutionOption: ALLOW_LOOSE` is set".into()),
            });
        }
    }
    if blocked.is_none() {
        for (call, conversion) in kaniko.calls.iter().zip(&mut conversions) {
            // Flags in a script stay as written: the fork still accepts
            // every old spelling and ignores the no-op flags.
            if !matches!(call.invocation, Invocation::Args) {
                continue;
            }
            let (e, n) = args_edits(source, step.args.map(|a| &a.value), &call.call);
            edits.extend(e);
            conversion.notes.extend(n);
        }
    }
    StepMigration {
        kaniko,
        conversions,
        notes,
        passthrough: Vec::new(),
        edits: blocked.is_none().then_some(edits),
        blocked,
    }
}

/// The edits of a step's `args` list for `call` (renamed spellings in
/// place; the list written again without the no-op flags), with a note per
/// removed flag.
fn args_edits(
    source: &SourceFile,
    args: Option<&crate::source::Node>,
    call: &crate::kaniko::Call,
) -> (Vec<Edit>, Vec<Note>) {
    let Some(node) = args else {
        return (Vec::new(), Vec::new());
    };
    let Value::Seq(seq) = &node.value else {
        return (Vec::new(), Vec::new());
    };
    // The list item holding arg `i`, when the item is exactly that word.
    let item_of = |i: usize| {
        let arg = call.args.get(i)?;
        let span = arg.span.as_ref()?;
        let item = seq.items.iter().find(|it| &it.node.span == span)?;
        (item.node.as_str()? == arg.text && !arg.dynamic).then_some(item)
    };
    let mut renames: Vec<(usize, String)> = Vec::new();
    let mut dropped: Vec<usize> = Vec::new();
    let mut notes = Vec::new();
    for change in flag_changes(call) {
        match change {
            FlagChange::Rename { arg, from, to } => {
                let Some(item) = item_of(arg) else { continue };
                let text = item.node.as_str().unwrap_or_default();
                if let Some(r) = spelling_range(text, &from) {
                    let mut new = text.to_string();
                    new.replace_range(r, &to);
                    let index = seq.items.iter().position(|x| std::ptr::eq(x, item));
                    renames.extend(index.map(|i| (i, new)));
                }
            }
            FlagChange::Drop { args, flag, reason } => {
                let items: Option<Vec<usize>> = args
                    .clone()
                    .map(|i| {
                        let item = item_of(i)?;
                        seq.items.iter().position(|x| std::ptr::eq(x, item))
                    })
                    .collect();
                let Some(items) = items else { continue };
                dropped.extend(items);
                notes.push(Note {
                    kind: NoteKind::Dropped,
                    args,
                    message: format!("`{flag}` is removed: {reason}"),
                    help: None,
                });
            }
        }
    }
    if dropped.is_empty() {
        let edits = renames
            .into_iter()
            .map(|(i, text)| replace_scalar(source, &seq.items[i].node, &text))
            .collect();
        return (edits, notes);
    }
    let argv: Option<Vec<String>> = seq
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(i, item)| {
            renames
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, t)| t.clone())
                .or_else(|| item.node.as_str().map(String::from))
        })
        .collect();
    match argv.and_then(|argv| replace_args(source, node, &argv)) {
        Some(e) => (vec![e], notes),
        // A list kmigrate cannot write again keeps the no-op flags (the
        // fork ignores them).
        None => (Vec::new(), Vec::new()),
    }
}
