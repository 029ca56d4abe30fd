//! Each Kaniko job's executor calls parsed against the flag table and
//! converted into `BuildPlan`s, with every reason a call cannot be
//! rewritten exactly.

use std::ops::Range;

use super::detect::{ExecutorCall, ImageMatch, kaniko_use};
use super::flag_vars::{self, Resolution};
use super::job::{Job, Section};
use super::{ImageMatcher, Pipeline};
use std::collections::HashSet;

use super::split::{self, CallName};
use crate::buildx::cache_refs;
use crate::buildx::from_kaniko::{Conversion, ConvertOptions, Note, NoteKind, convert};
use crate::kaniko::{self, Arg};
use crate::shell::Nesting;
use crate::source::Span;

/// One executor call, parsed and converted.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub exec: ExecutorCall,
    /// File the call's line is written in.
    pub file: usize,
    /// Source span of the whole command.
    pub span: Span,
    /// Source span of each argument (after the program word).
    pub arg_spans: Vec<Span>,
    pub call: kaniko::Call,
    pub conversion: Conversion,
    /// Edits of the definitions of the variables the call takes flags from.
    pub var_edits: Vec<super::rewrite::FileEdit>,
    /// Findings about those variables (KM010/KM011 for what their
    /// translation removed, KM015 for what is passed through).
    pub var_notes: Vec<flag_vars::VarNote>,
    /// The images those variables' translated definitions push to.
    pub var_tags: Vec<String>,
}

impl CallInfo {
    /// Source span covering args `r` (the command when `r` is empty).
    pub fn args_span(&self, r: &Range<usize>) -> Span {
        match (
            self.arg_spans.get(r.start),
            r.end.checked_sub(1).and_then(|e| self.arg_spans.get(e)),
        ) {
            (Some(a), Some(b)) if r.end > r.start => a.start..b.end.max(a.end),
            _ => self.span.clone(),
        }
    }

    /// Whether the cache is on for this call.
    pub fn caches(&self) -> bool {
        self.call.enabled("cache")
    }

    /// Why this call cannot be rewritten to another builder exactly.
    pub fn blocker(&self) -> Option<String> {
        if self.conversion.is_blocked() {
            let why = self
                .conversion
                .notes
                .iter()
                .find(|n| n.kind == crate::buildx::from_kaniko::NoteKind::Manual)
                .map(|n| n.message.clone())
                .unwrap_or_default();
            return Some(format!("the executor call needs a manual migration: {why}"));
        }
        None
    }
}

/// A Kaniko job with its calls.
#[derive(Debug, Clone)]
pub struct KanikoJob<'p> {
    pub job: &'p Job,
    pub image: Option<ImageMatch>,
    pub calls: Vec<CallInfo>,
}

impl KanikoJob<'_> {
    /// The job already runs a maintained fork (not the archived image):
    /// nothing to migrate, though several cached builds still leak (KM002).
    pub fn on_fork(&self) -> bool {
        self.image.as_ref().is_some_and(|m| !m.archived)
    }

    /// The job runs the archived project: its image, or an executor call
    /// under an image the table does not know (KM001).
    pub fn archived(&self) -> bool {
        !self.on_fork()
    }

    /// Calls that share one container with another call and the cache on.
    pub fn is_multi_build(&self) -> bool {
        self.calls.len() >= 2 && self.calls.iter().any(CallInfo::caches)
    }

    /// Whether any call sits in a loop (one written call, many builds).
    pub fn loops(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.exec.command.nesting == Nesting::Loop)
    }
}

/// Options for converting calls, fixed for GitLab: the job runs in the
/// project directory (`$CI_PROJECT_DIR`), Kaniko's default context is
/// `/workspace/`.
pub fn convert_options<'a>(p: &'a Pipeline, cache_tag: &'a str) -> ConvertOptions<'a> {
    ConvertOptions {
        cache_tag,
        workdir: PROJECT_DIR,
        default_context: "/workspace/",
        local_workdir: Some(p.root_dir.as_path()),
    }
}

/// Every Kaniko job and template of the pipeline.
pub fn kaniko_jobs<'p>(
    p: &'p Pipeline,
    images: &ImageMatcher,
    cache_tag: &str,
) -> Vec<KanikoJob<'p>> {
    let opts = convert_options(p, cache_tag);
    let mut kjobs: Vec<KanikoJob> = p
        .jobs
        .iter()
        .filter_map(|job| {
            let k = kaniko_use(job, images)?;
            let calls = k
                .calls
                .into_iter()
                .map(|exec| call_info(&p.files, job, exec, &opts))
                .collect();
            Some(KanikoJob {
                job,
                image: k.image,
                calls,
            })
        })
        .collect();
    distinct_cache_refs(&mut kjobs);
    kjobs
}

/// Gives every build of the pipeline (the jobs of all its files, and the
/// jobs a split makes of a multi-build job) that would export to the same
/// registry cache ref as a build of another image its own tag: BuildKit
/// keeps one cache manifest per ref. A call written once (a template used
/// by several jobs) converts the same everywhere, so it is one build.
fn distinct_cache_refs(kjobs: &mut [KanikoJob]) {
    let mut at: Vec<(usize, usize)> = Vec::new();
    let mut uses: Vec<cache_refs::CacheUse> = Vec::new();
    for (ji, k) in kjobs.iter().enumerate() {
        let split_names = (k.calls.len() > 1).then(|| {
            let parts: Vec<CallName> = k
                .calls
                .iter()
                .map(|c| CallName::of(&c.conversion.plan))
                .collect();
            split::names(&k.job.name, &parts, &HashSet::new()).jobs
        });
        for (ci, c) in k.calls.iter().enumerate() {
            let Some(r) = c
                .conversion
                .cache_ref
                .as_deref()
                .filter(|_| !c.conversion.is_blocked())
            else {
                continue;
            };
            let own = match &split_names {
                Some(names) => names[ci].clone(),
                None => k.job.name.clone(),
            };
            let part = CallName::of(&c.conversion.plan);
            let mut names = vec![own];
            names.extend(part.suffixes[1].clone());
            names.extend(part.image.clone());
            names.extend(part.suffixes[2].clone());
            at.push((ji, ci));
            uses.push(cache_refs::CacheUse {
                cache_ref: r,
                plan: &c.conversion.plan,
                names,
            });
        }
    }
    let assigned = cache_refs::assign(&uses);
    drop(uses);
    for ((ji, ci), t) in at.into_iter().zip(assigned) {
        if let Some(t) = t {
            let c = &mut kjobs[ji].calls[ci];
            cache_refs::retag(&mut c.conversion, &c.call, &t.new_ref, &t.others);
        }
    }
}

fn call_info(
    files: &[crate::source::SourceFile],
    job: &Job,
    exec: ExecutorCall,
    opts: &ConvertOptions,
) -> CallInfo {
    let line = exec.script_line(job);
    let arg_spans: Vec<Span> = exec
        .args()
        .iter()
        .map(|w| line.source_range(w.span.clone()))
        .collect();
    let words = exec.args();
    let args: Vec<Arg> = words
        .iter()
        .enumerate()
        .zip(&arg_spans)
        .map(|((i, w), s)| Arg {
            text: mark_project_dir(&w.dq),
            span: Some(s.clone()),
            // `--context $CI_PROJECT_DIR`: a variable in a value position is
            // one value (GitLab's variables hold paths and references, and
            // Kaniko reads the split words the same way), not a flag list.
            dynamic: w.is_bare_expansion() && !(i > 0 && takes_separate_value(&words[i - 1].dq)),
        })
        .collect();
    // Variables standing for flags: followed to their definitions.
    // A quoted `"$X"` in a flag's place is one argument: one flag.
    let quoted = |i: usize, w: &crate::shell::Word| {
        !w.unquoted_expansion
            && (flag_vars::variable_name(&w.dq).is_some() || flag_vars::input_name(&w.dq).is_some())
            && !(i > 0 && takes_separate_value(&words[i - 1].dq))
    };
    let resolved: Vec<(usize, String, Resolution)> = words
        .iter()
        .enumerate()
        .filter(|(i, w)| args[*i].dynamic || quoted(*i, w))
        .filter_map(|(i, w)| {
            let written = &line.text[w.span.clone()];
            let at = (line.origin.file, arg_spans[i].clone());
            let r = if let Some(input) = flag_vars::input_name(&w.dq) {
                flag_vars::resolve_input(files, line.origin.file, input, written, at)
            } else {
                let name = flag_vars::variable_name(&w.dq)?;
                flag_vars::resolve(files, job, &exec, name, written, at)
            };
            let r = match r {
                Resolution::Translated { t, .. } if quoted(i, w) && t.not_one_word => {
                    Resolution::Blocked {
                        message: format!("`{written}` is one argument, and a value it is set to is not exactly one flag"),
                        help: "write the flag out in the call, or migrate this call by hand".into(),
                    }
                }
                r => r,
            };
            Some((i, written.to_string(), r))
        })
        .collect();
    let mut call = kaniko::call::parse(args);
    let var_tags: Vec<String> = resolved
        .iter()
        .filter_map(|(_, _, r)| match r {
            Resolution::Translated { t, .. } => Some(t.tags.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let (var_edits, var_notes, passthrough, var_context) = apply_resolutions(&mut call, &resolved);
    let mut conversion = convert(&call, opts);
    if !passthrough.is_empty() && !conversion.is_blocked() {
        conversion.plan.passthrough = passthrough;
    }
    if var_context {
        // A variable holds the context (and Kaniko's default Dockerfile
        // in it is buildx's too, unless the call names one).
        conversion.plan.context.clear();
        if call.value("dockerfile").is_none() {
            conversion.plan.dockerfile = None;
        }
    } else {
        note_default_context(&call, &mut conversion);
    }
    unmark_plan(&mut conversion.plan);
    for n in &mut conversion.notes {
        unmark(&mut n.message);
        if let Some(h) = &mut n.help {
            unmark(h);
        }
    }
    if let Some(r) = &mut conversion.cache_ref {
        unmark(r);
    }
    CallInfo {
        file: line.origin.file,
        span: line.source_range(exec.command.span.clone()),
        arg_spans,
        exec,
        call,
        conversion,
        var_edits,
        var_notes,
        var_tags,
    }
}

/// What the call's variables mean for it: their problems answered (or made
/// precise), and the edits, notes and passed-through words they bring.
#[allow(clippy::type_complexity)]
fn apply_resolutions(
    call: &mut kaniko::Call,
    resolved: &[(usize, String, Resolution)],
) -> (
    Vec<super::rewrite::FileEdit>,
    Vec<flag_vars::VarNote>,
    Vec<String>,
    bool,
) {
    let mut edits = Vec::new();
    let mut notes = Vec::new();
    let mut words = Vec::new();
    let mut contexts = 0;
    let mut blocked: Vec<(usize, String, String)> = Vec::new();
    for (i, written, r) in resolved {
        match r {
            Resolution::Translated { t, outside } => {
                contexts += usize::from(t.context);
                let clash = t
                    .sets
                    .iter()
                    .find(|(flag, _)| call.value(flag).is_some())
                    .map(|(flag, line)| (flag.clone(), *line));
                if let Some((flag, line)) = clash {
                    blocked.push((
                        *i,
                        format!(
                            "`{}` sets `--{flag}` on line {line}, and so does the call: kmigrate does not decide which one wins",
                            call.args[*i].text
                        ),
                        "keep the flag in one place, or migrate this call by hand".into(),
                    ));
                    continue;
                }
                if t.context
                    && let Some(d) = call.value("dockerfile")
                    && !d.starts_with(['/', '$'])
                {
                    blocked.push((
                        *i,
                        format!(
                            "`{}` holds the context and the call names the Dockerfile `{d}`, which Kaniko looked for in that context",
                            call.args[*i].text
                        ),
                        "give the Dockerfile as an absolute path, or migrate this call by hand".into(),
                    ));
                    continue;
                }
                edits.extend(t.edits.iter().cloned());
                notes.extend(t.notes.iter().cloned());
                notes.extend(outside.iter().cloned());
                words.push(written.clone());
            }
            Resolution::Passthrough(note) => {
                notes.push(note.clone());
                words.push(written.clone());
            }
            Resolution::Blocked { message, help } => {
                blocked.push((*i, message.clone(), help.clone()))
            }
        }
    }
    if contexts > 0
        && (contexts > 1 || call.value("context").is_some())
        && let Some((i, _, _)) = resolved.first()
    {
        blocked.push((
            *i,
            "the build context is given more than once (in the call or in several variables)"
                .into(),
            "keep one `--context`, or migrate this call by hand".into(),
        ));
    }
    let answered: Vec<usize> = resolved.iter().map(|(i, _, _)| *i).collect();
    call.problems.retain(|p| {
        !(p.args.len() == 1 && answered.contains(&p.args.start))
            || blocked.iter().any(|(i, _, _)| *i == p.args.start)
    });
    for p in call.problems.iter_mut() {
        if let Some((_, m, h)) = blocked.iter().find(|(i, _, _)| p.args == (*i..*i + 1)) {
            p.message = m.clone();
            p.help = h.clone();
        }
    }
    for (i, m, h) in &blocked {
        if !call.problems.iter().any(|p| p.args == (*i..*i + 1)) {
            call.problems.push(kaniko::CallProblem {
                kind: kaniko::ProblemKind::Unknowable,
                args: *i..*i + 1,
                message: m.clone(),
                help: h.clone(),
            });
        }
    }
    if !blocked.is_empty() {
        return (Vec::new(), Vec::new(), Vec::new(), false);
    }
    (edits, notes, words, contexts > 0)
}

/// Kaniko's default context, `/workspace/`, is a directory of the Kaniko
/// image, not the project checkout a GitLab job runs in: the rewrite keeps
/// it (that is what Kaniko built) but never silently. A `--context` that is
/// written but could not be read is no default at all: that build stays.
fn note_default_context(call: &kaniko::Call, out: &mut Conversion) {
    if call.value("context").is_some() || out.is_blocked() {
        return;
    }
    let written = call.args.iter().position(|a| {
        a.text == "-c" || a.text.starts_with("--context") && !a.text.starts_with("--context-")
    });
    out.notes.push(match written {
        Some(i) => Note {
            kind: NoteKind::Manual,
            args: i..i + 1,
            message: "the build context is written but kmigrate cannot read it".into(),
            help: Some("give `--context` one value (e.g. `--context \"$CI_PROJECT_DIR\"`), or migrate this call by hand".into()),
        },
        None => Note {
            kind: NoteKind::Changed,
            args: 0..0,
            message: "no `--context`: Kaniko built its default `/workspace/`, which in a GitLab job is not the project directory; the rewrite builds `/workspace` too".into(),
            help: Some("if the project was meant, write `--context \"$CI_PROJECT_DIR\"` in the new call".into()),
        },
    });
}

/// Stands for `$CI_PROJECT_DIR` (the job's working directory) while a call
/// is converted, so paths under it read as absolute paths in the working
/// directory: `--context $CI_PROJECT_DIR/app` becomes the context `app`.
const PROJECT_DIR: &str = "/kmigrate-ci-project-dir";

/// Replaces a leading `$CI_PROJECT_DIR` / `${CI_PROJECT_DIR}` of a value
/// (`--flag=VALUE` or a whole word) with [`PROJECT_DIR`].
fn mark_project_dir(text: &str) -> String {
    let (head, value) = match text.split_once('=') {
        Some((h, v)) if h.starts_with('-') => (format!("{h}="), v),
        _ => (String::new(), text),
    };
    for var in ["${CI_PROJECT_DIR}", "$CI_PROJECT_DIR"] {
        if let Some(rest) = value.strip_prefix(var)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{head}{PROJECT_DIR}{rest}");
        }
    }
    text.to_string()
}

/// Puts `$CI_PROJECT_DIR` back where the marker survived conversion.
fn unmark(s: &mut String) {
    if s.contains(PROJECT_DIR) {
        *s = s.replace(PROJECT_DIR, "$CI_PROJECT_DIR");
    }
}

fn unmark_plan(plan: &mut crate::buildx::BuildPlan) {
    unmark(&mut plan.context);
    if let Some(d) = &mut plan.dockerfile {
        unmark(d);
    }
    plan.tags.iter_mut().for_each(unmark);
    for a in &mut plan.build_args {
        if let Some(v) = &mut a.value {
            unmark(v);
        }
    }
    for list in [&mut plan.cache_from, &mut plan.cache_to, &mut plan.outputs] {
        for attrs in list.iter_mut() {
            for (_, v) in attrs.attrs.iter_mut() {
                unmark(v);
            }
        }
    }
    plan.secrets.iter_mut().for_each(unmark);
    if let Some(m) = &mut plan.metadata_file {
        unmark(m);
    }
}

/// Whether `word` is a Kaniko flag whose value is the next word.
fn takes_separate_value(word: &str) -> bool {
    let table = kaniko::FlagTable::get();
    let spec = if let Some(long) = word.strip_prefix("--") {
        if long.contains('=') {
            return false;
        }
        table.long(long)
    } else if let Some(short) = word.strip_prefix('-') {
        let mut chars = short.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => table.short(c),
            _ => None,
        }
    } else {
        None
    };
    spec.is_some_and(|s| s.arity != kaniko::Arity::Bool)
}

/// Where a section's lines are written, when all in one sequence of one
/// mapping: the file and the sequence's span.
pub fn section_home(job: &Job, section: Section) -> Option<(usize, Span)> {
    let node = job.config.get(section.key())?;
    Some((node.origin.file, node.origin.span.clone()))
}
