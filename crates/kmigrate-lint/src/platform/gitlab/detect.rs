//! Which jobs run Kaniko, and where each executor call is written.
//!
//! A job is Kaniko when its resolved image matches `rules/images.yaml`, or
//! when a resolved script line invokes `/kaniko/executor` (or bare
//! `executor` under a Kaniko image, where `/kaniko` is on `PATH`).

use std::ops::Range;
use std::sync::OnceLock;

use super::job::{Job, ScriptLine, Section};
use crate::shell::{self, Command};

/// Which images are Kaniko: the table in `rules/images.yaml`, as the
/// `kaniko` module reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageMatcher;

/// A matched image pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMatch {
    /// The pattern's `id` in `rules/images.yaml`.
    pub id: String,
    /// How messages name the image (its `name` in the table).
    pub name: &'static str,
    /// `executor` or `warmer`.
    pub kind: String,
    /// An image of the archived project, not a maintained fork.
    pub archived: bool,
}

impl ImageMatcher {
    /// The table shipped in `rules/images.yaml`.
    pub fn builtin() -> &'static ImageMatcher {
        static M: ImageMatcher = ImageMatcher;
        &M
    }

    /// The pattern `image` matches, if any.
    pub fn matches(&self, image: &str) -> Option<ImageMatch> {
        crate::kaniko::match_image(image).map(|m| ImageMatch {
            id: m.id.to_string(),
            name: m.name,
            kind: match m.kind {
                crate::kaniko::ImageKind::Executor => "executor".into(),
                crate::kaniko::ImageKind::Warmer => "warmer".into(),
            },
            archived: m.archived,
        })
    }
}

/// Expands `$NAME` and `${NAME}` from the job's variables (a few rounds,
/// for variables defined through other variables); unknown names stay.
pub fn expand_variables(job: &Job, text: &str) -> String {
    let re = variable_re();
    let mut cur = text.to_string();
    for _ in 0..4 {
        let next = re
            .replace_all(&cur, |c: &regex::Captures| {
                let name = c
                    .get(1)
                    .or_else(|| c.get(2))
                    .map(|m| m.as_str())
                    .unwrap_or("");
                match job.variable(name) {
                    Some(v) => v.to_string(),
                    None => c[0].to_string(),
                }
            })
            .into_owned();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn variable_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
            .expect("valid regex")
    })
}

/// The Kaniko image pattern the job's image matches (as written, or with
/// its variables expanded).
pub fn kaniko_image(job: &Job, images: &ImageMatcher) -> Option<ImageMatch> {
    let name = &job.image.as_ref()?.name.value;
    images
        .matches(name)
        .or_else(|| images.matches(&expand_variables(job, name)))
}

/// One executor invocation in a job's script.
#[derive(Debug, Clone)]
pub struct ExecutorCall {
    pub section: Section,
    /// Index of the line in the job's list for `section`.
    pub line: usize,
    /// The command; word spans are byte ranges of the line's text (map them
    /// to the file with [`ScriptLine::source_range`]).
    pub command: Command,
    /// Index of the program word in `command.words`.
    pub program: usize,
}

impl ExecutorCall {
    /// The arguments after the program word.
    pub fn args(&self) -> &[shell::Word] {
        &self.command.words[self.program + 1..]
    }

    /// The line the call is written on.
    pub fn script_line<'j>(&self, job: &'j Job) -> &'j ScriptLine {
        &job.section(self.section)[self.line]
    }
}

/// A script section parsed as one shell script (GitLab runs the lines of
/// a section in one shell, so an `if` may open on one line and close on a
/// later one).
#[derive(Debug, Clone)]
pub struct ParsedSection {
    pub script: shell::Script,
    /// Byte range of each line in the joined text.
    pub line_ranges: Vec<Range<usize>>,
}

impl ParsedSection {
    /// Parses the lines of `section`.
    pub fn parse(lines: &[ScriptLine]) -> Self {
        let mut text = String::new();
        let mut line_ranges = Vec::new();
        for l in lines {
            let start = text.len();
            text.push_str(&l.text);
            line_ranges.push(start..text.len());
            text.push('\n');
        }
        ParsedSection {
            script: shell::parse(&text),
            line_ranges,
        }
    }

    /// The line holding `range` (joined-text offsets) and the range
    /// relative to that line, when it lies within one line.
    pub fn locate(&self, range: &Range<usize>) -> Option<(usize, Range<usize>)> {
        let i = self
            .line_ranges
            .iter()
            .position(|r| r.start <= range.start && range.start <= r.end)?;
        let r = &self.line_ranges[i];
        (range.end <= r.end).then(|| (i, range.start - r.start..range.end - r.start))
    }

    /// The commands written on line `i`, with spans relative to that line.
    pub fn commands_on(&self, i: usize) -> Vec<Command> {
        let mut out = Vec::new();
        for c in &self.script.commands {
            if let Some((line, _)) = self.locate(&c.span)
                && line == i
            {
                out.push(shift(c, self.line_ranges[i].start));
            }
        }
        out
    }
}

fn shift(c: &Command, by: usize) -> Command {
    let mv = |r: &Range<usize>| r.start.saturating_sub(by)..r.end.saturating_sub(by);
    let mut c = c.clone();
    c.span = mv(&c.span);
    for w in c.words.iter_mut().chain(c.assignments.iter_mut()) {
        w.span = mv(&w.span);
    }
    c
}

/// True when `word` (a command's program word) runs the Kaniko executor.
pub fn is_executor_word(word: &shell::Word, under_kaniko_image: bool) -> bool {
    match word.literal() {
        Some(lit) => {
            lit == "/kaniko/executor"
                || lit.ends_with("/kaniko/executor")
                || (under_kaniko_image && lit == "executor")
        }
        // `${KANIKO_BIN:-/kaniko/executor}`, `$KANIKO_DIR/executor`.
        None => {
            word.dq.contains("/kaniko/executor")
                || (word.dq.contains("KANIKO") && word.dq.ends_with("/executor"))
        }
    }
}

/// Every executor call in the job's scripts, in run order.
pub fn executor_calls(job: &Job, images: &ImageMatcher) -> Vec<ExecutorCall> {
    executor_calls_under(job, kaniko_image(job, images).as_ref())
}

/// [`executor_calls`] for a job whose image matches `image`: a bare
/// `executor` runs Kaniko only under an executor image.
fn executor_calls_under(job: &Job, image: Option<&ImageMatch>) -> Vec<ExecutorCall> {
    let under_image = image.is_some_and(|m| m.kind == "executor");
    let mut out = Vec::new();
    for section in [Section::BeforeScript, Section::Script, Section::AfterScript] {
        if job.section(section).is_empty() {
            continue;
        }
        let parsed = job.parsed(section);
        for c in &parsed.script.commands {
            let Some((program, word)) = c.program() else {
                continue;
            };
            if !is_executor_word(word, under_image) {
                continue;
            }
            let Some((line, _)) = parsed.locate(&c.span) else {
                continue;
            };
            out.push(ExecutorCall {
                section,
                line,
                command: shift(c, parsed.line_ranges[line].start),
                program,
            });
        }
    }
    out
}

/// Why a job counts as Kaniko.
#[derive(Debug, Clone)]
pub struct KanikoUse {
    /// The image pattern the job's image matches.
    pub image: Option<ImageMatch>,
    pub calls: Vec<ExecutorCall>,
}

/// The job's Kaniko use, or `None` when it does not run Kaniko.
pub fn kaniko_use(job: &Job, images: &ImageMatcher) -> Option<KanikoUse> {
    let image = kaniko_image(job, images);
    let calls = executor_calls_under(job, image.as_ref());
    (image.is_some() || !calls.is_empty()).then_some(KanikoUse { image, calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_come_from_the_rules_table() {
        let m = ImageMatcher::builtin();
        assert_eq!(
            m.matches("gcr.io/kaniko-project/executor:debug")
                .unwrap()
                .kind,
            "executor"
        );
        assert_eq!(
            m.matches("gcr.io/kaniko-project/warmer:latest")
                .unwrap()
                .kind,
            "warmer"
        );
        assert!(m.matches("docker:28.5-cli").is_none());
    }

    #[test]
    fn executor_words() {
        let w = |s: &str| shell::parse(s).commands[0].words[0].clone();
        assert!(is_executor_word(&w("/kaniko/executor"), false));
        assert!(is_executor_word(
            &w("\"${KANIKO_BIN:-/kaniko/executor}\""),
            false
        ));
        assert!(is_executor_word(&w("$KANIKO_DIR/executor"), false));
        assert!(is_executor_word(&w("executor"), true));
        assert!(!is_executor_word(&w("executor"), false));
        assert!(!is_executor_word(&w("/usr/bin/docker"), true));
    }
}
