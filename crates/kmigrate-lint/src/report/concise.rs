//! `--format concise`: one line per finding,
//! `path:line:col: KM001 [error] message`, like ruff's concise output and
//! shellcheck's `-f gcc`: for editors' error parsers, grep and a quick look.

use std::fmt::Write as _;

use super::terminal::escape_inline;
use super::{Located, Run, display_path};

/// One finding's line, without the line break.
pub fn line(l: &Located<'_>) -> String {
    format!(
        "{}:{}:{}: {} [{}] {}",
        escape_inline(&display_path(l.path)),
        l.start.0,
        l.start.1,
        l.finding.rule,
        l.finding.severity,
        escape_inline(&l.finding.message)
    )
}

pub fn render(run: &Run) -> String {
    let mut out = String::new();
    for l in run.located() {
        let _ = writeln!(out, "{}", line(&l));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn one_line_per_finding_in_file_order() {
        assert_eq!(
            render(&testing::run()),
            "ci/cloudbuild.yaml:2:11: KM001 [error] Cloud Build step runs Kaniko\n\
             ci/cloudbuild.yaml:3:33: KM005 [warning] --cache-ttl has no equivalent\n"
        );
    }

    #[test]
    fn a_message_stays_on_its_line() {
        let mut run = testing::run();
        run.files[0].findings[0].message = "two\nlines \u{1b}[2J".into();
        let out = render(&run);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(!out.contains('\u{1b}'), "{out}");
    }
}
