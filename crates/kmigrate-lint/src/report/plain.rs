//! A direct renderer for the common shape of a human diagnostic, writing
//! the bytes miette's graphical handler would.
//!
//! A `check` of a large monorepo prints many megabytes of diagnostics, and
//! miette spent over a quarter of such a run laying them out: it re-wraps
//! every message and help text through textwrap's general machinery and
//! allocates per line. Nearly every finding has the same simple shape: no
//! colour, one label on one line, ASCII text around it, ASCII message and
//! help. [`render`] writes that shape straight into the output and answers
//! `false` for anything else (colour, a span over several lines, tabs,
//! non-ASCII or control characters, a lone `\r` line break), which miette
//! then draws as before. A test compares the two byte for byte on generated
//! diagnostics, so miette stays the reference for the layout.

use std::ops::Range;

use super::snippet::Excerpt;
use crate::rules::Severity;

/// The width [`super::human::Renderer`] gives miette; text wraps two
/// columns short of it, as miette's does.
pub const WIDTH: usize = 100;

/// One diagnostic to draw: what `Diag` (in `human.rs`) tells miette.
pub struct Plain<'a> {
    pub code: &'a str,
    pub url: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub help: Option<&'a str>,
    pub source: &'a Excerpt,
    pub span: Range<usize>,
    pub label: &'a str,
}

/// Appends `d` to `out` as miette's plain unicode theme at [`WIDTH`] draws
/// it, and answers `true`; answers `false`, leaving `out` as it was, when
/// `d` is not of the shape this renderer covers.
pub fn render(out: &mut String, d: &Plain<'_>) -> bool {
    let Some(window) = Window::read(d) else {
        return false;
    };
    if !plain_text(d.message) || !d.help.is_none_or(plain_text) || d.label.contains(['\n', '\r']) {
        return false;
    }
    for piece in [d.code, " (", d.url, ")\n\n"] {
        out.push_str(piece);
    }
    let icon = match d.severity {
        Severity::Error => "  × ",
        Severity::Warning => "  ⚠ ",
        Severity::Info => "  ☞ ",
    };
    fill(out, d.message, icon, "  │ ");
    window.draw(out, d);
    if let Some(text) = d.help {
        help(out, text);
    }
    true
}

/// How the first line of a help text starts.
pub const HELP: &str = "  help: ";
/// How the next lines of a help text start.
pub const HELP_INDENT: &str = "        ";

/// Whether a help line is code to paste (a cleanup policy, a command): one
/// indented by two spaces, as Markdown indents code. Code is never wrapped:
/// a JSON document or a command broken across lines breaks when pasted.
pub fn is_code(line: &str) -> bool {
    line.starts_with("  ") && !line.trim().is_empty()
}

/// Appends `text` as the help under a diagnostic: each prose line wrapped
/// as miette wraps it, each code line ([`is_code`]) as it stands.
fn help(out: &mut String, text: &str) {
    for (i, line) in text.split('\n').enumerate() {
        let prefix = if i == 0 { HELP } else { HELP_INDENT };
        if is_code(line) {
            out.push_str(prefix);
            out.push_str(line);
            out.push('\n');
        } else {
            fill(out, line, prefix, HELP_INDENT);
        }
    }
}

/// Text miette measures one column per byte: printable ASCII and `\n`.
fn plain_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
}

/// The source lines miette shows around the span: the span's line and one
/// line of context on each side.
struct Window<'a> {
    /// `(1-based number, byte offset, text without its line break)`.
    lines: Vec<(usize, usize, &'a str)>,
    /// Index in `lines` of the span's line.
    at: usize,
}

impl<'a> Window<'a> {
    /// The window of `d`'s span, when the span is non-empty, lies within one
    /// line's text, and every line shown is printable ASCII.
    fn read(d: &Plain<'a>) -> Option<Self> {
        let source = d.source;
        if d.span.is_empty() || d.span.end > source.text().len() {
            return None;
        }
        // miette shows the line before the span's and the line after it,
        // when there is one (a final line break starts no line), numbered
        // from the file's first line. Read from the excerpt's line index
        // instead of miette's scan.
        let at_line = source.line_of(d.span.start);
        let first = at_line.saturating_sub(1);
        let mut lines = Vec::with_capacity(3);
        for index in first..=at_line + 1 {
            let Some((number, start, line)) = source.line(index) else {
                break;
            };
            if index > at_line && start >= source.text().len() {
                break;
            }
            if !line.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                return None;
            }
            lines.push((number, start, line));
        }
        let at = at_line - first;
        let (_, start, line) = lines[at];
        (d.span.end <= start + line.len()).then_some(Window { lines, at })
    }

    /// The framed snippet: a header with the span's position, the numbered
    /// lines, and under the span's line its underline and label.
    fn draw(&self, out: &mut String, d: &Plain<'_>) {
        // Pushed piece by piece: `write!` with padding cost more than the
        // rest of the drawing.
        let width = digits(self.lines.last().map_or(0, |l| l.0));
        let (_, line_start, _) = self.lines[self.at];
        // The position in the file, not in the excerpt.
        let (number, column) = d.source.position();
        spaces(out, width + 2);
        out.push_str("╭─[");
        out.push_str(d.source.name());
        out.push(':');
        number_in(out, number, 0);
        out.push(':');
        number_in(out, column, 0);
        out.push_str("]\n");
        for (i, &(number, _, text)) in self.lines.iter().enumerate() {
            out.push(' ');
            number_in(out, number, width);
            out.push_str(" │ ");
            out.push_str(text);
            out.push('\n');
            if i != self.at {
                continue;
            }
            let start = d.span.start - line_start;
            let end = d.span.end - line_start;
            let bar = (start + end) / 2;
            no_number(out, width);
            spaces(out, start);
            repeat(out, '─', bar - start);
            out.push('┬');
            repeat(out, '─', end - bar - 1);
            out.push('\n');
            no_number(out, width);
            spaces(out, bar);
            out.push_str("╰── ");
            out.push_str(d.label);
            out.push('\n');
        }
        spaces(out, width + 2);
        out.push_str("╰────\n");
    }
}

/// The gutter of a line without a number: ` {width spaces} · `.
fn no_number(out: &mut String, width: usize) {
    out.push(' ');
    spaces(out, width);
    out.push_str(" · ");
}

/// `n` in decimal, right-aligned in `width` columns.
fn number_in(out: &mut String, n: usize, width: usize) {
    let mut digits_buf = [0u8; 20];
    let mut at = digits_buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits_buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let written = &digits_buf[at..];
    spaces(out, width.saturating_sub(written.len()));
    out.push_str(std::str::from_utf8(written).expect("ASCII digits"));
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn spaces(out: &mut String, n: usize) {
    repeat(out, ' ', n);
}

fn repeat(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

/// Appends `text` wrapped as miette wraps it (textwrap's first-fit at
/// `WIDTH - 2` columns, words separated by ASCII spaces, no hyphenation,
/// words too long for a line broken), each output line prefixed with
/// `initial` (the first) or `subsequent` (the rest), then a line break.
/// `text` is [`plain_text`]; the prefixes are one column per character.
fn fill(out: &mut String, text: &str, initial: &str, subsequent: &str) {
    let width = WIDTH - 2;
    let widths = [
        width.saturating_sub(initial.chars().count()),
        width.saturating_sub(subsequent.chars().count()),
    ];
    let mut first = true;
    let mut words = Vec::new();
    for line in text.split('\n') {
        // textwrap puts an empty word first, so the first real word may
        // move to the second line when it does not fit the first.
        words.clear();
        words.push(Word::EMPTY);
        split_words(line, widths[1], &mut words);
        let mut emitted = 0;
        let mut from = 0;
        let mut used = 0;
        for (i, word) in words.iter().enumerate() {
            let limit = widths[emitted.min(1)];
            if used + word.width() > limit && i > from {
                emit(out, line, &words[from..i], &mut first, initial, subsequent);
                emitted += 1;
                from = i;
                used = 0;
            }
            used += word.width() + word.space();
        }
        emit(out, line, &words[from..], &mut first, initial, subsequent);
    }
}

/// One output line of [`fill`]: its prefix, then its words as they stand
/// in `line` without the last word's trailing spaces.
fn emit(
    out: &mut String,
    line: &str,
    words: &[Word],
    first: &mut bool,
    initial: &str,
    subsequent: &str,
) {
    out.push_str(if *first { initial } else { subsequent });
    *first = false;
    if let (Some(head), Some(last)) = (words.first(), words.last()) {
        out.push_str(&line[head.start..last.end]);
    }
    out.push('\n');
}

/// A word of a line: bytes `start..end`, then spaces up to `spaced`.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    spaced: usize,
}

impl Word {
    const EMPTY: Word = Word {
        start: 0,
        end: 0,
        spaced: 0,
    };

    fn width(&self) -> usize {
        self.end - self.start
    }

    fn space(&self) -> usize {
        self.spaced - self.end
    }
}

/// `line`'s words as textwrap's `AsciiSpace` separator finds them (each a
/// run of non-spaces and the spaces after it; leading spaces are an empty
/// word), words wider than `max` broken into pieces of `max` columns, the
/// last piece keeping the spaces.
fn split_words(line: &str, max: usize, words: &mut Vec<Word>) {
    let bytes = line.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start;
        while end < bytes.len() && bytes[end] != b' ' {
            end += 1;
        }
        let mut spaced = end;
        while spaced < bytes.len() && bytes[spaced] == b' ' {
            spaced += 1;
        }
        let mut piece = start;
        while end - piece > max {
            words.push(Word {
                start: piece,
                end: piece + max,
                spaced: piece + max,
            });
            piece += max;
        }
        words.push(Word {
            start: piece,
            end,
            spaced,
        });
        start = spaced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snippet::Snippet;
    use crate::source::SourceFile;
    use crate::test_rng::Rng;
    use miette::{Diagnostic, GraphicalReportHandler, LabeledSpan, SourceCode};
    use std::fmt;
    use std::path::Path;

    /// The same diagnostic as miette sees it.
    struct Reference<'a>(&'a Plain<'a>);

    impl fmt::Debug for Reference<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0.message)
        }
    }

    impl fmt::Display for Reference<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0.message)
        }
    }

    impl std::error::Error for Reference<'_> {}

    impl Diagnostic for Reference<'_> {
        fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
            Some(Box::new(self.0.code))
        }
        fn severity(&self) -> Option<miette::Severity> {
            Some(match self.0.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
                Severity::Info => miette::Severity::Advice,
            })
        }
        fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
            Some(Box::new(self.0.url))
        }
        fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
            self.0.help.map(|h| Box::new(h) as Box<dyn fmt::Display>)
        }
        fn source_code(&self) -> Option<&dyn SourceCode> {
            Some(self.0.source)
        }
        fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
            Some(Box::new(std::iter::once(
                LabeledSpan::new_primary_with_span(
                    Some(self.0.label.to_string()),
                    self.0.span.clone(),
                ),
            )))
        }
    }

    /// `d` as `check` draws it through miette: miette without the help,
    /// then the help footer (whose prose lines textwrap wraps).
    fn miette(handler: &GraphicalReportHandler, d: &Plain<'_>) -> Option<String> {
        let mut out = String::new();
        let bare = Plain {
            help: None,
            span: d.span.clone(),
            ..*d
        };
        handler.render_report(&mut out, &Reference(&bare)).ok()?;
        if let Some(help) = d.help {
            out.push_str(&super::super::human::help_footer(help, false, WIDTH));
        }
        Some(out)
    }

    /// Words of many lengths (up to past a whole line), separated by
    /// one or more spaces, sometimes with leading, trailing or doubled
    /// spaces, empty lines, or (rarely) a character the fast path
    /// refuses.
    fn text(g: &mut Rng) -> String {
        let mut text = String::new();
        for _ in 0..g.below(40) {
            let word = match g.below(20) {
                0 => "x".repeat(90 + g.below(120)),
                1 => "\n".into(),
                2 => "  ".into(),
                3 => "`europe-docker.pkg.dev/$PROJECT_ID/app/cache:buildcache`".into(),
                4 if g.below(20) == 0 => g.pick(&["é", "\t", "\u{1b}[1m", "—"]).into(),
                _ => "abcdefghijkl"[..1 + g.below(12)].into(),
            };
            text.push_str(&word);
            text.push_str(g.pick(&[" ", " ", " ", "  ", "", "\n"]));
        }
        text
    }

    /// A YAML text of top-level keys and comment lines (which may hold
    /// a tab, non-ASCII, a lone `\r`), with LF or CRLF line breaks,
    /// sometimes without a final one.
    fn source(g: &mut Rng) -> String {
        let mut text = String::new();
        let newline = g.pick(&["\n", "\n", "\r\n"]);
        for i in 0..1 + g.below(14) {
            let line = match g.below(24) {
                0 => String::new(),
                1 => g.pick(&["#a:\tb", "# é", "# x\r# y", "  # ☞"]).into(),
                // What a hostile file holds: escapes both paths must show
                // escaped, the same way.
                2 => g
                    .pick(&[
                        "# \u{1b}]0;OWNED\u{7}\u{1b}[2J",
                        "k: \u{202e}x\u{2066} # \u{9b}1m",
                        "# \u{7f}\u{85}\u{8}",
                    ])
                    .into(),
                // Long lines, cut around the span (some far past the cut).
                3 if g.below(2) == 0 => format!("k{i}: [{}]", "abc, ".repeat(g.below(300))),
                3 => format!("k{i}: --destination={}", "r".repeat(g.below(150))),
                4 => " ".repeat(g.below(6)) + "# comment",
                _ => format!("k{i}: {}", &"value with words"[..1 + g.below(15)]),
            };
            text.push_str(&line);
            text.push_str(newline);
        }
        if g.below(4) == 0 {
            text.pop();
        }
        text
    }

    #[test]
    fn draws_what_miette_draws() {
        let handler = super::super::human::handler(false).with_width(WIDTH);
        let mut g = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut drawn, mut escaped, mut cut) = (0, 0, 0);
        let cases = 4000;
        for case in 0..cases {
            let yaml = source(&mut g);
            let source = SourceFile::from_text(Path::new("t.yaml"), yaml.clone())
                .unwrap_or_else(|e| panic!("case {case}: {yaml:?}: {e}"));
            let snippet = Snippet::new(g.pick(&["ci/cloudbuild.yaml", "x"]).into(), &source);
            // Mostly a span inside one line, as findings are; sometimes any.
            let len = source.text.len();
            let span = if g.below(4) == 0 {
                let start = g.below(len + 1);
                start..(start + g.below(40)).min(len)
            } else {
                let line = 1 + g.below(source.line_count());
                let (from, to) = (source.line_start(line), source.line_start(line + 1));
                let start = from + g.below(to - from + 1);
                start..start + g.below(to - start + 1)
            };
            let Some(excerpt) = snippet.excerpt(span) else {
                continue;
            };
            let (message, help) = (text(&mut g), text(&mut g));
            let label = g.pick(&[
                "error, fixable: rewrite step 2",
                "warning, no automatic fix",
            ]);
            let d = Plain {
                code: g.pick(&["KM001", "KM014"]),
                url: "https://example.invalid/KM001.md",
                severity: [Severity::Error, Severity::Warning, Severity::Info][g.below(3)],
                message: &message,
                help: (g.below(5) != 0).then_some(help.as_str()),
                source: &excerpt,
                span: excerpt.span.clone(),
                label,
            };
            let mut ours = String::new();
            if render(&mut ours, &d) {
                drawn += 1;
                escaped += usize::from(excerpt.text().contains("\\u{"));
                cut += usize::from(excerpt.text().contains("..."));
                let theirs = miette(&handler, &d).expect("miette draws what we draw");
                assert_eq!(
                    ours,
                    theirs,
                    "case {case}: {:?} span {:?}",
                    excerpt.text(),
                    d.span
                );
            } else {
                assert!(ours.is_empty(), "case {case}: a refusal writes nothing");
            }
        }
        // The generator mixes in what the fast path refuses; most cases
        // must still be drawn, or this test compares nothing.
        assert!(drawn > cases / 4, "only {drawn} of {cases} drawn");
        // Escaped controls and cut long lines are drawn, and compared, too.
        assert!(escaped > 50 && cut > 50, "{escaped} escaped, {cut} cut");
    }

    #[test]
    fn wraps_as_textwrap_does() {
        let mut g = Rng(7);
        for _ in 0..20_000 {
            let text = text(&mut g);
            if !plain_text(&text) {
                continue;
            }
            let (initial, subsequent) =
                (g.pick(&["  × ", "  help: "]), g.pick(&["  │ ", "      "]));
            let options = textwrap::Options::new(WIDTH - 2)
                .initial_indent(initial)
                .subsequent_indent(subsequent)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation);
            let mut ours = String::new();
            fill(&mut ours, &text, initial, subsequent);
            assert_eq!(ours, textwrap::fill(&text, options) + "\n", "{text:?}");
        }
    }

    #[test]
    fn refuses_colourless_shapes_it_does_not_cover() {
        let source = SourceFile::from_text(Path::new("t.yaml"), "a: b\nc:\td\ne: é\n".into())
            .expect("parses");
        let snippet = Snippet::new("t.yaml".into(), &source);
        let mut out = String::new();
        // Empty span, span over a line break, a tab and non-ASCII nearby,
        // non-ASCII in the message.
        for (span, message) in [(3..3, "m"), (3..7, "m"), (0..1, "m"), (0..1, "é")] {
            let excerpt = snippet.excerpt(span.clone()).expect("within the text");
            let d = Plain {
                code: "KM001",
                url: "u",
                severity: Severity::Error,
                message,
                help: None,
                source: &excerpt,
                span: excerpt.span.clone(),
                label: "l",
            };
            assert!(!render(&mut out, &d), "{span:?}");
            assert!(out.is_empty());
        }
    }
}
