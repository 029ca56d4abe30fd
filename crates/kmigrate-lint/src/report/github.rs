//! `--format github`: GitHub Actions workflow commands, one per finding:
//! `::error file=…,line=…,col=…,endLine=…,endColumn=…,title=KM001::message`.
//! Info findings are `notice`s. Files that could not be checked are
//! `::error` annotations too.

use std::fmt::Write as _;

use super::terminal::{escape, escape_inline};
use super::{Run, display_path};
use crate::rules::Severity;

/// Escapes a command's message (`%`, CR, LF), after the characters a
/// terminal or the log viewer would act on (see [`super::terminal`]).
fn escape_data(s: &str) -> String {
    escape(s)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (also `:` and `,`; a line break is escaped
/// as any control character, a property being one line).
fn escape_property(s: &str) -> String {
    escape_data(&escape_inline(s))
        .replace(':', "%3A")
        .replace(',', "%2C")
}

pub fn render(run: &Run) -> String {
    let mut out = String::new();
    for l in run.located() {
        let f = l.finding;
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut message = f.message.clone();
        if let Some(help) = &f.help {
            message = format!("{message}\nhelp: {help}");
        }
        if f.fix.is_some() {
            message.push_str("\nfixable with `kmigrate rewrite`");
        }
        message = format!("{message}\n{}", l.help_url());
        let _ = writeln!(
            out,
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(&display_path(l.path)),
            l.start.0,
            l.start.1,
            l.end.0,
            l.end.1,
            escape_property(&format!("{} ({})", f.rule, f.severity)),
            escape_data(&message)
        );
    }
    for e in &run.errors {
        let mut props = format!("file={}", escape_property(&display_path(&e.path)));
        if let Some((line, col)) = e.position {
            let _ = write!(props, ",line={line},col={col}");
        }
        let mut message = e.message.clone();
        if let Some(help) = &e.help {
            message = format!("{message}\nhelp: {help}");
        }
        let _ = writeln!(
            out,
            "::error {props},title=kmigrate%3A file not checked::{}",
            escape_data(&message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn one_command_per_finding_with_escapes() {
        let out = render(&testing::run());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with(
                "::error file=ci/cloudbuild.yaml,line=2,col=11,endLine=2,endColumn=48,title=KM001 (error)::Cloud Build step runs Kaniko%0Ahelp: rewrite"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with("%0Ahttps://github.com/kmigrate/kmigrate/blob/main/rules/KM001.md")
        );
        assert!(lines[1].starts_with("::warning file=ci/cloudbuild.yaml,line=3,col=33,"));
        assert!(lines[2].starts_with(
            "::error file=bad/cloudbuild.yaml,line=3,col=5,title=kmigrate%3A file not checked::"
        ));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(
            escape_data("\u{1b}]0;x\u{7}\u{9b}\u{202e}\u{0}\n"),
            "\\u{1b}]0;x\\u{7}\\u{9b}\\u{202e}\\u{0}%0A"
        );
        assert_eq!(escape_property("a\nb\u{1b}"), "a\\u{a}b\\u{1b}");
    }
}
