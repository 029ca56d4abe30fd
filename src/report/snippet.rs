//! The source text miette draws a diagnostic from, read around the span.
//!
//! miette's own `SourceCode` for text scans from the first byte to the span
//! for every diagnostic, which made laying out the report a tenth of a
//! whole `check`. [`Snippet`] starts miette's scan a few lines above the
//! span instead, found with the file's line index, and shifts the result
//! back: the same window, line, column and line count (a test compares the
//! two on every span of mixed-newline texts).

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::source::SourceFile;

/// A file's text for miette, shown under `name`.
pub struct Snippet<'a> {
    name: String,
    source: &'a SourceFile,
    /// A lone `\r` ends a line for miette but not for the line index; such
    /// rare texts are scanned whole.
    whole_scan: bool,
}

impl<'a> Snippet<'a> {
    pub fn new(name: String, source: &'a SourceFile) -> Self {
        let bytes = source.text.as_bytes();
        let whole_scan = bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        Snippet {
            name,
            source,
            whole_scan,
        }
    }

    /// The name the diagnostic shows for the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file shown.
    pub fn file(&self) -> &'a SourceFile {
        self.source
    }

    /// Whether the text has a lone `\r`, which miette counts as a line
    /// break and the line index does not.
    pub fn whole_scan(&self) -> bool {
        self.whole_scan
    }
}

impl SourceCode for Snippet<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let text = self.source.text.as_bytes();
        // Start one line more than the context above the span's line, so
        // miette's scan has seen as many lines before the span as from the
        // top of the file; `skipped` lines (and bytes) are added back.
        let skipped = if self.whole_scan {
            0
        } else {
            self.source
                .line_index(span.offset())
                .saturating_sub(context_lines_before + 1)
        };
        let start = self.source.line_start(skipped + 1);
        let shifted = SourceSpan::new(
            (span.offset() - start.min(span.offset())).into(),
            span.len(),
        );
        let inner = text[start..].read_span(&shifted, context_lines_before, context_lines_after)?;
        let data: &'b [u8] = inner.data();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            data,
            SourceSpan::new((inner.span().offset() + start).into(), inner.span().len()),
            inner.line() + skipped,
            inner.column(),
            inner.line_count() + skipped,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn same(a: &dyn SpanContents<'_>, b: &dyn SpanContents<'_>) -> bool {
        a.data() == b.data()
            && a.span() == b.span()
            && a.line() == b.line()
            && a.column() == b.column()
            && a.line_count() == b.line_count()
    }

    #[test]
    fn reads_the_same_window_as_miette_for_every_span() {
        for text in [
            "steps:\n- name: a\n  args: [x, y]\n- name: b\n\n  env: [A=1]\n",
            "a: 1\r\nb: 2\r\n\r\nc:\r\n  - d\r\n  - e\r\n",
            "a: 1\rb: 2\nc: 3\r\nd: é\n",
            "x",
            "",
            "\n\n\n\nz: 1\n\n\n",
        ] {
            let source = SourceFile::from_text(Path::new("t.yaml"), text.into())
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let snippet = Snippet::new("t.yaml".into(), &source);
            let whole = text.as_bytes();
            for start in 0..=text.len() {
                for len in 0..=(text.len() - start).min(12) {
                    for (before, after) in [(0, 0), (1, 1), (2, 3), (3, 0)] {
                        let span = SourceSpan::new(start.into(), len);
                        let ours = snippet.read_span(&span, before, after);
                        let theirs = whole.read_span(&span, before, after);
                        match (ours, theirs) {
                            (Ok(o), Ok(t)) => assert!(
                                same(o.as_ref(), t.as_ref()),
                                "{text:?} {start}+{len} ({before},{after})"
                            ),
                            (Err(_), Err(_)) => {}
                            (o, t) => panic!(
                                "{text:?} {start}+{len}: ours {:?}, miette {:?}",
                                o.is_ok(),
                                t.is_ok()
                            ),
                        }
                    }
                }
            }
        }
    }
}
