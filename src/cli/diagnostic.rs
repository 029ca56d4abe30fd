//! Human diagnostics: a finding rendered by miette with its source span.

use std::fmt;

use miette::{Diagnostic, LabeledSpan};

use crate::report::snippet::{Excerpt, Snippet};
use crate::report::terminal::{escape, escape_inline};
use crate::rules::{Finding, Severity};
use crate::source::SourceFile;

/// One finding as drawn, its texts from input escaped for the terminal.
struct FindingDiagnostic<'a> {
    finding: &'a Finding,
    message: String,
    help: Option<String>,
    source: &'a Excerpt,
}

impl fmt::Debug for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl Diagnostic for FindingDiagnostic<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.finding.rule))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.finding.rule.meta().help_url()))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.finding.severity.to_string()),
            self.source.span.clone(),
        ))))
    }
}

/// The width miette's handler lays reports out at when not told another.
const MIETTE_WIDTH: usize = 200;

/// Renders findings of one file as miette reports. `color` picks the
/// theme; without it the output is plain text (NO_COLOR, pipes).
/// `fix_hint` adds "fixable: run `kmigrate rewrite`" where a fix exists.
pub fn render(source: &SourceFile, findings: &[Finding], color: bool, fix_hint: bool) -> String {
    let handler = crate::report::human::handler(color);
    let snippet = Snippet::new(source.path.display().to_string(), source);
    let mut out = String::new();
    for finding in findings {
        let mut help = finding
            .help
            .as_deref()
            .map(escape)
            .unwrap_or_default()
            .into_owned();
        if fix_hint && finding.fix.is_some() {
            if !help.is_empty() {
                help.push('\n');
            }
            help.push_str("fixable: run `kmigrate rewrite` on this file");
        }
        let span = finding.span.start..finding.span.end.max(finding.span.start);
        let drawn = snippet.excerpt(span).is_some_and(|excerpt| {
            // miette draws all but the help, which keeps its code lines
            // (a policy, a command) whole.
            let d = FindingDiagnostic {
                finding,
                message: escape(&finding.message).into_owned(),
                help: None,
                source: &excerpt,
            };
            let mut rendered = String::new();
            let ok = handler.render_report(&mut rendered, &d).is_ok();
            if ok {
                out.push_str(&rendered);
                if !help.is_empty() {
                    out.push_str(&crate::report::human::help_footer(
                        &help,
                        color,
                        MIETTE_WIDTH,
                    ));
                }
            }
            ok
        });
        if !drawn {
            out.push_str(&format!(
                "{}: {}\n",
                finding.rule,
                escape_inline(&finding.message)
            ));
        }
    }
    out
}

/// Whether stderr/stdout should be coloured.
pub fn use_color(is_tty: bool) -> bool {
    is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
