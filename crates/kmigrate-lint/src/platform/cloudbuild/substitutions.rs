//! User substitutions (`$_X`, `${_X}`, `${_X:-default}`) that stand for
//! Kaniko flags or a boolean flag's value, and the defaults kmigrate can see
//! for them in the file's `substitutions:` block.
//!
//! Cloud Build replaces a substitution's text inside each argument: an
//! `args` item stays one argv element whatever the value holds, and only a
//! shell step splits it into words.

use std::collections::HashMap;
use std::ops::Range;

use super::Build;
use super::kaniko_steps::KanikoCall;
use crate::buildx::from_kaniko::{Conversion, Note, NoteKind};
use crate::source::{Node, Value};

/// A whole word that is one user substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'t> {
    /// The name, `_EXTRA_ARGS`.
    pub name: &'t str,
    /// The `:-default` of `${_X:-default}`, when written.
    pub inline_default: Option<&'t str>,
}

/// `text` as one user substitution (`$_X`, `${_X}`, `${_X:-d}`); `$$_X` is
/// the shell's own variable and is not one.
pub fn reference(text: &str) -> Option<Reference<'_>> {
    let (name, inline_default) =
        if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
            match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            }
        } else {
            (text.strip_prefix('$')?, None)
        };
    let user = name.starts_with('_')
        && name.len() > 1
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    user.then_some(Reference {
        name,
        inline_default,
    })
}

/// A boolean flag written `--flag=<substitution>`: the flag as written and
/// the reference.
pub fn bool_reference(text: &str) -> Option<(&str, Reference<'_>)> {
    let (flag, value) = text.split_once('=')?;
    let name = flag.strip_prefix("--")?;
    let spec = crate::kaniko::FlagTable::get().long(name)?;
    if spec.arity != crate::kaniko::Arity::Bool {
        return None;
    }
    Some((flag, reference(value)?))
}

/// The value kmigrate assumes for `r`: the `substitutions:` default, else
/// the inline `:-default`.
pub fn visible_value(build: &Build, r: &Reference) -> Option<String> {
    build
        .substitutions
        .get(r.name)
        .cloned()
        .or_else(|| r.inline_default.map(String::from))
}

/// How many times `text` refers to each user substitution (`$_X`, `${_X`),
/// in one pass: `$$` is a literal dollar, not a reference.
pub fn use_counts(text: &str) -> HashMap<String, usize> {
    let bytes = text.as_bytes();
    let mut counts = HashMap::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let start = i + 1 + usize::from(bytes.get(i + 1) == Some(&b'{'));
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
        if bytes.get(start) == Some(&b'_') && end > start + 1 {
            *counts.entry(text[start..end].to_string()).or_insert(0) += 1;
        }
        i = end.max(i + 1);
    }
    counts
}

/// Whether `options:` sets `key` (either spelling) to `value`.
fn option_is(build: &Build, keys: [&str; 2], value: &str) -> bool {
    let Some(options) = build.source.root().and_then(|r| r.get("options")) else {
        return false;
    };
    keys.iter().any(|k| {
        options
            .get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    })
}

/// `options.substitutionOption: ALLOW_LOOSE`: unused substitutions are allowed.
pub fn allow_loose(build: &Build) -> bool {
    option_is(
        build,
        ["substitutionOption", "substitution_option"],
        "ALLOW_LOOSE",
    )
}

/// `options.dynamicSubstitutions: true`: a default may refer to other
/// substitutions (`$PROJECT_ID`).
pub fn dynamic(build: &Build) -> bool {
    option_is(
        build,
        ["dynamicSubstitutions", "dynamic_substitutions"],
        "true",
    )
}

/// The value node of `name` in `substitutions:`.
pub fn default_node<'a>(build: &'a Build, name: &str) -> Option<&'a Node> {
    let map = build.source.root()?.get("substitutions")?.as_map()?;
    map.entries
        .iter()
        .find(|e| e.key.as_str() == Some(name))
        .map(|e| &e.value)
        .filter(|v| matches!(v.value, Value::Scalar(_)))
}

/// What kmigrate does with one substitution in a Kaniko call.
#[derive(Debug, Clone)]
pub enum Handling {
    /// `--flag=<sub>` with a visible boolean default: the call's arg `arg`
    /// is read with that value.
    Bool { arg: usize, value: String },
    /// A substitution holding flags, with a visible default: the call's
    /// args `args` are the default's words.
    Flags { args: Range<usize>, default: String },
    /// Set outside the file (or `shared` with other uses in it, so its
    /// default stays as written): not part of the call, handed to buildx
    /// as written (KM015).
    Passthrough { shared: bool },
    /// Cannot be migrated: the call's arg `arg` stays a KM012 with this
    /// message and help.
    Blocked {
        arg: usize,
        message: String,
        help: String,
    },
}

/// One substitution in a Kaniko call.
#[derive(Debug, Clone)]
pub struct Substituted {
    /// `_EXTRA_ARGS`.
    pub name: String,
    /// The word as written (`${_EXTRA_ARGS}`, `--cache=${_USE_CACHE}`).
    pub written: String,
    pub span: Option<Range<usize>>,
    pub handling: Handling,
}

/// The KM011 of each boolean fixed at its default: what a trigger can no
/// longer choose, and how to keep the choice. Only for a migrated step.
pub fn bool_notes(build: &Build, call: &KanikoCall) -> Vec<Note> {
    let mut out = Vec::new();
    for s in &call.substituted {
        let Handling::Bool { arg, value } = &s.handling else {
            continue;
        };
        let flag = call.call.args[*arg]
            .text
            .split('=')
            .next()
            .unwrap_or_default();
        let mut help = format!(
            "to keep the choice per trigger, keep two steps (one with `{flag}=true`, one with `{flag}=false`, each run by its own trigger), or a `bash -c` step that picks the buildx flags from `${}`",
            s.name
        );
        let declared = build.substitutions.contains_key(&s.name);
        if declared && build.uses(&s.name) == 1 && !allow_loose(build) {
            help.push_str(&format!(
                ". Nothing else uses `{name}` now, and Cloud Build rejects a build with an unused substitution: remove `{name}` from `substitutions:` and the triggers, or set `options: substitutionOption: ALLOW_LOOSE`",
                name = s.name
            ));
        }
        out.push(Note {
            kind: NoteKind::Changed,
            args: *arg..*arg + 1,
            message: format!(
                "`{}` is fixed at its default {} (`{}` = `{value}`): a trigger that overrides `{}` is no longer honoured",
                s.written,
                if declared {
                    "in `substitutions:`"
                } else {
                    "written after `:-`"
                },
                s.name,
                s.name
            ),
            help: Some(help),
        });
    }
    out
}

/// The KM012 of a substitution kmigrate cannot resolve names it and says why.
pub fn explain_blocked(call: &KanikoCall, conversion: &mut Conversion) {
    for s in &call.substituted {
        if let Handling::Blocked { arg, message, help } = &s.handling {
            for n in conversion
                .notes
                .iter_mut()
                .filter(|n| n.kind == NoteKind::Manual && n.args == (*arg..*arg + 1))
            {
                n.message = message.clone();
                n.help = Some(help.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use std::path::Path;

    #[test]
    fn reads_every_spelling_of_a_user_substitution() {
        let r = reference("${_EXTRA}").unwrap();
        assert_eq!((r.name, r.inline_default), ("_EXTRA", None));
        let r = reference("$_EXTRA").unwrap();
        assert_eq!(r.name, "_EXTRA");
        let r = reference("${_X:-false}").unwrap();
        assert_eq!((r.name, r.inline_default), ("_X", Some("false")));
        for not in [
            "$$_EXTRA",
            "$PROJECT_ID",
            "${PROJECT_ID}",
            "_X",
            "$_x-y",
            "$_",
        ] {
            assert!(reference(not).is_none(), "{not}");
        }
        let (flag, r) = bool_reference("--no-push=$_NO_PUSH").unwrap();
        assert_eq!((flag, r.name), ("--no-push", "_NO_PUSH"));
        assert!(bool_reference("--destination=${_IMAGE}").is_none());
    }

    #[test]
    fn counts_uses_and_reads_options() {
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            "steps:\n- name: x\n  args: ['${_A}', '$_A', '$$_A', '$_AB', '${_A:-1}']\noptions:\n  substitution_option: ALLOW_LOOSE\nsubstitutions:\n  _A: x\n".into(),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        assert_eq!(b.uses("_A"), 3);
        assert_eq!(b.uses("_AB"), 1);
        assert!(allow_loose(&b));
        assert!(!dynamic(&b));
        assert_eq!(default_node(&b, "_A").and_then(|n| n.as_str()), Some("x"));
    }
}
