//! Each Kaniko job's executor calls parsed against the flag table and
//! converted into `BuildPlan`s, with every reason a call cannot be
//! rewritten exactly.

use std::ops::Range;

use super::detect::{ExecutorCall, ImageMatch, kaniko_use};
use super::job::{Job, Section};
use super::{ImageMatcher, Pipeline};
use crate::buildx::from_kaniko::{Conversion, ConvertOptions, convert};
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
        workdir: "$CI_PROJECT_DIR",
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
    p.jobs
        .iter()
        .filter_map(|job| {
            let k = kaniko_use(job, images)?;
            let calls = k
                .calls
                .into_iter()
                .map(|exec| call_info(job, exec, &opts))
                .collect();
            Some(KanikoJob {
                job,
                image: k.image,
                calls,
            })
        })
        .collect()
}

fn call_info(job: &Job, exec: ExecutorCall, opts: &ConvertOptions) -> CallInfo {
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
            text: w.dq.clone(),
            span: Some(s.clone()),
            // `--context $CI_PROJECT_DIR`: a variable in a value position is
            // one value (GitLab's variables hold paths and references, and
            // Kaniko reads the split words the same way), not a flag list.
            dynamic: w.is_bare_expansion() && !(i > 0 && takes_separate_value(&words[i - 1].dq)),
        })
        .collect();
    let call = kaniko::call::parse(args);
    let conversion = convert(&call, opts);
    CallInfo {
        file: line.origin.file,
        span: line.source_range(exec.command.span.clone()),
        arg_spans,
        exec,
        call,
        conversion,
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
