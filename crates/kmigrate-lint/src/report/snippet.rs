//! The source text a diagnostic shows, cut out of the file around its span.
//!
//! A diagnostic shows the lines of its span with one line of context on
//! each side. [`Snippet::excerpt`] copies those lines, and one more on each
//! side so miette's scan picks the same context as over the whole file,
//! into an [`Excerpt`], made printable on the way:
//!
//! - characters a terminal would act on (escape sequences, C1 controls,
//!   bidi overrides, a lone `\r`; see [`terminal`]) are shown escaped;
//! - a line longer than [`LONG_LINE`] bytes is cut to [`WINDOW`] characters
//!   around the span, each cut marked `...` (as rustc and ruff do), so a
//!   one-line JSON config with thousands of findings prints a bounded
//!   excerpt per finding instead of the whole line each time.
//!
//! Both the direct renderer ([`super::plain`]) and miette draw from the
//! excerpt, so they show the same text; copying three lines also spares
//! miette's scan from the first byte of the file for every diagnostic.

use std::ops::Range;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use super::terminal;
use crate::source::SourceFile;

/// Lines up to this many bytes are shown whole.
pub const LONG_LINE: usize = 240;
/// Characters shown of a longer line.
pub const WINDOW: usize = 160;
/// Characters of a long line shown before the span's start.
pub const BEFORE: usize = 60;
/// Marks where a long line was cut.
const CUT: &str = "...";

/// A file's text for diagnostics, shown under `name`.
pub struct Snippet<'a> {
    name: String,
    source: &'a SourceFile,
}

impl<'a> Snippet<'a> {
    /// `name` is escaped for the terminal here, once for every diagnostic.
    pub fn new(name: String, source: &'a SourceFile) -> Self {
        let name = match terminal::escape_inline(&name) {
            std::borrow::Cow::Borrowed(_) => name,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        Snippet { name, source }
    }

    /// The name the diagnostic shows for the file, escaped.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file shown.
    pub fn file(&self) -> &'a SourceFile {
        self.source
    }

    /// What a diagnostic on `span` (byte offsets in the file) shows; `None`
    /// when the span does not lie within the text on character boundaries.
    pub fn excerpt(&self, span: Range<usize>) -> Option<Excerpt> {
        let file = self.source;
        let text = file.text.as_str();
        if span.start > span.end
            || span.end > text.len()
            || !text.is_char_boundary(span.start)
            || !text.is_char_boundary(span.end)
        {
            return None;
        }
        let first = file.line_index(span.start);
        let last = file.line_index(span.end);
        let from = first.saturating_sub(2);
        let to = (last + 2).min(file.line_count() - 1);

        // The columns shown of long lines, set by the span's first line
        // (bytes from the line start), so context lines line up with it.
        let (start, end) = content(file, first);
        let columns = (end - start > LONG_LINE).then(|| {
            let at = span.start.min(end);
            let mut a = back(text, at, BEFORE, start);
            let b = forward(text, a, WINDOW, end);
            if b == end {
                a = back(text, b, WINDOW, start);
            }
            (a - start, b - start)
        });

        let mut out = String::new();
        let (mut mapped_start, mut mapped_end) = (0, 0);
        for index in from..=to {
            let (start, end) = content(file, index);
            let next = file.line_start(index + 2);
            let keep = if end - start <= LONG_LINE {
                start..end
            } else {
                let (a, b) = columns.unwrap_or((0, forward(text, start, WINDOW, end) - start));
                let a = ceil_boundary(text, (start + a).min(end));
                let b = floor_boundary(text, (start + b).min(end)).max(a);
                a..b
            };
            let line_start = out.len();
            if keep.start > start {
                out.push_str(CUT);
            }
            let kept_start = out.len();
            for c in text[keep.clone()].chars() {
                push_shown(&mut out, c);
            }
            let kept_end = out.len();
            if keep.end < end {
                out.push_str(CUT);
            }
            let content_end = out.len();
            out.push_str(&text[end..next]);
            // Where an offset of this line lands in the excerpt: cut parts
            // at the nearest kept character, the line break as it is.
            let map = |o: usize| {
                if o < keep.start {
                    kept_start
                } else if o <= keep.end {
                    kept_start + shown_len(&text[keep.start..o])
                } else if o <= end {
                    kept_end
                } else {
                    content_end + (o - end)
                }
            };
            let owns = |o: usize| o >= start && (o < next || (index == to && o <= next));
            if owns(span.start) {
                mapped_start = map(span.start);
            }
            if owns(span.end) {
                mapped_end = map(span.end);
            }
            debug_assert!(line_start <= kept_start);
        }
        // miette's column: bytes before the span's start in its line, a
        // span inside a `\r\n` counted from before the `\r`.
        let (line_start, line_end) = content(file, first);
        let column = span.start.min(line_end) - line_start;
        Some(Excerpt {
            name: self.name.clone(),
            starts: line_starts(&out),
            text: out,
            first_line: from,
            span: mapped_start..mapped_end.max(mapped_start),
            line: first,
            column,
        })
    }
}

/// Byte offsets of 0-based line `index`'s text, without its line break.
fn content(file: &SourceFile, index: usize) -> (usize, usize) {
    let text = file.text.as_bytes();
    let start = file.line_start(index + 1);
    let mut end = file.line_start(index + 2);
    if end > start && text[end - 1] == b'\n' {
        end -= 1;
        if end > start && text[end - 1] == b'\r' {
            end -= 1;
        }
    }
    (start, end)
}

/// The offset `n` characters before `at`, not before `floor`.
fn back(text: &str, at: usize, n: usize, floor: usize) -> usize {
    text[floor..at]
        .char_indices()
        .rev()
        .take(n)
        .last()
        .map_or(at, |(i, _)| floor + i)
}

/// The offset `n` characters after `at`, not past `ceil`.
fn forward(text: &str, at: usize, n: usize, ceil: usize) -> usize {
    text[at..ceil]
        .char_indices()
        .nth(n)
        .map_or(ceil, |(i, _)| at + i)
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Whether a source character is shown escaped (tabs are laid out by the
/// renderers; line breaks never reach here).
fn shown_escaped(c: char) -> bool {
    c != '\t' && terminal::is_unsafe(c)
}

fn push_shown(out: &mut String, c: char) {
    if shown_escaped(c) {
        terminal::push_escaped(out, c);
    } else {
        out.push(c);
    }
}

/// The length in bytes of `s` as [`push_shown`] writes it.
fn shown_len(s: &str) -> usize {
    s.chars()
        .map(|c| {
            if shown_escaped(c) {
                // `\u{` + hex digits + `}`
                let bits = 32 - (c as u32).leading_zeros() as usize;
                4 + bits.div_ceil(4).max(1)
            } else {
                c.len_utf8()
            }
        })
        .sum()
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
        .collect()
}

/// A few lines of a file as a diagnostic shows them (see the module
/// documentation), with the span mapped into them.
pub struct Excerpt {
    name: String,
    text: String,
    /// Where each line of `text` starts (a final line break starts one
    /// more, empty line, as in [`SourceFile`]).
    starts: Vec<usize>,
    /// 0-based number in the file of the first line of `text`.
    first_line: usize,
    /// The span, in `text`.
    pub span: Range<usize>,
    /// 0-based line of the span's start in the file.
    line: usize,
    /// Byte column of the span's start in its line of the file.
    column: usize,
}

impl Excerpt {
    /// The file's name, escaped.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 1-based line and column (in bytes, as miette counts) of the span's
    /// start in the file.
    pub fn position(&self) -> (usize, usize) {
        (self.line + 1, self.column + 1)
    }

    /// The excerpt's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Index among the excerpt's lines of the one holding `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|s| *s <= offset).max(1) - 1
    }

    /// Line `index` of the excerpt: its 1-based number in the file, its
    /// offset in the excerpt and its text without the line break; `None`
    /// past the last line.
    pub fn line(&self, index: usize) -> Option<(usize, usize, &str)> {
        let start = *self.starts.get(index)?;
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.text.len());
        let raw = &self.text[start..end];
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        Some((self.first_line + index + 1, start, line))
    }
}

impl SourceCode for Excerpt {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let inner =
            self.text
                .as_bytes()
                .read_span(span, context_lines_before, context_lines_after)?;
        // The header's column is the one in the file, not in the excerpt
        // (where a cut or an escape may come before the span).
        let column = if (context_lines_before, context_lines_after) == (0, 0)
            && span.offset() == self.span.start
        {
            self.column
        } else {
            inner.column()
        };
        let data: &'b [u8] = inner.data();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            data,
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count() + self.first_line,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::{Diagnostic, GraphicalReportHandler, LabeledSpan};
    use std::fmt;
    use std::path::Path;

    /// A diagnostic with one label, over any source.
    struct D<'a> {
        source: &'a dyn SourceCode,
        span: Range<usize>,
    }

    impl fmt::Debug for D<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("m")
        }
    }

    impl fmt::Display for D<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("m")
        }
    }

    impl std::error::Error for D<'_> {}

    impl Diagnostic for D<'_> {
        fn source_code(&self) -> Option<&dyn SourceCode> {
            Some(self.source)
        }
        fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
            Some(Box::new(std::iter::once(
                LabeledSpan::new_primary_with_span(Some("l".into()), self.span.clone()),
            )))
        }
    }

    fn draw(source: &dyn SourceCode, span: Range<usize>) -> Option<String> {
        let handler = GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
        let mut out = String::new();
        handler.render_report(&mut out, &D { source, span }).ok()?;
        Some(out)
    }

    /// For ordinary text (short lines, nothing to escape), a diagnostic
    /// drawn from the excerpt is byte for byte the one miette draws from
    /// the whole file.
    #[test]
    fn an_ordinary_excerpt_draws_what_the_whole_file_draws() {
        for text in [
            "steps:\n- name: a\n  args: [x, y]\n- name: b\n\n  env: [A=1]\n",
            "a: 1\r\nb: 2\r\n\r\nc:\r\n  - d\r\n  - e\r\n",
            "a: 1\nb: 2\nc: 3\r\nd: é #\tx\ne: 1",
            "x",
            "",
            "\n\n\n\nz: 1\n\n\n",
        ] {
            let source = SourceFile::from_text(Path::new("t.yaml"), text.into())
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let snippet = Snippet::new("t.yaml".into(), &source);
            let whole = miette::NamedSource::new("t.yaml", text.to_string());
            for start in 0..=text.len() {
                for len in 0..=(text.len() - start).min(12) {
                    let span = start..start + len;
                    let Some(excerpt) = snippet.excerpt(span.clone()) else {
                        assert!(
                            !text.is_char_boundary(start) || !text.is_char_boundary(start + len)
                        );
                        continue;
                    };
                    let ours = draw(&excerpt, excerpt.span.clone());
                    let theirs = draw(&whole, span.clone());
                    assert_eq!(ours, theirs, "{text:?} {span:?}");
                }
            }
        }
    }

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        // Raw controls only parse in comments; a bidi override anywhere.
        let text = "a: 1 # \u{1b}]0;OWNED\u{7}\u{1b}[2J\nb: \u{202e}x # \u{9b}1m \u{0}\n";
        let source = SourceFile::from_text(Path::new("t.yaml"), text.into()).unwrap();
        let snippet = Snippet::new("ev\u{1b}[2Jil\n.yaml".into(), &source);
        let at = text.find('x').unwrap();
        let excerpt = snippet.excerpt(at..at + 1).unwrap();
        let shown = draw(&excerpt, excerpt.span.clone()).unwrap();
        for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{0}'] {
            assert!(!shown.contains(raw), "{raw:?} in {shown}");
        }
        assert!(
            shown.contains("a: 1 # \\u{1b}]0;OWNED\\u{7}\\u{1b}[2J"),
            "{shown}"
        );
        assert!(
            shown.contains("b: \\u{202e}x # \\u{9b}1m \\u{0}"),
            "{shown}"
        );
        assert!(shown.contains("[ev\\u{1b}[2Jil\\u{a}.yaml:2:"), "{shown}");
        // The label still points at `x`.
        assert_eq!(&excerpt.text()[excerpt.span.clone()], "x");
    }

    #[test]
    fn long_lines_are_cut_around_the_span() {
        let steps: Vec<String> = (0..2000)
            .map(|i| format!("{{\"name\": \"gcr.io/kaniko-project/executor\", \"id\": \"s{i}\"}}"))
            .collect();
        let text = format!("{{\"steps\": [{}]}}\n", steps.join(", "));
        let source = SourceFile::from_text(Path::new("cloudbuild.json"), text.clone()).unwrap();
        let snippet = Snippet::new("cloudbuild.json".into(), &source);
        let at = text.find("\"s1000\"").unwrap();
        let excerpt = snippet.excerpt(at..at + 7).unwrap();
        assert_eq!(&excerpt.text()[excerpt.span.clone()], "\"s1000\"");
        let (_, _, line) = excerpt.line(0).unwrap();
        assert!(line.starts_with(CUT) && line.ends_with(CUT), "{line}");
        assert_eq!(line.chars().count(), WINDOW + 2 * CUT.len());
        assert_eq!(excerpt.position(), (1, at + 1));
        // Near the end of the line, the window keeps its width.
        let end = text.rfind('}').unwrap();
        let excerpt = snippet.excerpt(end..end + 1).unwrap();
        let (_, _, line) = excerpt.line(0).unwrap();
        assert!(line.starts_with(CUT) && line.ends_with("}]}"), "{line}");
        assert_eq!(line.chars().count(), WINDOW + CUT.len());
    }
}
