//! Variables that hold Kaniko flags (`/kaniko/executor $KANIKO_ARGS`).
//!
//! For each such word of a call, kmigrate looks for every definition it can
//! see: assignments earlier in the job's script (`X=…`, `X+=…`, `export
//! X=…`, in any `if`/`for` branch) and the job's `variables:` (after
//! `extends` and anchors; the global ones are in the same list). Then:
//! - every definition visible and translatable: each definition is rewritten
//!   in buildx spelling where it is written (the variable keeps its name: it
//!   is the template's interface to its callers) and the call keeps it;
//! - no definition visible (project settings, a caller, a trigger), or the
//!   variable also feeds another command: it is handed to buildx unchanged,
//!   with a KM015 warning;
//! - a definition kmigrate cannot translate exactly: the build stays on
//!   Kaniko, with KM012 naming the variable and that definition's line.
//!
//! No runtime translator is generated: a passed-through Kaniko flag makes
//! buildx fail loudly at the first run, where a translator would hide it.

use std::ops::Range;

use super::detect::{ExecutorCall, is_executor_word};
use super::job::{Job, Section};
use super::rewrite::FileEdit;
use crate::buildx::from_kaniko::NoteKind;
use crate::kaniko::{self, Action, Arg, Arity};
use crate::rules::Rule;
use crate::shell::{Nesting, Word};
use crate::source::patch::Edit;
use crate::source::{SourceFile, Span};

/// A finding about a variable, written where the variable is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarNote {
    pub file: usize,
    pub span: Span,
    /// KM010, KM011 or KM015.
    pub rule: Rule,
    pub message: String,
    pub help: Option<String>,
}

/// A variable whose every definition is rewritten in buildx spelling.
#[derive(Debug, Clone, Default)]
pub struct Translated {
    pub edits: Vec<FileEdit>,
    pub notes: Vec<VarNote>,
    /// A definition holds the build context: the call must not add one.
    pub context: bool,
    /// Single-valued flags some definition sets (canonical names), with
    /// the line: the call must not set them too.
    pub sets: Vec<(String, usize)>,
    /// The images the definitions push (`--destination` values).
    pub tags: Vec<String>,
    /// Some definition is not exactly one word once translated (a quoted
    /// `"$X"` is one argument, so it cannot take such a value).
    pub not_one_word: bool,
}

/// What becomes of one variable word of a call.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Its definitions are translated; `outside` says the value may also
    /// come from outside the files read (an empty YAML default): KM015 too.
    Translated {
        t: Translated,
        outside: Option<VarNote>,
    },
    /// Handed to buildx unchanged, with this KM015 note.
    Passthrough(VarNote),
    /// The build stays on Kaniko: KM012 with this message and help.
    Blocked { message: String, help: String },
}

/// One place the variable gets a value.
struct Definition {
    file: usize,
    /// Where the value's text is written in `file`.
    value_span: Span,
    /// 1-based line, for messages.
    line: usize,
    /// From `variables:` rather than the script.
    yaml: bool,
    /// Inside an `if`/`case`/loop.
    conditional: bool,
    /// The value starts from the variable's previous value (`X="$X …"`,
    /// `X+=…`).
    accumulates: bool,
}

/// The variable a call word names (`$X`, `${X}`, `"$X"`), if it is one.
pub fn variable_name(dq: &str) -> Option<&str> {
    let rest = dq.strip_prefix('$')?;
    let name = match rest.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}')?,
        None => rest,
    };
    let ident = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident.then_some(name)
}

/// Resolves the variable word `word` (written as `written`) of `call` in
/// `job`.
pub fn resolve(
    files: &[SourceFile],
    job: &Job,
    call: &ExecutorCall,
    name: &str,
    written: &str,
    word_at: (usize, Span),
) -> Resolution {
    let passthrough = |message: String| {
        Resolution::Passthrough(VarNote {
            file: word_at.0,
            span: word_at.1.clone(),
            rule: Rule::Km015,
            message,
            help: Some(kaniko::passthrough::help(written)),
        })
    };
    // GitLab's predefined variables hold names and paths, never flags:
    // in a flag's place Kaniko reads one as a stray positional word.
    if name.starts_with("CI_") || name.starts_with("GITLAB_") {
        return Resolution::Blocked {
            message: format!(
                "`{written}` is a GitLab predefined variable (a name or a path, not flags), written where a flag belongs"
            ),
            help: format!(
                "give it to the flag it is meant for (e.g. `--context {written}`), or migrate this call by hand"
            ),
        };
    }
    if let Some(other) = other_use(job, name) {
        return passthrough(format!(
            "`{written}` is also read by {other}, so kmigrate leaves its value as written: the migrated build passes it to `docker buildx build` unchanged"
        ));
    }
    let defs = match definitions(files, job, call, name) {
        Ok(d) => d,
        Err(message) => {
            return Resolution::Blocked {
                message: format!("`{written}` {message}"),
                help: "write the flags out in the call, or migrate this call by hand".into(),
            };
        }
    };
    if defs.is_empty() {
        return passthrough(kaniko::passthrough::message(
            written,
            "in the project's CI/CD settings, by a caller or a trigger",
        ));
    }
    let t = match translate_all(files, &defs, name, written) {
        Ok(t) => t,
        Err(blocked) => return *blocked,
    };
    // GitLab's project variables override the YAML ones: an empty YAML
    // default that no script line replaces is a placeholder for a value
    // set elsewhere, which reaches buildx as it is.
    let placeholder = defs.iter().any(|d| {
        d.yaml
            && files[d.file].text[d.value_span.clone()]
                .trim_matches(['"', '\'', ' '])
                .is_empty()
    });
    let replaced = defs
        .iter()
        .any(|d| !d.yaml && !d.conditional && !d.accumulates);
    let outside = (placeholder && !replaced).then(|| VarNote {
        file: word_at.0,
        span: word_at.1.clone(),
        rule: Rule::Km015,
        message: kaniko::passthrough::message(
            written,
            "empty in `variables:`, a placeholder for a value in the project's CI/CD settings or a caller's `variables:`",
        ),
        help: Some(kaniko::passthrough::help(written)),
    });
    Resolution::Translated { t, outside }
}

/// Translates every definition, or says which one cannot be.
fn translate_all(
    files: &[SourceFile],
    defs: &[Definition],
    name: &str,
    written: &str,
) -> Result<Translated, Box<Resolution>> {
    let mut t = Translated::default();
    for d in defs {
        let text = &files[d.file].text[d.value_span.clone()];
        if let Err(why) = translate(d, text, (name, written), &mut t) {
            return Err(Box::new(Resolution::Blocked {
                message: format!(
                    "`{written}` is set on line {} to `{}`, which kmigrate cannot translate: {why}",
                    d.line,
                    text.trim()
                ),
                help: "write the flags out in the call, or migrate this call by hand".into(),
            }));
        }
    }
    Ok(t)
}

/// The input a call word names (`$[[ inputs.args ]]`), if it is one.
pub fn input_name(dq: &str) -> Option<&str> {
    let inner = dq.strip_prefix("$[[")?.strip_suffix("]]")?.trim();
    let name = inner.strip_prefix("inputs.")?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .then_some(name)
        .filter(|n| !n.is_empty())
}

/// Resolves the component input word `written` of a call written in file
/// `file`: the `spec: inputs:` default of that file is translated (callers
/// that pass the input must use buildx spelling: KM015); with no default
/// the input comes from the caller and is passed through (KM015).
pub fn resolve_input(
    files: &[SourceFile],
    file: usize,
    name: &str,
    written: &str,
    word_at: (usize, Span),
) -> Resolution {
    let note = |message: String| VarNote {
        file: word_at.0,
        span: word_at.1.clone(),
        rule: Rule::Km015,
        message,
        help: Some(kaniko::passthrough::help(written)),
    };
    let f = &files[file];
    let default = f
        .tree
        .documents
        .first()
        .filter(|_| f.tree.documents.len() == 2)
        .and_then(|d| d.get("spec")?.get("inputs")?.get(name)?.get("default"));
    let Some(default) = default else {
        return Resolution::Passthrough(note(kaniko::passthrough::message(
            written,
            "by the component's caller (`inputs:` of its `include:`)",
        )));
    };
    let span = default.span.clone();
    let line = f.position(span.start).0;
    if !default
        .as_str()
        .is_some_and(|v| same_words(&f.text[span.clone()], v))
    {
        return Resolution::Blocked {
            message: format!(
                "`{written}` has a default on line {line} in a form kmigrate cannot edit word by word"
            ),
            help: "write the flags out in the call, or migrate this call by hand".into(),
        };
    }
    let def = Definition {
        file,
        value_span: span,
        line,
        yaml: true,
        conditional: false,
        accumulates: false,
    };
    match translate_all(files, std::slice::from_ref(&def), name, written) {
        Ok(t) => Resolution::Translated {
            t,
            outside: Some(note(format!(
                "`{written}` gets its default (line {line}) translated to buildx spelling; a caller that passes this input still writes Kaniko flags, which buildx rejects with `unknown flag`"
            ))),
        },
        Err(blocked) => *blocked,
    }
}

/// The commands a job section runs, for uses and definitions.
const SECTIONS: [Section; 3] = [Section::BeforeScript, Section::Script, Section::AfterScript];

/// Programs that only look at a variable (print or test it).
const READERS: &[&str] = &["echo", "printf", "[", "[[", "test", "export", "readonly"];

/// A command (other than a Kaniko call, a print or a test) or another
/// variable that reads `name`, described for the message.
fn other_use(job: &Job, name: &str) -> Option<String> {
    for s in SECTIONS {
        if job.section(s).is_empty() {
            continue;
        }
        let script = &job.parsed(s).script;
        for c in &script.commands {
            let Some((_, program)) = c.program() else {
                continue;
            };
            if is_executor_word(program, true) {
                continue;
            }
            let prog = program.literal().unwrap_or_else(|| program.dq.clone());
            if c.words.iter().any(|w| mentions(&w.dq, name)) && !READERS.contains(&prog.as_str()) {
                return Some(format!("`{prog}`"));
            }
            if let Some(w) = c.assignments.iter().find(|w| mentions(&w.dq, name)) {
                return Some(format!("`{}`", w.dq));
            }
        }
        for (w, _) in &script.assignments {
            if assigned_name(&w.dq) != Some(name) && mentions(&w.dq, name) {
                let target = assigned_name(&w.dq).unwrap_or_default();
                return Some(format!("`${target}`"));
            }
        }
    }
    None
}

/// Whether `$name` or `${name…}` occurs in `dq`.
fn mentions(dq: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (i, _) in dq.match_indices('$') {
        let rest = &dq[i + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        if let Some(after) = rest.strip_prefix(name)
            && !after.starts_with(ident)
        {
            return true;
        }
    }
    false
}

/// The name an assignment word (`X=…`, `X+=…`) sets.
fn assigned_name(dq: &str) -> Option<&str> {
    let (lhs, _) = dq.split_once('=')?;
    Some(lhs.strip_suffix('+').unwrap_or(lhs))
}

/// Every definition of `name` visible to `call`, in order: the job's YAML
/// variable, then the script assignments that run before the call.
fn definitions(
    files: &[SourceFile],
    job: &Job,
    call: &ExecutorCall,
    name: &str,
) -> Result<Vec<Definition>, String> {
    let mut out = Vec::new();
    if let Some(v) = job.variables.iter().find(|v| v.name == name)
        && let Some(value) = &v.value
    {
        let file = value.origin.file;
        let span = value.origin.span.clone();
        // The YAML value as the job sees it must be the words written.
        let text = &files[file].text[span.clone()];
        if !same_words(text, &value.value) {
            return Err(format!(
                "is set on line {} in a form kmigrate cannot edit word by word",
                files[file].position(span.start).0
            ));
        }
        out.push(Definition {
            file,
            line: files[file].position(span.start).0,
            value_span: span,
            yaml: true,
            conditional: false,
            accumulates: false,
        });
    }
    // `after_script` runs in a shell of its own.
    let sections: &[Section] = match call.section {
        Section::AfterScript => &[Section::AfterScript],
        Section::Script => &[Section::BeforeScript, Section::Script],
        Section::BeforeScript => &[Section::BeforeScript],
    };
    for &s in sections {
        if job.section(s).is_empty() {
            continue;
        }
        let parsed = job.parsed(s);
        // In a loop, a value set after the call reaches its next round.
        let looped = call.command.nesting == Nesting::Loop;
        let before = |w: &Word| {
            s != call.section || looped || {
                let at = parsed.line_ranges[call.line].start + call.command.span.start;
                w.span.start < at
            }
        };
        let mut words: Vec<(&Word, Nesting)> = parsed
            .script
            .assignments
            .iter()
            .map(|(w, n)| (w, *n))
            .collect();
        for c in &parsed.script.commands {
            let declares = c.program().and_then(|(_, p)| p.literal()).is_some_and(|p| {
                matches!(
                    p.as_str(),
                    "export" | "readonly" | "declare" | "local" | "typeset"
                )
            });
            if declares {
                words.extend(c.words.iter().skip(1).map(|w| (w, c.nesting)));
            }
        }
        words.sort_by_key(|(w, _)| w.span.start);
        for (w, nesting) in words {
            if assigned_name(&w.dq) != Some(name) || !before(w) {
                continue;
            }
            let Some((li, range)) = parsed.locate(&w.span) else {
                return Err("is set by a command kmigrate cannot place".into());
            };
            let line = &job.section(s)[li];
            let span = line.source_range(range.clone());
            let file = line.origin.file;
            let src = &files[file].text;
            let lineno = files[file].position(span.start).0;
            if line.from_default {
                return Err(format!(
                    "is set on line {lineno} in `default:`, which every job runs: kmigrate does not rewrite it for one job"
                ));
            }
            // Edits go to the file: the shell text must be written as is.
            if src.get(span.clone()) != line.text.get(range.clone()) {
                return Err(format!(
                    "is set on line {lineno} in a YAML form kmigrate cannot edit in place"
                ));
            }
            let eq = src[span.clone()].find('=').unwrap_or(0);
            let value_span = span.start + eq + 1..span.end;
            let value = &w.dq[w.dq.find('=').unwrap_or(0) + 1..];
            out.push(Definition {
                file,
                line: lineno,
                value_span,
                yaml: false,
                conditional: nesting != Nesting::TopLevel,
                accumulates: src[span.start..span.start + eq].ends_with('+')
                    || value
                        .split_whitespace()
                        .any(|t| variable_name(t) == Some(name)),
            });
        }
    }
    Ok(out)
}

/// Whether the source text `text` holds the words of `value` (quotes at
/// the ends of words aside).
fn same_words(text: &str, value: &str) -> bool {
    match tokens(text) {
        Ok(t) => t
            .iter()
            .map(|(_, c)| c.as_str())
            .eq(value.split_whitespace()),
        Err(_) => false,
    }
}

/// The words of a definition's source text, each with its range (quotes
/// around them left out), or why they cannot be edited one by one.
fn tokens(text: &str) -> Result<Vec<(Range<usize>, String)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let chunk = &text[start..i];
        let lead = chunk.len() - chunk.trim_start_matches(['"', '\'']).len();
        let core = chunk.trim_matches(['"', '\'']);
        if core.is_empty() {
            continue;
        }
        if core.contains(['"', '\'', '\\', '`']) || core.contains("$(") {
            return Err(format!(
                "`{core}` is quoted or computed in a way kmigrate does not rewrite"
            ));
        }
        let s = start + lead;
        out.push((s..s + core.len(), core.to_string()));
    }
    Ok(out)
}

/// Rewrites one definition (its source `text`) in buildx spelling into `t`.
fn translate(
    d: &Definition,
    text: &str,
    (name, written): (&str, &str),
    t: &mut Translated,
) -> Result<(), String> {
    let toks = tokens(text)?;
    // The variable's own earlier value stays as it is (it is translated
    // where it is set).
    let flags: Vec<&(Range<usize>, String)> = toks
        .iter()
        .filter(|(_, c)| variable_name(c) != Some(name))
        .collect();
    let call = kaniko::call::parse(flags.iter().map(|(_, c)| Arg::new(c.clone())).collect());
    if let Some(p) = call.problems.first() {
        return Err(p.message.clone());
    }
    let single = flags.len() == toks.len()
        && call.uses.len() == 1
        && call.uses[0].args.len() == 1
        && !matches!(call.uses[0].spec.action, Action::Drop | Action::DropWarn);
    t.not_one_word |= !single;
    let at = |r: &Range<usize>| d.value_span.start + r.start..d.value_span.start + r.end;
    let mut edit = |r: Range<usize>, with: &str| t.edits.push((d.file, Edit::replace(r, with)));
    for u in &call.uses {
        let first = &flags[u.args.start];
        let last = &flags[u.args.end - 1];
        let rename = |to: &str| -> String {
            let core = &first.1;
            match core.strip_prefix(u.spelled.as_str()) {
                Some("") => to.to_string(),
                Some(rest) => format!("{to}={}", rest.strip_prefix('=').unwrap_or(rest)),
                None => to.to_string(),
            }
        };
        let note = |rule: Rule, message: String, help: Option<String>| VarNote {
            file: d.file,
            span: at(&(first.0.start..last.0.end)),
            rule,
            message,
            help,
        };
        if u.spec.arity == Arity::Value {
            t.sets.push((u.spec.name.clone(), d.line));
        }
        match u.spec.name.as_str() {
            "destination" => {
                t.tags.extend(u.value.clone());
                edit(at(&first.0), &rename("--tag"));
            }
            "dockerfile" => {
                let value = u.value.as_deref().unwrap_or_default();
                if !value.starts_with(['/', '$', '.']) {
                    t.notes.push(note(
                        Rule::Km011,
                        format!(
                            "`{value}` in `{written}` (line {}): Kaniko looked for it in the working directory, then in the context; buildx only in the working directory",
                            d.line
                        ),
                        Some("check that the path names the Dockerfile Kaniko built".into()),
                    ));
                }
                if u.spelled != "-f" {
                    edit(at(&first.0), &rename("--file"));
                }
            }
            "custom-platform" => edit(at(&first.0), &rename("--platform")),
            "context" => {
                let value = u.value.as_deref().unwrap_or_default();
                let local = value.strip_prefix("dir://").unwrap_or(value);
                if local.contains("://") {
                    return Err(format!(
                        "the remote context `{value}` needs a checkout buildx can read"
                    ));
                }
                t.context = true;
                if u.args.len() == 2 {
                    // `--context DIR`: the flag word and the blank after it go.
                    let next = &flags[u.args.start + 1].0;
                    edit(at(&(first.0.start..next.start)), "");
                    if local != value {
                        edit(at(&(next.start..next.start + "dir://".len())), "");
                    }
                } else {
                    edit(at(&first.0), local);
                }
            }
            _ if u.spec.buildx_spells_it_the_same() => {}
            _ if matches!(u.spec.action, Action::Drop | Action::DropWarn)
                || (u.spec.default == u.enabled
                    && u.enabled.is_some()
                    && u.spec.action != Action::Manual) =>
            {
                let reason = u.spec.reason.clone().unwrap_or_default();
                // As the call's own flags are reported (one mapping).
                let kind = if u.spec.action == Action::DropWarn {
                    NoteKind::Changed
                } else {
                    NoteKind::Dropped
                };
                t.notes.push(note(
                    kind.rule(),
                    format!(
                        "`{}` removed from `{written}` (line {}): {reason}",
                        text[first.0.start..last.0.end].trim(),
                        d.line
                    ),
                    u.spec.todo.clone(),
                ));
                edit(at(&removal(text, first.0.start..last.0.end)), "");
            }
            _ => {
                let instead = u
                    .spec
                    .passthrough
                    .as_deref()
                    .map(|s| format!(" (buildx: {s})"))
                    .unwrap_or_default();
                return Err(format!(
                    "`{}` has no buildx spelling a variable can hold on its own{instead}",
                    u.spelled
                ));
            }
        }
    }
    Ok(())
}

/// The range to delete for words at `r` of `text`: with the blank before
/// them, else the one after.
fn removal(text: &str, r: Range<usize>) -> Range<usize> {
    let before = text[..r.start].len() - text[..r.start].trim_end_matches([' ', '\t']).len();
    if before > 0 {
        return r.start - before..r.end;
    }
    let after = text[r.end..].len() - text[r.end..].trim_start_matches([' ', '\t']).len();
    r.start..r.end + after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_words_and_mentions() {
        assert_eq!(variable_name("$KANIKO_ARGS"), Some("KANIKO_ARGS"));
        assert_eq!(variable_name("${DEST}"), Some("DEST"));
        assert_eq!(variable_name("${DEST:-x}"), None);
        assert_eq!(variable_name("$[[ inputs.x ]]"), None);
        assert_eq!(input_name("$[[ inputs.image_args ]]"), Some("image_args"));
        assert_eq!(input_name("$[[inputs.a-b]]"), Some("a-b"));
        assert_eq!(input_name("$[[ inputs.x | expand_vars ]]"), None);
        assert!(mentions("a $X b", "X"));
        assert!(mentions("${X:-d}", "X"));
        assert!(!mentions("$XY", "X"));
    }

    #[test]
    fn tokens_leave_quotes_out_and_refuse_computed_words() {
        let t = tokens(r#""$X --destination a:1""#).unwrap();
        let cores: Vec<&str> = t.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(cores, ["$X", "--destination", "a:1"]);
        assert_eq!(t[1].0, 4..17);
        assert!(tokens(r#""--build-arg=V=$(date)""#).is_err());
        assert!(tokens(r#""""#).unwrap().is_empty());
    }

    #[test]
    fn removal_takes_one_blank() {
        assert_eq!(removal("\"$X --single-snapshot\"", 4..21), 3..21);
        assert_eq!(removal("--single-snapshot --tag x", 0..17), 0..18);
    }
}
