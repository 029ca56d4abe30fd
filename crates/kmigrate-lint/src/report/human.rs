//! Human output: one miette diagnostic per finding with the offending source
//! span, the rule id and its page, the help text and whether `kmigrate
//! rewrite` can fix it. Colour only when asked (the caller checks the TTY and
//! `NO_COLOR`).

use std::fmt::{self, Write as _};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};

use super::plain;
use super::snippet::{Excerpt, Snippet};
use super::terminal::{escape, escape_inline};
use super::{FileResult, Run, display_path};
use crate::rules::{Finding, Severity};
use crate::source::SourceError;

/// One finding as drawn: every text from input already escaped for the
/// terminal (see [`super::terminal`]), the source cut out around the span.
struct Diag<'a> {
    severity: Severity,
    rule: &'a str,
    message: String,
    source: &'a Excerpt,
    help: Option<String>,
    label: String,
    url: String,
}

/// The text under a finding's span: its severity and whether it is fixable.
fn label(f: &Finding) -> String {
    let label = match &f.fix {
        Some(fix) => format!("{}, fixable: {}", f.severity, fix.description),
        None => format!("{}, no automatic fix", f.severity),
    };
    escape_inline(&label).into_owned()
}

impl Diag<'_> {
    /// The span miette underlines, in the excerpt.
    fn span(&self) -> std::ops::Range<usize> {
        self.source.span.clone()
    }

    /// This diagnostic for [`plain::render`].
    fn plain(&self) -> plain::Plain<'_> {
        plain::Plain {
            code: self.rule,
            url: &self.url,
            severity: self.severity,
            message: &self.message,
            help: self.help.as_deref(),
            source: self.source,
            span: self.span(),
            label: &self.label,
        }
    }
}

impl fmt::Debug for Diag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Diag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag<'_> {}

impl Diagnostic for Diag<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.rule))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.url))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span()),
        )))
    }
}

/// The findings of `run` as miette diagnostics ([`render_errors`] lists the
/// files that could not be checked).
pub fn render(run: &Run, color: bool) -> String {
    let renderer = Renderer::new(color);
    run.files.iter().map(|f| renderer.file(f)).collect()
}

/// The miette handler every human diagnostic is drawn with (`check`'s
/// report, `rewrite`'s notes): the plain theme unless `color`, no links.
pub fn handler(color: bool) -> GraphicalReportHandler {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Break lines at spaces only: an image, a flag (`--cache-from`) or a
    // path is never split at its hyphens or slashes, and the Unicode
    // line-breaking algorithm cost a tenth of a whole check.
    GraphicalReportHandler::new_themed(theme)
        .with_links(false)
        .with_word_separator(textwrap::WordSeparator::AsciiSpace)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation)
}

/// A finding's help as drawn under its diagnostic, where miette would draw
/// it: prose lines wrapped as miette wraps them (textwrap two columns short
/// of the handler's `width`, with its options), code lines ([`plain::is_code`]) never, so a policy or a
/// command is pasted whole.
pub fn help_footer(help: &str, color: bool, width: usize) -> String {
    let styled;
    let initial = if color {
        styled = GraphicalTheme::unicode()
            .styles
            .help
            .style(plain::HELP)
            .to_string();
        styled.as_str()
    } else {
        plain::HELP
    };
    let mut out = String::new();
    for (i, line) in help.split('\n').enumerate() {
        let prefix = if i == 0 { initial } else { plain::HELP_INDENT };
        if plain::is_code(line) {
            out.push_str(prefix);
            out.push_str(line);
        } else {
            let options = textwrap::Options::new(width - 2)
                .initial_indent(prefix)
                .subsequent_indent(plain::HELP_INDENT)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation);
            out.push_str(&textwrap::fill(line, options));
        }
        out.push('\n');
    }
    out
}

/// Renders one file's findings; shared by the threads of a streamed check.
pub struct Renderer {
    handler: GraphicalReportHandler,
    color: bool,
}

impl Renderer {
    pub fn new(color: bool) -> Self {
        Renderer {
            handler: handler(color).with_width(plain::WIDTH),
            color,
        }
    }

    /// `file`'s findings as miette diagnostics, each followed by a blank line.
    pub fn file(&self, file: &FileResult) -> String {
        let mut out = String::new();
        let Some(source) = &file.source else {
            return out;
        };
        if file.findings.is_empty() {
            return out;
        }
        let named = Snippet::new(display_path(&file.path), source);
        let fix_help = format!("`kmigrate rewrite {}` applies the fix", named.name());
        for loc in file.located() {
            let f = loc.finding;
            let mut help = f
                .help
                .as_deref()
                .map(escape)
                .unwrap_or_default()
                .into_owned();
            if f.fix.is_some() {
                if !help.is_empty() {
                    help.push('\n');
                }
                help.push_str(&fix_help);
            }
            let span = f.span.start..f.span.end.max(f.span.start);
            let drawn = named.excerpt(span).is_some_and(|excerpt| {
                let mut diag = Diag {
                    severity: f.severity,
                    rule: f.rule.id(),
                    message: escape(&f.message).into_owned(),
                    source: &excerpt,
                    help: (!help.is_empty()).then_some(help),
                    label: label(f),
                    url: loc.help_url(),
                };
                if !self.color && plain::render(&mut out, &diag.plain()) {
                    return true;
                }
                // miette draws all but the help, which keeps its code
                // lines whole (miette would wrap them).
                let help = diag.help.take();
                let mut rendered = String::new();
                let ok = self.handler.render_report(&mut rendered, &diag).is_ok();
                if ok {
                    out.push_str(&rendered);
                    if let Some(help) = help {
                        out.push_str(&help_footer(&help, self.color, plain::WIDTH));
                    }
                }
                ok
            });
            if !drawn {
                // A span miette cannot show: still report the finding.
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {} {}: {}",
                    named.name(),
                    loc.start.0,
                    loc.start.1,
                    f.severity,
                    f.rule,
                    escape(&f.message)
                );
            }
            out.push('\n');
        }
        out
    }
}

/// The paths and files that could not be checked, one `error:` block each.
pub fn render_errors(errors: &[SourceError]) -> String {
    render_errors_with(errors, &|_| None)
}

/// [`render_errors`], each positioned error with the line `line_of` gives
/// (the text of the error's line, if the file can still be read) and a
/// caret under the column, like a compiler's.
pub fn render_errors_with(
    errors: &[SourceError],
    line_of: &dyn Fn(&SourceError) -> Option<String>,
) -> String {
    let mut out = String::new();
    for e in errors {
        let shown = match (e.position, line_of(e)) {
            (Some((line, col)), Some(text)) => {
                let mut head = e.clone();
                let help = head.help.take();
                let mut shown = format!("{head}\n{}", excerpt(line, col, &text));
                if let Some(help) = help {
                    let _ = write!(shown, "\n  help: {help}");
                }
                shown
            }
            _ => e.to_string(),
        };
        let _ = writeln!(out, "error: {}", escape(&shown));
    }
    out
}

/// At most this many characters of an error's line are shown, around the
/// column (a minified file may be one line of megabytes).
const EXCERPT_CHARS: usize = 120;

/// Line `line` of a file, `text`, with a caret under column `col` (both
/// 1-based, the column in characters).
fn excerpt(line: usize, col: usize, text: &str) -> String {
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    let at = col.saturating_sub(1);
    let start = at.saturating_sub(EXCERPT_CHARS / 2);
    let len = text.chars().count();
    let cut =
        |from: usize, to: usize| -> String { text.chars().skip(from).take(to - from).collect() };
    let end = len.min(start + EXCERPT_CHARS);
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < len { "…" } else { "" };
    // Escaped first, so the caret counts the characters as shown.
    let before = escape_inline(&cut(start, at.clamp(start, end)))
        .chars()
        .count();
    format!(
        "{gutter} |\n{number} | {lead}{}{tail}\n{gutter} | {}^",
        escape_inline(&cut(start, end)),
        " ".repeat(lead.chars().count() + before)
    )
}

/// Line `line` (1-based) of `bytes`, decoded leniently: the line an error
/// points at, for [`render_errors_with`].
pub fn line_of_bytes(bytes: &[u8], line: usize) -> Option<String> {
    let raw = bytes.split(|b| *b == b'\n').nth(line.checked_sub(1)?)?;
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    Some(String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn shows_span_rule_url_help_and_fix_without_colour() {
        let out = render(&testing::run(), false);
        assert!(!out.contains('\u{1b}'), "no escape codes without colour");
        for needle in [
            "KM001 (https://github.com/kmigrate/kmigrate/blob/main/rules/KM001.md)",
            "Cloud Build step runs Kaniko",
            "[ci/cloudbuild.yaml:2:11]",
            "- name: gcr.io/kaniko-project/executor:latest",
            "error, fixable: use the docker builder",
            "rewrite the step to docker buildx build",
            "`kmigrate rewrite ci/cloudbuild.yaml` applies the fix",
            "KM005",
            "warning, no automatic fix",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        // Findings come in file order: KM001 (line 2) before KM005 (line 3).
        assert!(out.find("KM001").unwrap() < out.find("KM005").unwrap());
    }

    #[test]
    fn errors_are_listed_with_position_and_help() {
        assert_eq!(
            render_errors(&testing::run().errors),
            "error: bad/cloudbuild.yaml:3:5: cannot be parsed: bad\n  help: fix it\n"
        );
    }

    #[test]
    fn a_positioned_error_shows_its_line_and_a_caret() {
        let errors = testing::run().errors;
        let out = render_errors_with(&errors, &|_| Some("  - nme\tx".into()));
        assert_eq!(
            out,
            "error: bad/cloudbuild.yaml:3:5: cannot be parsed: bad\n  |\n3 |   - nme\\u{9}x\n  |     ^\n  help: fix it\n"
        );
        // A long line is cut around the column.
        let long = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let shown = excerpt(1, 501, &long);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].chars().count() < 130, "{shown}");
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[1].chars().nth(caret), Some('X'), "{shown}");
        assert_eq!(line_of_bytes(b"a\r\nb\n", 1).as_deref(), Some("a"));
        assert_eq!(line_of_bytes(b"a\nb", 2).as_deref(), Some("b"));
        assert_eq!(line_of_bytes(b"a\nb", 3), None);
    }

    #[test]
    fn a_span_past_the_end_still_reports_the_finding() {
        let mut run = testing::run();
        let len = testing::TEXT.len();
        run.files[0].findings[1].span = len + 5..len + 9;
        let out = render(&run, false);
        assert!(out.contains("KM005"), "{out}");
        assert!(out.contains("--cache-ttl has no equivalent"), "{out}");
    }

    #[test]
    fn long_help_wraps_at_spaces_never_inside_an_image_or_flag() {
        let mut run = testing::run();
        let image = "europe-docker.pkg.dev/my-project/some-repository/app/cache:buildcache";
        let flag = "--cache-from=type=registry,ref=europe-docker.pkg.dev/p/r/app/cache";
        // Enough leading words that each long word straddles the width.
        let words = "word ".repeat(14);
        run.files[0].findings[1].help = Some(format!("{words}{image} {words}{flag} end"));
        let out = render(&run, false);
        for needle in [image, flag] {
            assert!(out.contains(needle), "{needle} was split:\n{out}");
        }
        assert!(out.contains("end"), "{out}");
    }

    #[test]
    fn colour_adds_escape_codes() {
        assert!(render(&testing::run(), true).contains('\u{1b}'));
    }
}
